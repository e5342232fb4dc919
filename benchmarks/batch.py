"""Batch prediction rows/s on this machine: the local, Ray and Spark engines on the same rows.

    .venv/bin/python benchmarks/batch.py                  # tfidf, 100k rows, every engine
    .venv/bin/python benchmarks/batch.py --rows 20000 --engines local ray
    .venv/bin/python benchmarks/batch.py --table-only     # rebuild the table only

The rows are the real arXiv abstracts of ../shared/data (4,997 of them) repeated up to
``--rows``, in one Parquet file; the model is tfidf trained on arxiv_8cat. Each engine's
start-up (``ray.init()``, a Spark session) is timed apart from the job, which runs on the
already started engine (its actors or Python workers still open the model inside the job).
Results: benchmarks/results/batch/<kind>-<engine>.json; the table between the
``<!-- batch:start -->`` markers of docs/benchmarks.md is rebuilt from them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from docsort.api import Columns
from docsort.api.batch import BatchRequest
from docsort.batch import run_batch
from docsort.io import write_json
from run import ROOT, add_docs_option, machine, replace_docs_section

RESULTS = ROOT / "benchmarks" / "results" / "batch"
SHARED = ROOT.parent / "shared" / "data" / "arxiv"
START, END = "<!-- batch:start -->", "<!-- batch:end -->"
ENGINES = ("local", "ray", "spark")
PARAMS = {"char_ngrams": None}  # the tfidf parameters measured


def rows_file(folder: Path, rows: int) -> Path:
    columns = ["title", "abstract"]
    base = pd.concat(
        [
            pd.read_csv(SHARED / "arxiv_8cat.csv")[columns],
            pd.read_csv(SHARED / "arxiv_math_multilabel.csv")[columns],
        ],
        ignore_index=True,
    )
    frame = pd.concat([base] * (rows // len(base) + 1), ignore_index=True).iloc[:rows]
    frame.insert(0, "id", range(len(frame)))
    path = folder / "rows.parquet"
    frame.to_parquet(path, row_group_size=10_000)
    return path


def train_model(folder: Path) -> Path:
    """tfidf on word n-grams (1-2) trained on the 1,600 rows of arxiv_8cat; the default's
    character n-grams would make the runs ~10x longer on this shared machine."""
    from docsort import api

    out = folder / "tfidf"
    request = api.TrainRequest(
        data=SHARED / "arxiv_8cat.csv",
        out=out,
        kind="tfidf",
        params=dict(PARAMS),
        columns=api.Columns.parse("title,abstract", label="category"),
    )
    api.fit(api.prepare_train(request))
    return out


class LoadSampler:
    """The 1-minute load average sampled every second while a run goes on (its maximum
    says how much other work shared the machine)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(1.0)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def start_engine(engine: str) -> tuple[float, Any]:
    """Start the engine (timed); returns the seconds and what stops it."""
    started = time.perf_counter()
    if engine == "ray":
        import ray

        from docsort.batch.ray_engine import _init

        _init(ray, None, None)
        return time.perf_counter() - started, ray.shutdown
    if engine == "spark":
        from docsort.batch.spark_engine import session

        spark, _ = session(None)
        return time.perf_counter() - started, spark.stop
    return 0.0, lambda: None


def run_engine(engine: str, model: Path, data: Path, work: Path, shard_rows: int) -> dict:
    load_before = round(os.getloadavg()[0], 2)
    with LoadSampler() as load:
        startup, stop = start_engine(engine)
        out = work / f"out-{engine}"
        shutil.rmtree(out, ignore_errors=True)
        request = BatchRequest(
            model=model,
            data=data,
            out=out,
            engine=engine,
            columns=Columns.parse(keep="id"),
            shard_rows=shard_rows,
        )
        started = time.perf_counter()
        result = run_batch(request)
        job = time.perf_counter() - started
        concurrency = _workers(engine)
        stop()
    return {
        "engine": engine,
        "kind": "tfidf",
        "params": {k: v for k, v in PARAMS.items()},
        "rows": result.rows,
        "shards": result.shards,
        "shard_rows": shard_rows,
        "failed_rows": result.failed_rows,
        "startup_seconds": round(startup, 2),
        "job_seconds": round(job, 2),
        "rows_per_second": round(result.rows / job, 1),
        "end_to_end_rows_per_second": round(result.rows / (job + startup), 1),
        "workers": concurrency,
        "threads_per_worker": 1,
        "load_before": load_before,
        "load_max": round(max(load.samples, default=load_before), 2),
        "load_after": round(os.getloadavg()[0], 2),
        "machine": machine(),
    }


def _workers(engine: str) -> int:
    """Model copies that ran at once: Ray actors (one CPU each on the CPUs Ray was given),
    Spark's local[*] task slots, one for the local engine."""
    if engine == "local":
        return 1
    return os.cpu_count() or 1


def build_table() -> str:
    rows = []
    for engine in ENGINES:
        path = RESULTS / f"tfidf-{engine}.json"
        if path.is_file():
            rows.append(json.loads(path.read_text(encoding="utf-8")))
    if not rows:
        return "(no results yet: run benchmarks/batch.py)"
    lines = [
        "| engine | rows | shards | workers | start-up s | job s | rows/s (job) | rows/s "
        "(with start-up) | load before / max / after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['rows']:,} | {r['shards']} | {r['workers']} "
            f"| {r['startup_seconds']:.1f} | {r['job_seconds']:.1f} "
            f"| {r['rows_per_second']:,.0f} | {r['end_to_end_rows_per_second']:,.0f} "
            f"| {r['load_before']} / {r['load_max']} / {r['load_after']} |"
        )
    cpu = rows[0]["machine"]["cpu"]
    lines.append("")
    lines.append(
        "tfidf with word n-grams only (`char_ngrams: null`), trained on arxiv_8cat, over "
        f"real arXiv abstracts repeated to {rows[0]['rows']:,} rows in "
        f"one Parquet file, shards of {rows[0]['shard_rows']:,} rows; {cpu}, "
        f"{rows[0]['machine']['cores']} cores shared with other work (the 1-minute load "
        "average before, at most during, and after each run). *Start-up*: `ray.init()` or the "
        "Spark session, timed apart; *job*: planning, reading, predicting and writing every "
        "shard on the started engine, model loading per worker included. One thread per "
        "worker (tfidf uses no thread pool)."
    )
    lines += ["", *projection(rows)]
    return "\n".join(lines)


PROJECTED_WORKERS = (1, 8, 64)
MILLION = 1_000_000


def projection(rows: list[dict]) -> list[str]:
    """A projection, not a measurement: a million documents on N workers of one core each,
    from each engine's measured rate per worker (job rows/s ÷ its workers) and its measured
    start-up, priced at docsort's default hardware rate per core (``CostModel``: 0.10 USD an
    hour for 2 vCPUs). It assumes the rate per worker holds as workers are added (no shared
    storage, scheduler or network limit), which this one machine cannot show."""
    from docsort.models.cost import CostModel

    per_core_hour = CostModel().hardware_per_hour / 2
    head = " | ".join(f"N = {n}: hours / USD" for n in PROJECTED_WORKERS)
    lines = [
        f"| engine | rows/s per worker (measured) | start-up s (measured) | {head} |",
        "| --- | ---: | ---: |" + " ---: |" * len(PROJECTED_WORKERS),
    ]
    for r in rows:
        rate = r["rows_per_second"] / r["workers"]
        cells = []
        for n in PROJECTED_WORKERS:
            if r["engine"] == "local" and n > 1:  # one process: it has no workers to add
                cells.append("–")
                continue
            seconds = r["startup_seconds"] + MILLION / (rate * n)
            usd = seconds / 3600 * n * per_core_hour
            cells.append(f"{seconds / 3600:.2f} / {usd:.2f}")
        lines.append(
            f"| {r['engine']} | {rate:,.0f} | {r['startup_seconds']:.1f} | {' | '.join(cells)} |"
        )
    lines += [
        "",
        "*Projected* cost of 1,000,000 documents (tfidf as above): hours = start-up + 10⁶ ÷ "
        "(rate per worker × N); USD = hours × N × "
        f"{per_core_hour:.2f} USD per core-hour (docsort's default hardware price, half of "
        "0.10 USD for a 2-vCPU VM). It assumes the per-worker rate measured here holds on N "
        "workers, which only a real cluster can confirm.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--shard-rows", type=int, default=10_000)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the table.")
    add_docs_option(parser)
    args = parser.parse_args()
    if not args.table_only:
        with tempfile.TemporaryDirectory(prefix="docsort-batch-") as tmp:
            work = Path(tmp)
            data = rows_file(work, args.rows)
            model = train_model(work)
            for engine in args.engines:
                print(f"== {engine}", flush=True)
                result = run_engine(engine, model, data, work, args.shard_rows)
                write_json(RESULTS / f"tfidf-{engine}.json", result)
                shown = ("startup_seconds", "job_seconds", "rows_per_second", "load_max")
                print(json.dumps({k: result[k] for k in shown}), flush=True)
    replace_docs_section(START, END, build_table(), args.docs)


if __name__ == "__main__":
    main()

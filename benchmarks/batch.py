"""Batch prediction rows/s on this machine: the local, Ray and Spark engines on the same rows.

    .venv/bin/python benchmarks/batch.py                  # tfidf, 100k rows, every engine
    .venv/bin/python benchmarks/batch.py --kind embed-minilm
    .venv/bin/python benchmarks/batch.py --rows 20000 --engines local ray
    .venv/bin/python benchmarks/batch.py --table-only     # rebuild the table only

``tfidf``: the real arXiv abstracts of ../shared/data (4,997 of them) repeated up to
``--rows``, in one Parquet file; the model is tfidf trained on arxiv_8cat.
``embed-minilm``: banking77's real queries (its 13,083 training and test rows) repeated up to
``--rows``; the model is the ``embed`` kind on minilm (``max_length`` 64: 35 of the 13,083
queries are longer and cut) trained on banking77's training rows. An abstract takes minilm
~40 ms a thread, so short texts keep 100k rows per engine within minutes.
Each engine's start-up (``ray.init()``, a Spark session) is timed apart from the job, which
runs on the already started engine (its actors or Python workers still open the model inside
the job). After the engines ran, each one's labels are compared with the local engine's, row by
row. Results: benchmarks/results/batch/<kind>-<engine>.json; the tables between the
``<!-- batch:start -->`` markers of docs/benchmarks.md (every column, kind by kind) and the
``<!-- batch-summary:start -->`` markers of docs/batch.md (every kind in one table, and the
projection) are rebuilt from them.
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
from docsort.models.base import Runtime
from run import DOCS, ROOT, _busy_seconds, machine, replace_docs_section, train_test

RESULTS = ROOT / "benchmarks" / "results" / "batch"
SHARED = ROOT.parent / "shared" / "data" / "arxiv"
START, END = "<!-- batch:start -->", "<!-- batch:end -->"
PAGE = ROOT / "docs" / "batch.md"  # the command's own page: the summary of every kind
SUMMARY_START, SUMMARY_END = "<!-- batch-summary:start -->", "<!-- batch-summary:end -->"
ENGINES = ("local", "ray", "spark")
PARAMS = {"char_ngrams": None}  # the tfidf parameters measured
# what each measured kind is: its parameters, and the torch threads of each engine's workers
# (None: the local engine's default, every core; Ray and Spark run one worker per core)
KINDS: dict[str, dict[str, Any]] = {
    "tfidf": {
        "kind": "tfidf",
        "params": PARAMS,
        "threads": {},
        "title": "tfidf (word n-grams), arXiv abstracts",
    },
    "embed-minilm": {
        "kind": "embed",
        "params": {"base": "minilm", "max_length": 64},
        "threads": {"local": None, "ray": 1, "spark": 1},
        "title": "embed on minilm (64 tokens), banking77 queries",
    },
}


def rows_file(folder: Path, rows: int, kind: str = "tfidf") -> Path:
    if kind == "embed-minilm":
        return queries_file(folder, rows)
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


def queries_file(folder: Path, rows: int) -> Path:
    """banking77's queries (training rows, then test rows) repeated to ``rows``."""
    train_rows, test_rows = train_test("banking77")
    base = pd.DataFrame({"text": [*train_rows.texts, *test_rows.texts]})
    frame = pd.concat([base] * (rows // len(base) + 1), ignore_index=True).iloc[:rows]
    frame.insert(0, "id", range(len(frame)))
    path = folder / "rows.parquet"
    frame.to_parquet(path, row_group_size=10_000)
    return path


def train_model(folder: Path, kind: str = "tfidf") -> Path:
    if kind == "embed-minilm":
        return train_embed(folder)
    return train_tfidf(folder)


def train_embed(folder: Path) -> Path:
    """embed on minilm (64 tokens) trained on banking77's 10,003 training rows."""
    from docsort import api

    out = folder / "embed-minilm"
    request = api.TrainRequest(
        data="builtin:banking77:train",
        out=out,
        kind="embed",
        params=dict(KINDS["embed-minilm"]["params"]),
    )
    api.fit(api.prepare_train(request))
    return out


def train_tfidf(folder: Path) -> Path:
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


def _tree_cpu_seconds(root: int) -> dict[int, float]:
    """CPU seconds (own and waited-for children's) of ``root`` and every process below it, by
    pid (/proc; empty elsewhere): the engines' workers, whatever forked them."""
    stats: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the name: state ppid ... utime(12) stime(13) cutime(14) cstime(15)
        stats[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]) / tick)
    tree, grew = {root}, True
    while grew:
        below = {pid for pid, (ppid, _) in stats.items() if ppid in tree} - tree
        tree |= below
        grew = bool(below)
    return {pid: stats[pid][1] for pid in tree if pid in stats}


def _ours_used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def run_engine(
    engine: str, model: Path, data: Path, work: Path, shard_rows: int, kind: str = "tfidf"
) -> dict:
    threads = KINDS[kind]["threads"].get(engine, 1)
    load_before = round(os.getloadavg()[0], 2)
    busy, ours, wall = _busy_seconds(), _tree_cpu_seconds(os.getpid()), time.perf_counter()
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
            runtime=Runtime(threads=threads) if threads else None,
        )
        started = time.perf_counter()
        result = run_batch(request)
        job = time.perf_counter() - started
        concurrency = _workers(engine, result.shards)
        # before the engine stops: its workers' CPU time goes with them
        ours_used = _ours_used(ours, _tree_cpu_seconds(os.getpid()))
        others = None
        if busy is not None:
            elapsed = time.perf_counter() - wall
            others = round(max(_busy_seconds() - busy - ours_used, 0.0) / elapsed, 2)
        stop()
    if threads is None:
        import torch  # the local engine predicted in this process, with torch's default

        threads = torch.get_num_threads()
    return {
        "engine": engine,
        "kind": KINDS[kind]["kind"],
        "benchmark": kind,
        "params": dict(KINDS[kind]["params"]),
        "rows": result.rows,
        "shards": result.shards,
        "shard_rows": shard_rows,
        "failed_rows": result.failed_rows,
        "startup_seconds": round(startup, 2),
        "job_seconds": round(job, 2),
        "rows_per_second": round(result.rows / job, 1),
        "end_to_end_rows_per_second": round(result.rows / (job + startup), 1),
        "workers": concurrency,
        "threads_per_worker": threads,
        "load_before": load_before,
        "other_cores_busy": others,  # cores kept busy by processes outside this run's tree
        "load_max": round(max(load.samples, default=load_before), 2),
        "load_after": round(os.getloadavg()[0], 2),
        "machine": machine(),
    }


def _workers(engine: str, shards: int) -> int:
    """Model copies that ran at once: Ray actors (one CPU each on the CPUs Ray was given),
    Spark's local[*] task slots (no more than the shards), one for the local engine."""
    if engine == "local":
        return 1
    return min(os.cpu_count() or 1, max(shards, 1))


def agreement(work: Path, engines: list[str]) -> dict[str, dict[str, Any]]:
    """Each engine's labels and confidences against the local engine's, row by row."""
    import pyarrow.parquet as pq

    def read(engine: str) -> pd.DataFrame:
        parts = sorted((work / f"out-{engine}").glob("part-*.parquet"))
        frames = [pq.read_table(p, columns=["row", "label", "confidence"]).to_pandas()
                  for p in parts]  # fmt: skip
        return pd.concat(frames).set_index("row").sort_index()

    if "local" not in engines:
        return {}
    local = read("local")
    found = {}
    for engine in engines:
        other = read(engine).reindex(local.index)
        gap = (other["confidence"] - local["confidence"]).abs().max()
        found[engine] = {
            "rows_compared": int(len(local)),
            "same_label": int((other["label"] == local["label"]).sum()),
            "max_confidence_difference": float(gap),
        }
    return found


def build_table() -> str:
    parts = [part for kind in KINDS if (part := kind_table(kind))]
    return "\n\n".join(parts) or "(no results yet: run benchmarks/batch.py)"


def kind_results(kind: str) -> list[dict]:
    """The kind's result files, engine by engine (those measured)."""
    rows = []
    for engine in ENGINES:
        path = RESULTS / f"{kind}-{engine}.json"
        if path.is_file():
            rows.append(json.loads(path.read_text(encoding="utf-8")))
    return rows


def kind_table(kind: str) -> list[str] | str:
    rows = kind_results(kind)
    if not rows:
        return ""
    lines = [
        "| engine | rows | shards | workers × threads | start-up s | job s | rows/s (job) "
        "| rows/s (with start-up) | same label as local | load before / max / after "
        "| other cores busy |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for r in rows:
        same = r.get("agreement")
        if not same:
            same = "not recorded"
        elif r["engine"] == "local":
            same = "(itself)"
        else:
            gap = same["max_confidence_difference"]
            gap = "the same" if gap == 0 else f"within {gap:.1e}"
            same = f"{same['same_label']:,} of {same['rows_compared']:,}; confidences {gap}"
        lines.append(
            f"| {r['engine']} | {r['rows']:,} | {r['shards']} "
            f"| {r['workers']} × {r['threads_per_worker']} "
            f"| {r['startup_seconds']:.1f} | {r['job_seconds']:.1f} "
            f"| {r['rows_per_second']:,.0f} | {r['end_to_end_rows_per_second']:,.0f} | {same} "
            f"| {r['load_before']} / {r['load_max']} / {r['load_after']} "
            f"| {r.get('other_cores_busy', 'not recorded')} |"
        )
    cpu = rows[0]["machine"]["cpu"]
    common = (
        f"shards of {rows[0]['shard_rows']:,} rows; {cpu}, {rows[0]['machine']['cores']} cores "
        "shared with other work (the 1-minute load average before, at most during, and after "
        "each run; *other cores busy*: cores that processes outside the run kept busy, on "
        "average). *Start-up*: `ray.init()` or the Spark session, timed apart; *job*: "
        "planning, reading, predicting and writing every shard on the started engine, model "
        "loading per worker included."
    )
    if kind == "embed-minilm":
        about = (
            f"**embed on minilm** (`max_length: 64`: 35 of the 13,083 queries are longer and "
            "cut), trained on banking77's training rows, over banking77's real queries "
            f"(training and test rows) repeated to {rows[0]['rows']:,} rows in one Parquet "
            f"file, {common} The local engine is one process with torch's default threads "
            "(every core); Ray and Spark run one worker per core with one torch thread each."
        )
    else:
        about = (
            "**tfidf** with word n-grams only (`char_ngrams: null`), trained on arxiv_8cat, "
            f"over real arXiv abstracts repeated to {rows[0]['rows']:,} rows in one Parquet "
            f"file, {common} One thread per worker (tfidf uses no thread pool)."
        )
    notes = sorted({r["note"] for r in rows if r.get("note")})
    if notes:
        about += " " + " ".join(notes)
    lines += ["", about, "", *projection(rows, kind)]
    return "\n".join(lines)


PROJECTED_WORKERS = (1, 8, 64)
MILLION = 1_000_000


def projection(rows: list[dict], kind: str) -> list[str]:
    """A projection, not a measurement: a million documents on N workers of one core each,
    from each engine's measured rate per core (job rows/s ÷ its workers' cores) and its measured
    start-up, priced at docsort's default hardware rate per core (``CostModel``: 0.10 USD an
    hour for 2 vCPUs). It assumes the rate per worker holds as workers are added (no shared
    storage, scheduler or network limit), which this one machine cannot show."""
    head = " | ".join(f"N = {n}: hours / USD" for n in PROJECTED_WORKERS)
    lines = [
        f"| engine | rows/s per core (measured) | start-up s (measured) | {head} |",
        "| --- | ---: | ---: |" + " ---: |" * len(PROJECTED_WORKERS),
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {_per_core(r):,.0f} | {r['startup_seconds']:.1f} "
            f"| {' | '.join(_projected(r))} |"
        )
    lines += ["", _projection_note(f"{kind} as above")]
    return lines


def _per_core_hour() -> float:
    from docsort.models.cost import CostModel

    return CostModel().hardware_per_hour / 2


def _per_core(r: dict) -> float:
    """The measured job rate divided by the cores its workers' threads had."""
    return r["rows_per_second"] / (r["workers"] * (r.get("threads_per_worker") or 1))


def _projected(r: dict) -> list[str]:
    """Projected hours / USD of a million documents on each of PROJECTED_WORKERS."""
    threads = r.get("threads_per_worker") or 1
    cells = []
    for n in PROJECTED_WORKERS:
        if r["engine"] == "local" and n > 1:  # one process: it has no workers to add
            cells.append("–")
            continue
        cores = n * threads  # the local engine: one process on its threads' cores
        seconds = r["startup_seconds"] + MILLION / (_per_core(r) * cores)
        usd = seconds / 3600 * cores * _per_core_hour()
        cells.append(f"{seconds / 3600:.2f} / {usd:.2f}")
    return cells


def _projection_note(what: str) -> str:
    return (
        f"*Projected* cost of 1,000,000 documents ({what}): hours = start-up + 10⁶ ÷ "
        "(rate per core × cores); cores = N workers of one core (the local engine: its one "
        "process on as many cores as it had threads); USD = hours × cores × "
        f"{_per_core_hour():.2f} USD per core-hour (docsort's default hardware price, half of "
        "0.10 USD for a 2-vCPU VM). It assumes the per-worker rate measured here holds on N "
        "workers, which only a real cluster can confirm."
    )


def summary_table() -> str:
    """docs/batch.md's section: every measured kind and engine in one table, then the
    projection of a million documents from the same files."""
    measured = [(kind, r) for kind in KINDS for r in kind_results(kind)]
    if not measured:
        return "(no results yet: run benchmarks/batch.py)"
    lines = [
        "| model, rows | engine | rows | workers × threads | start-up s | job s | rows/s (job) "
        "| rows/s (with start-up) | load before / max |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for kind, r in measured:
        lines.append(
            f"| {KINDS[kind]['title']} | {r['engine']} | {r['rows']:,} "
            f"| {r['workers']} × {r['threads_per_worker']} | {r['startup_seconds']:.1f} "
            f"| {r['job_seconds']:.1f} | {r['rows_per_second']:,.1f} "
            f"| {r['end_to_end_rows_per_second']:,.1f} | {r['load_before']} / {r['load_max']} |"
        )
    head = " | ".join(f"N = {n}: hours / USD" for n in PROJECTED_WORKERS)
    lines += [
        "",
        "Measured: one run per engine on the same rows and model, each engine's start-up "
        "(`ray.init()`, the Spark session) timed apart from the job; "
        f"{measured[0][1]['machine']['cpu']}, {measured[0][1]['machine']['cores']} cores shared "
        "with other work (the 1-minute load average before and at most during the run). "
        "Every column, the agreement with the local engine and the other work on the machine: "
        "[benchmarks.md](benchmarks.md#batch-prediction-engines).",
        "",
        f"| model | engine | rows/s per core (measured) | start-up s (measured) | {head} |",
        "| --- | --- | ---: | ---: |" + " ---: |" * len(PROJECTED_WORKERS),
    ]
    for kind, r in measured:
        lines.append(
            f"| {KINDS[kind]['title'].split(',')[0]} | {r['engine']} | {_per_core(r):,.1f} "
            f"| {r['startup_seconds']:.1f} | {' | '.join(_projected(r))} |"
        )
    lines += ["", _projection_note("each model as measured above")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--shard-rows", type=int, default=10_000)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--kind", default="tfidf", choices=list(KINDS), help="What to measure.")
    parser.add_argument("--note", help="What else ran on the machine, for the table.")
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the tables.")
    parser.add_argument(
        "--docs",
        type=Path,
        help="Only this page (a copy, e.g. in the tests): the sections whose markers it holds "
        "(default: docs/benchmarks.md and docs/batch.md).",
    )
    args = parser.parse_args()
    if not args.table_only:
        with tempfile.TemporaryDirectory(prefix="docsort-batch-") as tmp:
            work = Path(tmp)
            data = rows_file(work, args.rows, args.kind)
            model = train_model(work, args.kind)
            results = {}
            for engine in args.engines:
                print(f"== {engine}", flush=True)
                results[engine] = run_engine(engine, model, data, work, args.shard_rows, args.kind)
                if args.note:
                    results[engine]["note"] = args.note
                shown = ("startup_seconds", "job_seconds", "rows_per_second", "load_max")
                print(json.dumps({k: results[engine][k] for k in shown}), flush=True)
                # after each engine, so that an interrupted run keeps the engines done
                for done, same in agreement(work, list(results)).items():
                    results[done]["agreement"] = same
                for done, result in results.items():
                    write_json(RESULTS / f"{args.kind}-{done}.json", result)
                print(json.dumps(results[engine].get("agreement")), flush=True)
    for page in [args.docs] if args.docs else [DOCS, PAGE]:
        write_sections(page)


def write_sections(page: Path) -> None:
    """Rebuild each of this script's sections that ``page`` holds (at least one)."""
    text = page.read_text(encoding="utf-8")
    sections = [(START, END, build_table), (SUMMARY_START, SUMMARY_END, summary_table)]
    found = [(start, end, build) for start, end, build in sections if start in text]
    if not found:
        raise SystemExit(f"{page} holds none of the {START} / {SUMMARY_START} markers")
    for start, end, build in found:
        replace_docs_section(start, end, build(), page)


if __name__ == "__main__":
    main()

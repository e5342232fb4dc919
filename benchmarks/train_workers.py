"""Training on Ray Train workers (``docsort train --workers N``) against one process: the same
encoder (full fine-tune of minilm) on the same arXiv rows, its test macro-F1 and wall time.

    nice .venv/bin/python benchmarks/train_workers.py run        # process, 1 worker, 2 workers
    .venv/bin/python benchmarks/train_workers.py table           # the docs section only

The rows: ``--train`` training, ``--valid`` validation and ``--test`` test rows of each of the 8
arXiv categories (``../shared/data/arxiv/arxiv_8cat.csv``, in file order). ``process`` is
``docsort train`` without ``--workers`` (torch on every core); ``workers-N`` starts a local
Ray and runs the same fit on N Ray Train workers of 1 CPU each (DDP, gloo), each on half of
every batch. *wall s* is the whole ``fit`` (with Ray's start and the workers' loading of
minilm); *fit s* the workers' own ``model.fit``. Each result records the 1-minute load before
and after and how many cores the machine as a whole kept busy during the run (/proc/stat: the
Ray workers are other processes, so this counts them, and everything else running).
Results: benchmarks/results/train_workers/*.json; the table between the
``<!-- workers:start -->`` markers of docs/benchmarks.md is rebuilt from them only.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from docsort import api
from docsort.io import write_json
from run import _busy_seconds, add_docs_option, machine, replace_docs_section

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "train_workers"
DATA = ROOT.parent / "shared" / "data" / "arxiv" / "arxiv_8cat.csv"
START, END = "<!-- workers:start -->", "<!-- workers:end -->"
PARAMS = {"max_length": 64, "batch_size": 16, "epochs": 2, "patience": 2}
RUNS = {"process": None, "workers-1": 1, "workers-2": 2}


def split(n_train: int, n_valid: int, n_test: int, folder: Path) -> dict[str, Path]:
    frame = pd.read_csv(DATA)
    rank = frame.groupby("category").cumcount()
    parts = {
        "train": rank < n_train,
        "valid": (rank >= n_train) & (rank < n_train + n_valid),
        "test": (rank >= n_train + n_valid) & (rank < n_train + n_valid + n_test),
    }
    paths = {}
    for name, keep in parts.items():
        paths[name] = folder / f"{name}.csv"
        frame[keep].to_csv(paths[name], index=False)
    return paths


def run_one(name: str, paths: dict[str, Path], folder: Path) -> dict[str, Any]:
    columns = api.Columns(text=("title", "abstract"), label="category")
    request = api.TrainRequest(
        data=str(paths["train"]),
        valid=str(paths["valid"]),
        kind="encoder",
        params=dict(PARAMS),
        columns=columns,
        out=folder / name,
        workers=RUNS[name],
    )
    plan = api.prepare_train(request)
    load_before = round(os.getloadavg()[0], 2)
    busy, started = _busy_seconds(), time.perf_counter()
    api.fit(plan)
    seconds = time.perf_counter() - started
    cores_busy = None
    if busy is not None:
        cores_busy = round((_busy_seconds() - busy) / seconds, 2)
    metrics = api.run_evaluate(api.EvalRequest(model=folder / name, data=str(paths["test"])))
    run = plan.workers_run or {}
    return {
        "benchmark": "training on Ray Train workers",
        "run": name,
        "workers": RUNS[name],
        "kind": "encoder",
        "params": PARAMS,
        "n_train": len(plan.train),
        "n_test": metrics.metrics["n"],
        "wall_seconds": round(seconds, 1),
        "fit_seconds": round(run["fit_seconds"], 1) if run else None,
        "rows_per_worker": run.get("rows_per_worker"),
        "shared_rows": run.get("shared_rows"),
        "macro_f1": metrics.metrics["macro_f1"],
        "accuracy": metrics.metrics["accuracy"],
        "cores_busy": cores_busy,
        "machine": {**machine(), "load_average_1m_before": load_before},
        "date": time.strftime("%Y-%m-%d"),
    }


def build_section() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    order = {name: i for i, name in enumerate(RUNS)}
    rows.sort(key=lambda r: order.get(r["run"], 99))
    lines = [
        "| run | workers × CPUs | train rows | rows per worker per epoch | shared | test "
        "macro-F1 | accuracy | wall s | fit s | load before-after | cores busy (all) |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in rows:
        per = " + ".join(str(n) for n in r["rows_per_worker"] or []) or "all"
        shape = f"{r['workers']} × 1" if r["workers"] else "1 process, all cores"
        fit = "" if r["fit_seconds"] is None else f"{r['fit_seconds']:.0f}"
        shared = "" if r["shared_rows"] is None else r["shared_rows"]
        m = r["machine"]
        lines.append(
            f"| {r['run']} | {shape} | {r['n_train']} | {per} | {shared} "
            f"| {r['macro_f1']:.4f} | {r['accuracy']:.4f} | {r['wall_seconds']:.0f} | {fit} "
            f"| {m['load_average_1m_before']:.1f}-{m['load_average_1m']:.1f} "
            f"| {'' if r['cores_busy'] is None else r['cores_busy']} |"
        )
    params = ", ".join(f"{k} {v}" for k, v in PARAMS.items())
    lines.append("")
    lines.append(
        f"`encoder` (minilm, full fine-tune; {params}) on arXiv 8 categories, one seed, on this "
        "2-core machine. *wall s*: the whole fit (Ray's start and the workers' loading of minilm "
        "included); *fit s*: the workers' own fit; *cores busy (all)*: cores the whole machine "
        "kept busy during the run (/proc/stat), the workers and anything else. Source: "
        "`benchmarks/results/train_workers/*.json`, `benchmarks/train_workers.py`."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["run", "table"], default="run")
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--train", type=int, default=24, help="training rows per category")
    parser.add_argument("--valid", type=int, default=8, help="validation rows per category")
    parser.add_argument("--test", type=int, default=25, help="test rows per category")
    add_docs_option(parser)
    args = parser.parse_args()
    if args.what == "run":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("DOCSORT_NO_PROGRESS", "1")
        with tempfile.TemporaryDirectory(prefix="docsort-bench-workers-") as tmp:
            paths = split(args.train, args.valid, args.test, Path(tmp))
            for name in args.runs:
                result = run_one(name, paths, Path(tmp))
                write_json(RESULTS / f"{name}.json", result)
                print(json.dumps({k: result[k] for k in ("run", "macro_f1", "wall_seconds")}))
    replace_docs_section(START, END, build_section(), args.docs)


if __name__ == "__main__":
    main()

"""Label-error audit: random label flips in bbc and banking77 training rows, found by
``docsort audit`` (5-fold out-of-fold tfidf probabilities, cleanlab's confident learning).

    nice .venv/bin/python benchmarks/audit.py                  # both sets, 5 % and 10 % flips
    nice .venv/bin/python benchmarks/audit.py --datasets bbc --rates 0.05
    .venv/bin/python benchmarks/audit.py --table-only          # rebuild the table only

Per set and rate: that share of the training rows (seed 0) gets a label drawn uniformly from
the other labels; the audit runs on the noisy rows (``run_audit``, ``prune_by_noise_rate``,
ranked by self-confidence). Precision and recall of the suspects against the flipped rows,
and recall among the top-k ranked (k = the number of flips). Then tfidf is trained on the
noisy rows, on the noisy rows without the suspects (``--drop``) and on the true labels, and
scored on the set's untouched test rows. Results go to benchmarks/results/audit/<set>-<rate>.json
with CPU seconds, the load average before and after and the BLAS threads; the table between
the ``<!-- audit -->`` markers of docs/quality.md is built from those files.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from docsort.api import AuditRequest, evaluate, run_audit, train
from docsort.data.dataset import Dataset
from docsort.io import write_json
from run import machine, replace_docs_section, train_test

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "audit"
QUALITY_DOCS = ROOT / "docs" / "quality.md"
START, END = "<!-- audit:start -->", "<!-- audit:end -->"
# word n-grams only (no char n-grams): a 5-fold audit of banking77's 10,003 rows then takes
# about a minute of CPU instead of several; the linear SVM with calibrated probabilities
PARAMS: dict[str, Any] = {"char_ngrams": None}
FOLDS = 5


def flip(data: Dataset, rate: float, seed: int) -> tuple[Dataset, np.ndarray]:
    """``rate`` of the rows relabelled to a label drawn from the others; their indices."""
    assert data.labels is not None and data.label_set is not None
    rng = np.random.default_rng(seed)
    names = list(data.label_set.names)
    rows = np.sort(rng.choice(len(data), round(rate * len(data)), replace=False))
    labels = list(data.labels)
    for i in rows:
        labels[i] = str(rng.choice([n for n in names if n != labels[i]]))
    return replace(data, labels=labels), rows


def threads() -> dict[str, Any]:
    from threadpoolctl import threadpool_info

    return {p["internal_api"]: p["num_threads"] for p in threadpool_info()}


def run_one(dataset: str, rate: float, seed: int = 0) -> dict[str, Any]:
    train_data, test_data = train_test(dataset)
    noisy, flipped = flip(train_data, rate, seed)
    load_before = round(os.getloadavg()[0], 2)
    cpu, wall = time.process_time(), time.perf_counter()
    result = run_audit(AuditRequest(noisy, kind="tfidf", params=PARAMS, folds=FOLDS, seed=seed))
    audit_cpu, audit_wall = time.process_time() - cpu, time.perf_counter() - wall
    found = np.array([s.row for s in result.suspects], dtype=np.int64)
    hits = np.isin(found, flipped)
    top_k = hits[: len(flipped)].sum() / len(flipped)
    cleaned = noisy.subset(np.setdiff1d(np.arange(len(noisy)), found))
    accuracy = {}
    for name, rows in (("noisy", noisy), ("cleaned", cleaned), ("true_labels", train_data)):
        model = train(rows, kind="tfidf", params=PARAMS, seed=seed)
        accuracy[name] = evaluate(model, test_data)["accuracy"]
    return {
        "dataset": dataset,
        "rate": rate,
        "seed": seed,
        "rows": len(noisy),
        "flipped": len(flipped),
        "suspects": len(found),
        "true_suspects": int(hits.sum()),
        "precision": float(hits.mean()) if len(found) else 0.0,
        "recall": float(hits.sum() / len(flipped)),
        "recall_top_k": float(top_k),
        "oof_accuracy": result.summary["oof_accuracy"],
        "test_accuracy": accuracy,
        "kind": "tfidf",
        "params": PARAMS,
        "folds": FOLDS,
        "cleanlab": result.summary["cleanlab"],
        "filter_by": result.summary["filter_by"],
        "rank_by": result.summary["rank_by"],
        "audit_cpu_seconds": round(audit_cpu, 1),
        "audit_wall_seconds": round(audit_wall, 1),
        "total_cpu_seconds": round(time.process_time() - cpu, 1),
        "load_average_1m_before": load_before,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "threads": threads(),
        "machine": machine(),
    }


def build_table() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    lines = [
        "| set | flipped | suspects | precision | recall | recall in top k | test acc. noisy "
        "| cleaned (--drop) | true labels | audit CPU s | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["rate"])):
        a = r["test_accuracy"]
        lines.append(
            f"| {r['dataset']} ({r['rows']:,} rows) | {r['rate']:.0%} ({r['flipped']:,}) | "
            f"{r['suspects']:,} | {r['precision']:.1%} | {r['recall']:.1%} | "
            f"{r['recall_top_k']:.1%} | {a['noisy']:.2%} | {a['cleaned']:.2%} | "
            f"{a['true_labels']:.2%} | {r['audit_cpu_seconds']:.0f} | "
            f"{r['load_average_1m_before']:.1f}–{r['load_average_1m_after']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["bbc", "banking77"])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.05, 0.10])
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--docs", type=Path, default=QUALITY_DOCS, help="Page holding the table.")
    args = parser.parse_args()
    os.environ.setdefault("DOCSORT_NO_PROGRESS", "1")
    if not args.table_only:
        RESULTS.mkdir(parents=True, exist_ok=True)
        for dataset in args.datasets:
            for rate in args.rates:
                result = run_one(dataset, rate)
                write_json(RESULTS / f"{dataset}-{round(rate * 100):02d}.json", result)
                print(json.dumps({k: result[k] for k in (
                    "dataset", "rate", "suspects", "precision", "recall", "test_accuracy",
                    "audit_cpu_seconds")}), flush=True)  # fmt: skip
    replace_docs_section(START, END, build_table(), args.docs)


if __name__ == "__main__":
    main()

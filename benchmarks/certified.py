"""Certified cascades: does the error bound on what the first stage answers alone hold?

    nice .venv/bin/python benchmarks/certified.py                 # banking77, tfidf > embed
    .venv/bin/python benchmarks/certified.py --table-only         # rebuild the table only

The stages are benchmarks/cascade.py's (tfidf and the frozen ``minilm`` probe trained on 90 % of
the training rows, saved under runs/cascade-bench/ and reused). Two measurements, in one run:

1. One cascade as a user would build it: thresholds chosen on the held-out 10 % of the training
   rows with ``select: {max_auto_error: ALPHA, delta: DELTA}``, scored on the test rows: the
   observed error of what the first stage answered, and its coverage.
2. The guarantee itself: the test rows' stage outputs stand for the population; each of DRAWS
   calibration samples is drawn from them with replacement, thresholds are chosen on it by each
   rule, and the rule violates the bound when the first stage's error among the rows it
   answers, over the whole population, exceeds ALPHA. The rules: certified (Learn then Test),
   the plug-in (the lowest threshold whose calibration error is within ALPHA), and the
   selections a cascade had before (``max_accuracy_drop`` 0.005, the default, and
   ``max_escalation_rate`` 0.3 with its 90 % budget bound).

Results: benchmarks/results/certified/<dataset>.json; the table between the ``<!-- certified
-->`` markers of docs/benchmarks.md is built from those files.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import docsort
from cascade import ensure_stage, splits, stage_dir
from docsort.api import evaluate
from docsort.io import write_json
from docsort.models.kinds.cascade import (
    DEFAULT_BUDGET_CONFIDENCE,
    candidate_grid,
    certify_thresholds,
    select_thresholds,
)
from run import add_docs_option, machine, replace_docs_section

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "certified"
START, END = "<!-- certified:start -->", "<!-- certified:end -->"
ALPHA, DELTA, DRAWS, CALIBRATION_ROWS = 0.02, 0.05, 200, 1000
STAGES = ["tfidf", "embed"]


def auto_error(threshold: float, confidence: np.ndarray, correct: np.ndarray) -> float:
    answered = confidence >= threshold
    return float((~correct[answered]).mean()) if answered.any() else 0.0


def rules(confidence: np.ndarray, correct: list[np.ndarray]) -> dict[str, float]:
    """The first stage's threshold by each rule, chosen on these calibration rows."""
    grid = candidate_grid([confidence], [None], 140)
    free = np.zeros(2)
    plug_in = min(
        (t for t in grid[0] if auto_error(t, confidence, correct[0]) <= ALPHA), default=2.0
    )
    return {
        "certified": certify_thresholds([confidence], correct, free, grid, ALPHA, DELTA)[0][0],
        "plug-in": float(plug_in),
        "max_accuracy_drop=0.005": select_thresholds(
            [confidence], correct, free, grid, "max_accuracy_drop", 0.005
        )[0][0],
        "max_escalation_rate=0.3": select_thresholds(
            [confidence],
            correct,
            free,
            grid,
            "max_escalation_rate",
            0.3,
            DEFAULT_BUDGET_CONFIDENCE,
        )[0][0],
    }


def resampled(confidence: np.ndarray, correct: list[np.ndarray], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = len(confidence)
    per_rule: dict[str, dict[str, list[float]]] = {}
    for _ in range(DRAWS):
        rows = rng.integers(0, n, size=CALIBRATION_ROWS)
        chosen = rules(confidence[rows], [c[rows] for c in correct])
        for name, t in chosen.items():
            out = per_rule.setdefault(name, {"error": [], "coverage": []})
            out["error"].append(auto_error(t, confidence, correct[0]))
            out["coverage"].append(float((confidence >= t).mean()))
    return {
        name: {
            "violation_rate": float(np.mean(np.array(v["error"]) > ALPHA)),
            "mean_auto_error": float(np.mean(v["error"])),
            "mean_coverage": float(np.mean(v["coverage"])),
        }
        for name, v in per_rule.items()
    }


def run(dataset: str) -> dict[str, Any]:
    fit_part, valid, test = splits(dataset)
    for stage in STAGES:
        ensure_stage(dataset, stage, fit_part)
    started = machine()
    entries = [{"model": str(stage_dir(dataset, s)), "name": s} for s in STAGES]
    select = {"max_auto_error": ALPHA, "delta": DELTA}
    cascade = docsort.models.create("cascade", {"stages": entries, "select": select})
    start = time.perf_counter()
    cascade.fit(fit_part, valid)
    metrics = evaluate(cascade, test)
    seconds = time.perf_counter() - start
    first = metrics["stages"][0]
    # the stages' outputs on every test row, for the resampling
    y = test.targets(cascade.labels_)
    probas = [cascade._run_stage(k, test.texts)[0] for k in range(len(STAGES))]
    confidence = cascade.confidence_of(probas[0])
    correct = [p.argmax(axis=1) == y for p in probas]
    return {
        "dataset": dataset,
        "stages": STAGES,
        "max_auto_error": ALPHA,
        "delta": DELTA,
        "cascade": {
            "calibration_rows": len(valid),
            "threshold": cascade.stage_thresholds_[0],
            "certified": cascade.selection_["certified"],
            "test_rows": metrics["n"],
            "first_stage_answered": first["n_answered"],
            "first_stage_coverage": first["share"],
            "first_stage_error": None if first["accuracy"] is None else 1 - first["accuracy"],
            "accuracy": metrics["accuracy"],
            "last_stage_alone_accuracy": metrics["stages"][-1].get("alone_accuracy"),
            "cost_per_1k": metrics["cost_per_1k"],
        },
        "resampling": {
            "draws": DRAWS,
            "calibration_rows": CALIBRATION_ROWS,
            "population_rows": len(confidence),
            "rules": resampled(confidence, correct),
        },
        "seconds": round(seconds, 1),
        "machine": {**machine(), "load_average_1m_before": started["load_average_1m"]},
        "date": time.strftime("%Y-%m-%d"),
    }


def build_table() -> str:
    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    if not results:
        return "(no results yet: run benchmarks/certified.py)"
    lines = [
        "| set | stages | rule | violation rate | mean error of first-stage answers "
        "| mean coverage |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    notes = []
    for r in results:
        s = r["resampling"]
        for name, v in s["rules"].items():
            lines.append(
                f"| {r['dataset']} | {' > '.join(r['stages'])} | {name} "
                f"| {v['violation_rate']:.1%} | {v['mean_auto_error']:.2%} "
                f"| {v['mean_coverage']:.1%} |"
            )
        c = r["cascade"]
        error = "n/a" if c["first_stage_error"] is None else f"{c['first_stage_error']:.2%}"
        notes.append(
            f"{r['dataset']}: α = {r['max_auto_error']:.0%}, δ = {r['delta']:.0%}; violation "
            f"= the first stage's error over all {s['population_rows']:,} test rows (the "
            f"population) above α, over {s['draws']} calibration samples of "
            f"{s['calibration_rows']:,} rows drawn from them. One cascade certified on "
            f"{c['calibration_rows']:,} held-out training rows and scored on the "
            f"{c['test_rows']:,} test rows: the first stage answered "
            f"{c['first_stage_coverage']:.1%} of them with {error} wrong (bound on the "
            "calibration rows: "
            f"{_bound(c['certified'])}); cascade accuracy {c['accuracy']:.4f} "
            f"(last stage alone {c['last_stage_alone_accuracy']:.4f}). Load "
            f"{r['machine']['load_average_1m']}, {r['date']}."
        )
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes)


def _bound(certified: dict[str, Any]) -> str:
    bound = certified["stages"][0]["error_bound"]
    return "no rows answered" if bound is None else f"at most {bound:.2%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["banking77"])
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the table.")
    add_docs_option(parser)
    args = parser.parse_args()
    if not args.table_only:
        for dataset in args.datasets:
            print(f"== {dataset}", flush=True)
            result = run(dataset)
            write_json(RESULTS / f"{dataset}.json", result)
            print(json.dumps(result["resampling"]["rules"], indent=1), flush=True)
    replace_docs_section(START, END, build_table(), args.docs)


if __name__ == "__main__":
    main()

"""Cascades against each of their stages alone, on the same test rows, in one run.

    .venv/bin/python benchmarks/cascade.py                          # banking77 and arxiv8
    .venv/bin/python benchmarks/cascade.py --datasets banking77 --stages-only
    .venv/bin/python benchmarks/cascade.py --table-only             # rebuild the table only

Per dataset: 10 % of the training rows (stratified, seed 0) are held out as the cascade's
validation rows; every stage (tfidf, embed, encoder, llm) is trained on the other 90 % and saved
under runs/cascade-bench/<dataset>/<stage> (reused while its training rows are unchanged, since
an encoder takes 5-20 minutes on 2 cores). LLM cascades skip sets with more than 20 labels.
Each cascade chooses its thresholds on the validation rows
(by default the most accurate setting sending at most 30 % to the last stage) and is scored on
the test rows: the cascade as it runs (later stages only on the escalated rows, timed), and every
stage alone on the very same rows (the rest of each stage's rows are scored after the timed pass).
Results go to benchmarks/results/cascade/<cascade>-<dataset>.json; the table between the
``<!-- cascade -->`` markers of docs/benchmarks.md is built from those files.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import docsort
from docsort.api import evaluate, train
from docsort.data.dataset import Dataset, stratified_split
from docsort.io import write_json
from docsort.models.base import read_manifest
from run import DOCS, add_docs_option, machine, replace_docs_section, train_test

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cascade"
RUNS = ROOT / "runs" / "cascade-bench"
START, END = "<!-- cascade:start -->", "<!-- cascade:end -->"
VALID_SHARE = 0.1
# stage name -> (kind, params); 3 encoder epochs keep a set within ~20 minutes on 2 cores
STAGES: dict[str, tuple[str, dict[str, Any]]] = {
    "tfidf": ("tfidf", {}),
    # no vector cache: its training seconds are then the encoder's real work, not a disk read
    "embed": ("embed", {"base": "minilm", "max_length": 256, "cache": False}),
    "encoder": ("encoder", {"base": "minilm", "max_length": 256, "epochs": 3}),
    # zero-shot qwen-0.5b scoring each label name by log-likelihood, with the set's label
    # descriptions (benchmarks/descriptions/<set>.yaml); the first 600 characters of a document
    "llm": ("llm", {"backend": "llamacpp", "base": "qwen-0.5b", "max_chars": 600}),
}
CASCADES: dict[str, list[str]] = {
    "tfidf>encoder": ["tfidf", "encoder"],
    "tfidf>embed>encoder": ["tfidf", "embed", "encoder"],
    "tfidf>embed": ["tfidf", "embed"],
    "tfidf>llm": ["tfidf", "llm"],
    "tfidf>encoder>llm": ["tfidf", "encoder", "llm"],
}
# an LLM reads ~1 document a second here and scores every label name: sets with many labels
# (banking77: 77 intents, 3,080 test rows) would take hours, so LLM cascades skip them
LLM_MAX_LABELS = 20
DESCRIPTIONS = ROOT / "benchmarks" / "descriptions"
# the acceptance bar asks for <= 30 % sent to the last stage: the most accurate setting within
# that budget on the validation rows (``--select max_accuracy_drop=0.005`` tries the other way)
SELECT = {"max_escalation_rate": 0.3}


def splits(dataset: str) -> tuple[Dataset, Dataset, Dataset]:
    """(stage training rows, cascade validation rows, test rows) with the whole set's labels."""
    whole, test_data = train_test(dataset)
    fit_part, valid = stratified_split(whole, VALID_SHARE, seed=0)
    return fit_part, valid, test_data


def stage_dir(dataset: str, stage: str) -> Path:
    return RUNS / dataset / stage


def ensure_stage(dataset: str, stage: str, fit_part: Dataset) -> dict[str, Any]:
    """Train and save a stage unless a saved one was trained on exactly these rows."""
    directory = stage_dir(dataset, stage)
    info_path = directory.parent / f"{stage}.train.json"
    if (
        (directory / "docsort.yaml").is_file()
        and info_path.is_file()
        and read_manifest(directory).get("train_fingerprint") == fit_part.fingerprint()
    ):
        print(f"   {stage}: reusing {directory}", flush=True)
        return json.loads(info_path.read_text())
    kind, params = STAGES[stage]
    described = DESCRIPTIONS / f"{dataset}.yaml"
    if kind == "llm" and described.is_file():  # else the label names alone
        params = {**params, "descriptions": str(described)}
    print(f"   {stage}: training {kind} on {len(fit_part):,} rows", flush=True)
    start = time.perf_counter()
    train(fit_part, kind=kind, params=params, out=directory)
    info = {
        "stage": stage,
        "kind": kind,
        "params": params,
        "train_seconds": round(time.perf_counter() - start, 1),
        "n_train": len(fit_part),
        "load_average_1m": machine()["load_average_1m"],
    }
    write_json(info_path, info)
    print(f"   {stage}: {info['train_seconds']} s", flush=True)
    return info


def run_cascade(
    name: str,
    dataset: str,
    fit_part: Dataset,
    valid: Dataset,
    test: Dataset,
    select: dict,
    budget_confidence: float | None = None,
) -> dict[str, Any]:
    stages = CASCADES[name]
    trained = {s: ensure_stage(dataset, s, fit_part) for s in stages}
    started_load = machine()
    entries = [{"model": str(stage_dir(dataset, s)), "name": s} for s in stages]
    params = {"stages": entries, "select": select, "budget_confidence": budget_confidence}
    cascade = docsort.models.create("cascade", params)
    start = time.perf_counter()
    cascade.fit(fit_part, valid)
    select_seconds = time.perf_counter() - start
    metrics = evaluate(cascade, test)
    last = metrics["stages"][-1]
    return {
        "cascade": name,
        "dataset": dataset,
        "stages": metrics["stages"],
        "select": select,
        "budget_confidence": budget_confidence,
        "thresholds": cascade.stage_thresholds_,
        "validation": cascade.selection_,
        "select_seconds": round(select_seconds, 2),
        "n_train": len(fit_part),
        "n_valid": len(valid),
        "n": metrics["n"],
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "seconds": metrics["seconds"],
        "docs_per_second": metrics["docs_per_second"],
        "cost_per_1k": metrics["cost_per_1k"],
        "escalated_to_last": metrics["escalated_to_last"],
        "last_alone_accuracy": last["alone_accuracy"],
        "gap_to_last_points": round(100 * (last["alone_accuracy"] - metrics["accuracy"]), 3),
        # the acceptance bar: the last stage is the strongest alone, the cascade is within 0.5
        # points of it and sends at most 30 % of the documents to it
        "last_is_strongest": last["alone_accuracy"]
        >= max(s["alone_accuracy"] for s in metrics["stages"]),
        "meets_bar": bool(
            last["alone_accuracy"] - metrics["accuracy"] <= 0.005
            and metrics["escalated_to_last"] <= 0.30
        ),
        "stage_training": trained,
        "sweep": metrics.get("sweep", []),
        "machine": started_load,
        "date": time.strftime("%Y-%m-%d"),
    }


def build_table() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    lines = [
        "| dataset | model | thresholds for | test rows | accuracy | to last stage | docs/s "
        "| $ per 1k docs "
        "| gap to last alone (points) | bar met | load |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["cascade"], _tag(r))):
        for s in r["stages"]:  # every stage alone, on the same rows
            lines.append(
                f"| {r['dataset']} | {s['name']} alone | | {r['n']:,} | {s['alone_accuracy']:.4f} "
                f"| | {_rate(s['alone_docs_per_second'])} | {s['alone_cost_per_1k']:.6f} | | "
                f"| {r['machine']['load_average_1m']} |"
            )
        lines.append(
            f"| {r['dataset']} | **cascade {r['cascade']}** | {_tag(r)} | {r['n']:,} "
            f"| {r['accuracy']:.4f} "
            f"| {r['escalated_to_last']:.1%} | {_rate(r['docs_per_second'])} "
            f"| {r['cost_per_1k']:.6f} | {r['gap_to_last_points']:+.2f} "
            f"| {_bar(r)} | {r['machine']['load_average_1m']} |"
        )
    if rows:
        m = rows[0]["machine"]
        lines += [
            "",
            f"Measured on {m['cpu']} ({m['cores']} cores), Python {m['python']}. Stages trained "
            "on 90 % of the training rows; thresholds chosen on the other 10 % for *thresholds "
            "for*: the most accurate setting sending at most that share to the last stage "
            "(max_escalation_rate), or the cheapest within that much of the last stage's "
            "validation accuracy (max_accuracy_drop); *at 95 %*: the budget held by the "
            "one-sided 95 % upper bound of the validation share (budget_confidence). "
            "*to last stage*: share "
            "of test documents the cascade sent to its last stage; *gap*: last stage alone minus "
            "cascade, on the same test rows; *bar met*: gap ≤ 0.5 points with ≤ 30 % sent to "
            "the last stage. Stage-alone rows are repeated per cascade because "
            "each run scores them again. Cost = seconds × $0.10 per hardware-hour. Source: "
            "`benchmarks/results/cascade/*.json`.",
        ]
    return "\n".join(lines)


def _tag(r: dict[str, Any]) -> str:
    """How a run chose its thresholds, e.g. ``max_escalation_rate=0.3 at 95 %``."""
    tag = ",".join(f"{key}={value:g}" for key, value in r["select"].items())
    level = r.get("budget_confidence")
    return f"{tag} at {level:.0%}".replace("%", " %") if level else tag


def _bar(r: dict[str, Any]) -> str:
    if not r["meets_bar"]:
        return "no"
    return "yes" if r["last_is_strongest"] else "yes (last stage not the strongest)"


def _rate(value: float | None) -> str:
    return "–" if not value else f"{value:,.0f}"


def update_docs(docs: Path = DOCS) -> None:
    replace_docs_section(START, END, build_table(), docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["banking77", "arxiv8"])
    parser.add_argument("--cascades", nargs="+", default=list(CASCADES), choices=list(CASCADES))
    parser.add_argument("--stages-only", action="store_true", help="Only train the stages.")
    parser.add_argument(
        "--select",
        default=",".join(f"{k}={v}" for k, v in SELECT.items()),
        help="How thresholds are chosen, e.g. max_escalation_rate=0.3 or max_accuracy_drop=0.005",
    )
    parser.add_argument(
        "--budget-confidence",
        type=float,
        default=None,
        help="Hold the budget with this confidence on new rows (e.g. 0.95).",
    )
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the table.")
    add_docs_option(parser)
    args = parser.parse_args()
    key, _, value = args.select.partition("=")
    select = {key: float(value)}
    if not args.table_only:
        for dataset in args.datasets:
            print(f"== {dataset}", flush=True)
            fit_part, valid, test = splits(dataset)
            if args.stages_only:
                for stage in dict.fromkeys(s for name in args.cascades for s in CASCADES[name]):
                    ensure_stage(dataset, stage, fit_part)
                continue
            for name in args.cascades:
                if "llm" in CASCADES[name] and len(valid.label_set) > LLM_MAX_LABELS:
                    print(f"-- {name}: skipped, {len(valid.label_set)} labels", flush=True)
                    continue
                print(f"-- {name}", flush=True)
                result = run_cascade(
                    name, dataset, fit_part, valid, test, select, args.budget_confidence
                )
                stem = f"{name.replace('>', '-')}-{dataset}-{_tag(result).replace('=', '')}"
                stem = stem.replace(" at ", "-at").replace(" %", "")
                write_json(RESULTS / f"{stem}.json", result)
                print(
                    json.dumps(
                        {
                            k: result[k]
                            for k in (
                                "accuracy",
                                "last_alone_accuracy",
                                "escalated_to_last",
                                "docs_per_second",
                                "cost_per_1k",
                                "meets_bar",
                                "last_is_strongest",
                            )
                        }
                    ),
                    flush=True,
                )
                for s in result["stages"]:
                    print(
                        f"   {s['name']}: share {s['share']:.3f}, accuracy on its rows "
                        f"{s['accuracy']}, alone {s['alone_accuracy']:.4f} at "
                        f"{_rate(s['alone_docs_per_second'])} docs/s",
                        flush=True,
                    )
    if args.table_only or not args.stages_only:
        update_docs(args.docs)


if __name__ == "__main__":
    main()

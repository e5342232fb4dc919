"""Field fusion in the ``encoder`` kind on arxiv8 title + abstract: ``fusion: none`` (the two
fields joined, one per line), ``text_pair`` (the tokenizer's two segments) and
``cross_attention`` (each field encoded apart, 8-head cross-attention both ways, seed 003's
design), on the very same sampled rows, epochs and settings.

    nice .venv/bin/python benchmarks/fusion.py run --rows 30 --seeds 0 1 2
    .venv/bin/python benchmarks/fusion.py table        # rebuild the section only

Training rows: ``--rows`` seeded rows per category of arxiv8's training part (as
``benchmarks/dual.py`` samples them); test rows: all of arxiv8's test part (the seeded 20 %
``benchmarks/run.py`` holds out). Each result file records the machine's load, how many
cores other processes kept busy during the training (``/proc/stat``) and torch's thread
count. The section between the ``<!-- fusion:start -->`` markers of docs/kinds/encoder.md is
rebuilt from benchmarks/results/fusion/*.json only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from docsort.api import evaluate, train
from docsort.io import write_json
from dual import sample_shots
from run import _busy_seconds, _own_seconds, machine, replace_docs_section, train_test

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "fusion"
DOCS = ROOT / "docs" / "kinds" / "encoder.md"
START, END = "<!-- fusion:start -->", "<!-- fusion:end -->"
FUSIONS = ("none", "text_pair", "cross_attention")
# the same for every mode: minilm fine-tuned fully, 128 tokens (cross_attention: per field)
SETTINGS = {"base": "minilm", "max_length": 128, "epochs": 3, "patience": 3, "batch_size": 8}


def run_one(rows_per_class: int, seed: int, fusion: str) -> dict[str, Any]:
    train_rows, test = train_test("arxiv8")
    rows = sample_shots(train_rows, rows_per_class, seed)
    params = {**SETTINGS, "fusion": fusion, "seed": seed}
    load = machine()
    busy, own, started = _busy_seconds(), _own_seconds(), time.perf_counter()
    model = train(rows, kind="encoder", params=params)
    seconds = time.perf_counter() - started
    others = None
    if busy is not None:
        used = _busy_seconds() - busy - (_own_seconds() - own)
        others = round(max(used, 0.0) / seconds, 2)
    metrics = evaluate(model, test)
    return {
        "benchmark": "encoder field fusion",
        "dataset": "arxiv8",
        "fields": ["title", "abstract"],
        "fusion": fusion,
        "seed": seed,
        "rows_per_class": rows_per_class,
        "n_train": len(rows),
        "n_test": metrics["n"],
        "params": model.get_params(),
        "history": model.history_,
        "best_epoch": model.best_epoch_,
        "train_seconds": round(seconds, 1),
        "other_cores_busy": others,
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "machine": load,
        "date": time.strftime("%Y-%m-%d"),
    }


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def build_section() -> str:
    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    groups: dict[int, dict[str, dict[int, dict[str, Any]]]] = {}
    for r in results:
        groups.setdefault(r["rows_per_class"], {}).setdefault(r["fusion"], {})[r["seed"]] = r
    lines = [
        "| rows / class | fusion | seeds | accuracy % (per seed) | accuracy % | macro-F1 % "
        "| train s | load (1 min) | other cores busy | threads |",
        "| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rows_per_class, modes in sorted(groups.items()):
        common = set.intersection(*(set(modes.get(f, {})) for f in FUSIONS))
        for fusion in FUSIONS:  # only seeds every mode was measured on: the same rows
            runs = [modes[fusion][s] for s in sorted(common)]
            if not runs:
                continue
            accuracy = [r["accuracy"] for r in runs]
            loads = [r["machine"]["load_average_1m"] for r in runs]
            busy = [r["other_cores_busy"] for r in runs if r["other_cores_busy"] is not None]
            threads = sorted({r["machine"].get("torch_threads") for r in runs} - {None})
            lines.append(
                f"| {rows_per_class} | `{fusion}` | {' '.join(str(r['seed']) for r in runs)} "
                f"| {' / '.join(f'{100 * a:.1f}' for a in accuracy)} | {_mean_sd(accuracy)} "
                f"| {_mean_sd([r['macro_f1'] for r in runs])} "
                f"| {statistics.mean(r['train_seconds'] for r in runs):.0f} "
                f"| {min(loads):.1f}-{max(loads):.1f} "
                f"| {f'{statistics.mean(busy):.2f}' if busy else ''} "
                f"| {','.join(map(str, threads))} |"
            )
    settings = ", ".join(f"{k} {v}" for k, v in SETTINGS.items())
    lines.append("")
    lines.append(
        f"arxiv8 title + abstract, the same sampled training rows for every mode (seeded per "
        f"seed), {settings}; `cross_attention` reads up to max_length tokens of each field, "
        "the other two of both together. Accuracy and macro-F1 on arxiv8's 320 test rows, "
        "mean ± sample sd over the seeds. *train s*: wall seconds of `train` (model load, "
        "probe head, epochs); *load*: the 1-minute load average at the start of each run "
        "(2 cores, shared); *other cores busy*: cores other processes kept busy during "
        "training (/proc/stat). Source: `benchmarks/results/fusion/*.json`, "
        "`benchmarks/fusion.py`."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["run", "table"], default="run")
    parser.add_argument("--rows", type=int, default=30, help="training rows per category")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fusions", nargs="+", default=list(FUSIONS), choices=FUSIONS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (busy machine: 1)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="page holding the table")
    args = parser.parse_args()
    if args.what == "run":
        import torch

        torch.set_num_threads(args.threads)
        for seed in args.seeds:
            for fusion in args.fusions:
                result = run_one(args.rows, seed, fusion)
                write_json(RESULTS / f"arxiv8-{args.rows}-rows-{fusion}-seed{seed}.json", result)
                print(
                    seed, fusion, round(result["accuracy"], 4), result["train_seconds"],
                    result["machine"]["load_average_1m"], result["other_cores_busy"], flush=True,
                )  # fmt: skip
                replace_docs_section(START, END, build_section(), args.docs)
    replace_docs_section(START, END, build_section(), args.docs)


if __name__ == "__main__":
    main()

"""Few-shot body tuning: the ``embed`` kind's frozen probe against ``finetune: contrastive``
(SetFit's recipe) on the very same sampled rows.

    nice .venv/bin/python benchmarks/fewshot.py --datasets banking77 --shots 8 --seeds 0 1 2
    .venv/bin/python benchmarks/fewshot.py table       # rebuild the section only

Rows per label are drawn as ``benchmarks/dual.py`` draws them (SetFit's ``sample_dataset``: a
label with fewer rows gives all it has); test rows are the official test split, as in
``benchmarks/run.py``. Each result file records the machine's load, how many cores other
processes kept busy during the training (``/proc/stat``) and torch's thread count. The section
between the ``<!-- fewshot:start -->`` markers of docs/kinds/embed.md is rebuilt from
benchmarks/results/fewshot/*.json only.
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
RESULTS = ROOT / "benchmarks" / "results" / "fewshot"
DOCS = ROOT / "docs" / "kinds" / "embed.md"
START, END = "<!-- fewshot:start -->", "<!-- fewshot:end -->"
# how many tokens each set's texts are read at: banking77 queries are short (≤ 64 covers
# nearly all); bbc articles are long and 128 tokens keeps a tuning step affordable here
MAX_LENGTH = {"banking77": 64, "bbc": 128}
# tuning on this shared 2-core CPU: SetFit's defaults (batch 16, lr 2e-5, 1 epoch) but
# 5 rather than 20 pairs per row and direction, so a banking77 8-shot run fits in minutes
TUNING = {"num_iterations": 5, "epochs": 1, "lr": 2e-5, "train_batch_size": 16}
VARIANTS = {"frozen": {}, "contrastive": {"finetune": "contrastive", **TUNING}}


def run_one(dataset: str, shots: int, seed: int, variant: str) -> dict[str, Any]:
    train_rows, test = train_test(dataset)
    rows = sample_shots(train_rows, shots, seed)
    params = {"max_length": MAX_LENGTH[dataset], "cache": False, **VARIANTS[variant]}
    if variant == "contrastive":
        params["seed"] = seed
    load = machine()
    busy, own, started = _busy_seconds(), _own_seconds(), time.perf_counter()
    model = train(rows, kind="embed", params=params)
    seconds = time.perf_counter() - started
    others = None
    if busy is not None:
        used = _busy_seconds() - busy - (_own_seconds() - own)
        others = round(max(used, 0.0) / seconds, 2)
    metrics = evaluate(model, test)
    return {
        "benchmark": "few-shot body tuning",
        "dataset": dataset,
        "shots": shots,
        "variant": variant,
        "seed": seed,
        "n_train": len(rows),
        "n_test": metrics["n"],
        "params": model.get_params(),
        "history": model.history_,
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
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    groups: dict[tuple[str, int], dict[str, dict[int, dict[str, Any]]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["shots"]), {}).setdefault(r["variant"], {})[
            r["seed"]
        ] = r
    lines = [
        "| set | shots | seeds | frozen probe acc. % | contrastive acc. % | gain (points) "
        "| train s frozen | train s contrastive | load (1 min) | other cores busy | threads |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (dataset, shots), variants in sorted(groups.items()):
        frozen, tuned = variants.get("frozen", {}), variants.get("contrastive", {})
        seeds = sorted(set(frozen) & set(tuned))  # only seeds both were measured on
        if not seeds:
            continue
        f_acc = [frozen[s]["accuracy"] for s in seeds]
        t_acc = [tuned[s]["accuracy"] for s in seeds]
        gains = [t - f for t, f in zip(t_acc, f_acc, strict=True)]
        runs = [frozen[s] for s in seeds] + [tuned[s] for s in seeds]
        loads = [r["machine"]["load_average_1m"] for r in runs]
        busy = [r["other_cores_busy"] for r in runs if r["other_cores_busy"] is not None]
        threads = sorted({r["machine"].get("torch_threads") for r in runs} - {None})
        busy_text = f"{statistics.mean(busy):.2f}" if busy else ""
        lines.append(
            f"| {dataset} | {shots} | {' '.join(map(str, seeds))} | {_mean_sd(f_acc)} "
            f"| {_mean_sd(t_acc)} | {_mean_sd(gains)} "
            f"| {statistics.mean(frozen[s]['train_seconds'] for s in seeds):.0f} "
            f"| {statistics.mean(tuned[s]['train_seconds'] for s in seeds):.0f} "
            f"| {min(loads):.1f}-{max(loads):.1f} | {busy_text} "
            f"| {','.join(map(str, threads))} |"
        )
    tuning = ", ".join(f"{k} {v}" for k, v in TUNING.items())
    lines.append("")
    lines.append(
        f"minilm, the same sampled rows for both columns; contrastive: {tuning}; max_length "
        + ", ".join(f"{k} {v}" for k, v in MAX_LENGTH.items())
        + ". Accuracy on the official test split, mean ± sample sd over the seeds (the gain is "
        "per seed, then averaged). *train s*: wall seconds of `train` (tuning, embedding the "
        "rows, the head); *load*: the 1-minute load average at the start of each run (2 cores); "
        "*other cores busy*: cores other processes kept busy during training (/proc/stat). "
        "Source: `benchmarks/results/fewshot/*.json`, `benchmarks/fewshot.py`."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["run", "table"], default="run")
    parser.add_argument("--datasets", nargs="+", default=["banking77"], choices=list(MAX_LENGTH))
    parser.add_argument("--shots", type=int, nargs="+", default=[8])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (busy machine: 1)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="page holding the table")
    args = parser.parse_args()
    if args.what == "run":
        import torch

        torch.set_num_threads(args.threads)
        for dataset in args.datasets:
            for shots in args.shots:
                for seed in args.seeds:
                    for variant in args.variants:
                        result = run_one(dataset, shots, seed, variant)
                        name = f"{dataset}-{shots}-shot-{variant}-seed{seed}.json"
                        write_json(RESULTS / name, result)
                        print(
                            dataset, shots, seed, variant, round(result["accuracy"], 4),
                            result["train_seconds"], result["machine"]["load_average_1m"],
                            result["other_cores_busy"], flush=True,
                        )  # fmt: skip
                        replace_docs_section(START, END, build_section(), args.docs)
    replace_docs_section(START, END, build_section(), args.docs)


if __name__ == "__main__":
    main()

"""LLM instruction tuning (``llm`` kind, ``finetune: lora``) beside its own zero-shot and the
small kinds trained on the same rows.

    .venv/bin/python benchmarks/llm_lora.py                      # bbc, 200 training rows
    .venv/bin/python benchmarks/llm_lora.py --sets arxiv8 --train-rows 160
    .venv/bin/python benchmarks/llm_lora.py --table-only

Per set, one seeded sample of training rows and the same seeded 200 test rows as
``benchmarks/llm.py``: the zero-shot ``qwen-0.5b`` (transformers backend, the same fp32 weights
the tuned model starts from), the LoRA-tuned one, and ``tfidf`` / ``encoder`` (minilm) trained
on the same training rows. Training seconds and docs/s are measured in the same run. Results go
to ``benchmarks/results/llm-lora/<variant>-<set>.json``; the table between the
``<!-- llm-lora:start -->`` markers of docs/benchmarks.md is built from them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from docsort.api import train
from docsort.data.dataset import Dataset
from docsort.evaluation import compute_metrics
from docsort.io import write_json
from llm import DESCRIPTIONS, sample
from run import add_docs_option, machine, replace_docs_section, train_test

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "llm-lora"
START, END = "<!-- llm-lora:start -->", "<!-- llm-lora:end -->"
SETS = ("bbc", "arxiv8")
VARIANTS = ("tfidf", "encoder", "llm-zero-shot", "llm-lora")


def params_of(variant: str, dataset: str, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The kind and parameters of one variant."""
    if variant == "tfidf":
        return "tfidf", {}
    if variant == "encoder":
        return "encoder", {"base": "minilm", "epochs": 10}
    llm = {
        "backend": "transformers",
        "base": args.model,
        "n_threads": args.threads,
        "max_chars": args.max_chars,
        "descriptions": str(DESCRIPTIONS / f"{dataset}.yaml"),
        "bias_calibration": False,
    }
    if variant == "llm-lora":
        llm.update(finetune="lora", epochs=args.epochs, batch_size=4, lr=args.lr)
    return "llm", llm


def run_one(variant: str, dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    train_full, test_full = train_test(dataset)
    order = np.random.default_rng(0).permutation(len(train_full))
    train_data = train_full.subset(sorted(order[: args.train_rows]))
    valid_data: Dataset | None = None
    if args.valid_rows and variant in ("encoder", "llm-lora"):
        valid_data = train_full.subset(
            sorted(order[args.train_rows : args.train_rows + args.valid_rows])
        )
    test_data = sample(test_full, args.rows)
    kind, params = params_of(variant, dataset, args)
    load = round(os.getloadavg()[0], 2)
    start = time.perf_counter()
    model = train(train_data, kind=kind, params=params, valid_data=valid_data)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    proba = model.predict_proba(test_data.texts)
    seconds = time.perf_counter() - start
    y_true = test_data.targets(model.labels_)
    metrics = compute_metrics(model.labels_, y_true, proba, model.decide(proba), seconds=seconds)
    result = {
        "variant": variant,
        "kind": kind,
        "params": model.get_params(),
        "dataset": dataset,
        "n_train": len(train_data),
        "n_valid": len(valid_data) if valid_data is not None else 0,
        "test_source": f"seeded random {len(test_data)} of {len(test_full)} test rows (seed 0)",
        "train_seconds": round(train_seconds, 1),
        **{k: metrics[k] for k in ("accuracy", "macro_f1", "ece", "n", "seconds")},
        "docs_per_second": metrics["docs_per_second"],
        "tuning": getattr(model, "tuning_", None),
        "load_average_1m_at_start": load,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if hasattr(model, "close"):
        model.close()
    return result


def build_table() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    order = {v: i for i, v in enumerate(VARIANTS)}  # a suffixed variant after its own
    lines = [
        "| set | model | training rows | test rows | accuracy | macro-F1 | ECE "
        "| training s | docs/s | load |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def rank(r: dict[str, Any]) -> tuple[str, int, str]:
        base = next((v for v in VARIANTS[::-1] if r["variant"].startswith(v)), r["variant"])
        return r["dataset"], order.get(base, 99), r["variant"]

    for r in sorted(rows, key=rank):
        name = r["variant"]
        if r["params"].get("finetune") == "lora":
            name += f" ({r['params']['epochs']} ep., lr {r['params']['lr']:g})"
        lines.append(
            f"| {r['dataset']} | {name} | {r['n_train']} | {r['n']} "
            f"| {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['ece']:.4f} "
            f"| {r['train_seconds']:,.0f} | {r['docs_per_second']:.2f} "
            f"| {r['load_average_1m_at_start']}-{r['load_average_1m_at_end']} |"
        )
    if rows:
        lora = next((r for r in rows if r["variant"] == "llm-lora"), rows[0])
        p, m = lora["params"], lora["machine"]
        lines.append("")
        lines.append(
            f"`llm-*`: `{p.get('base')}` (Qwen2.5-Coder-0.5B-Instruct, the GGUF dequantised to "
            f"fp32 by transformers), label names scored by mean token log-likelihood, documents "
            f"cut to {p.get('max_chars')} characters, descriptions from "
            "`benchmarks/descriptions/`, no bias calibration; *llm-lora*: LoRA "
            f"r={p.get('lora_r')} on every attention and MLP projection, "
            f"batch {p.get('batch_size')}, epochs and learning rate as shown; "
            "`encoder`: minilm fine-tuned for 10 epochs (no validation rows, so no early "
            "stopping). The same "
            "training rows (a seeded sample of the training split) and test rows (a seeded "
            f"sample of the test split) for every model of a set. {m['cpu']} "
            f"({m['cores']} cores), {p.get('n_threads')} torch thread(s); *load*: the 1-minute "
            "load average at the start and end of each run. Source: "
            "`benchmarks/results/llm-lora/*.json`."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["bbc"], choices=list(SETS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--train-rows", type=int, default=200)
    parser.add_argument("--valid-rows", type=int, default=0, help="Held-out training rows.")
    parser.add_argument("--rows", type=int, default=200, help="Test rows sampled per set.")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-chars", type=int, default=300)
    parser.add_argument("--model", default="qwen-0.5b")
    parser.add_argument(
        "--suffix", default="", help="Appended to the variant's name (e.g. -2ep), kept apart."
    )
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the table.")
    add_docs_option(parser)
    args = parser.parse_args()
    if not args.table_only:
        for dataset in args.sets:
            for variant in args.variants:
                print(f"== {variant} on {dataset}", flush=True)
                result = run_one(variant, dataset, args)
                result["variant"] = variant + args.suffix
                write_json(RESULTS / f"{result['variant']}-{dataset}.json", result)
                keys = ("variant", "accuracy", "macro_f1", "train_seconds", "docs_per_second")
                print(json.dumps({k: result[k] for k in keys}), flush=True)
    replace_docs_section(START, END, build_table(), args.docs)


if __name__ == "__main__":
    main()

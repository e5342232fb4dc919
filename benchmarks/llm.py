"""The ``llm`` kind alone, zero- and few-shot, on a seeded sample of test rows.

    .venv/bin/python benchmarks/llm.py                           # every config on bbc and arxiv8
    .venv/bin/python benchmarks/llm.py --sets bbc --rows 100     # a subset
    .venv/bin/python benchmarks/llm.py --table-only              # rebuild the table only

An LLM on this 2-core CPU reads ~1-2 documents a second, so each run scores a seeded random
sample of the test split (``--rows``, default 200), not all of it; the sample size is in every
result. Label descriptions come from ``benchmarks/descriptions/<set>.yaml`` (written from
general knowledge, not tuned on test rows). Bias calibration, where a config uses it, reads a
seeded sample of *training* rows held out from the k-shot pool. Results go to
``benchmarks/results/llm/<config>-<set>.json``; the table between the
``<!-- llm:start -->`` markers of docs/benchmarks.md is built from those files.
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
from run import (  # beside this file: the same sets and splits as run.py
    DOCS,
    add_docs_option,
    machine,
    replace_docs_section,
    train_test,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "llm"
DESCRIPTIONS = ROOT / "benchmarks" / "descriptions"
START, END = "<!-- llm:start -->", "<!-- llm:end -->"
SETS = ("bbc", "arxiv8")

# config name -> llm params (descriptions are added per set); "calibrate" rows of bias fitting
CONFIGS: dict[str, dict[str, Any]] = {
    "zero-shot": {},  # label names scored by mean token log-likelihood
    "zero-shot-letters": {"answer": "letter"},
    "few-shot": {"shots": -1},  # -1: one example per label, fixed
    "few-shot-similar": {"shots": 4, "shot_selection": "similar"},
    "zero-shot-generate": {"scoring": "generate"},
}
DEFAULT_CONFIGS = ("zero-shot", "few-shot")


def sample(data: Dataset, rows: int, seed: int = 0) -> Dataset:
    if rows >= len(data):
        return data
    order = np.random.default_rng(seed).permutation(len(data))[:rows]
    return data.subset(sorted(order))


def run_one(
    config: str,
    dataset: str,
    rows: int,
    n_threads: int,
    model: str,
    backend: str = "llamacpp",
    calibrate: int = 0,
    max_chars: int = 600,
) -> list[dict[str, Any]]:
    """One config on one set: its result, and with ``calibrate`` rows also the result with
    per-label biases (fitted on held-out training rows), both from the same test pass."""
    params = dict(CONFIGS[config])
    calibrate = int(params.pop("calibrate", 0)) or calibrate
    train_data, test_full = train_test(dataset)
    labels = train_data.label_set
    test_data = sample(test_full, rows)
    valid_data = None
    if calibrate:
        order = np.random.default_rng(1).permutation(len(train_data))
        valid_data = train_data.subset(sorted(order[:calibrate]))
        train_data = train_data.subset(sorted(order[calibrate:]))
    if params.get("shots") == -1:
        params["shots"] = len(labels)
    params.update(
        backend=backend,
        base=model,
        n_threads=n_threads,
        max_chars=max_chars,
        shot_chars=200,
        descriptions=str(DESCRIPTIONS / f"{dataset}.yaml"),
        calibration_rows=calibrate or 200,
    )
    load = round(os.getloadavg()[0], 2)
    start = time.perf_counter()
    classifier = train(train_data, kind="llm", params=params, valid_data=valid_data)
    train_seconds = time.perf_counter() - start
    classifier.reset_usage()  # count the test rows only, not the calibration rows
    start = time.perf_counter()
    proba = classifier.predict_proba(test_data.texts)  # one call: last_usage_ covers every row
    seconds = time.perf_counter() - start
    usage = dict(classifier.usage_)
    statuses = [row["status"] for row in classifier.last_usage_]
    y_true = test_data.targets(classifier.labels_)
    variants = [(config, proba)]
    if classifier.bias_ is not None:
        # the same scores without the biases: softmax(log p - bias) on the scored rows
        plain = proba.copy()
        scored = np.array([s == "scored" for s in statuses])
        z = np.log(np.clip(proba[scored], 1e-300, None)) - classifier.bias_
        z = np.exp(z - z.max(axis=1, keepdims=True))
        plain[scored] = z / z.sum(axis=1, keepdims=True)
        variants = [(config, plain), (f"{config}+bias", proba)]
    results = []
    for name, p in variants:
        metrics = compute_metrics(
            classifier.labels_, y_true, p, classifier.decide(p), seconds=seconds
        )
        predicted = np.bincount(p.argmax(axis=1), minlength=len(labels))
        results.append(
            {
                "model": f"llm-{model}",
                "config": name,
                "kind": "llm",
                "params": classifier.get_params(),
                "dataset": dataset,
                "test_source": f"seeded random {len(test_data)} of {len(test_full)} test rows "
                "(seed 0)",
                "n_train": len(train_data),
                "n_calibration": len(valid_data) if valid_data is not None else 0,
                "bias": classifier.bias_.round(4).tolist() if name.endswith("+bias") else None,
                "train_seconds": round(train_seconds, 2),
                **{k: metrics[k] for k in ("accuracy", "macro_f1", "ece", "n", "seconds")},
                "docs_per_second": metrics["docs_per_second"],
                "predicted_counts": dict(zip(labels.names, predicted.tolist(), strict=True)),
                "unparsed_rate": usage["unparsed_rate"],
                "failed_rate": usage["failed_rate"],
                "scored_rows": statuses.count("scored"),
                "prompt_tokens_per_doc": round(usage["prompt_tokens"] / len(test_data), 1),
                "completion_tokens_per_doc": round(usage["completion_tokens"] / len(test_data), 2),
                "cached_tokens_per_doc": round(usage["cached_tokens"] / len(test_data), 1),
                "max_chars": max_chars,
                "n_threads": n_threads,
                "load_average_1m_at_start": load,
                "load_average_1m_at_end": round(os.getloadavg()[0], 2),
                "machine": machine(),
                "date": time.strftime("%Y-%m-%d"),
            }
        )
    classifier.close()
    return results


def build_table() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    lines = [
        "| set | config | test rows | accuracy | macro-F1 | ECE | docs/s | unparsed "
        "| prompt tokens/doc | reused tokens/doc | threads | load |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["config"])):
        lines.append(
            f"| {r['dataset']} | {r['config']} | {r['n']} | {r['accuracy']:.4f} "
            f"| {r['macro_f1']:.4f} | {r['ece']:.4f} | {r['docs_per_second']:.2f} "
            f"| {r['unparsed_rate']:.1%} | {r['prompt_tokens_per_doc']:.0f} "
            f"| {r['cached_tokens_per_doc']:.0f} | {r['n_threads']} "
            f"| {r.get('load_average_1m_at_start', 'n/a')} |"
        )
    if rows:
        m = rows[0]["machine"]
        lines.append("")
        params = rows[0]["params"]
        base = params.get("base", params.get("model"))  # results saved before the rename
        lines.append(
            f"`llm` kind, backend `{params['backend']}`, model "
            f"`{base}` (Qwen2.5-Coder-0.5B-Instruct Q4_K_M), label names "
            "scored by mean token log-likelihood unless the config says otherwise; documents cut "
            f"to {rows[0].get('max_chars', 1000):,} characters; *+bias*: the same test pass with "
            "per-label biases fitted on held-out training rows (`n_calibration` in the JSON). "
            "Measured on "
            f"{m['cpu']} ({m['cores']} cores); *test rows*: a seeded random sample of the test "
            "split; *reused tokens*: prompt-prefix tokens taken from the KV cache instead of "
            "evaluated again; *load*: the 1-minute load average when the run started. "
            "Source: `benchmarks/results/llm/*.json`."
        )
    return "\n".join(lines)


def update_docs(docs: Path = DOCS) -> None:
    replace_docs_section(START, END, build_table(), docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs", nargs="+", default=list(DEFAULT_CONFIGS), choices=list(CONFIGS)
    )
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--rows", type=int, default=200, help="Test rows sampled per set.")
    parser.add_argument(
        "--threads", type=int, default=1, help="llama.cpp threads (2 busy-wait when shared)."
    )
    parser.add_argument("--max-chars", type=int, default=600, help="Document characters kept.")
    parser.add_argument(
        "--calibrate",
        type=int,
        default=0,
        help="Held-out training rows for per-label biases; also reports each config +bias.",
    )
    parser.add_argument("--model", default="qwen-0.5b")
    parser.add_argument("--backend", default="llamacpp", choices=["llamacpp", "transformers"])
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the table.")
    add_docs_option(parser)
    args = parser.parse_args()
    if not args.table_only:
        for dataset in args.sets:
            for config in args.configs:
                print(f"== llm {config} on {dataset} ({args.rows} rows)", flush=True)
                results = run_one(
                    config,
                    dataset,
                    args.rows,
                    args.threads,
                    args.model,
                    args.backend,
                    args.calibrate,
                    args.max_chars,
                )
                keys = ("config", "accuracy", "macro_f1", "docs_per_second", "unparsed_rate")
                for result in results:
                    write_json(RESULTS / f"{result['config']}-{dataset}.json", result)
                    print(json.dumps({k: result[k] for k in keys}), flush=True)
    update_docs(args.docs)


if __name__ == "__main__":
    main()

"""Long documents: is reading windows better than truncating? One table per long-text set.

    .venv/bin/python benchmarks/long_docs.py                    # every set
    .venv/bin/python benchmarks/long_docs.py --datasets sotu    # a subset
    .venv/bin/python benchmarks/long_docs.py --table-only       # rebuild the table only

The model is the ``embed`` kind (frozen ``minilm``, 256 tokens, + logistic regression), trained
on the windows of the training texts (each window labelled as its document). On the same test
rows it then reads each text truncated to its head, its tail, or both ends, and in overlapping
windows whose probabilities are combined four ways. All four aggregations share one pass over
the windows, so they share its seconds. Results: ``benchmarks/results/long/<set>.json``; the
table between the ``<!-- long:start -->`` markers of docs/benchmarks.md is built from them.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from docsort.api import train
from docsort.data.dataset import Dataset, stratified_split
from docsort.data.loaders import load_dataset
from docsort.evaluation.metrics import compute_metrics
from docsort.io import write_json
from docsort.text.chunking import AGGREGATES, LongDoc, aggregate, split_texts
from run import DOCS, ROOT, SHARED, add_docs_option, machine, replace_docs_section

RESULTS = ROOT / "benchmarks" / "results" / "long"
START, END = "<!-- long:start -->", "<!-- long:end -->"
WINDOW = LongDoc(strategy="window", size=254, overlap=64)  # minilm reads 256 incl. 2 specials
TRUNCATIONS = ("head", "tail", "head_tail")
PARAMS = {"base": "minilm", "cache": False, "max_length": 256}


def _sample(data: Dataset, n: int, seed: int = 0) -> Dataset:
    if len(data) <= n:
        return data
    keep, _ = stratified_split(data, 1 - n / len(data), seed=seed)
    return keep


def _sets() -> dict[str, tuple[Dataset, Dataset]]:
    """(train, test) rows of each long-text set; large sets are seeded stratified samples."""
    imdb = (load_dataset("builtin:imdb:train"), load_dataset("builtin:imdb:test"))
    ng = (load_dataset("builtin:20ng:train"), load_dataset("builtin:20ng:test"))
    claims = load_dataset(
        str(SHARED / "patents" / "patent_claims_subclasses.csv"), "text", "section"
    )
    sotu = load_dataset("builtin:sotu")
    return {
        "imdb": (_sample(imdb[0], 1000), _sample(imdb[1], 1000)),
        "20ng": (_sample(ng[0], 1500), _sample(ng[1], 1000)),
        "patent-claims": stratified_split(claims, 0.2, seed=0),
        "sotu": stratified_split(sotu, 0.2, seed=0),
    }


def run_one(name: str, train_data: Dataset, test_data: Dataset) -> dict[str, Any]:
    start = time.perf_counter()
    model = train(train_data, kind="embed", params=PARAMS, long_doc=WINDOW)
    train_seconds = time.perf_counter() - start
    spans = model.token_spans()
    y = test_data.targets(model.labels_)
    n_tokens = np.array([len(spans(t)) for t in test_data.texts])
    rows = []

    def score(strategy: str, proba: np.ndarray, seconds: float, pieces: int) -> None:
        m = compute_metrics(model.labels_, y, proba, proba.argmax(axis=1), seconds=seconds)
        rows.append(
            {
                "strategy": strategy,
                "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"],
                "seconds": round(seconds, 2),
                "pieces": pieces,
            }
        )

    for strategy in TRUNCATIONS:
        model.long_doc_ = replace(WINDOW, strategy=strategy)
        start = time.perf_counter()
        proba = model.predict_proba(test_data.texts)
        score(strategy, proba, time.perf_counter() - start, len(test_data))
    start = time.perf_counter()
    pieces, owner = split_texts(test_data.texts, WINDOW, spans)
    window_proba = model._predict_proba([p.text for p in pieces])
    seconds = time.perf_counter() - start
    lengths = np.array([max(p.tokens, 1) for p in pieces], dtype=np.float64)
    for how in AGGREGATES:
        proba = aggregate(window_proba, owner, lengths, len(test_data), how, False)
        score(f"window-{how}", proba, seconds, len(pieces))
    return {
        "dataset": name,
        "model": "embed-minilm",
        "params": PARAMS,
        "window": WINDOW.to_dict(),
        "n_train": len(train_data),
        "n_test": len(test_data),
        "train_seconds": round(train_seconds, 2),
        "test_tokens_median": int(np.median(n_tokens)),
        "test_share_longer_than_window": round(float((n_tokens > WINDOW.size).mean()), 3),
        "results": rows,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
    }


def build_table() -> str:
    lines = [
        "| set | test rows | median tokens | longer than 254 | strategy | accuracy | macro-F1 "
        "| seconds | pieces read |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        best = max(x["macro_f1"] for x in r["results"])
        for x in r["results"]:
            mark = "**" if x["macro_f1"] == best else ""
            lines.append(
                f"| {r['dataset']} | {r['n_test']:,} | {r['test_tokens_median']:,} "
                f"| {r['test_share_longer_than_window']:.0%} | {x['strategy']} "
                f"| {x['accuracy']:.4f} | {mark}{x['macro_f1']:.4f}{mark} | {x['seconds']:.1f} "
                f"| {x['pieces']:,} |"
            )
    return "\n".join(lines)


def update_docs(docs: Path = DOCS) -> None:
    replace_docs_section(START, END, build_table(), docs)


def main() -> None:
    names = ("imdb", "20ng", "patent-claims", "sotu")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(names), choices=names)
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the table.")
    add_docs_option(parser)
    args = parser.parse_args()
    if not args.table_only:
        sets = _sets()
        for name in args.datasets:
            print(f"== long documents: {name}", flush=True)
            result = run_one(name, *sets[name])
            write_json(RESULTS / f"{name}.json", result)
            for x in result["results"]:
                print(json.dumps(x), flush=True)
    update_docs(args.docs)


if __name__ == "__main__":
    main()

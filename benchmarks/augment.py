"""Augmentation of the weakest class: paraphrases by a local LLM, with and without the filter.

    nice .venv/bin/python benchmarks/augment.py run --shots 16 --seeds 0 1 2 --n 2
    .venv/bin/python benchmarks/augment.py table        # rebuild the docs section only

arXiv (8 categories, title + abstract; ``benchmarks/run.py``'s arxiv8 split). Each seed draws
``--shots`` training rows a category (as ``benchmarks/dual.py`` does); the *weakest class* is
the category with the lowest mean test recall of the plain models over the seeds, found before
any row is written. Its sampled rows are paraphrased (``docsort.api.augmentation``, the
built-in prompts, ``--n`` per row, llama.cpp with ``--generator``) and each kind is trained
three times on the same rows: plain, + every paraphrase that is not a copy or a duplicate
(``unfiltered``), + only those a tfidf model trained on the real rows assigns to the class
(``filtered``). Scored on the official test rows: that class's recall and macro-F1.

Paraphrases are cached by (prompt, text) in ``benchmarks/results/augment/paraphrases-*.jsonl``
(a killed run resumes; seeds share the rows they have in common), with the seconds and tokens
each took. Results: ``benchmarks/results/augment/arxiv8-<shots>shot-seed<N>.json``; the section
between the ``<!-- augment:start -->`` markers of docs/benchmarks.md is rebuilt from them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from docsort.api import train
from docsort.api.augmentation import AugmentSpec, augment_rows
from docsort.augment.paraphrase import PROMPTS, Paraphraser
from docsort.io import write_json
from dual import sample_shots
from run import add_docs_option, machine, replace_docs_section, train_test

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "augment"
START, END = "<!-- augment:start -->", "<!-- augment:end -->"
DATASET = "arxiv8"
KINDS = {
    "tfidf": {},
    "embed": {"max_length": 256, "cache": False},  # frozen minilm + logistic regression
}
VARIANTS = ("plain", "unfiltered", "filtered")


class CachedWriter:
    """The paraphraser behind a JSONL cache of its answers (one line per answer, flushed)."""

    def __init__(self, generator: str, threads: int) -> None:
        self.path = RESULTS / f"paraphrases-{generator}.jsonl"
        self.generator, self.threads = generator, threads
        self.cache: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.cache[entry["key"]] = entry
        self._paraphraser: Paraphraser | None = None
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "failed": 0}

    def _writer(self) -> Paraphraser:
        if self._paraphraser is None:
            from docsort.models.kinds.llm.llamacpp_backend import LlamaCppBackend

            backend = LlamaCppBackend(self.generator, n_ctx=1536, n_threads=self.threads)
            self._paraphraser = Paraphraser(backend)
        return self._paraphraser

    def write(self, texts: list[str], n: int, advance: Any) -> list[list[str]]:
        out = []
        for text in texts:
            answers = []
            for k in range(n):
                key = hashlib.sha256(f"{PROMPTS[k]}\x1f{text}".encode()).hexdigest()[:20]
                if key not in self.cache:
                    writer = self._writer()
                    writer.prompts = (PROMPTS[k],)
                    started = time.perf_counter()
                    before = dict(writer.usage)
                    answer = writer.write([text], 1)[0][0]
                    self.cache[key] = {
                        "key": key,
                        "prompt": k,
                        "text": answer,
                        "seconds": round(time.perf_counter() - started, 2),
                        **{u: writer.usage[u] - before[u] for u in writer.usage},
                        "load_average_1m": round(os.getloadavg()[0], 2),
                    }
                    with self.path.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(self.cache[key]) + "\n")
                entry = self.cache[key]
                for u in self.usage:
                    self.usage[u] += entry.get(u, 0)
                answers.append(entry["text"])
                advance(1)
            out.append(answers)
        return out


def recall_and_f1(model: Any, test: Any, weak: str) -> dict[str, float]:
    from sklearn.metrics import f1_score, recall_score

    predicted = model.predict(test.texts)
    return {
        "weak_recall": float(recall_score(test.labels, predicted, labels=[weak], average="macro")),
        "macro_f1": float(f1_score(test.labels, predicted, average="macro")),
        "accuracy": float(np.mean(np.asarray(predicted) == np.asarray(test.labels))),
    }


def weakest_class(seeds: list[int], shots: int) -> tuple[str, dict[str, float]]:
    """The category with the lowest mean test recall of plain tfidf over the seeds."""
    from sklearn.metrics import recall_score

    train_rows, test = train_test(DATASET)
    names = list(train_rows.label_set.names)
    recalls = np.zeros(len(names))
    for seed in seeds:
        model = train(sample_shots(train_rows, shots, seed), kind="tfidf")
        recalls += recall_score(test.labels, model.predict(test.texts), labels=names, average=None)
    mean = {name: float(r / len(seeds)) for name, r in zip(names, recalls, strict=True)}
    return min(mean, key=mean.get), mean


def run_seed(seed: int, shots: int, n: int, weak: str, writer: CachedWriter) -> dict[str, Any]:
    train_rows, test = train_test(DATASET)
    rows = sample_shots(train_rows, shots, seed)
    load = machine()
    sets: dict[str, Any] = {"plain": rows}
    reports = {}
    for variant, use_filter in (("unfiltered", False), ("filtered", True)):
        spec = AugmentSpec(classes=(weak,), n=n, filter=use_filter)
        started = time.perf_counter()
        sets[variant], reports[variant] = augment_rows(rows, spec, writer=writer)
        reports[variant]["seconds_with_cache"] = round(time.perf_counter() - started, 2)
    scores: dict[str, dict[str, Any]] = {}
    for kind, params in KINDS.items():
        scores[kind] = {}
        for variant in VARIANTS:
            started = time.perf_counter()
            model = train(sets[variant], kind=kind, params=params)
            seconds = time.perf_counter() - started
            scores[kind][variant] = {
                **recall_and_f1(model, test, weak),
                "train_rows": len(sets[variant]),
                "train_seconds": round(seconds, 1),
            }
            print(seed, kind, variant, scores[kind][variant], flush=True)
    return {
        "benchmark": "augmentation of the weakest class",
        "dataset": DATASET,
        "shots": shots,
        "seed": seed,
        "n": n,
        "weak_class": weak,
        "generator": writer.generator,
        "n_test": len(test),
        "augmentation": reports,
        "scores": scores,
        "machine": load,
        "date": time.strftime("%Y-%m-%d"),
    }


def _mean_sd(values: list[float], scale: float = 100.0) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.mean(values):+.1f} ± {scale * sd:.1f}"


def _plain(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def build_section() -> str:
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("arxiv8-*.json"))]
    if not runs:
        return "No results yet: run `benchmarks/augment.py run`."
    lines = [
        "| kind | shots | seeds | weak class | rows kept (filtered / unfiltered) | "
        "recall plain % | Δ recall unfiltered | Δ recall filtered | macro-F1 plain % | "
        "Δ macro-F1 unfiltered | Δ macro-F1 filtered |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_shots: dict[int, list[dict[str, Any]]] = {}
    for r in runs:
        by_shots.setdefault(r["shots"], []).append(r)
    for shots, group in sorted(by_shots.items()):
        group.sort(key=lambda r: r["seed"])
        seeds = " ".join(str(r["seed"]) for r in group)
        kept = [
            f"{r['augmentation']['filtered']['kept']}/{r['augmentation']['unfiltered']['kept']}"
            for r in group
        ]
        for kind in KINDS:
            if not all(kind in r["scores"] for r in group):
                continue
            s = [r["scores"][kind] for r in group]

            def delta(variant: str, key: str, s: list[dict[str, Any]] = s) -> str:
                return _mean_sd([x[variant][key] - x["plain"][key] for x in s])

            lines.append(
                f"| {kind} | {shots} | {seeds} | {group[0]['weak_class']} | {', '.join(kept)} "
                f"| {_plain([x['plain']['weak_recall'] for x in s])} "
                f"| {delta('unfiltered', 'weak_recall')} | {delta('filtered', 'weak_recall')} "
                f"| {_plain([x['plain']['macro_f1'] for x in s])} "
                f"| {delta('unfiltered', 'macro_f1')} | {delta('filtered', 'macro_f1')} |"
            )
    cache = [json.loads(line) for p in RESULTS.glob("paraphrases-*.jsonl")
             for line in p.read_text().splitlines() if line.strip()]  # fmt: skip
    first = runs[0]
    dropped = first["augmentation"]["filtered"]["dropped"]
    lines.append("")
    lines.append(
        f"{first['dataset']} (title + abstract), {first['n_test']} test rows; each seed draws its "
        f"own rows a category; the weak class is the lowest mean recall of plain tfidf over the "
        f"seeds. {first['n']} paraphrase(s) per source row by `{first['generator']}` "
        "(llama.cpp, greedy, the built-in prompts); copies (>= 90 % of word trigrams in the "
        "source) and duplicates dropped in both augmented columns, and in *filtered* also rows "
        "tfidf trained on the real rows assigns to another class. Δ: augmented minus plain, in "
        "points, mean ± sample sd over the seeds (per seed, then averaged). Seed "
        f"{first['seed']}'s filtered run dropped: "
        + ", ".join(f"{k} {v}" for k, v in dropped.items() if v)
        + (
            f". Writing took {statistics.mean(c['seconds'] for c in cache):.1f} s a paraphrase "
            f"({len(cache)} written, load "
            f"{min(c['load_average_1m'] for c in cache):.1f}-"
            f"{max(c['load_average_1m'] for c in cache):.1f}, 1 thread)"
            if cache
            else ""
        )
        + ". embed: frozen minilm + logistic regression, max_length 256. Source: "
        "`benchmarks/results/augment/`, `benchmarks/augment.py`."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["run", "table"], default="run")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=2, help="paraphrases per source row")
    parser.add_argument("--generator", default="qwen-0.5b")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp and torch threads")
    add_docs_option(parser)
    args = parser.parse_args()
    if args.what == "run":
        import torch

        torch.set_num_threads(args.threads)
        weak, recalls = weakest_class(args.seeds, args.shots)
        print("plain tfidf mean recall per class:", recalls, "-> weak class", weak, flush=True)
        writer = CachedWriter(args.generator, args.threads)
        for seed in args.seeds:
            result = run_seed(seed, args.shots, args.n, weak, writer)
            result["plain_tfidf_recalls"] = recalls
            write_json(RESULTS / f"{DATASET}-{args.shots}shot-seed{seed}.json", result)
            replace_docs_section(START, END, build_section(), args.docs)
    replace_docs_section(START, END, build_section(), args.docs)


if __name__ == "__main__":
    main()

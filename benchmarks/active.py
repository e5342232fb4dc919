"""Active learning: learning curves of margin, entropy and random picking on bbc and banking77
with tfidf, 5 seeds, through the same picking as ``docsort suggest``.

    nice .venv/bin/python benchmarks/active.py                 # both sets, 5 seeds
    nice .venv/bin/python benchmarks/active.py --datasets bbc --seeds 2
    .venv/bin/python benchmarks/active.py --table-only         # rebuild table and plot only

Per set and seed: a seeded start of 2 labelled rows per label (the same for every strategy),
then rounds up to the next budget. Each round trains tfidf on the labelled rows, scores the set's
test rows (accuracy), and picks the next rows from the rest of the training rows, whose labels
are then "revealed": ``random``, or ``margin`` / ``entropy`` scored on the unlabelled rows and
spread over TF-IDF clusters exactly as ``docsort suggest`` does (``candidates`` 5). A tfidf
trained on all training rows gives the ceiling. Results go to
benchmarks/results/active/<set>.json (CPU seconds, load average, BLAS threads); the table and
benchmarks/results/active/<set>.png are rebuilt from them, the table between the
``<!-- active -->`` markers of docs/quality.md.

The question the issue asks: random's plateau is its mean accuracy at the largest budget; at
plateau − 1 point, how many labels does random need and how many the best strategy?
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from docsort.api import run_batched, train
from docsort.data.dataset import Dataset
from docsort.io import write_json
from docsort.quality.active import pick, uncertainty
from run import machine, replace_docs_section, train_test

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "active"
QUALITY_DOCS = ROOT / "docs" / "quality.md"
START, END = "<!-- active:start -->", "<!-- active:end -->"
# word n-grams and a logistic regression: a fit on 2,000 banking77 rows takes ~4 s of CPU where
# the calibrated SVM takes ~7 s; probabilities straight from the model
PARAMS: dict[str, Any] = {"char_ngrams": None, "classifier": "logreg", "C": 10.0}
STRATEGIES = ("random", "margin", "entropy")
BUDGETS = {
    "bbc": [10, 20, 40, 80, 160, 320],
    "banking77": [154, 308, 616, 1232, 2464],
}
CANDIDATES = 5


def start_rows(data: Dataset, per_label: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.array(data.labels)
    rows = [rng.choice(np.flatnonzero(labels == name), per_label, replace=False)
            for name in data.label_set.names]  # fmt: skip
    return np.sort(np.concatenate(rows))


def accuracy(model: Any, test: Dataset) -> float:
    proba = run_batched(model, test.texts).proba
    return float((proba.argmax(axis=1) == test.targets(model.labels_)).mean())


def curve(train_data: Dataset, test: Dataset, strategy: str, seed: int, budgets: list[int]):
    labelled = start_rows(train_data, budgets[0] // len(train_data.label_set), seed)
    points = []
    for step, budget in enumerate(budgets):
        assert len(labelled) == budget, (len(labelled), budget)
        model = train(train_data.subset(labelled), kind="tfidf", params=PARAMS, seed=seed)
        points.append(accuracy(model, test))
        if step + 1 == len(budgets):
            break
        rest = np.setdiff1d(np.arange(len(train_data)), labelled)
        texts = [train_data.texts[i] for i in rest]
        k = budgets[step + 1] - budget
        if strategy == "random":
            scores = np.zeros(len(rest))
        else:
            proba = run_batched(model, texts).proba
            scores = uncertainty(proba, strategy)
        chosen = pick(texts, scores, k, strategy, seed=seed * 1000 + step, candidates=CANDIDATES)
        labelled = np.sort(np.concatenate([labelled, rest[chosen]]))
    return points


def labels_needed(budgets: list[int], mean: list[float], target: float) -> float | None:
    """The smallest label count at which the mean curve reaches ``target`` (linear between
    the measured budgets); None if it never does."""
    for i, value in enumerate(mean):
        if value >= target:
            if i == 0:
                return float(budgets[0])
            a, b = mean[i - 1], value
            return budgets[i - 1] + (target - a) / (b - a) * (budgets[i] - budgets[i - 1])
    return None


def run_set(dataset: str, seeds: int, save: Path | None = None) -> dict[str, Any]:
    """All seeds' curves; with ``save``, the result so far is written after every seed (a
    shared machine may not give the time for all of them)."""
    train_data, test = train_test(dataset)
    budgets = BUDGETS[dataset]
    load_before = round(os.getloadavg()[0], 2)
    cpu, wall = time.process_time(), time.perf_counter()
    full = accuracy(train(train_data, kind="tfidf", params=PARAMS), test)
    curves: dict[str, list[list[float]]] = {s: [] for s in STRATEGIES}
    result: dict[str, Any] = {}
    for seed in range(seeds):
        for strategy in STRATEGIES:
            curves[strategy].append(curve(train_data, test, strategy, seed, budgets))
            print(dataset, seed, strategy, [round(x, 4) for x in curves[strategy][-1]], flush=True)
        result = summary(dataset, train_data, test, budgets, curves, full)
        result.update(
            cpu_seconds=round(time.process_time() - cpu, 1),
            wall_seconds=round(time.perf_counter() - wall, 1),
            load_average_1m_before=load_before,
            load_average_1m_after=round(os.getloadavg()[0], 2),
            threads=_threads(),
            machine=machine(),
        )
        if save is not None:
            write_json(save, result)
    return result


def summary(
    dataset: str,
    train_data: Dataset,
    test: Dataset,
    budgets: list[int],
    curves: dict[str, list[list[float]]],
    full: float,
) -> dict[str, Any]:
    mean = {s: np.mean(c, axis=0).tolist() for s, c in curves.items()}
    plateau = mean["random"][-1]
    target = plateau - 0.01
    return {
        "dataset": dataset,
        "train_rows": len(train_data),
        "test_rows": len(test),
        "labels": len(train_data.label_set),
        "budgets": budgets,
        "seeds": len(curves["random"]),
        "params": PARAMS,
        "candidates": CANDIDATES,
        "accuracy": curves,
        "mean": mean,
        "std": {s: np.std(c, axis=0).tolist() for s, c in curves.items()},
        "full_train_accuracy": full,
        "random_plateau": plateau,
        "target": target,
        "labels_needed": {s: labels_needed(budgets, m, target) for s, m in mean.items()},
    }


def _threads() -> dict[str, int]:
    from threadpoolctl import threadpool_info

    return {p["internal_api"]: p["num_threads"] for p in threadpool_info()}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    budgets = result["budgets"]
    for strategy in STRATEGIES:
        mean, std = np.array(result["mean"][strategy]), np.array(result["std"][strategy])
        ax.plot(budgets, mean, marker="o", label=strategy)
        ax.fill_between(budgets, mean - std, mean + std, alpha=0.15)
    ax.axhline(result["full_train_accuracy"], color="grey", ls=":", label="all training rows")
    ax.axhline(result["target"], color="grey", ls="--", lw=0.8, label="random plateau − 1 pt")
    ax.set_xscale("log")
    ax.set_xlabel("labelled rows")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{result['dataset']}: tfidf, mean ± std of {result['seeds']} seeds")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_table() -> str:
    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    lines = []
    for r in results:
        budgets = r["budgets"]
        lines += [
            f"**{r['dataset']}** ({r['labels']} labels, pool {r['train_rows']:,}, test "
            f"{r['test_rows']:,}; all training rows: {r['full_train_accuracy']:.2%}; "
            f"{r['seeds']} seeds, {r['cpu_seconds']:.0f} CPU s, load "
            f"{r['load_average_1m_before']:.1f}–{r['load_average_1m_after']:.1f}, BLAS threads "
            f"{max(r['threads'].values(), default=1)})",
            "",
            "| strategy | " + " | ".join(f"{b:,}" for b in budgets) + " | labels for "
            f"{r['target']:.2%} |",
            "| --- | " + " | ".join("---:" for _ in budgets) + " | ---: |",
        ]
        for s in STRATEGIES:
            cells = " | ".join(
                f"{m:.2%} ± {d:.1%}" for m, d in zip(r["mean"][s], r["std"][s], strict=True)
            )
            need = r["labels_needed"][s]
            lines.append(f"| {s} | {cells} | {'not reached' if need is None else f'{need:,.0f}'} |")
        lines += ["", f"![{r['dataset']} learning curves](../benchmarks/results/active/"
                      f"{r['dataset']}.png)", ""]  # fmt: skip
    return "\n".join(lines).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["bbc", "banking77"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--docs", type=Path, default=QUALITY_DOCS, help="Page holding the table.")
    args = parser.parse_args()
    os.environ.setdefault("DOCSORT_NO_PROGRESS", "1")
    if not args.table_only:
        RESULTS.mkdir(parents=True, exist_ok=True)
        for dataset in args.datasets:
            run_set(dataset, args.seeds, save=RESULTS / f"{dataset}.json")
    for path in sorted(RESULTS.glob("*.json")):
        if not args.table_only or not path.with_suffix(".png").exists():
            plot(json.loads(path.read_text()), path.with_suffix(".png"))
    replace_docs_section(START, END, build_table(), args.docs)


if __name__ == "__main__":
    main()

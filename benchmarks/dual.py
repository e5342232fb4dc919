"""Benchmarks of the ``dual`` kind: zero-shot, few-shot, fully trained and multi-label.

    .venv/bin/python benchmarks/dual.py zero-shot --base minilm --datasets bbc arxiv8 patents9
    .venv/bin/python benchmarks/dual.py few-shot --shots 8 --seeds 0 1 2 3 4
    .venv/bin/python benchmarks/dual.py full                 # banking77, all training rows
    .venv/bin/python benchmarks/dual.py multi-label --datasets arxiv-multilabel reuters
    .venv/bin/python benchmarks/dual.py table                # rebuild the section only

Results go to benchmarks/results/dual/*.json; the section between the
``<!-- dual:start -->`` markers of docs/benchmarks.md is rebuilt from those files only.
Test rows are the same as in
benchmarks/run.py (official test splits, else a seeded 20 %). Label descriptions live in
benchmarks/descriptions/*.yaml; they were written from general knowledge of each category
before any run and were not tuned on test rows. Patent sections are described by their CPC
section titles (../shared/data/uspto-p2p/cpc_titles.csv); banking77 intents by their names.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from docsort.api import evaluate, train
from docsort.data.dataset import Dataset, stratified_split
from docsort.data.labels import LabelSet
from docsort.evaluation import CostModel, compute_metrics
from docsort.io import write_json
from docsort.models.kinds.dual import zero_shot
from run import DOCS, SHARED, add_docs_option, machine, replace_docs_section, train_test

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "dual"
DESCRIPTIONS = ROOT / "benchmarks" / "descriptions"
START, END = "<!-- dual:start -->", "<!-- dual:end -->"
KEEP = ["accuracy", "macro_f1", "micro_f1", "ece", "n", "seconds", "docs_per_second"]


# -- label sets -----------------------------------------------------------------------------
def label_set(dataset: str, names: list[str]) -> LabelSet:
    """The benchmark's labels with their descriptions (banking77: the intent names)."""
    if dataset == "patents9":
        titles = pd.read_csv(SHARED / "uspto-p2p" / "cpc_titles.csv")
        sections = titles[titles.level == "section"].set_index("code").title
        return LabelSet(tuple(names), {n: sections[n].lower() for n in names})
    path = DESCRIPTIONS / f"{dataset}.yaml"
    if not path.is_file():
        return LabelSet(tuple(names))
    described = yaml.safe_load(path.read_text(encoding="utf-8"))
    return LabelSet(tuple(names), {n: described[n] for n in names if n in described})


def patent_class_titles(names: list[str]) -> LabelSet:
    """Augmented patent descriptions: the section title and every class title under it."""
    titles = pd.read_csv(SHARED / "uspto-p2p" / "cpc_titles.csv")
    out = {}
    for name in names:
        rows = titles[(titles.code.str[0] == name) & titles.level.isin(["section", "class"])]
        out[name] = [t.lower() for t in rows.title]
    return LabelSet(tuple(names), out)


# -- zero-shot ------------------------------------------------------------------------------
def run_zero_shot(dataset: str, base: str) -> dict[str, Any]:
    _, test = train_test(dataset)
    names = sorted(set(test.labels))
    labels = label_set(dataset, names)
    test.label_set = labels
    y = test.targets(labels)
    started = time.perf_counter()
    model = zero_shot(labels, base=base)
    load_seconds = time.perf_counter() - started
    vectors, seconds = embedded(model, dataset, test.texts)

    def scored(label_vectors: np.ndarray, which: LabelSet) -> dict[str, Any]:
        proba = model._proba(vectors @ label_vectors.T, False)
        metrics = compute_metrics(
            which, y, proba, proba.argmax(1), seconds=seconds, cost_model=CostModel()
        )
        return {k: metrics[k] for k in KEEP}

    variants = {"descriptions": scored(model.label_vectors_, labels)}
    bare = LabelSet(tuple(names))
    variants["names only"] = scored(model._label_vectors(bare), bare)
    named = LabelSet(  # description augmentation: the name as a second text to average
        tuple(names), {n: [*labels.description_texts(n), n.replace("_", " ")] for n in names}
    )
    variants["descriptions + name"] = scored(model._label_vectors(named), named)
    if dataset == "patents9":
        wide = patent_class_titles(names)
        variants["section + class titles"] = scored(model._label_vectors(wide), wide)
    for weight in (0.5, 1.0):
        adapted = model.adapted_vectors(vectors, weight=weight, share=0.5)
        variants[f"transductive w={weight}"] = scored(adapted, labels)
    return {
        "benchmark": "zero-shot",
        "dataset": dataset,
        "base": base,
        "descriptions": {n: list(labels.description_texts(n)) for n in names},
        "scale": model.scale_,
        "model_load_seconds": round(load_seconds, 2),
        **variants["descriptions"],
        "variants": variants,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
    }


def embedded(model: Any, dataset: str, texts: list[str]) -> tuple[np.ndarray, float]:
    """Unit vectors of the test texts (the work of ``predict_proba``) and the seconds they
    took, kept on disk so that a rerun of the label variants does not embed them again."""
    from docsort.cache import area_path

    path = area_path("embeddings") / f"dual-bench-{dataset}-{model.base}.npz"
    if path.is_file():
        cached = np.load(path)
        if len(cached["vectors"]) == len(texts):
            return cached["vectors"], float(cached["seconds"])
    started = time.perf_counter()
    vectors = model._embed(texts, model.max_length, "embedding")
    seconds = time.perf_counter() - started
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, vectors=vectors, seconds=seconds)
    return vectors, seconds


# -- trained --------------------------------------------------------------------------------
def sample_shots(data: Dataset, shots: int, seed: int) -> Dataset:
    """``shots`` seeded rows of every label; a label with fewer rows gives all it has (as
    SetFit's ``sample_dataset`` does: four banking77 labels have 35-61 training rows)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(data.labels)
    rows = []
    for name in data.label_set.names:
        of_label = np.flatnonzero(labels == name)
        rows.append(rng.choice(of_label, min(shots, len(of_label)), replace=False))
    return data.subset(np.sort(np.concatenate(rows)))


def run_trained(
    dataset: str,
    params: dict[str, Any],
    shots: int | None,
    seed: int,
    base: str,
    kind: str = "dual",
) -> dict[str, Any]:
    """Train ``kind`` on the set (or on ``shots`` rows per label drawn with ``seed``) and score
    it on the test rows; the baselines get the very rows the dual gets."""
    train_rows, test = train_test(dataset)
    if kind == "dual":
        labels = label_set(dataset, list(train_rows.label_set.names))
        train_rows.label_set = test.label_set = labels
        params = {**params, "base": base, "seed": seed}
    if shots:
        train_rows = sample_shots(train_rows, shots, seed)
    load = machine()
    started = time.perf_counter()
    model = train(train_rows, kind=kind, params=params)
    train_seconds = time.perf_counter() - started
    metrics = evaluate(model, test)
    return {
        "benchmark": f"{shots}-shot" if shots else "full",
        "kind": kind,
        "dataset": dataset,
        "base": params.get("base", "-"),
        "seed": seed,
        "params": model.get_params(),
        "n_train": len(train_rows),
        "few_shot": bool(getattr(model, "few_shot_", False)),
        "prototype_weight": getattr(model, "prototype_weight_", 0.0),
        "history": getattr(model, "history_", []),
        "train_seconds": round(train_seconds, 1),
        **{k: metrics[k] for k in KEEP},
        "machine": load,
        "date": time.strftime("%Y-%m-%d"),
    }


def multi_label_rows(dataset: str) -> tuple[Dataset, Dataset, Dataset]:
    """(train, validation for thresholds, test): arXiv multi-label (1,000 rows) split 80/20
    (seed 0); Reuters-21578's official split; 10 % of train (seed 0) validates either."""
    from docsort.data.loaders import load_dataset

    if dataset == "arxiv-multilabel":
        data = load_dataset(
            SHARED / "arxiv" / "arxiv_multilabel.csv", ["titles", "summaries"], "terms"
        )
        train_rows, test = stratified_split(data, 0.2, seed=0)
    else:
        train_rows, test = train_test(dataset)
    train_rows, valid = stratified_split(train_rows, 0.1, seed=0)
    return train_rows, valid, test


# dual on Reuters: 6,475 news stories; one LoRA epoch on 128 tokens keeps it under an hour here
MULTI_LABEL_TRAINED = {
    "arxiv-multilabel": {"epochs": 4, "lr": 5e-5},
    "reuters": {"epochs": 1, "lora": True, "max_length": 128},
}


def run_multi_label(base: str, dataset: str) -> list[dict[str, Any]]:
    """tfidf one-vs-rest, zero-shot dual (label names as descriptions) and trained dual, each
    with per-label thresholds tuned on the validation rows, on the same test rows."""
    train_rows, valid, test = multi_label_rows(dataset)
    out = []
    for name, kind, params in [
        ("tfidf one-vs-rest", "tfidf", {}),
        ("dual zero-shot + thresholds", "dual", {"base": base, "zero_shot": True}),
        ("dual trained", "dual", {"base": base, **MULTI_LABEL_TRAINED[dataset]}),
    ]:
        started = time.perf_counter()
        model = train(train_rows, kind=kind, params=params, valid_data=valid)
        train_seconds = time.perf_counter() - started
        metrics = evaluate(model, test)
        out.append(
            {
                "benchmark": "multi-label",
                "dataset": dataset,
                "model": name,
                "base": base if kind == "dual" else "",
                "params": params,
                "n_train": len(train_rows),
                "n_valid": len(valid),
                "labels": len(train_rows.label_set),
                "train_seconds": round(train_seconds, 1),
                **{k: metrics[k] for k in [*KEEP, "samples_f1", "subset_accuracy"]},
                "machine": machine(),
                "date": time.strftime("%Y-%m-%d"),
            }
        )
        print(json.dumps({k: out[-1][k] for k in ("model", "micro_f1", "macro_f1")}), flush=True)
    return out


# -- the docs section -----------------------------------------------------------------------
def build_section() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    lines: list[str] = []
    zero = [r for r in rows if r["benchmark"] == "zero-shot"]
    if zero:
        variants = list(dict.fromkeys(v for r in zero for v in r["variants"]))
        lines += [
            "Zero-shot (no labelled rows): macro-F1 / accuracy on the test rows.",
            "",
            "| dataset | base | test rows | " + " | ".join(variants) + " | docs/s | load |",
            "| --- | --- | ---: |" + " ---: |" * len(variants) + " ---: | ---: |",
        ]
        for r in sorted(zero, key=lambda r: (r["dataset"], r["base"])):
            cells = [
                f"{r['variants'][v]['macro_f1']:.3f} / {r['variants'][v]['accuracy']:.3f}"
                if v in r["variants"]
                else ""
                for v in variants
            ]
            lines.append(
                f"| {r['dataset']} | {r['base']} | {r['n']:,} | "
                + " | ".join(cells)
                + f" | {r['docs_per_second']:,.1f} | {r['machine']['load_average_1m']} |"
            )
        lines.append("")
    trained = [r for r in rows if r["benchmark"] not in ("zero-shot", "multi-label")]
    if trained:
        lines += [
            "Trained (banking77 test, 3,080 rows): accuracy and macro-F1; few-shot rows are the "
            "mean ± sample standard deviation over seeds (each seed draws its own k rows per "
            "intent from the official training set; an intent with fewer gives all it has: "
            "four have 35-61, so 64-shot is 4,868 rows, not 4,928).",
            "",
            "| setting | model | base | seeds | training rows | accuracy | macro-F1 | train s "
            "| load |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        groups: dict[tuple[str, str, str], list[dict]] = {}
        for r in trained:
            kind = r.get("kind", "dual")
            if r.get("prototype_weight"):
                kind += f" + prototypes (w={r['prototype_weight']:g})"
            groups.setdefault((r["benchmark"], kind, r["base"]), []).append(r)
        by_size = sorted(groups.items(), key=lambda item: (item[1][0]["n_train"], item[0]))
        for (bench, kind, base), group in by_size:
            acc = [g["accuracy"] for g in group]
            f1 = [g["macro_f1"] for g in group]
            lines.append(
                f"| {bench} | {BASELINE_NAMES.get(kind, kind)} | {base} | {len(group)} "
                f"| {group[0]['n_train']:,} | {_spread(acc)} "
                f"| {_spread(f1)} | {statistics.mean(g['train_seconds'] for g in group):,.0f} "
                f"| {max(g['machine']['load_average_1m'] for g in group)} |"
            )
        lines.append("")
    multi = [r for r in rows if r["benchmark"] == "multi-label"]
    if multi:
        sets = {
            "arxiv-multilabel": "arXiv (1,000 rows, 80/20 seeded)",
            "reuters": "Reuters-21578 (official split)",
        }
        measured = " and ".join(sets[name] for name in sorted({r["dataset"] for r in multi}))
        lines += [
            f"Multi-label: {measured}; 10 % of the training rows tune the per-label thresholds "
            "of every model. Labels are described by their names only (arXiv codes, Reuters "
            "topics).",
            "",
            "| dataset | labels | train / valid / test | model | base | micro-F1 | macro-F1 "
            "| samples-F1 | subset accuracy | train s |",
            "| --- | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in sorted(multi, key=lambda r: r["dataset"]):
            lines.append(
                f"| {r['dataset']} | {r['labels']} | {r['n_train']:,} / {r['n_valid']:,} / "
                f"{r['n']:,} | {r['model']} | {r['base']} | {r['micro_f1']:.3f} "
                f"| {r['macro_f1']:.3f} | {r['samples_f1']:.3f} | {r['subset_accuracy']:.3f} "
                f"| {r['train_seconds']:,.0f} |"
            )
        lines.append("")
    if rows:
        m = rows[0]["machine"]
        lines.append(
            f"Measured on {m['cpu']} ({m['cores']} cores, CPU), shared with other work: *load* "
            "is the 1-minute load average at the start, so docs/s and train seconds are "
            "pessimistic. Source: `benchmarks/results/dual/*.json`."
        )
    return "\n".join(lines)


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def update_docs(docs: Path = DOCS) -> None:
    replace_docs_section(START, END, build_section(), docs)


# LoRA, few epochs and one thread: the 2 cores were shared with a load of 12-15 during these
# runs, where a full fine-tune step of minilm took ~27 s (two threads spinning at barriers)
FEW_SHOT = {"epochs": 4, "batch_size": 32, "lora": True}
# the plain baselines trained on the same few-shot rows
FEW_SHOT_BASELINES: dict[str, dict[str, Any]] = {"tfidf": {}, "embed": {"base": "minilm"}}
BASELINE_NAMES = {"embed": "embed (frozen probe)"}
# the full set: a full fine-tune at the encoder kind's learning rate (5e-5), 5 epochs at most
# (early stopping on validation macro-F1); one LoRA epoch under load reached only 0.829
FULL = {"epochs": 5, "batch_size": 32, "lr": 5e-5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what",
        choices=["zero-shot", "few-shot", "few-shot-baselines", "full", "multi-label", "table"],
    )
    parser.add_argument("--base", default="minilm")
    parser.add_argument(
        "--datasets",
        nargs="+",
        help="zero-shot: bbc arxiv8 patents9 (default); multi-label: arxiv-multilabel reuters",
    )
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (busy machine: 1)")
    add_docs_option(parser)
    args = parser.parse_args()
    if args.what != "table":  # rebuilding the section needs no torch
        import torch

        torch.set_num_threads(args.threads)
    if args.datasets is None:
        multi = args.what == "multi-label"
        args.datasets = ["arxiv-multilabel", "reuters"] if multi else ["bbc", "arxiv8", "patents9"]
    if args.what == "zero-shot":
        for dataset in args.datasets:
            result = run_zero_shot(dataset, args.base)
            write_json(RESULTS / f"zero-shot-{args.base}-{dataset}.json", result)
            print(dataset, json.dumps(result["variants"]), flush=True)
    elif args.what == "few-shot":
        for seed in args.seeds:
            result = run_trained("banking77", FEW_SHOT, args.shots, seed, args.base)
            leaning = "-prototypes" if result["prototype_weight"] else ""
            name = f"{args.shots}-shot-{args.base}{leaning}-banking77-seed{seed}.json"
            write_json(RESULTS / name, result)
            print(seed, result["accuracy"], result["train_seconds"], flush=True)
    elif args.what == "few-shot-baselines":
        for kind, params in FEW_SHOT_BASELINES.items():
            for seed in args.seeds:
                result = run_trained("banking77", params, args.shots, seed, args.base, kind)
                name = f"{args.shots}-shot-{kind}-banking77-seed{seed}.json"
                write_json(RESULTS / name, result)
                print(kind, seed, result["accuracy"], flush=True)
    elif args.what == "full":
        result = run_trained("banking77", FULL, None, 0, args.base)
        write_json(RESULTS / f"full-{args.base}-banking77.json", result)
        print(result["accuracy"], result["macro_f1"], result["train_seconds"], flush=True)
    elif args.what == "multi-label":
        for dataset in args.datasets:
            for i, result in enumerate(run_multi_label(args.base, dataset)):
                write_json(RESULTS / f"multi-label-{args.base}-{dataset}-{i}.json", result)
    update_docs(args.docs)


if __name__ == "__main__":
    main()

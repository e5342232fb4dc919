"""The torch-free embedding backends beside ``minilm``: a frozen probe (``embed``) and zero-shot
with label descriptions (``dual``) on bbc, banking77 and arxiv8.

    nice .venv/bin/python benchmarks/embedders.py                       # every backend, every set
    nice .venv/bin/python benchmarks/embedders.py --bases nomic --datasets bbc
    .venv/bin/python benchmarks/embedders.py --table-only               # rebuild the tables

The backends read 1-30 texts a second at one thread (nomic, e5-small-q4), so every base reads
the same fixed subset of each set: ``TRAIN_SHOTS`` seeded rows per label to train the probe on
and ``TEST_SHOTS`` per label to score (``dual.sample_shots``, seed 0; test rows from the
official test split). Every base reads up to 256 tokens (the kinds' default; the e5 and USE
backends cut at 256 words), at one thread (torch too), one base at a time.

What is scored is what the kinds compute: the probe is the ``embed`` kind's head (logistic
regression, C=10) on the vectors of ``EmbedClassifier._embed``; zero-shot is the argmax of the
cosine to each label's unit-mean description vector, as ``dual`` predicts (its scale does not
change the argmax). Each backend also runs through the kinds themselves once on banking77
(``embed`` fit + predict, ``dual`` zero-shot predict) and the agreement with the table's
predictions is recorded. For nomic and e5 the prompt of each role is varied too (``variants``):
nomic's card recommends ``classification: `` for classifier features, e5's ``query: ``. The
first of each list is what the kinds use (``dual``: the backend's ``dual_roles``), and the run
checks that.

Results: benchmarks/results/embedders/<base>-<dataset>.json; the tables between the
``<!-- embedders:start -->`` markers of docs/benchmarks.md and docs/kinds/embed.md are rebuilt
from those files only.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from docsort.data.dataset import Dataset
from docsort.io import write_json
from docsort.models.kinds.dual import DualEncoderClassifier, _average_rows, zero_shot
from docsort.models.kinds.embedding import EmbedClassifier
from dual import label_set, sample_shots
from run import (
    ROOT,
    _busy_seconds,
    _own_seconds,
    add_docs_option,
    machine,
    replace_docs_section,
    train_test,
)

RESULTS = ROOT / "benchmarks" / "results" / "embedders"
KIND_PAGE = ROOT / "docs" / "kinds" / "embed.md"
START, END = "<!-- embedders:start -->", "<!-- embedders:end -->"
BASES = ("minilm", "nomic", "e5-small-q4", "use-multilingual")
DATASETS = ("bbc", "banking77", "arxiv8")
TRAIN_SHOTS = {"bbc": 16, "banking77": 8, "arxiv8": 12}
TEST_SHOTS = {"bbc": 20, "banking77": 4, "arxiv8": 12}
MAX_LENGTH = 256
C = 10.0  # the embed kind's default head
# (probe role, zero-shot document role, zero-shot label role) beside the kinds' defaults
VARIANTS = {
    "nomic": {
        "probe": ["classification", "document"],
        "zero_shot": [("classification", "classification"), ("document", "query")],
    },
    "e5-small-q4": {
        "probe": ["classification", "document"],
        "zero_shot": [("document", "query"), ("query", "query")],
    },
}
PROMPTS = {
    "nomic": {
        "classification": "classification:",
        "document": "search_document:",
        "query": "search_query:",
    },
    "e5-small-q4": {"classification": "query:", "document": "passage:", "query": "query:"},
}


class Meter:
    """Wall seconds and how many cores other processes kept busy meanwhile."""

    def __enter__(self) -> Meter:
        self.busy, self.own, self.start = _busy_seconds(), _own_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        self.others = None
        if self.busy is not None:
            used = _busy_seconds() - self.busy - (_own_seconds() - self.own)
            self.others = round(max(used, 0.0) / max(self.seconds, 1e-9), 2)


def subsets(dataset: str) -> tuple[Dataset, Dataset]:
    train, test = train_test(dataset)
    labels = label_set(dataset, list(train.label_set.names))
    train.label_set = test.label_set = labels
    return sample_shots(train, TRAIN_SHOTS[dataset], 0), sample_shots(test, TEST_SHOTS[dataset], 0)


class Vectors:
    """Each base's vectors of the subsets by role, through the kinds' own embedding code
    (``minilm``: the torch path; a backend: its ``Embedder``), each pass timed."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.timings: dict[str, dict[str, Any]] = {}
        with Meter() as meter:
            if base == "minilm":
                self.probe = EmbedClassifier(base=base, max_length=MAX_LENGTH, cache=False)
                self.probe._encoder()
            else:
                from docsort.models.embedders import load_embedder

                self.embedder = load_embedder(base, max_length=MAX_LENGTH)
        self.load_seconds = round(meter.seconds, 2)
        self.dual: DualEncoderClassifier | None = None

    def encode(self, name: str, texts: list[str], role: str) -> np.ndarray:
        with Meter() as meter:
            if self.base != "minilm":
                vectors = self.embedder.encode(texts, role=role)
            elif role == "classification":
                vectors = self.probe._embed(texts)
            else:
                assert self.dual is not None
                vectors = self.dual._embed(texts, MAX_LENGTH)
        self.timings[f"{name}:{role}"] = {
            "texts": len(texts),
            "seconds": round(meter.seconds, 2),
            "docs_per_second": round(len(texts) / meter.seconds, 2),
            "other_cores_busy": meter.others,
        }
        return vectors

    def labels(self, labels: Any, role: str) -> np.ndarray:
        if self.dual is None:  # the label texts as dual reads them (names: "_" as spaces)
            self.dual = zero_shot(labels, base=self.base, max_length=MAX_LENGTH)
        texts, owner = self.dual._label_texts(labels)
        if self.base == "minilm":
            vectors = self.dual._embed(texts, self.dual.label_max_length)
        else:
            vectors = self.embedder.encode(texts, role=role)
        return _average_rows(vectors, owner, len(labels))


def scores(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": round(float(accuracy_score(y, predicted)), 4),
        "macro_f1": round(float(f1_score(y, predicted, average="macro", zero_division=0)), 4),
    }


def probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    head = LogisticRegression(C=C, max_iter=2000).fit(train_x, train_y)
    return head.predict(test_x)


def run(base: str, dataset: str) -> dict[str, Any]:
    load_before = machine()
    train, test = subsets(dataset)
    labels = test.label_set
    y_train, y_test = train.targets(labels), test.targets(labels)
    vec = Vectors(base)
    roles = VARIANTS.get(base, {"probe": ["classification"], "zero_shot": [("document", "query")]})
    cache: dict[tuple[str, str], np.ndarray] = {}

    def of(split: str, role: str) -> np.ndarray:
        if (split, role) not in cache:
            rows = train if split == "train" else test
            if vec.dual is None:
                vec.labels(labels, "query")
            cache[split, role] = vec.encode(split, rows.texts, role)
        return cache[split, role]

    if base != "minilm":  # the table's first variant is what the kinds read
        from docsort.models.embedders import dual_roles

        assert tuple(roles["zero_shot"][0]) == dual_roles(base), (base, dual_roles(base))
    probes, zero = {}, {}
    for role in roles["probe"]:
        predicted = probe(of("train", role), y_train, of("test", role))
        probes[role] = {**scores(y_test, predicted), "predicted": predicted.tolist()}
    for doc_role, label_role in roles["zero_shot"]:
        cosine = of("test", doc_role) @ vec.labels(labels, label_role).T
        predicted = cosine.argmax(axis=1)
        zero[f"{doc_role}/{label_role}"] = {**scores(y_test, predicted), **_top(cosine)}
        zero[f"{doc_role}/{label_role}"]["predicted"] = predicted.tolist()
    default_probe = probes[roles["probe"][0]]
    default_zero = zero["/".join(roles["zero_shot"][0])]
    result = {
        "benchmark": "embedders",
        "base": base,
        "dataset": dataset,
        "n_train": len(train),
        "n_test": len(test),
        "train_shots": TRAIN_SHOTS[dataset],
        "test_shots": TEST_SHOTS[dataset],
        "max_length": MAX_LENGTH,
        "threads": 1,
        "load_seconds": vec.load_seconds,
        "probe": {k: v for k, v in default_probe.items() if k != "predicted"},
        "zero_shot": {k: v for k, v in default_zero.items() if k != "predicted"},
        "probe_docs_per_second": vec.timings[f"test:{roles['probe'][0]}"]["docs_per_second"],
        "zero_shot_docs_per_second": vec.timings[f"test:{roles['zero_shot'][0][0]}"][
            "docs_per_second"
        ],
        "variants": {
            "probe": {k: _no_rows(v) for k, v in probes.items()},
            "zero_shot": {k: _no_rows(v) for k, v in zero.items()},
        },
        "timings": vec.timings,
        "machine_before": load_before,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if dataset == "banking77":
        result["through_the_kinds"] = through_kinds(
            base, train, test, default_probe["predicted"], default_zero["predicted"]
        )
    return result


def _top(cosine: np.ndarray) -> dict[str, float]:
    """How far the best label stands above the second (a zero-shot margin), on average."""
    ordered = np.sort(cosine, axis=1)
    return {
        "mean_top_cosine": round(float(ordered[:, -1].mean()), 4),
        "mean_margin": round(float((ordered[:, -1] - ordered[:, -2]).mean()), 4),
    }


def _no_rows(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "predicted"}


def through_kinds(
    base: str, train: Dataset, test: Dataset, probe_rows: list[int], zero_rows: list[int]
) -> dict[str, Any]:
    """The ``embed`` and ``dual`` kinds themselves on the same rows: do they predict what the
    table says? (share of test rows with the same label)"""
    labels = test.label_set
    model = EmbedClassifier(base=base, max_length=MAX_LENGTH, cache=False).fit(train)
    embed_rows = model.predict_proba(test.texts).argmax(axis=1)
    dual = zero_shot(labels, base=base, max_length=MAX_LENGTH)
    dual_rows = dual.predict_proba(test.texts).argmax(axis=1)
    return {
        "embed_agreement": round(float(np.mean(embed_rows == np.asarray(probe_rows))), 4),
        "dual_agreement": round(float(np.mean(dual_rows == np.asarray(zero_rows))), 4),
    }


# -- tables --------------------------------------------------------------------------------
def _results() -> list[dict[str, Any]]:
    found = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(RESULTS.glob("*.json"))]
    order = {b: i for i, b in enumerate(BASES)}
    data = {d: i for i, d in enumerate(DATASETS)}
    return sorted(found, key=lambda r: (data.get(r["dataset"], 99), order.get(r["base"], 99)))


def build_table() -> str:
    results = _results()
    if not results:
        return "_No results yet: run `benchmarks/embedders.py`._"
    sizes = {
        r["dataset"]: (r["n_train"], r["n_test"], r["train_shots"], r["test_shots"])
        for r in results
    }
    subset = "; ".join(
        f"{d}: {n_train} training rows ({shots}/label), {n_test} test rows ({test_shots}/label)"
        for d, (n_train, n_test, shots, test_shots) in sizes.items()
    )
    lines = [
        f"A fixed subset, the same for every base (seed 0; {subset}): the backends read 1-30 "
        "texts/s, so full test sets would take hours. Probe = the `embed` kind (logistic "
        "regression on frozen vectors, C=10); zero-shot = the `dual` kind with the label "
        "descriptions of benchmarks/descriptions/ (banking77: the intent names). docs/s: the "
        f"test rows at one thread, up to {MAX_LENGTH} tokens, on a shared 2-core machine "
        "(load average and other busy cores of each run given).",
        "",
        "| set | base | probe accuracy | probe macro-F1 | zero-shot accuracy | "
        "zero-shot macro-F1 | probe docs/s | zero-shot docs/s | load avg | other cores busy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        busy = [t["other_cores_busy"] for t in r["timings"].values() if t["other_cores_busy"]]
        lines.append(
            f"| {r['dataset']} | `{r['base']}` | {r['probe']['accuracy']:.3f} | "
            f"{r['probe']['macro_f1']:.3f} | {r['zero_shot']['accuracy']:.3f} | "
            f"{r['zero_shot']['macro_f1']:.3f} | {r['probe_docs_per_second']:.1f} | "
            f"{r['zero_shot_docs_per_second']:.1f} | {r['machine']['load_average_1m']:.2f} | "
            f"{max(busy, default=0):.2f} |"
        )
    variants = [r for r in results if r["base"] in VARIANTS]
    if variants:
        lines += [
            "",
            "Prompts by role (nomic: `classification:`, `search_document:`, `search_query:`; "
            "e5: `query:`, `passage:`), macro-F1 on the same rows; the first of each is what "
            "the kinds use:",
            "",
            "| set | base | probe prompt: macro-F1 | zero-shot document / label prompt: macro-F1 |",
            "| --- | --- | --- | --- |",
        ]
        for r in variants:
            names = PROMPTS[r["base"]]
            probe_cells = ", ".join(
                f"`{names[k]}` {v['macro_f1']:.3f}" for k, v in r["variants"]["probe"].items()
            )
            zero_cells = ", ".join(
                f"`{names[k.split('/')[0]]}` / `{names[k.split('/')[1]]}` {v['macro_f1']:.3f}"
                for k, v in r["variants"]["zero_shot"].items()
            )
            lines.append(f"| {r['dataset']} | `{r['base']}` | {probe_cells} | {zero_cells} |")
    checked = [r for r in results if "through_the_kinds" in r]
    if checked:
        cells = ", ".join(
            f"`{r['base']}` {r['through_the_kinds']['embed_agreement']:.0%} / "
            f"{r['through_the_kinds']['dual_agreement']:.0%}"
            for r in checked
        )
        lines += [
            "",
            f"Through the kinds themselves (banking77 rows, embed / dual agree with "
            f"the table's predictions): {cells}.",
        ]
    return "\n".join(lines)


def update_docs(docs: Path) -> None:
    body = build_table()
    replace_docs_section(START, END, body, docs)
    if docs.resolve() == (ROOT / "docs" / "benchmarks.md").resolve():
        replace_docs_section(START, END, body, KIND_PAGE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", nargs="+", default=list(BASES), choices=BASES)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the tables.")
    add_docs_option(parser)
    args = parser.parse_args()
    if not args.table_only:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(1)  # minilm at one thread, like the backends
        for base in args.bases:
            for dataset in args.datasets:
                started = time.perf_counter()
                result = run(base, dataset)
                write_json(RESULTS / f"{base}-{dataset}.json", result)
                print(
                    f"{base} {dataset}: probe {result['probe']['macro_f1']:.3f} "
                    f"zero-shot {result['zero_shot']['macro_f1']:.3f} "
                    f"({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    update_docs(args.docs)


if __name__ == "__main__":
    main()

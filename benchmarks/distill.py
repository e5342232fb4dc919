"""Distillation with no labels: a zero-shot teacher labels the training rows, a small student
learns from those labels only, both are scored on the labelled test rows.

    nice .venv/bin/python benchmarks/distill.py embed --datasets bbc arxiv8   # teacher vectors
    nice .venv/bin/python benchmarks/distill.py run --datasets bbc arxiv8
    .venv/bin/python benchmarks/distill.py table                            # the section only

Teacher: the zero-shot ``dual`` (minilm) over the label descriptions of
benchmarks/descriptions/*.yaml, re-aimed on the whole training pool by its transductive
``adapt`` (as ``docsort distill`` does for a teacher whose capabilities say ``adapts``).
Students (tfidf, static) are trained by ``docsort.api.distill`` on the teacher's labels of
the training rows; no gold label of a training row is read. The supervised student (the same
kind trained on the gold labels) is beside it for scale. Test rows are those of
benchmarks/run.py.

The teacher's work is embedding texts; on this shared 2-core machine that is minutes per set,
so its unit vectors are computed once (``embed``, timed, kept in the docsort cache) and its
probabilities come from them through the kind's own ``adapted_vectors`` and ``_proba`` — the
same arithmetic ``adapt`` + ``predict`` run — then handed to ``api.distill`` as the
teacher's labels (``DistillRequest.teacher_proba``). Teacher docs/s is that embedding pass
(its ``adapt`` pass, a second embedding of the pool in ``docsort distill``, is not counted).
Results: benchmarks/results/distill/*.json; the table between the ``<!-- distill:start -->``
markers of docs/benchmarks.md is rebuilt from them only.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from docsort.data.dataset import Dataset
from docsort.io import write_json
from run import add_docs_option, machine, replace_docs_section, train_test

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "distill"
START, END = "<!-- distill:start -->", "<!-- distill:end -->"
BASE = "minilm"
STUDENTS = ("tfidf", "static")


def teacher(dataset: str, names: list[str]) -> Any:
    from docsort.models.kinds.dual import zero_shot
    from dual import label_set

    return zero_shot(label_set(dataset, names), base=BASE)


def vectors_path(dataset: str, split: str) -> Path:
    from docsort.cache import area_path

    return area_path("embeddings") / f"distill-bench-{dataset}-{split}-{BASE}.npz"


def vectors(model: Any, dataset: str, split: str, texts: list[str]) -> tuple[np.ndarray, float]:
    """The teacher's unit vectors of ``texts`` and the seconds they took (cached on disk)."""
    path = vectors_path(dataset, split)
    if path.is_file():
        cached = np.load(path)
        if len(cached["vectors"]) == len(texts):
            return cached["vectors"], float(cached["seconds"])
    load = os.getloadavg()[0]
    started = time.perf_counter()
    found = model._embed(texts, model.max_length, f"embedding {dataset} {split}")
    seconds = time.perf_counter() - started
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, vectors=found, seconds=seconds, load=load)
    return found, seconds


def embed(dataset: str) -> None:
    train, test = train_test(dataset)
    model = teacher(dataset, list(train.label_set.names))
    for split, rows in (("train", train), ("test", test)):
        _, seconds = vectors(model, dataset, split, rows.texts)
        print(f"{dataset} {split}: {len(rows):,} rows in {seconds:.0f} s", flush=True)


def rate(model: Any, texts: list[str]) -> dict[str, Any]:
    """A student's prediction docs/s on the test texts (median of 3 runs, with load)."""
    from run import throughput

    return {**throughput(model, texts, repeats=3), "load_average_1m": round(os.getloadavg()[0], 2)}


def scores(names: tuple[str, ...], truth: list[str], predicted: list[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(
            f1_score(truth, predicted, labels=list(names), average="macro", zero_division=0)
        ),
    }


def per_1k(docs_per_second: float) -> float:
    from docsort.models.cost import CostModel

    return CostModel().cost(1000 / docs_per_second)


def run(dataset: str) -> dict[str, Any]:
    from docsort.api import train as train_model
    from docsort.api.distill import DistillRequest, run_distill

    train, test = train_test(dataset)
    names = train.label_set.names
    model = teacher(dataset, list(names))
    train_vectors, _ = vectors(model, dataset, "train", train.texts)
    test_vectors, test_seconds = vectors(model, dataset, "test", test.texts)
    cached = np.load(vectors_path(dataset, "test"))
    teacher_rate = len(test) / test_seconds
    # adapt(train texts) as docsort distill runs it: the label vectors re-aimed on the pool
    adapted = model.adapted_vectors(train_vectors, weight=1.0, share=0.5)
    pool_proba = model._proba(train_vectors @ adapted.T, False)
    truth = list(test.labels)

    def decided(proba: np.ndarray) -> list[str]:
        return [names[i] for i in proba.argmax(axis=1)]

    teacher_test = decided(model._proba(test_vectors @ adapted.T, False))
    result: dict[str, Any] = {
        "dataset": dataset,
        "train_rows": len(train),
        "test_rows": len(test),
        "teacher": {
            "model": f"dual {BASE} zero-shot, adapted on the training pool",
            **scores(names, truth, teacher_test),
            "pool_accuracy_vs_gold": scores(names, list(train.labels), decided(pool_proba)),
            "docs_per_second": teacher_rate,
            "cost_per_1k": per_1k(teacher_rate),
            "load_average_1m": round(float(cached["load"]), 2) if "load" in cached else None,
        },
        "teacher_unadapted": scores(
            names, truth, decided(model._proba(test_vectors @ model.label_vectors_.T, False))
        ),
        "students": [],
        "supervised": [],
    }
    unlabelled = Dataset(list(train.texts), name=f"{dataset} training rows, no labels")
    for kind in STUDENTS:
        started = time.perf_counter()
        distilled = run_distill(
            DistillRequest(teacher=model, data=unlabelled, student=kind, teacher_proba=pool_proba)
        )
        seconds = time.perf_counter() - started
        student = distilled.student
        predicted = list(student.predict(test.texts))
        speed = rate(student, test.texts)
        result["students"].append(
            {
                "model": kind,
                **scores(names, truth, predicted),
                "agreement_held_out": distilled.report["agreement"],
                "agreement_test": float(np.mean(np.array(predicted) == np.array(teacher_test))),
                **speed,
                "times_teacher": speed["docs_per_second"] / teacher_rate,
                "cost_per_1k": per_1k(speed["docs_per_second"]),
                "distill_seconds": round(seconds, 2),
                "report": distilled.report,
            }
        )
        print(dataset, kind, json.dumps(result["students"][-1], default=str)[:300], flush=True)
        started = time.perf_counter()
        supervised = train_model(train, kind=kind)
        seconds = time.perf_counter() - started
        speed = rate(supervised, test.texts)
        result["supervised"].append(
            {
                "model": kind,
                **scores(names, truth, list(supervised.predict(test.texts))),
                **speed,
                "cost_per_1k": per_1k(speed["docs_per_second"]),
                "train_seconds": round(seconds, 2),
            }
        )
    result["machine"] = machine()
    result["date"] = time.strftime("%Y-%m-%d")
    write_json(RESULTS / f"{dataset}.json", result)
    return result


def build_table() -> str:
    lines = [
        "| dataset | model | trained on | accuracy | macro-F1 | agrees with teacher "
        "(held-out / test) | docs/s | × teacher | $ per 1k docs | load |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        t, d = r["teacher"], r["dataset"]
        lines.append(
            f"| {d} | {t['model']} | label descriptions | {t['accuracy']:.4f} "
            f"| {t['macro_f1']:.4f} | | {t['docs_per_second']:.1f} | 1 | {t['cost_per_1k']:.5f} "
            f"| {t.get('load_average_1m') or 'n/a'} |"
        )
        u = r["teacher_unadapted"]
        lines.append(
            f"| {d} | the same teacher, not adapted | label descriptions | {u['accuracy']:.4f} "
            f"| {u['macro_f1']:.4f} | | | | | |"
        )
        for s in r["students"]:
            lines.append(
                f"| {d} | **{s['model']} student** | the teacher's labels of "
                f"{s['report']['rows_trained']:,} training rows | {s['accuracy']:.4f} "
                f"| {s['macro_f1']:.4f} | {s['agreement_held_out']:.1%} / "
                f"{s['agreement_test']:.1%} | {s['docs_per_second']:,.0f} "
                f"| {s['times_teacher']:,.0f} | {s['cost_per_1k']:.6f} | {s['load_average_1m']} |"
            )
            gap = (s["accuracy"] - t["accuracy"]) * 100
            meets = gap >= -1 and s["times_teacher"] >= 20
            verdicts.append(
                f"{d} {s['model']}: {gap:+.1f} points at {s['times_teacher']:,.0f}× "
                f"({'meets' if meets else 'misses'} ≥ −1 point at ≥ 20×)"
            )
        for s in r["supervised"]:
            lines.append(
                f"| {d} | {s['model']}, supervised (for scale) | {r['train_rows']:,} gold labels "
                f"| {s['accuracy']:.4f} | {s['macro_f1']:.4f} | | {s['docs_per_second']:,.0f} "
                f"| | {s['cost_per_1k']:.6f} | {s['load_average_1m']} |"
            )
    if verdicts:
        m = json.loads(sorted(RESULTS.glob("*.json"))[0].read_text())["machine"]
        lines += [
            "",
            "Acceptance (student accuracy − teacher accuracy, at the student's speed-up): "
            + "; ".join(verdicts)
            + ".",
            "",
            f"Measured on {m['cpu']} ({m['cores']} cores, shared with other work), torch "
            f"threads {m.get('torch_threads', 'n/a')}; *load* = the 1-minute load average when "
            "the docs/s was measured (teacher: when its test rows were embedded); teacher "
            "docs/s = embedding the test rows (its `adapt` pass over the pool not counted); "
            "student docs/s = median of 3 prediction runs over the test rows; cost = seconds × "
            "$0.10 per hardware-hour. No gold label of a training row reaches a student; the "
            "students and the teacher are scored on the labelled test rows. Source: "
            "`benchmarks/results/distill/*.json` (`benchmarks/distill.py`).",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["embed", "run", "table"])
    parser.add_argument("--datasets", nargs="+", default=["bbc", "arxiv8"])
    add_docs_option(parser)
    args = parser.parse_args()
    for dataset in args.datasets:
        if args.what == "embed":
            embed(dataset)
        elif args.what == "run":
            run(dataset)
    if args.what != "embed":
        replace_docs_section(START, END, build_table(), args.docs)


if __name__ == "__main__":
    main()

"""Active learning, as every entry point asks for it (``docsort suggest``): which rows of an
unlabelled pool to label next.

``run_suggest`` checks the request once (the models, the strategy, ``n``), reads the pool as
the first model was trained to read it (with each row's position in the input), scores every
distinct text and picks with ``docsort.quality.active``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from docsort.api.common import open_model
from docsort.api.positions import read_positioned
from docsort.api.prediction import run_batched
from docsort.api.rows import Columns, Source, notes_on
from docsort.errors import DocsortError
from docsort.io import atomic_path
from docsort.models.base import Model, Runtime, is_number
from docsort.quality import active

OUT_FIELDS = ("rank", "row", "label", "confidence", "uncertainty", "copies", "text")


@dataclass
class SuggestRequest:
    """Pick ``n`` rows of ``pool`` to label next with one saved model (or several: the
    committee's members, whose mean probabilities give the top label)."""

    models: Sequence[Model | str | Path]
    pool: Source
    n: int = 100
    strategy: str = "margin"
    seed: int = 0
    out: str | Path | None = None  # a CSV file
    columns: Columns = field(default_factory=Columns)
    candidates: int = active.CANDIDATES
    runtime: Runtime | None = None


@dataclass
class SuggestResult:
    rows: list[dict[str, Any]]
    pool_rows: int
    distinct: int
    notes: list[str] = field(default_factory=list)


def run_suggest(request: SuggestRequest) -> SuggestResult:
    _check(request)
    models = [open_model(m, request.runtime) for m in request.models]
    names, multi = _labels_of(models)
    first = models[0]
    clash = sorted(set(request.columns.keep) & set(OUT_FIELDS))
    if clash:
        raise DocsortError(
            f"--keep {clash[0]!r} would be overwritten by the output's own {clash[0]!r} column"
        )
    read = read_positioned(
        request.pool, request.columns.or_trained(first.input_spec_), labelled=False
    )
    data = read.data
    distinct = active.distinct_texts(data.texts)
    texts = [data.texts[i] for i in distinct.first]
    probas = []
    for model in models:
        proba = run_batched(model, texts, description="scoring the pool").proba
        probas.append(proba[:, [model.labels_.names.index(n) for n in names]])
    mean = np.mean(probas, axis=0)
    if request.strategy == "committee":
        scores = active.disagreement(probas, multi)
    else:
        scores = active.uncertainty(mean, request.strategy, multi)
    chosen = active.pick(
        texts, scores, request.n, request.strategy, seed=request.seed,
        candidates=request.candidates,
    )  # fmt: skip
    rows = []
    for rank, i in enumerate(chosen, start=1):
        source_row = int(distinct.first[i])
        p = mean[i]
        top = int(np.argmax(p))
        label = names[top]
        if multi:
            chosen_labels = [names[j] for j in np.flatnonzero(p >= 0.5)] or [label]
            label = "|".join(chosen_labels)
        rows.append(
            {
                "rank": rank,
                "row": int(read.positions[source_row]),
                "label": label,
                "confidence": round(float(p[top]), 6),
                "uncertainty": round(float(scores[i]), 6),
                "copies": int(distinct.copies[i]),
                **{k: v[source_row] for k, v in data.extra.items()},
                "text": texts[i],
            }
        )
    notes = notes_on(data, str(request.pool), labelled=False)
    if len(texts) < len(data):
        notes.append(f"{len(data) - len(texts):,} duplicate text(s) in the pool counted once")
    if len(rows) < request.n:
        notes.append(f"the pool has {len(texts):,} distinct texts: all are suggested")
    if request.out is not None:
        write_csv(request.out, rows)
    return SuggestResult(rows, len(data), len(texts), notes)


def write_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    columns = list(rows[0]) if rows else list(OUT_FIELDS)
    with atomic_path(path) as tmp:
        pd.DataFrame.from_records(rows, columns=columns).to_csv(tmp, index=False)


def _check(request: SuggestRequest) -> None:
    if request.strategy not in active.STRATEGIES:
        raise DocsortError(
            f"--strategy must be one of {', '.join(active.STRATEGIES)}, not {request.strategy!r}"
        )
    n = request.n
    if not (is_number(n) and float(n).is_integer() and n >= 1):
        raise DocsortError(f"--n must be a whole number of rows, 1 or more, not {n}")
    k = request.candidates
    if not (is_number(k) and float(k).is_integer() and k >= 1):
        raise DocsortError(f"--candidates must be a whole number, 1 or more, not {k}")
    if not request.models:
        raise DocsortError("suggest needs a saved model")
    if request.strategy == "committee" and len(request.models) < 2:
        raise DocsortError(
            "--strategy committee measures how several models disagree: give two or more "
            "saved models (MODEL MODEL ... POOL)"
        )
    if request.out is not None and Path(str(request.out)).suffix.lower() != ".csv":
        raise DocsortError(f"--out is written as CSV: give a .csv file, not {request.out}")


def _labels_of(models: list[Model]) -> tuple[list[str], bool]:
    """The label names all models share (the first's order) and whether they are multi-label."""
    for model in models:
        if model.capabilities().scores:
            raise DocsortError(
                f"a {model.kind} model gives scores, not label probabilities: suggest needs "
                "classifiers"
            )
    first = models[0]
    names = list(first.labels_.names)
    for model in models[1:]:
        if set(model.labels_.names) != set(names):
            raise DocsortError(
                "the models know different labels: a committee's members must share one label "
                "set (train them on the same labels)"
            )
        if model.labels_.multi_label != first.labels_.multi_label:
            raise DocsortError("the models mix single- and multi-label: give one sort")
    return names, first.labels_.multi_label

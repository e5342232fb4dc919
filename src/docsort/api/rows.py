"""Rows in and rows out: which columns of a table to read, and predictions as JSON lines.

``Columns`` says how to read a table (the text column or columns, the label, a template, pair
and context columns); a saved model remembers the ones it was trained with, so evaluating or
predicting with it needs none of them again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from docsort.data.dataset import MAX_TEXT_CHARS, Dataset
from docsort.data.labels import LabelSet, load_labels_file
from docsort.data.loaders import load_dataset
from docsort.errors import DocsortError
from docsort.io import atomic_path
from docsort.models.base import Model
from docsort.models.thresholds import limit_decisions

# a path, builtin:NAME[:split], "-" for stdin, rows in memory, or records (a REST body's
# [{"title": ..., "abstract": ...}, ...]) read with the same columns as a table
Source = str | Path | Dataset | list[dict[str, Any]]


@dataclass(frozen=True)
class Columns:
    """Which columns of a table hold what; ``None`` means "as the model was trained", and for
    a new model ``text`` and ``label``."""

    text: tuple[str, ...] | None = None
    label: str | None = None
    template: str | None = None
    label_sep: str | None = None
    pair: str | None = None
    context: str | None = None
    keep: tuple[str, ...] = field(default_factory=tuple)
    strict: bool = False

    def __post_init__(self) -> None:
        if self.text is not None and not [t for t in self.text if t.strip()]:
            raise DocsortError("--text names no column: give a column, or several as a,b")
        if self.label is not None and not self.label.strip():
            raise DocsortError("--label names no column: give the label column's name")
        if self.label_sep == "":
            raise DocsortError('--label-sep is empty: give the separator, e.g. "|"')

    @classmethod
    def parse(cls, text: str | Sequence[str] | None = None, **rest: Any) -> Columns:
        """``text`` as the CLI gives it (``"title,abstract"``) or as a list."""
        if isinstance(text, str):
            text = tuple(part.strip() for part in text.split(","))
        keep = rest.pop("keep", None) or ()
        if isinstance(keep, str):
            keep = tuple(part.strip() for part in keep.split(",") if part.strip())
        return cls(text=None if text is None else tuple(text), keep=tuple(keep), **rest)

    def or_trained(self, spec: dict[str, Any]) -> Columns:
        """These columns, the unset ones taken from a model's saved input spec."""
        trained = spec.get("text")
        if isinstance(trained, str):
            trained = (trained,)
        return replace(
            self,
            text=self.text or (tuple(trained) if trained else None),
            label=self.label or spec.get("label"),
            # a template belongs to the columns it joins: keep it only with the trained ones
            template=self.template or (spec.get("template") if self.text is None else None),
            label_sep=self.label_sep or spec.get("label_sep"),
            pair=self.pair or spec.get("pair"),
            context=self.context or spec.get("context"),
        )

    def spec(self, scores: bool) -> dict[str, Any]:
        """What a saved model records of the columns it was trained with."""
        text = list(self.text or ("text",))
        spec: dict[str, Any] = {
            "text": text[0] if len(text) == 1 else text,
            "label": self.label or "label",
            "template": self.template,
            "label_sep": self.label_sep,
        }
        if scores:
            spec.update(pair=self.pair, context=self.context)
        return spec


def read_rows(
    source: Source,
    columns: Columns,
    *,
    labelled: bool = True,
    labels: LabelSet | None = None,
) -> Dataset:
    """The rows of ``source`` as a Dataset; ``labelled=False`` reads texts only. Standard input
    and folders of text files have one text per row whatever ``columns.text`` says."""
    if isinstance(source, Dataset):
        return source
    if isinstance(source, list):
        return _read_records(source, columns, labelled, labels)
    text: str | list[str] | None = list(columns.text) if columns.text else None
    template = columns.template
    if str(source) == "-" or Path(str(source)).is_dir():
        text, template = None, None
    if text is not None and len(text) == 1:
        text = text[0]
    return load_dataset(
        source,
        text,
        (columns.label or "label") if labelled else None,
        template=template,
        labels=labels,
        label_sep=columns.label_sep,
        strict=columns.strict,
        keep=columns.keep,
        pair=columns.pair,
        context=columns.context,
    )


def notes_on(data: Dataset, source: str, labelled: bool = True) -> list[str]:
    """What reading ``source`` left out or cut, as lines to show the user."""
    notes = []
    if data.skipped:
        why = "with empty text or no label (--strict to fail instead)" if labelled else "empty"
        notes.append(f"skipped {data.skipped:,} row(s) of {source} {why}")
    if data.truncated:
        notes.append(
            f"cut {data.truncated:,} text(s) of {source} to their first {MAX_TEXT_CHARS:,} "
            "characters"
        )
    return notes


def _read_records(
    records: list[dict[str, Any]], columns: Columns, labelled: bool, labels: LabelSet | None
) -> Dataset:
    import pandas as pd

    from docsort.data.dataset import from_frame

    if not records or not all(isinstance(r, dict) for r in records):
        raise DocsortError("records: give a non-empty list of objects, one per document")
    text = list(columns.text or ("text",))
    return from_frame(
        pd.DataFrame.from_records(records),
        text=text[0] if len(text) == 1 else text,
        label=(columns.label or "label") if labelled else None,
        template=columns.template,
        labels=labels,
        label_sep=columns.label_sep,
        strict=columns.strict,
        name="records",
        keep=columns.keep,
        pair=columns.pair,
        context=columns.context,
    )


def read_labels(labels: str | Path | LabelSet | None) -> LabelSet | None:
    """A labels file (YAML) read, or a LabelSet as given."""
    if labels is None or isinstance(labels, LabelSet):
        return labels
    return load_labels_file(labels)


def prediction_rows(
    model: Model,
    proba: np.ndarray,
    top_k: int | None = None,
    at_least_one: bool = False,
    stages: Sequence[str] | None = None,
) -> list[dict]:
    """One JSON-ready row per document: label(s), confidence and the probability of each label.

    ``top_k`` keeps the k most probable labels (multi-label: at most k are chosen);
    ``at_least_one`` gives a multi-label row that met no threshold its most probable label;
    ``stages`` (a cascade's) adds which stage answered."""
    names = model.labels_.names
    decisions = model.decide(proba)
    if model.labels_.multi_label:
        decisions = limit_decisions(proba, decisions, top_k, at_least_one)
    rows = []
    for i, p in enumerate(proba):
        order = np.argsort(-p)[: top_k or len(names)]
        probabilities = {names[j]: round(float(p[j]), 6) for j in order}
        if model.labels_.multi_label:
            chosen = [names[j] for j in np.flatnonzero(decisions[i])]
            confidence = float(min((p[names.index(n)] for n in chosen), default=1 - p.max()))
            row: dict[str, Any] = {"labels": chosen, "confidence": round(confidence, 6)}
        else:
            row = {"label": names[int(decisions[i])], "confidence": round(float(p.max()), 6)}
        row["probabilities"] = probabilities
        if stages is not None:
            row["stage"] = stages[i]
        rows.append(row)
    return rows


def jsonl_lines(rows: Sequence[dict], extra: dict[str, list] | None = None) -> Iterator[str]:
    """Prediction rows as JSON lines, each led by the ``extra`` input columns (e.g. ids)."""
    for i, row in enumerate(rows):
        carried = {k: _plain(v[i]) for k, v in (extra or {}).items()}
        yield json.dumps({**carried, **row}, ensure_ascii=False) + "\n"


def write_jsonl(
    path: str | Path, rows: Sequence[dict], extra: dict[str, list] | None = None
) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        handle.writelines(jsonl_lines(rows, extra))


def _plain(value: Any) -> Any:
    """numpy scalars (from table columns) as plain JSON values."""
    return value.item() if hasattr(value, "item") else value

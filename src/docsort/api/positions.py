"""Rows read with their position in the input, for commands whose output points back at the
input (``docsort audit``'s suspects, ``docsort suggest``'s rows to label): a reader skips rows
with empty text or no label, so the position of a row in the Dataset is not its position in
the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from docsort.api.rows import Columns, Source
from docsort.data.dataset import Dataset, _template_fields, from_frame
from docsort.data.labels import LabelSet, _preview
from docsort.data.loaders import read_table
from docsort.errors import DocsortError

POSITION = "__docsort_row__"


@dataclass
class Positioned:
    data: Dataset
    positions: np.ndarray  # 0-based row of the input each Dataset row came from
    frame: pd.DataFrame | None  # the input as read (None for a Dataset given in memory)


def read_positioned(
    source: Source, columns: Columns, *, labelled: bool = True, labels: LabelSet | None = None
) -> Positioned:
    """``source`` read as ``read_rows`` reads it, with each row's position in the input."""
    if isinstance(source, Dataset):
        return Positioned(source, np.arange(len(source)), None)
    if isinstance(source, list):
        if not source or not all(isinstance(r, dict) for r in source):
            raise DocsortError("records: give a non-empty list of objects, one per document")
        frame, name = pd.DataFrame.from_records(source), "records"
    else:
        frame, name = read_table(source), str(source)
    text = list(columns.text or ("text",))
    template = columns.template
    if not isinstance(source, list) and (str(source) == "-" or Path(str(source)).is_dir()):
        text, template = ["text"], None
    _check_columns(frame, name, text, template, columns, labelled)
    numbered = frame.assign(**{POSITION: np.arange(len(frame))})
    data = from_frame(
        numbered,
        text=text[0] if len(text) == 1 else text,
        label=(columns.label or "label") if labelled else None,
        template=template,
        labels=labels,
        label_sep=columns.label_sep,
        strict=columns.strict,
        name=name,
        keep=(*columns.keep, POSITION),
    )
    positions = np.asarray(data.extra.pop(POSITION), dtype=np.int64)
    return Positioned(data, positions, frame)


def _check_columns(
    frame: pd.DataFrame,
    name: str,
    text: list[str],
    template: str | None,
    columns: Columns,
    labelled: bool,
) -> None:
    """A missing column named as the reader names it (before the position column is added,
    so the message lists only the input's own columns)."""
    fields = (_template_fields(template) or text) if template is not None else text
    wanted = [*fields, *([columns.label or "label"] if labelled else []), *columns.keep]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DocsortError(
            f"{name}: no column {missing[0]!r}; columns are {_preview(list(frame.columns))}"
        )

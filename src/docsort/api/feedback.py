"""Feedback as training data: the rows of a service's store (``docsort serve --store URL``) that
``docsort train`` can learn from, and ``docsort feedback export`` writing them to a file.

A feedback row becomes a training row when it has
- a **label**: the correction sent (``label``/``labels``, a hard label), or, with no correction
  but a rating of ``CONFIRMED_RATING`` or more, the label the service predicted (confirmed);
- a **text**: the one sent with the feedback, or the prediction's text when the service logged
  it (``--log-text full``); with ``hash`` or ``off`` only the digest or nothing was kept, and
  the row is skipped and counted;
- and, with ``min_rating``, a rating of at least that.

Its ``weight`` is ``rating / 5`` (1.0 unrated). When several rows name one prediction, the
latest wins (a later correction replaces an earlier one). A prediction of a record (several
columns) gives the record's columns back, so the model is retrained on the columns it read.

The store lives in ``docsort.serve.store`` (the serve extra: SQLAlchemy, Alembic), imported
when a store is opened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docsort.errors import DocsortError
from docsort.io import atomic_path

FORMATS = (".csv", ".jsonl")
CONFIRMED_RATING = 4  # a rating this high without a correction confirms the predicted label
MAX_RATING = 5
IDS_SHOWN = 5  # feedback ids listed per skip reason in the summary
TRAILING = ("weight", "prediction_id", "model_version")


@dataclass
class FeedbackExportRequest:
    """Write the training rows of the store at ``store`` (a SQLAlchemy URL) to ``out``."""

    store: str
    out: str | Path
    min_rating: int | None = None


@dataclass
class FeedbackRows:
    """Training rows from feedback, the feedback ids skipped (by reason), and their columns."""

    rows: list[dict[str, Any]]
    skipped: dict[str, list[int]] = field(default_factory=dict)
    multi_label: bool = False
    text_columns: list[str] = field(default_factory=lambda: ["text"])

    @property
    def columns(self) -> list[str]:
        return [*self.text_columns, "label", *TRAILING]

    def skipped_summary(self) -> str:
        if not self.skipped:
            return "skipped none"
        parts = []
        for reason, ids in self.skipped.items():
            shown = ", ".join(str(i) for i in ids[:IDS_SHOWN]) + (", …" if len(ids) > IDS_SHOWN
                                                                  else "")  # fmt: skip
            parts.append(f"{len(ids)} {reason} (feedback {shown})")
        return f"skipped {sum(len(ids) for ids in self.skipped.values())}: " + "; ".join(parts)


@dataclass
class FeedbackExportResult:
    out: Path
    data: FeedbackRows

    def summary(self) -> str:
        """One line: what was written, what was skipped and why, how to train on it."""
        data = self.data
        train = f"docsort train {self.out} --text {','.join(data.text_columns)}"
        return (
            f"wrote {len(data.rows)} rows to {self.out} ({', '.join(data.columns)}); "
            f"{data.skipped_summary()}; train with: {train}"
        )


def check_min_rating(min_rating: int | None) -> None:
    if min_rating is not None and not 1 <= min_rating <= MAX_RATING:
        raise DocsortError(f"--min-rating must be between 1 and {MAX_RATING}, not {min_rating}")


def feedback_rows(store: str, min_rating: int | None = None) -> FeedbackRows:
    """The training rows of the store at ``store`` (which must exist: it is never created)."""
    check_min_rating(min_rating)
    opened = open_store(store)
    try:
        return _training_rows(opened.feedback_rows(), min_rating)
    finally:
        opened.engine.dispose()


def run_feedback_export(request: FeedbackExportRequest) -> FeedbackExportResult:
    """Check the request, read the store, write the rows (CSV or JSONL by ``out``'s suffix) in
    one atomic step; a store without a usable row is an error and writes nothing."""
    out = Path(request.out)
    if out.suffix.lower() not in FORMATS:
        raise DocsortError(
            f"--out {str(out)!r} must end in {' or '.join(FORMATS)} (the format is its suffix)"
        )
    check_min_rating(request.min_rating)
    data = feedback_rows(request.store, request.min_rating)
    if not data.rows:
        if not data.skipped:
            raise DocsortError("the store holds no feedback yet: nothing written")
        raise DocsortError(f"no feedback row can be a training row, {data.skipped_summary()}: "
                           "nothing written")  # fmt: skip
    if out.suffix.lower() == ".csv":
        _write_csv(out, data)
    else:
        _write_jsonl(out, data)
    return FeedbackExportResult(out=out, data=data)


def open_store(url: str) -> Any:
    try:
        from docsort.serve.store import Store
    except ImportError as exc:
        raise DocsortError(
            f"reading a store needs the serve extra ({exc.name} is missing): "
            "pip install 'docsort[serve]'"
        ) from None
    return Store(url, create=False)


def _training_rows(feedback: Any, min_rating: int | None) -> FeedbackRows:
    kept: dict[Any, dict[str, Any]] = {}  # by prediction id (or feedback id): the latest wins
    skipped: dict[str, list[int]] = {}
    superseded: list[int] = []
    multi_label = False
    fields: dict[str, None] = {}  # record columns, in the order first seen
    has_text = False
    for f in feedback:
        reason = _unusable(f, min_rating)
        if reason is not None:
            skipped.setdefault(reason, []).append(f["id"])
            continue
        labels = f["labels"] or _predicted(f)
        multi_label |= len(labels) > 1 or f["predicted_labels"] is not None
        row: dict[str, Any] = {}
        if f["text"] is None and f["is_record"]:
            record = json.loads(f["prediction_text"])
            row.update(record)
            fields.update(dict.fromkeys(record))
        else:
            row["text"] = f["text"] if f["text"] is not None else f["prediction_text"]
            has_text = True
        rating = f["rating"]
        row.update(
            label=list(labels),
            weight=1.0 if rating is None else round(rating / MAX_RATING, 3),
            prediction_id=f["prediction_id"],
            model_version=f["model_version"],
            _feedback=f["id"],
        )
        key = f["prediction_id"] or ("feedback", f["id"])
        if key in kept:
            superseded.append(kept[key]["_feedback"])
        kept[key] = row
    if superseded:
        skipped["replaced by later feedback on the same prediction"] = sorted(superseded)
    rows = sorted(kept.values(), key=lambda r: r["_feedback"])  # in the order they were sent
    for row in rows:
        del row["_feedback"]
        if not multi_label:
            row["label"] = row["label"][0]
    text_columns = (["text"] if has_text or not fields else []) + list(fields)
    return FeedbackRows(rows, skipped, multi_label, text_columns)


def _unusable(f: dict[str, Any], min_rating: int | None) -> str | None:
    """Why a feedback row cannot be a training row, or None."""
    rating = f["rating"]
    if min_rating is not None and (rating is None or rating < min_rating):
        return f"unrated or rated below --min-rating {min_rating}"
    if not f["labels"] and not _predicted(f):
        return f"without a label (no correction and no rating of {CONFIRMED_RATING}+)"
    if f["text"] is None and f["prediction_text"] is None:
        mode = "hash" if f["text_hash"] is not None else "off"
        return f"whose text was not stored (--log-text {mode})"
    return None


def _predicted(f: dict[str, Any]) -> list[str]:
    """The predicted label(s), when a high rating without a correction confirms them."""
    if f["labels"] or f["rating"] is None or f["rating"] < CONFIRMED_RATING:
        return []
    if f["predicted_labels"] is not None:
        return list(f["predicted_labels"])
    return [f["predicted_label"]] if f["predicted_label"] is not None else []


def _table(data: FeedbackRows, encode_labels: bool) -> list[dict[str, Any]]:
    columns = data.columns
    table = []
    for row in data.rows:
        values = {c: row.get(c) for c in columns}
        if encode_labels and data.multi_label:  # read back as a list by docsort train
            values["label"] = json.dumps(values["label"], ensure_ascii=False)
        table.append(values)
    return table


def _write_csv(out: Path, data: FeedbackRows) -> None:
    import pandas as pd

    frame = pd.DataFrame(_table(data, encode_labels=True), columns=data.columns)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)


def _write_jsonl(out: Path, data: FeedbackRows) -> None:
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for values in _table(data, encode_labels=False):
            handle.write(json.dumps(values, ensure_ascii=False) + "\n")


__all__ = [
    "CONFIRMED_RATING",
    "FeedbackExportRequest",
    "FeedbackExportResult",
    "FeedbackRows",
    "feedback_rows",
    "run_feedback_export",
]

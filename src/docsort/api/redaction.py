"""Redaction as the requests ask for it: rows in memory with their personal data replaced.

``redact_rows(data, spec)`` returns the same rows with each text (and a pair's second text)
redacted, and the counts per entity type. Training calls it before fitting (``docsort train
--redact``), ingestion in its workers; the spec is checked first (``RedactSpec.check``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from docsort.data.dataset import Dataset
from docsort.errors import DocsortError
from docsort.redact import Redactor, RedactSpec


def redact_spec(
    mode: str | None,
    entities: str | list[str] | tuple[str, ...] | None = None,
    engine: str = "presidio",
    min_score: float | None = None,
) -> RedactSpec | None:
    """The spec the options ``--redact MODE --redact-entities A,B --redact-engine E`` give;
    ``None`` without ``--redact``. Checked here, before any data is read."""
    if mode is None:
        if entities:
            raise DocsortError("--redact-entities needs --redact MODE (replace, mask, hash, drop)")
        return None
    if isinstance(entities, str):
        entities = [e for e in entities.split(",") if e.strip()]
    spec = RedactSpec(mode=mode, entities=tuple(entities) if entities else None, engine=engine)
    if min_score is not None:
        spec = replace(spec, min_score=min_score)
    return spec.check()


def redact_rows(data: Dataset, spec: RedactSpec) -> tuple[Dataset, Counter]:
    """``data`` with its texts redacted (pairs: both texts), and what was found, by type."""
    redactor = Redactor(spec)
    texts, counts = redactor.redact_all(data.texts)
    changes: dict[str, Any] = {"texts": texts}
    if data.text_pair is not None:
        pairs, more = redactor.redact_all(data.text_pair)
        changes["text_pair"] = pairs
        counts.update(more)
    return replace(data, **changes), counts


def redact_train_rows(
    train: Dataset, valid: Dataset | None, spec: RedactSpec
) -> tuple[Dataset, Dataset | None, Counter]:
    """The training (and validation) rows redacted, and what was found in both."""
    train, counts = redact_rows(train, spec)
    if valid is not None:
        valid, more = redact_rows(valid, spec)
        counts.update(more)
    return train, valid, counts


def loaded_redactor(spec: RedactSpec) -> Redactor:
    """A redactor with its engines loaded now (a missing NLP model fails here, at start)."""
    return Redactor(spec).load()


def redaction_record(spec: RedactSpec) -> dict[str, Any]:
    """What a model trained on redacted rows records in its input spec (never the key)."""
    checked = spec.check()
    return {
        "mode": checked.mode,
        "engine": checked.engine,
        "entities": list(checked.entities or ()),
        "min_score": checked.min_score,
    }


def trained_redaction(model: Any) -> RedactSpec | None:
    """The redaction a model's training rows went through (``docsort train --redact``), to be
    applied to what it reads later; ``None`` when they were not redacted."""
    record = (getattr(model, "input_spec_", None) or {}).get("redact")
    if not record:
        return None
    spec = RedactSpec(
        mode=record.get("mode", "replace"),
        entities=tuple(record.get("entities") or ()) or None,
        engine=record.get("engine", "presidio"),
        min_score=record.get("min_score", RedactSpec.min_score),
    )
    try:
        return spec.check()
    except DocsortError as exc:
        raise DocsortError(
            f"this model was trained on redacted texts ({spec.mode}), so its input is redacted "
            f"the same way: {exc}"
        ) from None


def redact_like_training(model: Any, data: Dataset) -> tuple[Dataset, list[str]]:
    """``data`` redacted as the model's training rows were (nothing when they were not), and a
    note saying what was found."""
    spec = trained_redaction(model)
    if spec is None:
        return data, []
    data, counts = redact_rows(data, spec)
    return data, [f"{counts_line(counts)} in the input, as the model's training rows were"]


def counts_line(counts: Counter) -> str:
    """``redacted EMAIL_ADDRESS 12, PERSON 3`` (or ``redacted nothing``)."""
    if not counts:
        return "redacted nothing"
    return "redacted " + ", ".join(f"{k} {v:,}" for k, v in counts.most_common())

"""``docsort.api.redaction``: the options checked before any row is read, rows in memory
redacted (pairs: both texts), the counts line the commands print."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from docsort.api.redaction import counts_line, redact_rows, redact_spec
from docsort.data.dataset import Dataset
from docsort.errors import DocsortError


def test_the_options_become_a_checked_spec() -> None:
    assert redact_spec(None) is None
    spec = redact_spec("mask", "email_address, phone_number", engine="patterns")
    assert spec is not None and spec.entities == ("EMAIL_ADDRESS", "PHONE_NUMBER")
    with pytest.raises(DocsortError, match="--redact-entities needs --redact MODE"):
        redact_spec(None, "EMAIL_ADDRESS")
    with pytest.raises(DocsortError, match="--redact-engine must be one of presidio, patterns"):
        redact_spec("replace", engine="regex")


def test_rows_are_redacted_with_their_labels_kept() -> None:
    data = Dataset(
        ["write to ana@example.com", "no personal data here"],
        ["a", "b"],
        text_pair=["call +44 20 7946 0958", "nothing"],
    )
    spec = redact_spec("replace", engine="patterns")
    assert spec is not None
    redacted, counts = redact_rows(data, spec)
    assert redacted.texts == ["write to <EMAIL_ADDRESS>", "no personal data here"]
    assert redacted.text_pair == ["call <PHONE_NUMBER>", "nothing"]
    assert redacted.labels == ["a", "b"] and data.texts[0] == "write to ana@example.com"
    assert counts == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}
    assert counts_line(counts) == "redacted EMAIL_ADDRESS 1, PHONE_NUMBER 1"
    assert counts_line(Counter()) == "redacted nothing"


def test_training_on_redacted_rows(tmp_path: Path) -> None:
    from docsort.api import TrainRequest, fit, prepare_train

    texts = [f"pump valve seal report {i}, from ana{i}@example.com" for i in range(6)]
    texts += [f"invoice ledger audit note {i}, call +44 20 7946 09{i:02d}" for i in range(6)]
    rows = Dataset(texts, ["hydraulics"] * 6 + ["finance"] * 6)
    spec = redact_spec("replace", engine="patterns")
    plan = prepare_train(TrainRequest(data=rows, redact=spec, out=tmp_path / "m"))
    assert not any("@example.com" in t or "7946" in t for t in plan.train.texts)
    assert plan.notes[-1] == (
        "redacted EMAIL_ADDRESS 6, PHONE_NUMBER 6 in the training and validation rows"
    )
    model = fit(plan)
    assert model.predict(["a seal for the pump"])[0] == "hydraulics"

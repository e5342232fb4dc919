"""``docsort.api.redaction``: the options checked before any row is read, rows in memory
redacted (pairs: both texts), the counts line the commands print."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import docsort
from docsort.api import EvalRequest, PredictRequest, run_evaluate, run_predict
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
    # the saved model records the redaction (never a key); predict and eval redact the same way
    saved = docsort.load(tmp_path / "m")
    assert saved.input_spec_["redact"]["mode"] == "replace"
    predicted = run_predict(PredictRequest(tmp_path / "m", ["a seal for the pump, bo@example.com"]))
    assert predicted.notes == [
        "redacted EMAIL_ADDRESS 1 in the input, as the model's training rows were"
    ]
    evaluated = run_evaluate(EvalRequest(tmp_path / "m", rows))
    assert evaluated.notes[-1].startswith("redacted EMAIL_ADDRESS 6, PHONE_NUMBER 6 in the input")


def test_a_model_trained_on_pseudonyms_needs_the_key_to_predict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from docsort.api import TrainRequest, fit, prepare_train

    monkeypatch.setenv("DOCSORT_REDACT_KEY", "the-training-key-0123456789")
    texts = [f"pump {i} ana@example.com" for i in range(4)] + [f"ledger {i}" for i in range(4)]
    rows = Dataset(texts, ["a"] * 4 + ["b"] * 4)
    spec = redact_spec("hash", engine="patterns")
    fit(prepare_train(TrainRequest(data=rows, redact=spec, out=tmp_path / "m")))
    assert "key" not in docsort.load(tmp_path / "m").input_spec_["redact"]
    monkeypatch.delenv("DOCSORT_REDACT_KEY")
    with pytest.raises(DocsortError, match="trained on redacted texts \\(hash\\), so its input"):
        run_predict(PredictRequest(tmp_path / "m", ["pump"]))

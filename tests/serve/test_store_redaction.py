"""docsort serve --redact: personal data never reaches the store (logged request texts, their
hashes, feedback texts and comments), the model still answers on the text as sent, and the
count per type is in /metrics; a model trained on redacted rows makes the store redact by
default, and --redact none turns it off."""

from __future__ import annotations

import hashlib
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from docsort import api
from docsort.redact import RedactSpec
from docsort.serve import create_app
from docsort.serve.store import Store, feedback, predictions
from tests.conftest import run_cli

PATTERNS = RedactSpec(mode="replace", engine="patterns")
TEXT = "Write to ada.lovelace@example.org or call +44 20 7946 0958 about the galaxy survey."


def stored(url: str) -> tuple[list, list]:
    with Store(url).engine.connect() as connection:
        logged = connection.execute(sa.select(predictions)).all()
        given = connection.execute(sa.select(feedback)).all()
    return logged, given


def test_texts_are_redacted_before_they_are_stored(trained_model_dir: Path, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    plain = api.run_predict(api.PredictRequest(trained_model_dir, [TEXT])).rows[0]
    app = create_app(trained_model_dir, url, log_text="full", redact=PATTERNS)
    with TestClient(app) as client:
        answer = client.post("/v1/classify", json={"text": TEXT}).json()["predictions"][0]
        assert {k: v for k, v in answer.items() if k != "id"} == plain  # read as sent
        body = {"text": f"Again: {TEXT}", "label": "astro-ph",
                "comment": "ask ada.lovelace@example.org"}  # fmt: skip
        assert client.post("/v1/feedback", json=body).status_code == 201
        metrics = client.get("/metrics").text
    (logged,), (given,) = stored(url)
    for text in (logged.text, given.text, given.comment):
        assert "ada.lovelace@example.org" not in text and "7946" not in text
    assert "<EMAIL_ADDRESS>" in logged.text and "<PHONE_NUMBER>" in logged.text
    assert given.comment == "ask <EMAIL_ADDRESS>"
    assert logged.text_hash == hashlib.sha256(logged.text.encode()).hexdigest()  # of the redacted
    assert 'docsort_redacted{entity="EMAIL_ADDRESS"} 3.0' in metrics


def test_a_model_trained_redacted_redacts_its_store(arxiv_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "redacted"
    columns = api.Columns.parse("title,abstract", label="category")
    request = api.TrainRequest(data=arxiv_csv, out=out, redact=PATTERNS, columns=columns)
    api.fit(api.prepare_train(request))
    for redact, kept in ((None, False), (False, True)):
        url = f"sqlite:///{tmp_path / f'{kept}.sqlite'}"
        with TestClient(create_app(out, url, log_text="full", redact=redact)) as client:
            assert client.post("/v1/classify", json={"text": TEXT}).status_code == 200
        (logged,), _ = stored(url)
        assert ("ada.lovelace@example.org" in logged.text) is kept


def test_the_command_line_checks_its_redaction_options(trained_model_dir: Path) -> None:
    result = run_cli("serve", str(trained_model_dir), "--redact", "scramble")
    assert result.returncode == 2
    assert "--redact must be one of replace, mask, hash, drop" in result.stderr

"""The store: migrated on open, durable SQLite settings, text logged as asked, one row per
idempotency key even when requests race."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from docsort.errors import DocsortError
from docsort.serve.store import KeyReused, Store, UnknownPrediction

ROW = {"label": "astro-ph", "confidence": 0.9, "probabilities": {"astro-ph": 0.9, "q-bio": 0.1}}
MODEL = ("tfidf", "1cb4741f8d2e")


def test_opening_migrates_and_reopening_keeps_the_rows(store_url: str) -> None:
    store = Store(store_url)
    (pid,) = store.add_predictions(["a text"], [ROW], MODEL, 1.5)
    assert store.add_feedback(None, prediction_id=pid, labels=["q-bio"]).id == 1
    store.engine.dispose()
    again = Store(store_url)
    assert (again.count("predictions"), again.count("feedback")) == (1, 1)
    with again.engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0001"


def test_sqlite_is_set_up_for_durable_concurrent_writes(store_url: str) -> None:
    store = Store(store_url)
    with store.engine.connect() as connection:
        names = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        pragma = {n: connection.exec_driver_sql(f"PRAGMA {n}").scalar() for n in names}
    assert pragma == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 5000,
                      "foreign_keys": 1}  # fmt: skip


@pytest.mark.parametrize("log_text", ["off", "hash", "full"])
def test_the_text_is_logged_as_asked(store_url: str, log_text: str) -> None:
    store = Store(store_url, log_text=log_text)
    record = {"title": "Dark halos", "abstract": "radio telescope"}
    store.add_predictions(["plain text", record], [ROW, ROW], MODEL, 2.0)
    with store.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT text_hash, text, probabilities FROM predictions"
                                          " ORDER BY text")).all()  # fmt: skip
    canonical = json.dumps(record, sort_keys=True)
    digests = {hashlib.sha256(t.encode()).hexdigest() for t in ("plain text", canonical)}
    assert {r.text_hash for r in rows} == (digests if log_text != "off" else {None})
    texts = {r.text for r in rows}
    assert texts == ({"plain text", canonical} if log_text == "full" else {None})
    assert json.loads(rows[0].probabilities) == ROW["probabilities"]


def test_racing_requests_with_one_key_store_one_row(store_url: str) -> None:
    store = Store(store_url)

    def send(_: int):
        return store.add_feedback("same", text="a text", labels=["q-bio"], rating=2)

    with ThreadPoolExecutor(8) as pool:
        stored = list(pool.map(send, range(16)))
    assert {s.id for s in stored} == {1}
    assert sum(not s.replayed for s in stored) == 1
    assert store.count("feedback") == 1
    with pytest.raises(KeyReused, match="'same' was used for other feedback"):
        store.add_feedback("same", text="a text", labels=["cs.CL"], rating=2)


def test_feedback_on_an_unknown_prediction_is_refused(store_url: str) -> None:
    store = Store(store_url)
    with pytest.raises(UnknownPrediction, match="'f00' is not in the store"):
        store.add_feedback(None, prediction_id="f00", rating=3)
    # the foreign key holds too, for rows written around the store
    with store.engine.connect() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(
            sa.text("INSERT INTO feedback (created, prediction_id) VALUES ('2026-01-01', 'f00')")
        )


def test_a_wrong_url_or_option_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DocsortError, match="is not a database URL"):
        Store("not a url")
    with pytest.raises(DocsortError, match="cannot be opened"):
        Store(f"sqlite:///{tmp_path}/missing/dir/store.sqlite")
    with pytest.raises(DocsortError, match="--log-text must be one of off, hash, full"):
        Store(f"sqlite:///{tmp_path}/s.sqlite", log_text="all")

"""The store, on SQLite and on a real PostgreSQL server (``each_store``): migrated on open, an
older schema upgraded, durable commit settings, text logged as asked, one row per idempotency
key even when requests race, unknown predictions refused, wrong URLs in one line."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from docsort.errors import DocsortError
from docsort.serve.store import KeyReused, Store, UnknownPrediction, head_revision, predictions

ROW = {"label": "astro-ph", "confidence": 0.9, "probabilities": {"astro-ph": 0.9, "q-bio": 0.1}}
MODEL = ("tfidf", "1cb4741f8d2e")


def test_opening_migrates_and_reopening_keeps_the_rows(each_store: str) -> None:
    store = Store(each_store)
    (pid,) = store.add_predictions(["a text"], [ROW], MODEL, 1.5)
    assert store.add_feedback(None, prediction_id=pid, labels=["q-bio"]).id == 1
    store.engine.dispose()
    again = Store(each_store)
    assert (again.count("predictions"), again.count("feedback")) == (1, 1)
    assert again.revision() == head_revision() == "0002"


def test_a_store_of_the_first_schema_is_upgraded_with_its_rows(each_store: str) -> None:
    from alembic import command

    from docsort.serve.store import _alembic_config, _engine

    engine = _engine(sa.make_url(each_store))
    with engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(sa.text(
            "INSERT INTO predictions (id, created, model_name, model_version, text, latency_ms)"
            " VALUES ('p1', '2026-01-01 00:00:00', 'tfidf', 'v1', 'old text', 3.0)"
        ))  # fmt: skip
    engine.dispose()
    store = Store(each_store)
    assert store.revision() == "0002"
    with store.engine.connect() as connection:
        old = connection.execute(sa.select(predictions)).one()
    assert (old.id, old.text, old.is_record) == ("p1", "old text", False)


def test_commits_are_durable(each_store: str, request: pytest.FixtureRequest) -> None:
    store = Store(each_store)
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as connection:
            names = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            pragma = {n: connection.exec_driver_sql(f"PRAGMA {n}").scalar() for n in names}
        assert pragma == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 5000,
                          "foreign_keys": 1}  # fmt: skip
        return
    # a session of the store waits for the WAL flush even where the server says otherwise
    admin = request.getfixturevalue("postgres").admin
    with admin.connect() as connection:
        connection.exec_driver_sql("ALTER DATABASE postgres SET synchronous_commit TO off")
    try:
        store.engine.dispose()
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
            assert connection.exec_driver_sql("SHOW fsync").scalar() == "on"
        with admin.connect() as connection:  # the setting was in force for other sessions
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql("ALTER DATABASE postgres RESET synchronous_commit")


@pytest.mark.parametrize("log_text", ["off", "hash", "full"])
def test_the_text_is_logged_as_asked(each_store: str, log_text: str) -> None:
    store = Store(each_store, log_text=log_text)
    record = {"title": "Dark halos", "abstract": "radio telescope"}
    staged = {**ROW, "stage": "fast"}  # a cascade's row names the stage that answered
    store.add_predictions(["plain text", record], [staged, staged], MODEL, 2.0)
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(predictions).order_by(predictions.c.is_record)).all()
    canonical = json.dumps(record, sort_keys=True)
    digests = [hashlib.sha256(t.encode()).hexdigest() for t in ("plain text", canonical)]
    assert [r.text_hash for r in rows] == (digests if log_text != "off" else [None, None])
    texts = [r.text for r in rows]  # a record kept as sent: its columns in the model's order
    assert texts == (["plain text", json.dumps(record)] if log_text == "full" else [None, None])
    assert [r.is_record for r in rows] == [False, True]
    assert all(r.probabilities == ROW["probabilities"] for r in rows)
    assert {(r.model_name, r.model_version, r.label, r.stage, r.latency_ms) for r in rows} == {
        (*MODEL, "astro-ph", "fast", 2.0)
    }


def test_racing_requests_with_one_key_store_one_row(each_store: str) -> None:
    store = Store(each_store)

    def send(_: int):
        return store.add_feedback("same", text="a text", labels=["q-bio"], rating=2)

    with ThreadPoolExecutor(8) as pool:
        stored = list(pool.map(send, range(16)))
    # PostgreSQL spends a serial number on each insert that lost the race: ids need not be 1
    assert len({s.id for s in stored}) == 1
    assert sum(not s.replayed for s in stored) == 1
    assert store.count("feedback") == 1
    with pytest.raises(KeyReused, match="'same' was used for other feedback"):
        store.add_feedback("same", text="a text", labels=["cs.CL"], rating=2)


def test_feedback_on_an_unknown_prediction_is_refused(each_store: str) -> None:
    store = Store(each_store)
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
    with pytest.raises(DocsortError, match=r"needs the database driver psycopg2.*\[postgres\]"):
        Store("postgresql+psycopg2://u:secret@127.0.0.1/x")  # psycopg 3 is the one shipped
    with pytest.raises(DocsortError, match="^no store at .*gone.sqlite'"):
        Store(f"sqlite:///{tmp_path}/gone.sqlite", create=False)
    assert not (tmp_path / "gone.sqlite").exists()


def test_a_postgres_url_without_the_database_or_the_tables_is_one_line(postgres) -> None:
    missing = postgres.uri.replace("/postgres?", "/nowhere?")
    with pytest.raises(DocsortError, match='cannot be opened: .*database "nowhere" does not'):
        Store(missing)
    with pytest.raises(DocsortError, match="is not a docsort store"):
        Store(postgres.new_store_url(), create=False)
    with pytest.raises(DocsortError) as error:
        Store("postgresql://docsort:secret@127.0.0.1:1/x")  # nothing listens on port 1
    assert "secret" not in str(error.value) and "\n" not in str(error.value)

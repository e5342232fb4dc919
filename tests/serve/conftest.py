"""The service over the shared tfidf model, with a SQLite store in a temp folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from docsort.serve import create_app  # noqa: E402


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


@pytest.fixture
def client(trained_model_dir: Path, store_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(trained_model_dir, store_url)) as test_client:
        yield test_client


@pytest.fixture
def storeless(trained_model_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(trained_model_dir)) as test_client:
        yield test_client

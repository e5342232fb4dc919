"""A real MLflow registry on SQLite in a temp folder, opened once per session (importing
MLflow's SQL store takes seconds), and a small tfidf model (word n-grams only: it trains,
loads and predicts in a fraction of a second) registered in it once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("mlflow", reason="the registry extra is not installed")

from docsort import api  # noqa: E402
from docsort.api.registry import RegisterRequest, run_register  # noqa: E402
from tests.conftest import ARXIV_8CAT  # noqa: E402

NAME = "arxiv"  # the shared model's registered name


@pytest.fixture(scope="session")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="session")
def registry_uri(registry_home: Path) -> str:
    from docsort.tracking.client import session

    uri = f"sqlite:///{registry_home / 'mlflow.db'}"
    with session(uri) as registry:  # creates and migrates the database
        registry.experiment_id()
    return uri


@pytest.fixture
def registry(registry_uri: str, registry_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's registry as the default one (``$MLFLOW_TRACKING_URI``), versions
    downloaded into a cache folder of its own."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("DOCSORT_CACHE", str(registry_home / "cache"))
    return registry_uri


@pytest.fixture
def unique_name() -> str:
    return f"m-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def holdout_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """160 real arXiv rows the shared model was not trained on (rows 30-49 of each category)."""
    frame = pd.read_csv(ARXIV_8CAT)
    rows = frame.groupby("category", group_keys=False).nth(slice(30, 50))
    path = tmp_path_factory.mktemp("holdout") / "holdout.csv"
    rows.to_csv(path, index=False)
    return path


def train_words(frame: pd.DataFrame, out: Path) -> Path:
    """tfidf on word n-grams of title and abstract (label: category), saved to ``out``."""
    frame.to_csv(out.with_suffix(".csv"), index=False)
    request = api.TrainRequest(
        data=out.with_suffix(".csv"),
        out=out,
        params={"char_ngrams": None},
        columns=api.Columns.parse("title,abstract", label="category"),
    )
    api.fit(api.prepare_train(request))
    return out


@pytest.fixture(scope="session")
def model_dir(arxiv_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tfidf model (word n-grams) trained on 240 real arXiv rows."""
    return train_words(arxiv_frame, tmp_path_factory.mktemp("models") / "words")


@pytest.fixture(scope="session")
def report_dir(
    model_dir: Path, holdout_csv: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("report") / "report"
    api.run_evaluate(api.EvalRequest(model=model_dir, data=holdout_csv, out=out))
    return out


@pytest.fixture(scope="session")
def champion(model_dir: Path, report_dir: Path, registry_uri: str) -> str:
    """The small model as version 1 of ``arxiv``, its champion, with its report."""
    result = run_register(
        RegisterRequest(
            model_dir, NAME, metrics=report_dir, alias="champion", tracking_uri=registry_uri
        )
    )
    assert result.version == "1"
    return f"models:/{NAME}@champion"

"""A fast tfidf model and real arXiv rows for the batch engines, and what today's
``docsort predict`` says of those rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from docsort import api
from tests.batch.helpers import arxiv_rows


@pytest.fixture(scope="session")
def batch_model(arxiv_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tfidf on word n-grams only (the default adds character n-grams, ~10x slower to
    predict), trained on the 240 real arXiv rows of ``arxiv_csv``."""
    out = tmp_path_factory.mktemp("models") / "tfidf-words"
    request = api.TrainRequest(
        data=arxiv_csv,
        out=out,
        kind="tfidf",
        params={"char_ngrams": None},
        columns=api.Columns.parse("title,abstract", label="category"),
    )
    api.fit(api.prepare_train(request))
    return out


@pytest.fixture(scope="session")
def arxiv_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 rows as a folder of shards in three formats: CSV, JSONL and Parquet."""
    folder = tmp_path_factory.mktemp("inputs") / "shards"
    folder.mkdir()
    frame = arxiv_rows(2000)
    frame.iloc[:800].to_csv(folder / "a.csv", index=False)
    frame.iloc[800:1400].to_json(folder / "b.jsonl", orient="records", lines=True)
    frame.iloc[1400:].to_parquet(folder / "c.parquet", row_group_size=250)
    return folder


@pytest.fixture(scope="session")
def expected_rows(batch_model: Path) -> list[dict]:
    """``docsort predict``'s rows (the JSONL path) for the same 2,000 rows, in order."""
    records = arxiv_rows(2000).to_dict("records")
    return api.run_predict(api.PredictRequest(model=batch_model, data=records)).rows

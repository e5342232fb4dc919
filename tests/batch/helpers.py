"""Real arXiv rows and the comparisons the batch engine tests share."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from docsort import api
from docsort.api.batch import BatchRequest
from tests.conftest import ARXIV_8CAT, SHARED_DATA

ARXIV_MATH = SHARED_DATA / "arxiv" / "arxiv_math_multilabel.csv"


def arxiv_rows(rows: int = 2000) -> pd.DataFrame:
    """``rows`` real abstracts (the 1,600 of arXiv 8 categories, then arXiv math's 3,397) with
    an ``id``, repeated past 4,997 (the 10k-row runs)."""
    columns = ["title", "abstract"]
    frame = pd.concat(
        [pd.read_csv(ARXIV_8CAT)[columns], pd.read_csv(ARXIV_MATH)[columns]], ignore_index=True
    )
    frame = pd.concat([frame] * (rows // len(frame) + 1), ignore_index=True).iloc[:rows]
    frame.insert(0, "id", [f"doc{i}" for i in range(len(frame))])
    return frame


def same_predictions(got: list[dict], expected: list[dict]) -> None:
    """Same rows in order (``row`` 0..n-1, once each), same labels, probabilities within 1e-6."""
    assert [r["row"] for r in got] == list(range(len(expected)))
    for row, want in zip(got, expected, strict=True):
        assert row["error"] is None
        assert row["label"] == want["label"], row["row"]
        assert set(row["probabilities"]) == set(want["probabilities"])
        for name, p in want["probabilities"].items():
            assert abs(row["probabilities"][name] - p) <= 1e-6
        assert abs(row["confidence"] - want["confidence"]) <= 1e-6


def batch_request(model: Path, data: Path, out: Path, **options) -> BatchRequest:
    return BatchRequest(
        model=model, data=data, out=out, columns=api.Columns.parse(keep="id"), **options
    )

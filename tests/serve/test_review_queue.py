"""The review queue: what a cascade sends to its human stage, and predictions less confident
than a bound, wait in GET /v1/review (newest first, with the model's suggestion) until a
correction takes them off; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from docsort import api
from docsort.serve import create_app
from tests.conftest import ARXIV_8CAT


@pytest.fixture(scope="module")
def human_cascade(arxiv_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tfidf, then people for what it is unsure of (about half the documents at most)."""
    out = tmp_path_factory.mktemp("human") / "cascade"
    stages = [{"kind": "tfidf", "char_ngrams": None}, {"human": True, "name": "review"}]
    request = api.TrainRequest(
        data=api.read_rows(
            arxiv_frame.to_dict("records"), api.Columns.parse("title,abstract", label="category")
        ),  # fmt: skip
        out=out,
        kind="cascade",
        params={"stages": stages, "select": {"max_escalation_rate": 0.5}},
        input_spec={"text": ["title", "abstract"], "label": "category"},
    )
    api.fit(api.prepare_train(request))
    return out


def new_records(n: int) -> list[dict[str, str]]:
    frame = pd.read_csv(ARXIV_8CAT).groupby("category", group_keys=False).nth(slice(30, 30 + n))
    return frame[["title", "abstract"]].to_dict("records")


def test_the_human_stage_queues_until_corrected(human_cascade: Path, each_store: str) -> None:
    with TestClient(create_app(human_cascade, each_store, log_text="full")) as client:
        answer = client.post("/v1/classify", json={"records": new_records(4)})
        predictions = answer.json()["predictions"]
        to_people = [p for p in predictions if p["stage"] == "review"]
        assert to_people, "the cascade sent nothing to people"
        queue = client.get("/v1/review", params={"max_confidence": 0}).json()
        assert queue["stages"] == ["review"] and queue["max_confidence"] is None
        assert {i["prediction_id"] for i in queue["items"]} == {p["id"] for p in to_people}
        first = next(i for i in queue["items"] if i["prediction_id"] == to_people[0]["id"])
        assert first["label"] == to_people[0]["label"]  # the suggestion
        assert set(first["record"]) == {"title", "abstract"}
        assert first["text"].startswith(first["record"]["title"])

        body = {"prediction_id": to_people[0]["id"], "label": "cs.CL"}
        assert client.post("/v1/feedback", json=body).status_code == 201
        after = client.get("/v1/review", params={"max_confidence": 0}).json()["items"]
        assert to_people[0]["id"] not in {i["prediction_id"] for i in after}
        assert len(after) == len(to_people) - 1


def test_low_confidence_predictions_queue_too(trained_model_dir: Path, store_url: str) -> None:
    with TestClient(create_app(trained_model_dir, store_url, log_text="hash")) as client:
        texts = [" ".join(r.values()) for r in new_records(3)] + ["a note", "lunch at noon"]
        predictions = client.post("/v1/classify", json={"texts": texts}).json()["predictions"]
        unsure = {p["id"] for p in predictions if p["confidence"] < 0.5}
        assert unsure and len(unsure) < len(predictions)
        queue = client.get("/v1/review").json()
        assert queue["stages"] == [] and queue["max_confidence"] == 0.5
        items = queue["items"]
        assert {i["prediction_id"] for i in items} == unsure
        assert all(i["text"] is None for i in items)  # --log-text hash keeps no text
        created = [i["created"] for i in items]
        assert created == sorted(created, reverse=True)
        assert client.get("/v1/review", params={"limit": 1}).json()["items"][0] == items[0]
        assert client.get("/v1/review", params={"limit": 0}).status_code == 422


def test_the_queue_needs_a_store(trained_model_dir: Path) -> None:
    with TestClient(create_app(trained_model_dir)) as client:
        answer = client.get("/v1/review")
        assert answer.status_code == 503 and "--store" in answer.json()["detail"]

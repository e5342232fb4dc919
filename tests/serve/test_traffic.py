"""Recent traffic for the web page: ``Store.traffic`` on SQLite and PostgreSQL (predictions by
stage per hour, feedback, ratings, accuracy on corrected rows, the window), and
``GET /v1/traffic`` over a real model and store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from fastapi.testclient import TestClient

from docsort.serve import create_app
from docsort.serve.store import Store, predictions

MODEL = ("cascade", "1cb4741f8d2e")


def row(label: str, stage: str) -> dict:
    return {"label": label, "confidence": 0.8, "probabilities": {label: 0.8}, "stage": stage}


def test_traffic_counts_stages_feedback_and_accuracy_in_the_window(each_store: str) -> None:
    store = Store(each_store)
    rows = [row("astro-ph", "cheap"), row("q-bio", "cheap"), row("cs.CL", "full")]
    ids = store.add_predictions(["a", "b", "c"], rows, MODEL, 2.0)
    (old,) = store.add_predictions(["d"], [row("q-bio", "full")], MODEL, 2.0)
    ten_days_ago = datetime.now(timezone.utc) - timedelta(days=10)
    with store.engine.begin() as connection:
        connection.execute(predictions.update().where(predictions.c.id == old)
                           .values(created=ten_days_ago))  # fmt: skip
    store.add_feedback(None, prediction_id=ids[0], labels=["astro-ph"])  # right
    store.add_feedback(None, prediction_id=ids[1], labels=["cs.CR"], rating=2)  # wrong
    store.add_feedback(None, prediction_id=ids[2], rating=5)  # a rating only
    store.add_feedback(None, text="a text of its own", labels=["q-bio"])  # no prediction

    seen = store.traffic(datetime.now(timezone.utc) - timedelta(days=7), "hour")
    (bucket,) = seen["series"]  # the ten-day-old prediction is outside the window
    hour = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:00")
    assert bucket == {"start": hour, "predictions": 3, "stages": {"cheap": 2, "full": 1},
                      "feedback": 4, "corrected": 2, "correct": 1}  # fmt: skip
    assert seen["ratings"] == {1: 0, 2: 1, 3: 0, 4: 0, 5: 1}

    by_day = store.traffic(ten_days_ago - timedelta(hours=1), "day")["series"]
    today = datetime.now(timezone.utc).strftime("%Y-%m-%dT00:00")
    assert [b["start"] for b in by_day] == [ten_days_ago.strftime("%Y-%m-%dT00:00"), today]
    assert [b["predictions"] for b in by_day] == [1, 3]


def test_the_traffic_endpoint(trained_model_dir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    with TestClient(create_app(trained_model_dir, url)) as client:
        texts = ["We observe the galaxy cluster with a radio telescope.", "qubits and photons"]
        first, second = client.post("/v1/classify", json={"texts": texts}).json()["predictions"]
        client.post("/v1/feedback", json={"prediction_id": first["id"], "label": first["label"]})
        other = "cs.CL" if second["label"] != "cs.CL" else "cs.CR"
        client.post("/v1/feedback", json={"prediction_id": second["id"], "label": other})
        client.post("/v1/feedback", json={"prediction_id": second["id"], "rating": 1})
        answer = client.get("/v1/traffic", params={"days": 1})
        assert answer.status_code == 200, answer.text
        traffic = answer.json()
        assert traffic["bucket"] == "hour" and len(traffic["series"]) == 1
        assert (traffic["predictions"], traffic["feedback"], traffic["corrected"]) == (2, 3, 2)
        assert traffic["accuracy"] == 0.5 and traffic["series"][0]["accuracy"] == 0.5
        assert traffic["stages"] == {}  # not a cascade
        assert traffic["ratings"]["1"] == 1
        assert traffic["requests"] == {"/v1/classify": 1, "/v1/feedback": 3}
        assert client.get("/v1/traffic").json()["bucket"] == "day"  # 7 days by default
        refused = client.get("/v1/traffic", params={"days": 0})
        assert refused.status_code == 422 and "days" in refused.json()["detail"]
        assert client.get("/v1/traffic", params={"bucket": "week"}).status_code == 422
    with TestClient(create_app(trained_model_dir)) as storeless:
        assert storeless.get("/v1/traffic").status_code == 503

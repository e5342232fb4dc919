"""The endpoints through FastAPI's TestClient: answers, status codes, the OpenAPI schema and
the Prometheus metrics."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

ABSTRACT = "We observe the galaxy cluster with a radio telescope and find dark matter halos."


def test_classify_one_text_several_and_records(client: TestClient) -> None:
    one = client.post("/v1/classify", json={"text": ABSTRACT})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model"]["kind"] == "tfidf" and body["model"]["name"] == "tfidf"
    assert len(body["model"]["version"]) == 12
    (prediction,) = body["predictions"]
    assert prediction["label"] == "astro-ph"
    assert set(prediction) == {"id", "label", "confidence", "probabilities"}
    assert len(prediction["probabilities"]) == 8

    many = client.post("/v1/classify", json={"texts": [ABSTRACT, "qubits"], "top_k": 2})
    rows = many.json()["predictions"]
    assert [len(r["probabilities"]) for r in rows] == [2, 2]
    assert len({r["id"] for r in rows}) == 2

    records = [{"title": "Dark halos", "abstract": ABSTRACT}]
    assert client.post("/v1/classify", json={"records": records}).status_code == 200


def test_predictions_are_logged_with_their_ids(client: TestClient) -> None:
    (prediction,) = client.post("/v1/classify", json={"text": ABSTRACT}).json()["predictions"]
    store = client.app.state.service.store
    assert store.count("predictions") == 1
    answer = client.post("/v1/feedback", json={"prediction_id": prediction["id"], "rating": 5})
    assert answer.status_code == 201


def test_without_a_store_ids_are_fresh_and_feedback_is_503(storeless: TestClient) -> None:
    ids = {storeless.post("/v1/classify", json={"text": ABSTRACT}).json()["predictions"][0]["id"]
           for _ in range(2)}  # fmt: skip
    assert len(ids) == 2
    answer = storeless.post("/v1/feedback", json={"text": ABSTRACT, "label": "astro-ph"})
    assert answer.status_code == 503 and "--store" in answer.json()["detail"]
    assert storeless.get("/readyz").json() == {"status": "ready", "model": True, "store": None}


def test_feedback_is_stored_once_per_idempotency_key(client: TestClient) -> None:
    body = {"text": ABSTRACT, "label": "astro-ph", "rating": 4, "idempotency_key": "k1"}
    first = client.post("/v1/feedback", json=body)
    again = client.post("/v1/feedback", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and again.json()["replayed"] is True
    assert client.app.state.service.store.count("feedback") == 1
    other = client.post("/v1/feedback", json={**body, "label": "quant-ph"})
    assert other.status_code == 409 and "k1" in other.json()["detail"]


def test_feedback_refusals_say_why_in_one_line(client: TestClient) -> None:
    cases = [
        ({"prediction_id": "nope", "label": "astro-ph"}, 404, "not in the store"),
        ({"text": "x", "label": "biology"}, 422, "'biology' is unknown to this model"),
        ({"text": "x", "label": "b" * 200}, 422, "…' is unknown to this model"),  # not cut off
        ({"text": "x", "labels": ["astro-ph", "cs.CL"]}, 422, "one label per text"),
        ({"text": "x", "rating": 6}, 422, "rating: Input should be less than or equal to 5"),
        ({"text": "x"}, 422, "a label, labels or a rating"),
        ({"text": "x", "prediction_id": "a", "rating": 1}, 422, "exactly one of prediction_id"),
    ]
    for body, status, reason in cases:
        answer = client.post("/v1/feedback", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert reason in answer.json()["detail"] and "\n" not in answer.json()["detail"]


def test_models_health_and_readiness(client: TestClient) -> None:
    (model,) = client.get("/v1/models").json()["models"]
    assert model["kind"] == "tfidf" and model["output"] == "labels"
    assert "astro-ph" in model["labels"] and model["input"] == ["title", "abstract"]
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json() == {"status": "ready", "model": True, "store": True}
    client.app.state.service.store.engine.dispose()
    client.app.state.service.store.ping = lambda: False  # an unreachable database
    assert client.get("/readyz").status_code == 503


def test_metrics_count_requests_errors_batches_and_feedback(client: TestClient) -> None:
    client.post("/v1/classify", json={"texts": [ABSTRACT] * 3})
    client.post("/v1/classify", json={"text": ""})
    client.post("/v1/feedback", json={"text": ABSTRACT, "label": "astro-ph"})
    text = client.get("/metrics").text

    def value(pattern: str) -> float:
        match = re.search(re.escape(pattern) + r" ([0-9.e+]+)", text)
        assert match, pattern
        return float(match.group(1))

    assert value('docsort_requests_total{method="POST",route="/v1/classify",status="200"}') == 1
    assert value('docsort_request_errors_total{route="/v1/classify",status="422"}') == 1
    assert value("docsort_batch_size_sum") == 3
    assert value("docsort_feedback_total") == 1
    assert value('docsort_request_seconds_count{route="/v1/classify"}') == 2


def test_the_openapi_schema_documents_every_status(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    statuses = {path: set(ops[next(iter(ops))]["responses"]) for path, ops in paths.items()}
    assert statuses["/v1/classify"] == {"200", "400", "413", "422", "503"}
    assert statuses["/v1/feedback"] == {"200", "201", "400", "404", "409", "413", "422", "503"}
    assert statuses["/readyz"] == {"200", "503"}
    texts = paths["/v1/classify"]["post"]["requestBody"]["content"]["application/json"]
    assert texts["schema"]["$ref"].endswith("ClassifyRequest")

"""The openai backend against a local fault server: timeouts, 5xx, malformed JSON, 4xx,
endpoints without logprobs. (The success path runs against llama.cpp's real server in
test_llm_server.py.)"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd
import pytest

from docsort.data.dataset import Dataset
from docsort.errors import DocsortError
from docsort.models.base import create

LLAMACPP_REFUSAL = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}"
)
Answer = tuple[int, str, float]  # status, body, seconds to wait before answering
Behaviour = Callable[[dict[str, Any], int], Answer]


def chat_answer(content: str = "B", top: dict[str, float] | None = None) -> str:
    """A chat completion in OpenAI's layout, with top log-probabilities when given."""
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "finish_reason": "length",
    }
    if top is not None:
        choice["logprobs"] = {
            "content": [
                {
                    "token": content,
                    "logprob": top.get(content, -9.0),
                    "top_logprobs": [{"token": t, "logprob": v} for t, v in top.items()],
                }
            ]
        }
    usage = {"prompt_tokens": 120, "completion_tokens": 1, "total_tokens": 121}
    return json.dumps({"id": "x", "object": "chat.completion", "choices": [choice], "usage": usage})


GOOD = chat_answer("B", {"B": math.log(0.7), "A": math.log(0.2), "C": math.log(0.05)})


class FaultServer:
    """An http.server on 127.0.0.1 whose answers come from ``behaviour(body, request_number)``."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.bodies.append(body)
                    number = len(server.bodies)
                status, text, wait = server.behaviour(body, number)
                time.sleep(wait)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(text.encode())))
                    self.end_headers()
                    self.wfile.write(text.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def rows(arxiv_frame: pd.DataFrame) -> Dataset:
    """Six real arXiv rows over three labels (labels: A=astro-ph, B=cs.CL, C=cs.CR)."""
    frame = arxiv_frame[arxiv_frame.category.isin(["astro-ph", "cs.CL", "cs.CR"])]
    frame = frame.groupby("category").head(2)
    return Dataset(list(frame.title + ". " + frame.abstract), list(frame.category), name="arxiv")


def model_for(url: str, **params: Any):
    settings = {"timeout": 0.5, "max_retries": 2, "backoff": 0.01, "concurrency": 2,
                "answer": "letter", **params}  # fmt: skip
    return create("llm", {"backend": "openai", "base_url": url, "base": "m", **settings})


def fit(url: str, rows: Dataset, **params: Any):
    return model_for(url, **params).fit(rows)


def test_5xx_answers_are_retried(rows: Dataset) -> None:
    def flaky(body: dict[str, Any], n: int) -> Answer:
        return (503, "busy", 0.0) if n <= 2 else (200, GOOD, 0.0)

    with FaultServer(flaky) as server:
        model = fit(server.url, rows, concurrency=1)
        labels = model.predict(rows.texts)
    assert labels == ["cs.CL"] * len(rows)  # B, with probability 0.7 / (0.7 + 0.2 + 0.05)
    usage = model.last_usage_
    assert usage[0]["attempts"] == 3 and all(u["attempts"] == 1 for u in usage[1:])
    assert all(u["status"] == "scored" for u in usage)
    assert sum(u["prompt_tokens"] for u in usage) == 120 * len(rows)
    assert model.usage_["failed"] == 0 and model.usage_["unparsed_rate"] == 0.0
    body = server.bodies[-1]
    assert body["logprobs"] is True and body["max_tokens"] == 1 and body["temperature"] == 0.0


def test_timeouts_are_retried(rows: Dataset) -> None:
    def slow_first(body: dict[str, Any], n: int) -> Answer:
        return (200, GOOD, 1.5 if n == 1 else 0.0)

    with FaultServer(slow_first) as server:
        proba = fit(server.url, rows, concurrency=1).predict_proba(rows.texts[:2])
    assert proba[:, 1].min() > 0.7  # both rows answered, the first after a timeout
    assert len(server.bodies) == 3


def test_malformed_json_is_retried(rows: Dataset) -> None:
    def garbled_first(body: dict[str, Any], n: int) -> Answer:
        return (200, '{"choices": [', 0.0) if n == 1 else (200, GOOD, 0.0)

    with FaultServer(garbled_first) as server:
        model = fit(server.url, rows, concurrency=1)
        model.predict(rows.texts[:2])
    assert [u["attempts"] for u in model.last_usage_] == [2, 1]


def test_a_failing_row_does_not_lose_the_batch(rows: Dataset) -> None:
    poison = rows.texts[2]

    def poisoned(body: dict[str, Any], n: int) -> Answer:
        if poison[:60] in body["messages"][-1]["content"]:
            return 500, '{"error": "internal"}', 0.0
        return 200, GOOD, 0.0

    with FaultServer(poisoned) as server:
        model = fit(server.url, rows)
        labels = model.predict(rows.texts)
        assert len(labels) == len(rows) and set(labels) <= set(model.labels_.names)
        failed = [i for i, u in enumerate(model.last_usage_) if u["status"] == "failed"]
        assert failed == [2]
        assert "HTTP 500" in model.last_usage_[2]["error"]
        assert model.last_usage_[2]["attempts"] == 3  # 1 + max_retries
        assert model.usage_["failed"] == 1 and model.usage_["failed_rate"] == pytest.approx(1 / 6)
        with pytest.raises(DocsortError, match="1 of 6 rows failed"):
            fit(server.url, rows, on_error="raise").predict(rows.texts)


def test_client_errors_are_not_retried(rows: Dataset) -> None:
    with FaultServer(lambda body, n: (401, '{"error": "bad key"}', 0.0)) as server:
        model = fit(server.url, rows)
        model.predict(rows.texts[:1])
    assert len(server.bodies) == 1
    assert model.last_usage_[0]["status"] == "failed" and "401" in model.last_usage_[0]["error"]


def test_without_logprobs_it_falls_back_to_json_answers(rows: Dataset) -> None:
    """Like llama.cpp's server (0.3.36): ``json_schema`` is refused with HTTP 500 and a
    validation error (not retried: it would never pass), ``json_object`` is accepted."""

    def no_logprobs(body: dict[str, Any], n: int) -> Answer:
        fmt = (body.get("response_format") or {}).get("type")
        if fmt == "json_schema":
            return 500, json.dumps({"error": {"message": LLAMACPP_REFUSAL}}), 0.0
        if fmt == "json_object":
            label = "cs.CR" if "security" in body["messages"][-1]["content"].lower() else "cs.CL"
            return 200, chat_answer(json.dumps({"label": label})), 0.0
        return 200, chat_answer("B"), 0.0  # logprobs asked for, none given

    with FaultServer(no_logprobs) as server:
        model = fit(server.url, rows)
        labels = model.predict(rows.texts)
        backend = model.backend_
    assert backend.logprobs_ok is False and backend.json_format == "json_object"
    assert all(u["status"] == "parsed" for u in model.last_usage_)
    assert set(labels) <= {"cs.CL", "cs.CR"} and model.usage_["unparsed"] == 0
    refused = [
        b for b in server.bodies if b.get("response_format", {}).get("type") == "json_schema"
    ]
    assert 1 <= len(refused) <= 2  # at most one per worker before it learns, never retried
    schema = server.bodies[-1]["response_format"]["schema"]
    assert schema["properties"]["label"]["enum"] == list(model.labels_.names)


def test_unreadable_replies_get_the_fallback_label_and_are_counted(rows: Dataset) -> None:
    def chatty(body: dict[str, Any], n: int) -> Answer:
        if body.get("response_format"):
            return 400, '{"error": "response_format not supported"}', 0.0
        return 200, chat_answer("Hmm, hard to say."), 0.0

    with FaultServer(chatty) as server:
        model = fit(server.url, rows, scoring="generate")
        labels = model.predict(rows.texts)
    assert model.usage_["unparsed_rate"] == 1.0
    # the fallback is the most frequent training label (all tie here: the first)
    assert labels == [model.labels_.names[0]] * len(rows)
    with pytest.raises(DocsortError, match="returns no logprobs"), FaultServer(chatty) as server:
        fit(server.url, rows, scoring="logprobs").predict(rows.texts[:2])


def test_retry_after_is_honoured() -> None:
    model = model_for("http://127.0.0.1:9/v1", backoff=0.01)
    backend = model._backend()
    assert backend._delay(1, None) < 0.02
    assert backend._delay(1, 2.0) == 2.0
    assert backend._delay(1, 999.0) == 30.0  # capped

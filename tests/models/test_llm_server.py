"""The openai backend against a real OpenAI-compatible server: llama.cpp's
(``python -m llama_cpp.server``) with ``qwen-0.5b`` on 127.0.0.1, started once for the module."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from docsort.data.dataset import Dataset
from docsort.data.loaders import load_dataset
from docsort.models.base import create
from docsort.models.hub import resolve
from docsort.models.kinds.llm import LLMClassifier

pytest.importorskip("llama_cpp.server.app")  # the llm-server extra (fastapi, uvicorn, ...)
# starting the server loads the model in a second process; a row takes seconds on 1 thread
pytestmark = pytest.mark.slow

DESCRIPTIONS = Path(__file__).resolve().parents[2] / "benchmarks" / "descriptions" / "bbc.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", resolve("qwen-0.5b"),
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
               "--n_threads", "1", "--n_threads_batch", "1", "--verbose", "false"]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start in 180 s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def bbc() -> tuple[Dataset, Dataset]:
    """30 training rows and 5 test rows (one per class) of BBC News."""
    train = load_dataset("builtin:bbc:train", "text", "label")
    test = load_dataset("builtin:bbc:test", "text", "label")
    first = {label: i for i, label in reversed(list(enumerate(test.labels)))}
    return train.subset(range(30)), test.subset(sorted(first.values()))


def remote(url: str, **params: Any) -> LLMClassifier:
    settings = {
        "backend": "openai",
        "base_url": url,
        "base": "qwen-0.5b",
        "descriptions": str(DESCRIPTIONS),
        "max_chars": 600,
        "concurrency": 2,
        "timeout": 120.0,
        **params,
    }
    return create("llm", settings)


def test_logprob_scoring_over_http(server_url: str, bbc: tuple[Dataset, Dataset]) -> None:
    train, test = bbc
    model = remote(server_url).fit(train)
    proba = model.predict_proba(test.texts)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    rows = model.last_usage_
    assert [r["status"] for r in rows] == ["scored"] * len(test)
    assert model.backend_.logprobs_ok is True
    # token accounting comes from the server's usage field
    assert all(r["prompt_tokens"] > 100 and r["completion_tokens"] == 1 for r in rows)
    labels = [model.labels_.names[i] for i in proba.argmax(axis=1)]
    assert set(labels) <= set(train.label_set.names)
    assert model.usage_["unparsed_rate"] == 0.0 and model.usage_["failed"] == 0


def test_json_constrained_answers_over_http(server_url: str, bbc: tuple[Dataset, Dataset]) -> None:
    """llama.cpp's server refuses OpenAI's ``json_schema`` format; the backend learns to send
    ``json_object`` with the schema, which the server enforces with a grammar."""
    train, test = bbc
    model = remote(server_url, scoring="json").fit(train)
    labels = model.predict(test.texts[:2])
    assert set(labels) <= set(train.label_set.names)
    assert [r["status"] for r in model.last_usage_] == ["parsed", "parsed"]
    assert model.backend_.json_format == "json_object"
    assert all(r["completion_tokens"] > 2 for r in model.last_usage_)


def test_a_row_the_server_refuses_fails_alone(
    server_url: str, bbc: tuple[Dataset, Dataset]
) -> None:
    """A document longer than the server's context (n_ctx=2048) is refused with HTTP 400: that
    row is reported failed, the other rows are still scored by logprobs (the failing row comes
    first, where the backend probes whether the server returns logprobs)."""
    train, test = bbc
    model = remote(server_url, max_chars=20_000).fit(train)
    too_long = " ".join(train.texts[:12])  # ~25,000 characters: well over 2,048 tokens
    texts = [too_long, " ".join(test.texts[0].split())[:600], " ".join(test.texts[1].split())[:600]]
    proba = model.predict_proba(texts)
    rows = model.last_usage_
    assert [r["status"] for r in rows] == ["failed", "scored", "scored"], rows[0]
    assert "HTTP 400" in rows[0]["error"] and rows[0]["attempts"] == 1  # a 4xx is not retried
    np.testing.assert_allclose(proba[0], model.prior_)  # the fallback: the training prior
    assert model.usage_["failed"] == 1 and model.usage_["unparsed"] == 0

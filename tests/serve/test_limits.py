"""Bad requests get a 4xx with one short line, fast, and never the input echoed back; without
API keys the server listens on loopback only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from docsort.errors import DocsortError
from docsort.serve.limits import MAX_BATCH, MAX_BODY_BYTES, MAX_TEXT_CHARS, check_host
from tests.conftest import run_cli

TEN_MB = 10 * 1024 * 1024


def refusal(answer, status: int) -> str:
    assert answer.status_code == status, answer.text[:300]
    assert len(answer.content) < 400  # one line, not the input
    detail = answer.json()["detail"]
    assert "\n" not in detail
    return detail


def test_a_10_mb_body_is_refused_from_its_length_in_well_under_a_second(
    client: TestClient,
) -> None:
    start = time.perf_counter()
    answer = client.post("/v1/classify", content=b'{"text": "' + b"a" * TEN_MB + b'"}',
                         headers={"content-type": "application/json"})  # fmt: skip
    assert time.perf_counter() - start < 0.5
    assert f"{MAX_BODY_BYTES:,}-byte limit" in refusal(answer, 413)


def test_a_streamed_body_is_refused_once_it_passes_the_limit(client: TestClient) -> None:
    sent = []

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        for _ in range(100):
            sent.append(1)
            yield b"a" * 100_000

    start = time.perf_counter()
    answer = client.post("/v1/classify", content=chunks(),
                         headers={"content-type": "application/json"})  # fmt: skip
    assert time.perf_counter() - start < 0.5
    refusal(answer, 413)
    assert client.app.state.service.store.count("predictions") == 0


def test_malformed_json_is_400(client: TestClient) -> None:
    answer = client.post("/v1/classify", content=b'{"text": "abc',
                         headers={"content-type": "application/json"})  # fmt: skip
    assert refusal(answer, 400) == "the body is not valid JSON"


def test_wrong_types_and_sizes_are_422_without_the_input(client: TestClient) -> None:
    long_text = "word " * (MAX_TEXT_CHARS // 5 + 1)
    cases = [
        ({"text": long_text}, f"text: String should have at most {MAX_TEXT_CHARS} characters"),
        ({"texts": ["a"] * (MAX_BATCH + 1)}, f"texts: List should have at most {MAX_BATCH}"),
        ({"texts": [1, 2]}, "texts.0: Input should be a valid string (and 1 more)"),
        ({"text": ""}, "text: String should have at least 1 character"),
        ({"text": "a", "texts": ["b"]}, "give exactly one of text, texts or records"),
        ({"text": "a", "top_k": 0}, "top_k: Input should be greater than or equal to 1"),
        ({"text": "a", "explian": True}, "explian: Extra inputs are not permitted"),  # a typo
        ({"records": [{"title": "a"}, "b"]}, "records.1: Input should be a valid dictionary"),
        ([1, 2], "Input should be a valid dictionary"),
    ]
    for body, reason in cases:
        detail = refusal(client.post("/v1/classify", json=body), 422)
        assert reason in detail, (body, detail)


def test_records_without_the_trained_columns_are_422(client: TestClient) -> None:
    detail = refusal(client.post("/v1/classify", json={"records": [{"body": "x"}]}), 422)
    assert "title" in detail
    blank = {"title": " ", "abstract": " "}
    only = client.post("/v1/classify", json={"records": [blank]})
    assert "no rows with text" in refusal(only, 422)
    one_of_two = client.post("/v1/classify", json={"records": [{"title": "Qubits"}, blank]})
    assert "every record needs a non-empty text" in refusal(one_of_two, 422)


def test_only_loopback_hosts_are_served_without_keys() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_host(host)
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com"):
        with pytest.raises(DocsortError, match="loopback"):
            check_host(host)


def test_the_cli_refuses_a_public_host_in_one_line(trained_model_dir: Path) -> None:
    result = run_cli("serve", str(trained_model_dir), "--host", "0.0.0.0", "--store", "none")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: --host 0.0.0.0: without API keys")
    assert len(result.stderr.strip().splitlines()) == 1

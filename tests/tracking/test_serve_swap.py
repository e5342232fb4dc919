"""docsort serve models:/NAME@champion follows the alias: promoting another version while a
request loop runs swaps the model with no failed request."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from docsort.api.registry import PromoteRequest, RegisterRequest, run_promote, run_register

pytest.importorskip("fastapi")
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")


def test_an_alias_move_is_served_without_a_failed_request(
    registry: str, model_dir: Path, unique_name: str
) -> None:
    from fastapi.testclient import TestClient

    from docsort.serve import create_app

    name = unique_name
    run_register(RegisterRequest(model_dir, name, alias="champion"))
    run_register(RegisterRequest(model_dir, name, alias="challenger"))
    answers: list[tuple[int, str | None]] = []
    stop = threading.Event()
    with TestClient(create_app(f"models:/{name}@champion", watch_seconds=0.1)) as client:
        assert client.get("/v1/models").json()["models"][0]["version"] == "1"

        def loop() -> None:
            while not stop.is_set() and len(answers) < 2000:
                answer = client.post("/v1/classify", json={"text": "lattice attacks on RSA"})
                version = answer.json()["model"]["version"] if answer.status_code == 200 else None
                answers.append((answer.status_code, version))

        requests = threading.Thread(target=loop)
        requests.start()
        while len(answers) < 5:
            time.sleep(0.01)
        run_promote(PromoteRequest(name, "challenger"))
        deadline = time.monotonic() + 30
        while client.get("/v1/models").json()["models"][0]["version"] != "2":
            assert time.monotonic() < deadline, "the alias move was not picked up"
            time.sleep(0.05)
        seen = len(answers)
        while len(answers) < seen + 5:
            time.sleep(0.01)
        stop.set()
        requests.join()
    assert {status for status, _ in answers} == {200}
    versions = [version for _, version in answers]
    assert versions[0] == "1" and versions[-1] == "2"
    assert versions == sorted(versions)  # once swapped, never back

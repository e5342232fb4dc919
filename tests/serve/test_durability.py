"""An acknowledged write survives ``kill -9``: a real uvicorn server takes feedback from
concurrent clients, is SIGKILLed mid-way, restarts on the same store, and every row that got a
201 is there exactly once; on a SQLite file and on a real PostgreSQL server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from docsort.serve.store import Store

CLIENTS = 4
ROWS_PER_CLIENT = 250  # bounded: at most 1,000 requests
KILL_AFTER = 200  # acknowledged rows before the SIGKILL


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, store: str, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DOCSORT_NO_PROGRESS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "docsort.cli", "serve", str(model), "--port", str(port),
         "--store", store],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise AssertionError(f"server not ready in 60 s: {log.read_text()}")


def body(key: str) -> dict:
    return {"text": f"document {key}", "label": "astro-ph", "rating": 1 + len(key) % 5,
            "idempotency_key": key}  # fmt: skip


def test_every_acknowledged_feedback_row_survives_kill_9(
    trained_model_dir: Path, tmp_path: Path, each_store: str
) -> None:
    store, port, log = each_store, free_port(), tmp_path / "server.log"
    server = start_server(trained_model_dir, store, port, log)
    acknowledged: dict[str, int] = {}
    sent = [0]
    lock = threading.Lock()

    def client(worker: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            for i in range(ROWS_PER_CLIENT):
                key = f"w{worker}-{i}"
                with lock:
                    sent[0] += 1
                try:
                    answer = http.post("/v1/feedback", json=body(key))
                except httpx.TransportError:
                    return  # the server is gone
                if answer.status_code == 201:
                    with lock:
                        acknowledged[key] = answer.json()["id"]

    threads = [threading.Thread(target=client, args=(w,), daemon=True) for w in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        for thread in threads:
            thread.join(timeout=10)
        assert KILL_AFTER <= len(acknowledged) < CLIENTS * ROWS_PER_CLIENT  # killed mid-way

        server = start_server(trained_model_dir, store, port, log)  # same store, migrated again
        engine = Store(store).engine
        with engine.connect() as connection:
            stored = connection.execute(sa.text(
                "SELECT idempotency_key, MIN(id), COUNT(*) FROM feedback GROUP BY idempotency_key"
            )).all()  # fmt: skip
        engine.dispose()
        found = {key: (row_id, n) for key, row_id, n in stored}
        missing = [k for k in acknowledged if k not in found]
        assert missing == []
        assert all(found[k] == (acknowledged[k], 1) for k in acknowledged)
        # a replay after the restart finds the row instead of writing another
        replay = httpx.post(
            f"http://127.0.0.1:{port}/v1/feedback", json=body(next(iter(acknowledged)))
        )
        assert replay.status_code == 200
        once = sum(found.get(k, (0, 0))[1] == 1 for k in acknowledged)
        extra = len(found) - len(acknowledged)  # committed, but the answer died with the server
        print(
            f"\nsent {sent[0]}, acknowledged {len(acknowledged)}, found once {once}, {extra} more"
        )
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)

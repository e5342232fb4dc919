"""An acknowledged write survives ``kill -9``: a real uvicorn server takes feedback from
concurrent clients, is SIGKILLed mid-way, restarts on the same store, and every row that got a
201 is there exactly once; on a SQLite file and on a real PostgreSQL server."""

from __future__ import annotations

import os
import signal
import socket
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


class Forked:
    """``docsort serve ARGS`` in a forked child of this process: the CLI's own ``main`` and a
    real uvicorn server, without the 5-25 s (by load) a fresh interpreter spends on imports.
    A SIGKILL of it is a SIGKILL of the server process."""

    def __init__(self, args: list[str], log: Path) -> None:
        import docsort.cli

        sys.stdout.flush()
        sys.stderr.flush()
        self.pid, self.code = os.fork(), None
        if self.pid:
            return
        code = 1
        try:
            output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(output, 1)
            os.dup2(output, 2)
            sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115  (not pytest's)
            sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
            sys.argv = ["docsort", "serve", *args]
            try:
                docsort.cli.main()
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:  # noqa: BLE001  (printed to the log, which the test shows)
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def poll(self) -> int | None:
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.code

    def send(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)


def start_server(model: Path, store: str, port: int, log: Path) -> Forked:
    server = Forked([str(model), "--port", str(port), "--store", store], log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.send(signal.SIGKILL)
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
        server.send(signal.SIGKILL)
        assert server.wait(timeout=10) == -signal.SIGKILL
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
        server.send(signal.SIGTERM)
        if server.wait(timeout=30) is None:
            server.send(signal.SIGKILL)
            server.wait(timeout=10)

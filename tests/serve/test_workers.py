"""``docsort serve --workers N``: several processes behind one port share the store and add
up their metrics; SIGTERM stops them all; a wrong count is one line."""

from __future__ import annotations

import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa
from typer.testing import CliRunner

from docsort.cli import app
from docsort.errors import DocsortError
from docsort.serve.store import Store, predictions
from tests.serve.test_durability import Forked, free_port

REQUESTS = 40


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (uvicorn's workers are spawned interpreters)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and "spawn" in (stat.parent / "cmdline").read_text():
            found.append(int(stat.parent.name))
    return found


def test_two_workers_share_the_port_the_store_and_the_metrics(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "server.log"
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    server = Forked([str(trained_model_dir), "--port", str(port), "--store", store,
                     "--workers", "2"], log)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while len(children(server.pid)) < 2 or not _ready(base):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert len(children(server.pid)) == 2

        def classify(i: int) -> httpx.Response:
            return httpx.post(base + "/v1/classify", json={"text": f"radio galaxy survey {i}"},
                              timeout=30)  # fmt: skip

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(classify, range(REQUESTS)))
        assert [a.status_code for a in answers] == [200] * REQUESTS
        ids = {a.json()["predictions"][0]["id"] for a in answers}
        with Store(store).engine.connect() as connection:
            stored = set(connection.execute(sa.select(predictions.c.id)).scalars())
        assert len(ids) == REQUESTS and stored == ids  # both workers wrote to the one store
        # whichever worker answers the scrape, it counts every worker's requests
        pattern = r'docsort_requests_total\{method="POST",route="/v1/classify",status="200"\} (\S+)'
        for _ in range(6):
            scraped = httpx.get(base + "/metrics", timeout=10).text
            assert float(re.search(pattern, scraped).group(1)) == REQUESTS
        assert "2 workers" in log.read_text()
    finally:
        workers = children(server.pid)
        server.send(signal.SIGTERM)
        code = server.wait(timeout=60)
    assert code == 0, log.read_text()
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def _ready(base: str) -> bool:
    try:
        return httpx.get(base + "/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_a_wrong_worker_count_is_refused_before_the_model_loads(trained_model_dir: Path) -> None:
    result = CliRunner().invoke(app, ["serve", str(trained_model_dir), "--workers", "0"])
    assert isinstance(result.exception, DocsortError)  # main() prints it as one line, exit 2
    assert str(result.exception) == "--workers must be 1 to 64, not 0"

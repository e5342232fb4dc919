"""``--engine ray``: the same rows as the local engine, and a driver killed mid-run (kill -9)
then rerun finishes with every row once. One local Ray per module (start-up is slow)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from docsort.api.batch import read_output
from docsort.batch import run_batch
from tests.batch.helpers import arxiv_rows, batch_request, same_predictions

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
# a local Ray takes 5-35 s to start on this 2-core machine and its actors as long again: over
# the default run's budget (measured in docs/batch.md), so these run with -m slow
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> Iterator[str]:
    """A two-CPU Ray for this module; yields its address for drivers in other processes."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=128 * 1024 * 1024,
        log_to_driver=False,
        logging_level="ERROR",
        _node_ip_address="127.0.0.1",
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_ray_gives_the_local_engines_rows(
    local_ray: str,
    batch_model: Path,
    arxiv_shards: Path,
    expected_rows: list[dict],
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    request = batch_request(batch_model, arxiv_shards, out, engine="ray", shard_rows=300)
    result = run_batch(request)
    assert (result.rows, result.failed_rows, result.engine) == (2000, 0, "ray")
    same_predictions(read_output(out), expected_rows)
    # two actors (two CPUs, one each), each opened the model once, in its own process
    records = [json.loads(p.read_text()) for p in out.glob("_shards/*.json")]
    workers = {r["worker"] for r in records}
    assert 1 <= len(workers) <= 2 and f"{socket.gethostname()}:{os.getpid()}" not in workers
    assert {r["model_loads"] for r in records} == {1}


def test_a_killed_ray_driver_reruns_to_every_row_once(
    local_ray: str, batch_model: Path, tmp_path: Path
) -> None:
    data = tmp_path / "rows.csv"
    arxiv_rows(2000).to_csv(data, index=False)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "docsort.cli", "predict", str(batch_model), str(data),
               "--engine", "ray", "--address", local_ray, "--concurrency", "1",
               "--shard-rows", "50", "--keep", "id", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "DOCSORT_NO_PROGRESS": "1"}
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(out.glob("_shards/*.json"))) < 5 and time.monotonic() < deadline:
        assert driver.poll() is None, driver.stderr.read().decode()
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    finished_before = len(list(out.glob("_shards/*.json")))
    assert 5 <= finished_before < 40, "the driver was to be killed mid-run"

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "already done, skipped" in rerun.stderr
    rows = read_output(out)
    assert [r["row"] for r in rows] == list(range(2000))  # no row missing, none twice
    assert sum(pq.read_metadata(p).num_rows for p in out.glob("part-*.parquet")) == 2000
    assert [r["id"] for r in rows] == [f"doc{i}" for i in range(2000)]
    assert all(r["error"] is None and r["label"] for r in rows)


def test_ray_gives_the_local_engines_rows_on_10k_rows(
    local_ray: str, batch_model: Path, tmp_path: Path
) -> None:
    from docsort import api

    data = tmp_path / "rows.parquet"
    frame = arxiv_rows(10_000)
    frame.to_parquet(data, row_group_size=1000)
    expected = api.run_predict(
        api.PredictRequest(model=batch_model, data=frame.to_dict("records"))
    ).rows
    out = tmp_path / "out"
    run_batch(batch_request(batch_model, data, out, engine="ray", shard_rows=2500))
    same_predictions(read_output(out), expected)

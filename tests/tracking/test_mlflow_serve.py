"""``mlflow models serve`` on a registry reference answers with ``docsort predict``'s numbers
(a real server, started here; slow: MLflow's server takes 10-30 s to start on 2 cores)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from docsort import api

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The ``noload`` loader")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_mlflow_models_serve_gives_docsort_predict_numbers(
    registry: str, champion: str, model_dir: Path, holdout_csv: Path, tmp_path: Path
) -> None:
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)  # mlflow execs uvicorn from PATH
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", champion, "--env-manager",
         "local", "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "mlflow models serve did not start"
                time.sleep(0.5)
        frame = pd.read_csv(holdout_csv).head(20)[["title", "abstract"]]
        body = json.dumps({"dataframe_records": frame.to_dict("records")}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            predictions = json.loads(answer.read())["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the uvicorn it started
        server.wait(timeout=30)
        log.close()
    expected = api.run_predict(api.PredictRequest(model=model_dir, data=frame.to_dict("records")))
    assert [p["label"] for p in predictions] == [r["label"] for r in expected.rows]
    assert [p["confidence"] for p in predictions] == [r["confidence"] for r in expected.rows]
    assert [json.loads(p["probabilities"]) for p in predictions] == [
        r["probabilities"] for r in expected.rows
    ]

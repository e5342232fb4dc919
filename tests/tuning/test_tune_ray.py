"""docsort tune on Ray Tune: Population-Based Training of a real fine-tuned kind (the encoder
with LoRA on minilm) shows its exploit steps in the log and the results table, and its best
model loads and evaluates; ASHA on tfidf. Both start a local Ray: slow tests."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import docsort
from tests.conftest import ARXIV_8CAT

pytestmark = pytest.mark.slow

ENCODER = "lora: true\nmax_length: 32\nbatch_size: 8\nepochs: 3\npatience: 3\n"
SPACE = (
    "lr: {type: float, low: 1.0e-5, high: 3.0e-3, log: true}\n"
    "weight_decay: {type: float, low: 0.0, high: 0.1}\n"
    "warmup_ratio: {type: float, low: 0.0, high: 0.3}\n"
    "lora_r: {type: int, low: 2, high: 16, log: true}\n"
)


def tune(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCSORT_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "docsort.cli", "tune", *args],
                          capture_output=True, text=True, env=env, timeout=1500)  # fmt: skip


def test_pbt_exploits_checkpoints_and_keeps_the_best_model(tmp_path: Path) -> None:
    frame = pd.read_csv(ARXIV_8CAT).groupby("category", group_keys=False).head(10)
    data = tmp_path / "arxiv.csv"
    frame.to_csv(data, index=False)
    (tmp_path / "space.yaml").write_text(SPACE)
    (tmp_path / "encoder.yaml").write_text(ENCODER)
    out = tmp_path / "search"
    result = tune(str(data), "--model", "encoder", "--text", "title,abstract", "--label",
                  "category", "--space", str(tmp_path / "space.yaml"), "--config",
                  str(tmp_path / "encoder.yaml"), "--trials", "4", "--backend", "ray",
                  "--scheduler", "pbt", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PBT exploit: trial" in result.stderr
    # 4 trials of 1 CPU on fewer than 4 CPUs are paused and restarted every epoch: said once
    fits = (os.cpu_count() or 1) >= 4
    assert ("do not run at once" in result.stderr) is not fits
    with open(out / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {r["state"] for r in rows} == {"complete"}
    exploited = [r for r in rows if r["exploits"]]
    assert exploited and "from trial" in exploited[0]["exploits"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exploit_steps"] >= 1 and summary["scheduler"] == "pbt"
    model = docsort.load(out / "model")
    assert model.lora and model.lora_r == summary["best"]["params"]["lora_r"]
    rows_data = docsort.from_frame(frame, text=["title", "abstract"], label="category")
    assert docsort.evaluate(model, rows_data)["macro_f1"] > 0.3  # chance is 0.125
    assert (out / "search.png").is_file()
    assert not any((out / "work" / "trials").glob("*/model"))  # only the best one is kept


def test_asha_on_a_kind_without_epochs(arxiv_csv: Path, tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text("C: {type: float, low: 0.1, high: 10, log: true}\n")
    (tmp_path / "fast.yaml").write_text("char_ngrams: null\nclassifier: logreg\n")
    out = tmp_path / "search"
    result = tune(str(arxiv_csv), "--text", "title,abstract", "--label", "category",
                  "--space", str(tmp_path / "space.yaml"), "--config", str(tmp_path / "fast.yaml"),
                  "--trials", "3", "--backend", "ray", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["states"] == {"complete": 3} and summary["scheduler"] == "asha"
    assert docsort.load(out / "model").predict(["quantum error correction codes"])

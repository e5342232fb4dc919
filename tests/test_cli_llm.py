"""``docsort train/eval/predict`` with the ``llm`` kind end to end: llama.cpp in process
(``qwen-0.5b``, one thread) on a few BBC News rows, as a user runs it from a YAML config."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from docsort.data.loaders import load_dataset
from tests.conftest import run_cli

pytest.importorskip("llama_cpp")

DESCRIPTIONS = Path(__file__).resolve().parents[1] / "benchmarks" / "descriptions" / "bbc.yaml"
BBC_LABELS = {"business", "entertainment", "politics", "sports", "tech"}


def test_train_eval_predict_with_the_llm_kind(tmp_path: Path) -> None:
    config = tmp_path / "llm.yaml"
    config.write_text(
        f"n_threads: 1\nmax_chars: 300\ndescriptions: {DESCRIPTIONS}\n", encoding="utf-8"
    )
    model_dir = tmp_path / "llm-model"
    result = run_cli(
        "train", "builtin:bbc", "--model", "llm", "--config", str(config), "--out", str(model_dir)
    )
    assert result.returncode == 0, result.stderr
    assert "trained llm" in result.stdout and (model_dir / "llm.json").is_file()

    test = load_dataset("builtin:bbc:test", "text", "label")
    rows = tmp_path / "two.csv"
    with rows.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(test.texts[:2], test.labels[:2], strict=True))
    report = tmp_path / "report"
    result = run_cli("eval", str(model_dir), str(rows), "--out", str(report))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["n"] == 2 and 0.0 <= metrics["accuracy"] <= 1.0

    documents = "\n".join(" ".join(t.split())[:300] for t in test.texts[3:5]) + "\n"
    result = run_cli("predict", str(model_dir), "-", "--out", "-", stdin=documents)
    assert result.returncode == 0, result.stderr
    predictions = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(predictions) == 2
    for row in predictions:
        assert row["label"] in BBC_LABELS
        assert abs(sum(row["probabilities"].values()) - 1.0) < 1e-4


def test_a_missing_gguf_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "llm.yaml"
    config.write_text("model: /nonexistent/model.gguf\n", encoding="utf-8")
    model_dir = tmp_path / "llm-model"
    result = run_cli(
        "train", "builtin:bbc", "--model", "llm", "--config", str(config), "--out", str(model_dir)
    )
    assert result.returncode == 0, result.stderr  # zero-shot training loads no model
    # ``model`` is the old name of ``base``: it works, with one deprecation line
    assert "warning: llm parameter 'model' is deprecated: call it 'base'\n" in result.stderr
    assert result.stderr.count("deprecated") == 1
    result = run_cli("predict", str(model_dir), "-", "--out", "-", stdin="Stocks fell.\n")
    assert result.returncode == 2 and "not a GGUF file" in result.stderr
    assert "Traceback" not in result.stderr

"""`docsort train --calibrate` fits a temperature on held-out rows and says which; eval reports
the ECE before it (``ece_uncalibrated``) beside the ECE after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import docsort
from docsort.data.loaders import load_dataset
from tests.conftest import run_cli, train_arxiv


def _evaluate(model_dir: Path, data: Path, out: Path) -> dict:
    result = run_cli("eval", str(model_dir), str(data), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return json.loads((out / "metrics.json").read_text())


def test_calibrate_on_held_out_training_rows_and_report_ece_before_and_after(
    arxiv_csv: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    result = train_arxiv(arxiv_csv, model_dir, "--calibrate", text="title")
    assert result.returncode == 0, result.stderr
    assert "calibrated on 24 training rows held out (10%)" in result.stdout
    manifest = yaml.safe_load((model_dir / "docsort.yaml").read_text())
    assert manifest["calibration"]["rows"] == 24  # 10 % of 240
    assert manifest["temperature"] == pytest.approx(manifest["calibration"]["temperature"])

    metrics = _evaluate(model_dir, arxiv_csv, tmp_path / "ev")
    assert metrics["temperature"] == pytest.approx(manifest["temperature"])
    assert metrics["ece_uncalibrated"] != pytest.approx(metrics["ece"])
    # the ECE "before" is that of the same model with its temperature taken away
    model = docsort.load(model_dir)
    model.temperature_ = None
    data = load_dataset(arxiv_csv, "title", "category")
    assert docsort.evaluate(model, data)["ece"] == pytest.approx(metrics["ece_uncalibrated"])
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "ECE before temperature scaling" in report and "Before temperature scaling" in report


def test_calibrate_uses_the_validation_split_when_given(arxiv_csv: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    result = train_arxiv(arxiv_csv, model_dir, "--calibrate", "--valid-split", "0.2", text="title")
    assert result.returncode == 0, result.stderr
    calibration = yaml.safe_load((model_dir / "docsort.yaml").read_text())["calibration"]
    assert calibration["source"] == "validation rows" and calibration["rows"] == 48


def test_uncalibrated_model_reports_the_same_ece_twice(
    trained_model_dir: Path, arxiv_csv: Path, tmp_path: Path
) -> None:
    metrics = _evaluate(trained_model_dir, arxiv_csv, tmp_path / "ev")
    assert metrics["temperature"] is None
    assert metrics["ece_uncalibrated"] == metrics["ece"]

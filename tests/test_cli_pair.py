"""The pair model from the command line: train on USPTO phrase pairs, evaluate, predict."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import USPTO_P2P, USPTO_TITLES, run_cli

PAIR_OPTIONS = ("--model", "pair", "--text", "anchor", "--pair", "target", "--label", "score")


@pytest.fixture(scope="module")
def uspto_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """42 real rows: one target of each score level for each of 10 anchors (where it has one)."""
    frame = pd.read_csv(USPTO_P2P)
    anchors = frame.anchor.drop_duplicates().head(10)
    frame = frame[frame.anchor.isin(anchors)].groupby(["anchor", "score"]).head(1)
    path = tmp_path_factory.mktemp("data") / "uspto.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def pair_model(uspto_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    config = folder / "pair.yaml"
    config.write_text("max_length: 32\nbatch_size: 8\nepochs: 1\n")
    out = folder / "pair"
    result = run_cli("train", str(uspto_csv), *PAIR_OPTIONS, "--context", "context",
                     "--context-map", str(USPTO_TITLES), "--config", str(config),
                     "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "5 score levels" in result.stdout
    return out


def test_train_saves_columns_and_context_map(pair_model: Path) -> None:
    manifest = yaml.safe_load((pair_model / "docsort.yaml").read_text())
    assert manifest["kind"] == "pair"
    assert manifest["input"]["pair"] == "target" and manifest["input"]["context"] == "context"
    titles = json.loads((pair_model / "context_titles.json").read_text())
    assert titles["A47"].startswith("furniture")


def test_eval_reports_pearson_and_spearman(pair_model, uspto_csv, tmp_path) -> None:
    result = run_cli("eval", str(pair_model), str(uspto_csv), "--out", str(tmp_path / "ev"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["n"] == 42
    assert -1 <= metrics["pearson"] <= 1 and -1 <= metrics["spearman"] <= 1
    assert set(metrics["per_level"]) == {"0", "0.25", "0.5", "0.75", "1"}
    assert "Pearson r" in result.stdout
    assert (tmp_path / "ev" / "scores.png").stat().st_size > 0
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "Pearson r" in report
    rows = [json.loads(line) for line in (tmp_path / "ev" / "predictions.jsonl").open()]
    assert len(rows) == 42
    assert all(r["error"] == pytest.approx(r["score"] - r["true"], abs=2e-6) for r in rows)
    mse = sum(r["error"] ** 2 for r in rows) / 42
    assert mse == pytest.approx(metrics["mse"], rel=1e-4)
    worst = max(rows, key=lambda r: abs(r["error"]))
    assert "## Largest errors" in report and f"| {worst['row']} |" in report


def test_predict_writes_one_score_per_pair(pair_model, uspto_csv, tmp_path) -> None:
    rows = pd.read_csv(uspto_csv).drop(columns="score").head(6)
    rows.to_csv(tmp_path / "new.csv", index=False)
    result = run_cli("predict", str(pair_model), str(tmp_path / "new.csv"), "--out", "-",
                     "--keep", "id")  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in out] == list(rows["id"])
    assert all(0 <= row["score"] <= 1 for row in out)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--model", "pair", "--text", "anchor", "--pair", "phrase", "--label", "score"),
         "no column 'phrase'"),
        (("--model", "pair", "--text", "anchor", "--label", "score"), "--pair COLUMN"),
        (("--model", "pair", "--text", "anchor", "--pair", "target", "--label", "target"),
         "is not a number"),
        (("--text", "anchor", "--pair", "target", "--label", "score"), "options of the pair model"),
        ((*PAIR_OPTIONS, "--context-map", str(USPTO_TITLES)), "name it"),
    ],
)  # fmt: skip
def test_bad_columns_are_one_line_errors(uspto_csv, tmp_path, options, message) -> None:
    result = run_cli("train", str(uspto_csv), *options, "--out", str(tmp_path / "m"))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "m").exists()


def test_eval_without_the_context_column_says_which_option(pair_model, uspto_csv, tmp_path):
    frame = pd.read_csv(uspto_csv).rename(columns={"context": "cpc"})
    frame.to_csv(tmp_path / "renamed.csv", index=False)
    result = run_cli("eval", str(pair_model), str(tmp_path / "renamed.csv"), "--out",
                     str(tmp_path / "ev"))  # fmt: skip
    assert result.returncode == 2 and "no column 'context'" in result.stderr
    result = run_cli("eval", str(pair_model), str(tmp_path / "renamed.csv"), "--out",
                     str(tmp_path / "ev"), "--context", "cpc")  # fmt: skip
    assert result.returncode == 0, result.stderr

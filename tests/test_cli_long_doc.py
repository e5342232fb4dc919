"""Long-document options on the command line: train in windows, override at eval, show windows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli, train_arxiv


@pytest.fixture(scope="module")
def windowed_model(arxiv_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "windows"
    options = ("--long-doc", "window", "--window", "40", "--overlap", "10", "--aggregate", "max")
    result = train_arxiv(arxiv_csv, out, *options)
    assert result.returncode == 0, result.stderr
    return out


def test_train_saves_the_window_settings(windowed_model: Path) -> None:
    manifest = yaml.safe_load((windowed_model / "docsort.yaml").read_text())
    assert manifest["long_doc"] == {
        "strategy": "window",
        "size": 40,
        "overlap": 10,
        "aggregate": "max",
        "train_on": "windows",
    }


def test_predict_lists_each_documents_windows(windowed_model: Path, arxiv_csv: Path) -> None:
    result = run_cli("predict", str(windowed_model), str(arxiv_csv), "--out", "-", "--windows")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 240
    assert sum(len(row["windows"]) >= 2 for row in rows) > 200  # most abstracts: > 40 words
    first = rows[0]["windows"]
    assert first[0]["start"] == 0 and first[0]["tokens"] == 40
    assert set(first[0]["probabilities"]) == set(rows[0]["probabilities"])


def test_eval_can_switch_to_head_truncation(windowed_model, arxiv_csv, tmp_path) -> None:
    result = run_cli("eval", str(windowed_model), str(arxiv_csv), "--out", str(tmp_path / "r"),
                     "--long-doc", "head")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["accuracy"] > 0.5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--window", "40"), "need --long-doc"),
        (("--long-doc", "window", "--aggregate", "median"), "aggregate must be one of"),
        (("--long-doc", "window", "--window", "30", "--overlap", "30"), "overlap must be"),
        (("--long-doc", "middle"), "strategy must be one of"),
    ],
)
def test_bad_long_document_options(arxiv_csv, tmp_path, options, message) -> None:
    result = train_arxiv(arxiv_csv, tmp_path / "m", *options)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m").exists()

"""Long-document windows never exceed what the model reads: an error, or sized to fit."""

from __future__ import annotations

from pathlib import Path

import docsort
from docsort.api import Columns, TrainRequest, prepare_train
from tests.conftest import run_cli, train_arxiv


def test_a_window_longer_than_the_encoder_reads_is_a_one_line_error(
    arxiv_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m"
    result = train_arxiv(
        arxiv_csv, out, "--model", "encoder", "--long-doc", "window", "--window", "254"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "254 tokens is longer than the 126" in lines[0] and "--window 126" in lines[0]
    assert not out.exists()


def test_with_no_window_given_windows_are_as_long_as_the_model_reads(arxiv_csv: Path) -> None:
    request = TrainRequest(
        data=str(arxiv_csv),
        kind="encoder",
        params={"max_length": 96},
        columns=Columns.parse("title,abstract", label="category"),
        long_doc={"strategy": "window"},
    )
    plan = prepare_train(request)
    assert plan.long_doc is not None and plan.long_doc.size == 94


def test_predict_checks_a_window_against_the_saved_model(
    trained_model_dir: Path, arxiv_csv: Path
) -> None:
    # tfidf reads words without a limit: any window is fine
    result = run_cli("predict", str(trained_model_dir), str(arxiv_csv), "--out", "-",
                     "--long-doc", "window", "--window", "5000")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert docsort.load(trained_model_dir).tokens_read() is None

"""Requests are checked before any work: options that cannot be right are one-line errors,
and what the user should know before training is said."""

from __future__ import annotations

from pathlib import Path

import pytest

from docsort.api import Columns, TrainRequest, prepare_train
from docsort.errors import DocsortError
from tests.conftest import run_cli, train_arxiv


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--text", ""], "--text names no column"),
        (["--text", " , "], "--text names no column"),
        (["--label-sep", ""], "--label-sep is empty"),
        (["--label", ""], "--label names no column"),
    ],
)
def test_empty_column_options_are_refused(
    arxiv_csv: Path, tmp_path: Path, options, message
) -> None:
    result = run_cli("train", str(arxiv_csv), *options, "--out", str(tmp_path / "m"))
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "m").exists()


@pytest.mark.parametrize(("k", "message"), [("0", "at least 1"), ("-1", "at least 1")])
def test_top_k_below_one_is_refused(trained_model_dir: Path, k: str, message: str) -> None:
    result = run_cli(
        "predict", str(trained_model_dir), "-", "--out", "-", "--top-k", k, stdin="a\n"
    )
    assert result.returncode == 2 and message in result.stderr


def test_keeping_a_column_named_like_an_output_field_is_refused(
    trained_model_dir: Path, arxiv_csv: Path
) -> None:
    result = run_cli(
        "predict", str(trained_model_dir), str(arxiv_csv), "--out", "-", "--keep", "label"
    )
    assert result.returncode == 2 and "--keep 'label'" in result.stderr


def test_a_labels_file_with_a_label_the_data_lacks_is_said_before_training(
    arxiv_csv: Path, tmp_path: Path
) -> None:
    import pandas as pd

    names = sorted(pd.read_csv(arxiv_csv).category.unique())
    labels = tmp_path / "labels.yaml"
    labels.write_text("labels:\n" + "".join(f"  - name: {n}\n" for n in [*names, "math.XX"]))
    plan = prepare_train(
        TrainRequest(
            data=str(arxiv_csv),
            columns=Columns.parse("title,abstract", label="category"),
            labels=labels,
        )
    )
    assert any("no training row has (first: 'math.XX')" in note for note in plan.notes)
    result = train_arxiv(arxiv_csv, tmp_path / "m", "--labels", str(labels))
    assert result.returncode == 0 and "math.XX" in result.stderr


def test_a_wrong_out_fails_before_training(arxiv_csv: Path, tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "notes.txt").write_text("mine")
    request = TrainRequest(
        data=str(arxiv_csv),
        out=tmp_path / "project",
        columns=Columns.parse("title,abstract", label="category"),
    )
    with pytest.raises(DocsortError, match="not a docsort model"):
        prepare_train(request)
    assert (tmp_path / "project" / "notes.txt").read_text() == "mine"


def test_records_are_read_with_the_columns_the_model_was_trained_with(
    trained_model_dir: Path, arxiv_csv: Path
) -> None:
    import pandas as pd

    import docsort
    from docsort.api import PredictRequest, run_predict

    model = docsort.load(trained_model_dir)  # trained on title,abstract
    frame = pd.read_csv(arxiv_csv).head(3)
    records = frame[["title", "abstract"]].to_dict(orient="records")
    from_records = run_predict(PredictRequest(model=model, data=records)).rows
    from_file = run_predict(PredictRequest(model=model, data=str(arxiv_csv))).rows[:3]
    assert from_records == from_file
    with pytest.raises(DocsortError, match="no column 'abstract'"):
        run_predict(PredictRequest(model=model, data=[{"title": "only a title"}]))

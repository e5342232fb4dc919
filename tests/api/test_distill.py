"""``docsort distill``: a saved tfidf teacher (trained on 240 labelled arXiv rows) labels
other, unlabelled arXiv rows and a tfidf student learns from its labels alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from docsort.api.distill import (
    SOFT_COLUMN,
    DistillRequest,
    prepare_distill,
    run_distill,
    soft_kinds,
)
from docsort.api.rows import Columns
from docsort.data.loaders import load_dataset
from docsort.errors import DocsortError
from docsort.models.base import load
from tests.conftest import ARXIV_8CAT, run_cli


@pytest.fixture(scope="module")
def pool_csv(arxiv_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """160 arXiv rows the teacher never saw (20 per category); their label column is kept in
    the file to show that distill does not read it."""
    frame = pd.read_csv(ARXIV_8CAT)
    unseen = frame[~frame.title.isin(arxiv_frame.title)]
    pool = unseen.groupby("category", group_keys=False).head(20).reset_index(drop=True)
    path = tmp_path_factory.mktemp("pool") / "pool.csv"
    pool.to_csv(path, index=False)
    return path


def test_student_learns_the_teacher_and_the_unsure_rows_are_dropped(
    trained_model_dir: Path, pool_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "student"
    result = run_distill(
        DistillRequest(
            teacher=trained_model_dir, data=str(pool_csv), student="tfidf", out=out,
            min_confidence=0.3, student_params={"char_ngrams": None},  # words only: fast
        )
    )  # fmt: skip
    report = json.loads((out / "distill.json").read_text())
    assert report == result.report
    teacher = load(trained_model_dir)
    texts = load_dataset(pool_csv, ["title", "abstract"], None).texts
    unsure = int((teacher.predict_proba(texts).max(axis=1) < 0.3).sum())
    assert 0 < unsure < len(texts)
    assert report["rows"] == len(texts) and report["rows_dropped"] == unsure
    assert report["rows_trained"] + report["rows_held_out"] + unsure == len(texts)
    assert report["agreement"] >= 0.75  # the student answers as its teacher does
    assert report["teacher"] == str(trained_model_dir) and report["seconds"]["total"] > 0
    student = load(out)  # a normal model directory
    assert student.kind == "tfidf" and student.char_ngrams is None
    assert student.input_spec_["text"] == ["title", "abstract"]
    agree = np.mean(np.array(student.predict(texts)) == np.array(teacher.predict(texts)))
    assert agree >= 0.75


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"student": "forest"}, "unknown model kind 'forest'"),
        ({"teacher": "no/such/model"}, "teacher not found: 'no/such/model'"),
        ({"soft": True}, "--soft needs a student kind that learns from soft targets (dual"),
        ({"min_confidence": 1.5}, "--min-confidence must be a probability in [0, 1)"),
        ({"valid_share": 0}, "--valid-share must be a share between 0 and 1"),
        ({"min_confidence": 0.99}, "the teacher is sure of no row at --min-confidence 0.99"),
        ({"teacher": "dual"}, "dual scores the labels of a labels file: pass --labels FILE"),
    ],
)
def test_bad_requests_are_one_line_errors(
    trained_model_dir: Path, pool_csv: Path, tmp_path: Path, change: dict, message: str
) -> None:
    request = DistillRequest(
        teacher=trained_model_dir, data=str(pool_csv), student="tfidf", out=tmp_path / "s"
    )
    for key, value in change.items():
        setattr(request, key, value)
    with pytest.raises(DocsortError) as caught:
        run_distill(request)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "s").exists()


def test_empty_data_through_the_cli(trained_model_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("title,abstract\n, \n")
    result = run_cli("distill", str(trained_model_dir), str(empty), "--student", "tfidf",
                     "--out", str(tmp_path / "s"))  # fmt: skip
    assert result.returncode == 2
    assert "empty.csv: no rows with text" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_zero_shot_dual_teacher(tmp_path: Path) -> None:
    """The real zero-shot teacher: minilm over label descriptions, re-aimed on the pool."""
    frame = pd.read_csv(ARXIV_8CAT)
    pool = frame[frame.category.isin(["cs.CV", "q-bio.NC"])].groupby("category").head(20)
    pool.to_csv(tmp_path / "pool.csv", index=False)
    (tmp_path / "labels.yaml").write_text(
        "cs.CV: Computer vision, images, video, object detection and segmentation.\n"
        "q-bio.NC: Neuroscience, neurons, the brain, cognition and neural circuits.\n"
    )
    run_distill(  # in process: under load the CLI's 300 s child timeout is too short
        DistillRequest(
            teacher="dual:minilm", data=str(tmp_path / "pool.csv"),
            labels=tmp_path / "labels.yaml", columns=Columns.parse("title,abstract"),
            student="tfidf", valid_share=0.2, out=tmp_path / "s",
        )
    )  # fmt: skip
    report = json.loads((tmp_path / "s" / "distill.json").read_text())
    assert report["teacher_adapted"] is True and report["teacher_kind"] == "dual"
    assert report["rows"] == 40 and report["agreement"] >= 0.8
    truth = pool.category.tolist()
    student = load(tmp_path / "s")
    texts = load_dataset(tmp_path / "pool.csv", ["title", "abstract"], None).texts
    accuracy = np.mean(np.array(student.predict(texts)) == np.array(truth))
    assert accuracy >= 0.8


def test_soft_targets_ride_to_a_kind_that_reads_them(
    trained_model_dir: Path, pool_csv: Path
) -> None:
    """--soft is accepted for a kind with a soft_column parameter and fills it (not trained
    here: a dual student takes minutes)."""
    plan = prepare_distill(
        DistillRequest(teacher=trained_model_dir, data=str(pool_csv), student="dual", soft=True)
    )
    assert plan.student_params["soft_column"] == SOFT_COLUMN
    assert "dual" in soft_kinds() and "tfidf" not in soft_kinds()
    assert len(plan.rows) == 160 and plan.rows.labels is None  # the label column is not read

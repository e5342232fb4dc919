"""The dual encoder from the command line: zero-shot training from a labels file, predicting
with a label the model never saw, zero-shot predict without a model dir, and user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ARXIV_8CAT, run_cli, train_arxiv
from tests.test_cli import assert_user_error

pytest.importorskip("torch")

LABELS = """\
cs.CL: Natural language processing, text and language models.
cs.CV: Computer vision, images and video.
cs.RO: Robotics, robots and motion planning.
cs.CR: [Computer security., Cryptography and privacy.]
astro-ph: Astrophysics, galaxies, stars and cosmology.
q-bio: Quantitative biology, genes, proteins and cells.
econ.EM: Econometrics, estimation with economic data.
"""
NEW_LABEL = "quant-ph: Quantum physics, qubits, entanglement and quantum computing.\n"


@pytest.fixture(scope="module")
def zero_shot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zero-shot dual model over seven arXiv categories (quant-ph left out)."""
    folder = tmp_path_factory.mktemp("dual")
    frame = pd.read_csv(ARXIV_8CAT)
    frame[frame.category != "quant-ph"].head(20).to_csv(folder / "rows.csv", index=False)
    (folder / "labels.yaml").write_text(LABELS, encoding="utf-8")
    (folder / "config.yaml").write_text("max_length: 64\n", encoding="utf-8")
    result = train_arxiv(
        folder / "rows.csv",
        folder / "model",
        "--model",
        "dual",
        "--zero-shot",
        "--labels",
        str(folder / "labels.yaml"),
        "--config",
        str(folder / "config.yaml"),
        text="title",
    )
    assert result.returncode == 0, result.stderr
    return folder


@pytest.mark.slow  # slow: 25 s; with_labels is checked in tests/models/test_dual.py
def test_predict_scores_a_label_added_in_the_labels_file(zero_shot_dir: Path) -> None:
    wider = zero_shot_dir / "wider.yaml"
    wider.write_text(LABELS + NEW_LABEL, encoding="utf-8")
    stdin = "entanglement of superconducting qubits\nrobot arm grasping with motion planning\n"
    model = str(zero_shot_dir / "model")
    labels = ["--labels", str(wider)]
    result = run_cli("predict", model, "-", "--out", "-", *labels, "--adapt", stdin=stdin)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] for r in rows] == ["quant-ph", "cs.RO"]
    assert len(rows[0]["probabilities"]) == 8
    plain = run_cli("predict", model, "-", "--out", "-", stdin=stdin)
    assert "quant-ph" not in plain.stdout  # the saved model is unchanged


def test_zero_shot_predict_needs_only_a_labels_file(zero_shot_dir: Path) -> None:
    labels = str(zero_shot_dir / "labels.yaml")
    stdin = "a convolutional network for image segmentation\n"
    result = run_cli("predict", "dual:minilm", "-", "--out", "-", "--labels", labels, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["label"] == "cs.CV"
    assert_user_error(
        run_cli("predict", "dual", "-", "--out", "-", stdin=stdin), "pass --labels FILE"
    )


def test_dual_options_on_other_kinds_are_user_errors(
    zero_shot_dir: Path, trained_model_dir: Path, tmp_path: Path
) -> None:
    result = train_arxiv(zero_shot_dir / "rows.csv", tmp_path / "m", "--zero-shot", text="title")
    assert_user_error(result, "--zero-shot needs a kind that reads it (dual)")
    result = run_cli("predict", str(trained_model_dir), "-", "--out", "-", "--adapt", stdin="x\n")
    assert_user_error(result, "--adapt needs a model that reads label texts (dual)")

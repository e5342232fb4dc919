"""/v1/classify answers with exactly the numbers ``docsort predict`` writes for the same model
and rows: tfidf and a cascade of two tfidf stages in the default run; an embed probe, a
fine-tuned encoder, a zero-shot dual encoder and a pair model (slow: each trains or loads a
transformer)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from docsort.serve import create_app
from tests.conftest import ARXIV_8CAT, USPTO_P2P, USPTO_TITLES, run_cli, train_arxiv


@pytest.fixture(scope="module")
def new_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 arXiv rows the shared models were not trained on (they take each category's head)."""
    frame = pd.read_csv(ARXIV_8CAT).groupby("category").tail(3).head(20)
    path = tmp_path_factory.mktemp("new") / "new.csv"
    frame[["title", "abstract"]].to_csv(path, index=False)
    return path


def assert_same_as_cli(
    model: Path, rows: Path, tmp_path: Path, explain: bool = False
) -> list[dict]:
    out = tmp_path / "cli.jsonl"
    why = ["--explain"] if explain else []
    result = run_cli("predict", str(model), str(rows), "--out", str(out), *why)
    assert result.returncode == 0, result.stderr
    expected = [json.loads(line) for line in out.read_text().splitlines()]
    records = pd.read_csv(rows).to_dict(orient="records")
    with TestClient(create_app(model)) as client:
        answer = client.post("/v1/classify", json={"records": records, "explain": explain})
    assert answer.status_code == 200, answer.text
    served = [{k: v for k, v in p.items() if k != "id"} for p in answer.json()["predictions"]]
    assert served == expected  # labels, stages and every probability, to the last digit
    return served


def test_tfidf(trained_model_dir: Path, new_rows: Path, tmp_path: Path) -> None:
    assert_same_as_cli(trained_model_dir, new_rows, tmp_path)


def test_tfidf_explained(trained_model_dir: Path, new_rows: Path, tmp_path: Path) -> None:
    """explain: the windows and the n-grams behind each label, as ``predict --explain``."""
    served = assert_same_as_cli(trained_model_dir, new_rows, tmp_path, explain=True)
    for row in served:
        assert row["windows"] and list(row["features"]) == [row["label"]]
        assert all(f["weight"] > 0 for f in row["features"][row["label"]])


def test_a_cascade_of_two_tfidf_stages(
    cascade_model_dir: Path, new_rows: Path, tmp_path: Path
) -> None:
    served = assert_same_as_cli(cascade_model_dir, new_rows, tmp_path)
    assert {row["stage"] for row in served} <= {"cheap", "full"}


@pytest.mark.slow  # slow: 31 s; tfidf and cascade parity stay in the default run
def test_an_embed_probe(arxiv_frame: pd.DataFrame, new_rows: Path, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    arxiv_frame.groupby("category").head(8).to_csv(tmp_path / "few.csv", index=False)
    (tmp_path / "embed.yaml").write_text("max_length: 64\ncache: false\nbatch_size: 16\n")
    result = train_arxiv(tmp_path / "few.csv", tmp_path / "embed", "--model", "embed",
                         "--config", str(tmp_path / "embed.yaml"), "--device", "cpu")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_same_as_cli(tmp_path / "embed", new_rows, tmp_path)


@pytest.mark.slow  # slow: fine-tunes a transformer for one epoch
def test_a_fine_tuned_encoder(arxiv_frame: pd.DataFrame, new_rows: Path, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    arxiv_frame.groupby("category").head(8).to_csv(tmp_path / "few.csv", index=False)
    (tmp_path / "encoder.yaml").write_text("max_length: 32\nbatch_size: 16\nepochs: 1\n")
    result = train_arxiv(tmp_path / "few.csv", tmp_path / "encoder", "--model", "encoder",
                         "--config", str(tmp_path / "encoder.yaml"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_same_as_cli(tmp_path / "encoder", new_rows, tmp_path)


@pytest.mark.slow  # slow: loads a sentence encoder
def test_a_zero_shot_dual_encoder(arxiv_frame: pd.DataFrame, new_rows: Path, tmp_path) -> None:
    pytest.importorskip("sentence_transformers")
    labels = "\n".join(f"{name}: arXiv papers in {name}" for name in
                       sorted(arxiv_frame.category.unique()))  # fmt: skip
    (tmp_path / "labels.yaml").write_text(labels + "\n")
    (tmp_path / "dual.yaml").write_text("max_length: 64\n")
    arxiv_frame.head(20).to_csv(tmp_path / "rows.csv", index=False)
    result = train_arxiv(tmp_path / "rows.csv", tmp_path / "dual", "--model", "dual",
                         "--zero-shot", "--labels", str(tmp_path / "labels.yaml"),
                         "--config", str(tmp_path / "dual.yaml"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_same_as_cli(tmp_path / "dual", new_rows, tmp_path)


@pytest.mark.slow  # slow: trains a cross-encoder for one epoch
def test_a_pair_model(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    frame = pd.read_csv(USPTO_P2P)
    anchors = frame.anchor.drop_duplicates()
    train = frame[frame.anchor.isin(anchors.head(10))].groupby(["anchor", "score"]).head(1)
    new = frame[frame.anchor.isin(anchors.iloc[10:14])].head(20)
    train.to_csv(tmp_path / "train.csv", index=False)
    new[["anchor", "target", "context"]].to_csv(tmp_path / "new.csv", index=False)
    (tmp_path / "pair.yaml").write_text("max_length: 32\nbatch_size: 8\nepochs: 1\n")
    result = run_cli("train", str(tmp_path / "train.csv"), "--model", "pair", "--text", "anchor",
                     "--pair", "target", "--label", "score", "--context", "context",
                     "--context-map", str(USPTO_TITLES), "--config", str(tmp_path / "pair.yaml"),
                     "--out", str(tmp_path / "pair"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    served = assert_same_as_cli(tmp_path / "pair", tmp_path / "new.csv", tmp_path)
    assert all(set(row) == {"score"} for row in served)

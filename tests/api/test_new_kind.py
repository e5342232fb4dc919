"""A kind written in a user's own file works everywhere with no edit to docsort: registered
here, then trained, evaluated and used through the Python API and through the CLI."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import docsort
from docsort.cli import app


@docsort.register("test-word-votes")
class WordVotes(docsort.Classifier):
    """Each word votes for the labels it was seen with, in proportion (add-one smoothed)."""

    def __init__(self, smoothing: float = 1.0) -> None:
        self.smoothing = smoothing

    def fit(self, train: docsort.Dataset, valid: docsort.Dataset | None = None) -> WordVotes:
        self._remember_training(train)
        self.votes_: dict[str, Counter] = {}
        for text, label in zip(train.texts, train.labels or [], strict=True):
            for word in set(text.lower().split()):
                self.votes_.setdefault(word, Counter())[label] += 1
        return self

    def _predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        names = self.labels_.names
        proba = np.full((len(texts), len(names)), self.smoothing)
        for i, text in enumerate(texts):
            for word in set(text.lower().split()):
                for label, count in self.votes_.get(word, {}).items():
                    proba[i, names.index(label)] += count
        return proba / proba.sum(axis=1, keepdims=True)

    def _save_weights(self, directory: Path) -> None:
        (directory / "votes.json").write_text(json.dumps(self.votes_))

    def _load_weights(self, directory: Path) -> None:
        self.votes_ = {
            w: Counter(c) for w, c in json.loads((directory / "votes.json").read_text()).items()
        }


@pytest.fixture
def news_csv(tmp_path: Path) -> Path:
    rows = [(f"the team won the match {i}", "sport") for i in range(20)]
    rows += [(f"shares fell as the market closed {i}", "business") for i in range(20)]
    path = tmp_path / "news.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def test_a_new_kind_trains_evaluates_and_predicts_through_the_api(
    tmp_path: Path, news_csv: Path
) -> None:
    data = docsort.load_dataset(news_csv)
    model = docsort.train(
        data, kind="test-word-votes", params={"smoothing": 0.5}, out=tmp_path / "m"
    )
    metrics = docsort.evaluate(tmp_path / "m", data, out=tmp_path / "ev")
    assert metrics["accuracy"] == 1.0 and (tmp_path / "ev" / "report.md").is_file()
    again = docsort.load(tmp_path / "m")
    assert isinstance(again, WordVotes) and again.smoothing == 0.5
    assert docsort.predict(again, ["the match"])[0]["label"] == "sport"
    assert model.capabilities().output == "labels"


def test_a_new_kind_trains_evaluates_and_predicts_through_the_cli(
    tmp_path: Path, news_csv: Path
) -> None:
    runner = CliRunner()
    model_dir, report, out = tmp_path / "m", tmp_path / "ev", tmp_path / "p.jsonl"
    config = tmp_path / "votes.yaml"
    config.write_text("kind: test-word-votes\nsmoothing: 2.0\n")
    trained = runner.invoke(
        app, ["train", str(news_csv), "--config", str(config), "--out", str(model_dir)]
    )
    assert trained.exit_code == 0, trained.output
    assert "test-word-votes" in trained.output
    evaluated = runner.invoke(app, ["eval", str(model_dir), str(news_csv), "--out", str(report)])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((report / "metrics.json").read_text())["accuracy"] == 1.0
    predicted = runner.invoke(
        app, ["predict", str(model_dir), "-", "--out", str(out)], input="market shares\n"
    )
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(out.read_text())["label"] == "business"

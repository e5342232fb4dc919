"""The frozen-vector kinds learn from real rows with the bundled weights, and reopen exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from docsort.data.dataset import Dataset, from_frame, stratified_split
from docsort.models import create, load
from docsort.models.kinds.embedding import EmbedClassifier, StaticClassifier
from tests.conftest import ARXIV_MULTI


@pytest.fixture(scope="module")
def arxiv_small(arxiv_frame: pd.DataFrame) -> tuple[Dataset, Dataset]:
    """4 categories × 30 real arXiv rows: seconds to embed with minilm at 64 tokens."""
    four = arxiv_frame[arxiv_frame.category.isin(["cs.CV", "quant-ph", "astro-ph", "econ.EM"])]
    data = from_frame(four, text=["title", "abstract"], label="category")
    return stratified_split(data, 0.25, seed=0)


@pytest.mark.parametrize("kind", ["static", "embed"])
def test_learns_and_round_trips(kind: str, arxiv_small, tmp_path: Path) -> None:
    train, test = arxiv_small
    params = {"max_length": 64} if kind == "embed" else {}
    model = create(kind, {**params, "cache": False} if kind == "embed" else params).fit(train)
    proba = model.predict_proba(test.texts)
    assert proba.shape == (len(test), 4)
    accuracy = (proba.argmax(axis=1) == test.targets(model.labels_)).mean()
    assert accuracy >= 0.8  # chance is 0.25
    model.save(tmp_path / kind)
    again = load(tmp_path / kind)
    np.testing.assert_allclose(again.predict_proba(test.texts), proba, rtol=0, atol=1e-6)


def test_static_model_is_self_contained(arxiv_small, tmp_path: Path, monkeypatch) -> None:
    StaticClassifier().fit(arxiv_small[0]).save(tmp_path / "m")
    assert (tmp_path / "m" / "static").is_dir()
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path / "empty-cache"))  # no alias to resolve
    assert load(tmp_path / "m").predict(["dark matter halo of a dwarf galaxy"]) == ["astro-ph"]


def test_embed_caches_training_vectors(arxiv_small, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))
    train, _ = arxiv_small
    first = EmbedClassifier(max_length=64).fit(train)
    cached = list((tmp_path / "embeddings").glob("*.npy"))
    assert len(cached) == 1
    calls = []
    second = EmbedClassifier(max_length=64)
    monkeypatch.setattr(second, "_embed", lambda texts: calls.append(len(texts)))
    second._remember_training(train)
    vectors = second._embed_training_rows(train.texts)
    assert calls == [] and vectors.shape == (len(train), 384)
    np.testing.assert_array_equal(vectors, np.load(cached[0]))
    assert first.head_.coef_.shape[1] == 384


def test_static_multi_label_thresholds() -> None:
    frame = pd.read_csv(ARXIV_MULTI).head(400)
    data = from_frame(frame, text=["titles", "summaries"], label="terms")
    train, valid = stratified_split(data, 0.25, seed=0)
    model = StaticClassifier().fit(train, valid)
    assert model.thresholds_.shape == (len(data.label_set),)
    assert all(isinstance(p, tuple) for p in model.predict(valid.texts[:5]))

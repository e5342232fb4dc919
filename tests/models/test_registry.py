"""The registry finds kinds by name, and a saved model reopens exactly as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import docsort
from docsort.data.dataset import Dataset, from_frame, stratified_split
from docsort.errors import DocsortError
from docsort.models import REGISTRY, Classifier, create, get_kind, load, register
from docsort.models.kinds.tfidf import TfidfClassifier


@pytest.fixture(scope="module")
def arxiv_split(arxiv_frame) -> tuple[Dataset, Dataset]:
    data = from_frame(arxiv_frame, text=["title", "abstract"], label="category")
    return stratified_split(data, 0.25, seed=0)


def test_no_kind_parameter_hides_a_classifier_method() -> None:
    """A parameter is stored as an attribute of the same name: one named like a method of the
    contract (``calibrate``, ``predict``) would replace that method on every instance."""
    get_kind("tfidf")  # imports every built-in kind
    methods = {name for name in dir(Classifier) if callable(getattr(Classifier, name))}
    for kind, cls in REGISTRY.items():
        assert not set(cls.param_names()) & methods, kind


def test_kinds_are_found_by_name() -> None:
    assert get_kind("tfidf") is TfidfClassifier
    assert isinstance(create("tfidf", {"C": 2.0}), TfidfClassifier)
    with pytest.raises(DocsortError, match="unknown model kind 'bert'.*tfidf"):
        get_kind("bert")
    with pytest.raises(DocsortError, match="no parameter 'alpha'.*word_ngrams"):
        create("tfidf", {"alpha": 1})


def test_register_makes_a_new_kind_loadable(arxiv_split, tmp_path: Path) -> None:
    @register("majority-test")
    class Majority(Classifier):
        def __init__(self, smoothing: float = 0.0) -> None:
            self.smoothing = smoothing

        def fit(self, train, valid=None):
            self._remember_training(train)
            counts = np.bincount(train.targets(), minlength=len(self.labels_)) + self.smoothing
            self.prior_ = counts / counts.sum()
            return self

        def _predict_proba(self, texts):
            return np.tile(self.prior_, (len(texts), 1))

        def _save_weights(self, directory):
            np.save(directory / "prior.npy", self.prior_)

        def _load_weights(self, directory):
            self.prior_ = np.load(directory / "prior.npy")

    try:
        train, test = arxiv_split
        model = Majority(smoothing=1.0).fit(train)
        model.save(tmp_path / "m")
        again = docsort.load(tmp_path / "m")
        assert isinstance(again, Majority) and again.smoothing == 1.0
        np.testing.assert_array_equal(
            again.predict_proba(test.texts), model.predict_proba(test.texts)
        )
    finally:
        REGISTRY.pop("majority-test")


def test_save_load_gives_identical_probabilities(arxiv_split, tmp_path: Path) -> None:
    train, test = arxiv_split
    model = create("tfidf", {"C": 0.5, "word_ngrams": (1, 1)}).fit(train)
    model.save(tmp_path / "model")
    again = load(tmp_path / "model")
    assert again.get_params() == model.get_params()
    assert again.labels_ == model.labels_
    assert again.train_fingerprint_ == train.fingerprint()
    np.testing.assert_array_equal(again.predict_proba(test.texts), model.predict_proba(test.texts))
    manifest = (tmp_path / "model" / "docsort.yaml").read_text()
    assert "kind: tfidf" in manifest and "docsort_version" in manifest


def test_saving_over_a_model_replaces_it_whole(arxiv_split, tmp_path: Path) -> None:
    train, _ = arxiv_split
    create("tfidf").fit(train).save(tmp_path / "m")
    create("tfidf", {"C": 3.0}).fit(train).save(tmp_path / "m")
    assert load(tmp_path / "m").C == 3.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp dirs left behind


def test_corrupt_model_dirs_are_reported(arxiv_split, tmp_path: Path) -> None:
    with pytest.raises(DocsortError, match="not found"):
        load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DocsortError, match="no docsort.yaml"):
        load(tmp_path / "empty")
    model_dir = create("tfidf").fit(arxiv_split[0]).save(tmp_path / "m")
    (model_dir / "tfidf.joblib").write_bytes(b"not a pickle")
    with pytest.raises(DocsortError, match="weights cannot be read"):
        load(model_dir)
    (model_dir / "docsort.yaml").write_text("kind: [unclosed", encoding="utf-8")
    with pytest.raises(DocsortError, match="corrupt"):
        load(model_dir)


def test_a_model_saved_by_a_newer_kind_version_is_refused(trained_model_dir, tmp_path) -> None:
    import shutil

    import yaml

    copy = tmp_path / "newer"
    shutil.copytree(trained_model_dir, copy)
    manifest = yaml.safe_load((copy / "docsort.yaml").read_text())
    assert manifest["kind_version"] == 1
    manifest["kind_version"] = 2
    (copy / "docsort.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(DocsortError, match="version 2, newer than"):
        load(copy)
    del manifest["kind_version"]  # saved before kinds had versions: version 1
    (copy / "docsort.yaml").write_text(yaml.safe_dump(manifest))
    assert load(copy).kind == "tfidf"

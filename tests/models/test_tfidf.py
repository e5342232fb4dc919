"""tfidf learns real categories, calibrates probabilities and handles multi-label data."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from docsort.data.dataset import from_frame, stratified_split
from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.models import create
from tests.conftest import ARXIV_MULTI


@pytest.mark.parametrize("classifier", ["svm", "logreg"])
def test_learns_arxiv_categories_well_above_chance(arxiv_frame, classifier: str) -> None:
    data = from_frame(arxiv_frame, text=["title", "abstract"], label="category")
    train, test = stratified_split(data, 0.25, seed=0)
    model = create("tfidf", {"classifier": classifier}).fit(train)
    proba = model.predict_proba(test.texts)
    assert proba.shape == (len(test), 8)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    accuracy = (proba.argmax(axis=1) == test.targets(model.labels_)).mean()
    assert accuracy > 0.7  # chance is 0.125
    assert model.predict(test.texts[:3]) == [model.labels_.names[i] for i in proba[:3].argmax(1)]


def test_label_without_training_rows_gets_zero_probability(arxiv_frame) -> None:
    names = tuple(sorted(arxiv_frame.category.unique())) + ("math.AG",)
    data = from_frame(
        arxiv_frame, text=["title", "abstract"], label="category", labels=LabelSet(names)
    )
    proba = create("tfidf").fit(data).predict_proba(data.texts[:5])
    assert proba.shape == (5, 9) and (proba[:, -1] == 0).all()


def test_a_class_with_one_training_row_is_still_learnt(arxiv_frame) -> None:
    lonely = "Tax law of medieval guilds, a legal history"
    extra = pd.DataFrame({"title": [lonely], "abstract": [""], "category": ["law.HIST"]})
    data = from_frame(pd.concat([arxiv_frame, extra]), text=["title", "abstract"], label="category")
    model = create("tfidf").fit(data)  # calibrated SVM: needs the class in every fold
    assert model.predict([lonely]) == ["law.HIST"]
    with pytest.raises(DocsortError, match="at least 2"):
        create("tfidf", {"calibration_folds": 1}).fit(data)


def test_multi_label_tunes_thresholds_on_validation_rows() -> None:
    frame = pd.read_csv(ARXIV_MULTI)
    data = from_frame(frame, text=["titles", "summaries"], label="terms")
    train, test = stratified_split(data, 0.2, seed=0)
    train, valid = stratified_split(train, 0.2, seed=0)
    params = {"classifier": "logreg", "char_ngrams": None, "C": 10.0}
    untuned = create("tfidf", params).fit(train)
    tuned = create("tfidf", params).fit(train, valid)
    assert untuned.thresholds_ is None
    assert tuned.thresholds_.shape == (len(data.label_set),)

    def micro(model, rows):
        y = rows.targets(model.labels_)
        return f1_score(y, model.decide(model.predict_proba(rows.texts)), average="micro")

    # the tuned thresholds are the best on the rows they were tuned on, and hold up on new rows
    assert micro(tuned, valid) >= micro(untuned, valid)
    assert micro(tuned, test) > 0.6 and micro(tuned, test) >= micro(untuned, test) - 0.02
    assert all(isinstance(p, tuple) for p in tuned.predict(test.texts[:5]))


def test_bad_parameters_are_user_errors(arxiv_frame) -> None:
    data = from_frame(arxiv_frame, text=["title", "abstract"], label="category")
    with pytest.raises(DocsortError, match="classifier must be one of"):
        create("tfidf", {"classifier": "forest"}).fit(data)
    with pytest.raises(DocsortError, match="word_ngrams or char_ngrams"):
        create("tfidf", {"word_ngrams": None, "char_ngrams": None}).fit(data)
    with pytest.raises(DocsortError, match="not fitted"):
        create("tfidf").predict_proba(["x"])
    one = from_frame(arxiv_frame.head(5).assign(category="cs.CL"), text="title", label="category")
    with pytest.raises(DocsortError, match="at least two"):
        create("tfidf").fit(one)


@pytest.mark.parametrize(
    ("classifier", "categories"),
    [("svm", None), ("logreg", None), ("svm", ["astro-ph", "cs.CV"])],  # binary: one weight row
)
def test_top_features_are_the_words_that_made_the_label(
    arxiv_frame, classifier: str, categories: list[str] | None
) -> None:
    """``explain``: the n-grams listed for a label occur in the text, in falling order, and
    taking them out of the text lowers that label's probability (for either label of a binary
    model, whose weights are one row stored for the second class)."""
    frame = (
        arxiv_frame if categories is None else arxiv_frame[arxiv_frame.category.isin(categories)]
    )
    data = from_frame(frame, text="abstract", label="category")
    model = create("tfidf", {"classifier": classifier, "char_ngrams": None}).fit(data)
    assert model.capabilities().explains
    texts = data.texts[:6]
    predicted = model.predict_proba(texts).argmax(axis=1)
    shown = model.top_features(texts, [[p] for p in predicted], 5)
    for text, label, features in zip(texts, predicted, shown, strict=True):
        listed = features[model.labels_.names[label]]
        weights = [f["weight"] for f in listed]
        assert listed and weights == sorted(weights, reverse=True) and min(weights) > 0
        words = " " + " ".join(re.findall(r"\b\w\w+\b", text.lower())) + " "  # as tf-idf reads
        assert all(f["source"] == "word" and f" {f['feature']} " in words for f in listed)
        without = " ".join(w for w in text.split() if w.lower().strip(".,;:()") not in
                           {f["feature"] for f in listed})  # fmt: skip
        before, after = model.predict_proba([text, without])[:, label]
        assert after < before
    other = [[1 - p] for p in predicted] if categories else None
    if other:  # the binary model's other label gets its own n-grams, not the first one's
        mine = {f["feature"] for f in shown[0][model.labels_.names[predicted[0]]]}
        theirs = model.top_features(texts[:1], other[:1], 5)[0]
        assert not mine & {f["feature"] for f in theirs[model.labels_.names[other[0][0]]]}


def test_top_features_of_a_multi_label_model_are_listed_per_label() -> None:
    """Multi-label (one binary model per label): each asked-for label gets the text's own
    n-grams with its own weights."""
    frame = pd.read_csv(ARXIV_MULTI).head(400)
    data = from_frame(frame, text="summaries", label="terms")
    model = create("tfidf", {"classifier": "logreg", "char_ngrams": None}).fit(data)
    predicted = model.predict_proba(data.texts[:3]).argsort(axis=1)[:, -2:]  # the top two
    shown = model.top_features(data.texts[:3], predicted.tolist(), 4)
    for text, ids, features in zip(data.texts[:3], predicted, shown, strict=True):
        assert list(features) == [model.labels_.names[i] for i in ids]
        words = " " + " ".join(re.findall(r"\b\w\w+\b", text.lower())) + " "
        for listed in features.values():
            assert listed and all(f" {f['feature']} " in words for f in listed)
        first, second = (tuple(f["weight"] for f in listed) for listed in features.values())
        assert first != second

"""tfidf learns real categories, calibrates probabilities and handles multi-label data."""

from __future__ import annotations

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

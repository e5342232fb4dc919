"""A cascade whose last stage is people: every model stage has a threshold, the documents no
model is sure enough of are routed to ``human`` (with the last model stage's suggestion), the
evaluation reports coverage, the review share and the accuracy of what the models answered
alone, and the saved cascade routes the same way after loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import docsort
from docsort.errors import DocsortError
from docsort.models import create, load
from docsort.models.kinds.cascade import CascadeClassifier
from tests.models.conftest import STRONG, WEAK


@pytest.fixture(scope="module")
def reviewed(splits) -> CascadeClassifier:
    """Weak → strong → people, at most 30 % of documents to people (with 90 % confidence)."""
    train, valid, _ = splits
    stages = [WEAK, STRONG, {"human": True, "name": "review", "usd_per_doc": 0.5}]
    model = create("cascade", {"stages": stages, "select": {"max_escalation_rate": 0.3}})
    return model.fit(train, valid)


def test_documents_no_model_is_sure_of_go_to_people(reviewed, splits) -> None:
    _, _, test = splits
    assert len(reviewed.stage_thresholds_) == 2  # the last model stage has one too
    assert reviewed.answer_names() == ["tfidf-1", "tfidf-2", "review"]
    routed = reviewed.route(test.texts)
    to_people = routed.stage == 2
    assert 0 < to_people.mean() < 0.6
    # the suggestion shown to the reviewer is the last model stage's answer
    strong = routed.stage_proba[1]
    reached = {int(i): j for j, i in enumerate(routed.seen[1])}
    for i in np.flatnonzero(to_people):
        assert np.allclose(routed.proba[i], strong[reached[int(i)]])
        assert strong[reached[int(i)]].max() < reviewed.stage_thresholds_[1]
    y = test.targets(reviewed.labels_)
    right = routed.proba.argmax(1) == y
    assert right[~to_people].mean() > right[to_people].mean()  # people get the hard ones


def test_predict_and_eval_report_the_review_queue(reviewed, splits, tmp_path: Path) -> None:
    _, _, test = splits
    rows = docsort.predict(reviewed, test.texts)
    stages = {row["stage"] for row in rows}
    assert "review" in stages and stages <= {"tfidf-1", "tfidf-2", "review"}
    metrics = docsort.evaluate(reviewed, test, out=tmp_path / "report")
    review = metrics["stages"][-1]
    assert review["kind"] == "human" and review["accuracy"] is None
    assert metrics["review_share"] == pytest.approx(review["share"])
    assert metrics["coverage"] == pytest.approx(1 - review["share"])
    sent = [row for row in rows if row["stage"] == "review"]
    assert review["n_answered"] == len(sent)
    assert review["cost_per_1k"] == pytest.approx(0.5 * len(sent) * 1000 / len(rows))
    assert metrics["auto_accuracy"] > metrics["accuracy"]  # models keep the easy ones
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Review queue (review): the models answered" in report


def test_a_saved_cascade_routes_to_people_the_same_way(reviewed, splits, tmp_path) -> None:
    _, _, test = splits
    reviewed.save(tmp_path / "c")
    again = load(tmp_path / "c")
    assert again.answer_names() == reviewed.answer_names()
    assert np.array_equal(again.route(test.texts).stage, reviewed.route(test.texts).stage)


def test_certified_model_stages_before_people(splits) -> None:
    train, valid, test = splits
    stages = [STRONG, "human"]
    select = {"max_auto_error": 0.3, "delta": 0.2}
    model = create("cascade", {"stages": stages, "select": select}).fit(train, valid)
    certified = model.selection_["certified"]
    assert len(certified["stages"]) == 1 and len(model.stage_thresholds_) == 1
    assert model.answer_names() == ["tfidf", "human"]
    assert certified["stages"][0]["answered"] < len(valid)  # some go to people


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        (["human", STRONG], "cascade stage 1: a human stage must be the last one"),
        ([STRONG, {"human": True, "wage": 3}], "unknown key 'wage'"),
        ([STRONG, {"human": True, "usd_per_doc": -1}], "usd_per_doc must be a price >= 0"),
        ([{**STRONG, "name": "human"}, "human"], "a model stage is named 'human'"),
        ([STRONG, {"human": False}], "human: true marks people"),
    ],
)
def test_bad_human_stages_are_one_line(stages, message) -> None:
    with pytest.raises(DocsortError, match=message) as raised:
        create("cascade", {"stages": stages}).check()
    assert "\n" not in str(raised.value)

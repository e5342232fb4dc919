"""Certified cascades (``select: {max_auto_error, delta}``): the error among the documents an
early stage answers alone is bounded with probability 1 − delta, checked the way it is promised:
over many random calibration/test splits of real model outputs, not on one split."""

from __future__ import annotations

import numpy as np
import pytest

from docsort.data.loaders import load_dataset
from docsort.errors import DocsortError
from docsort.models import create
from docsort.models.kinds.cascade import candidate_grid, certify_thresholds

ALPHA, DELTA = 0.05, 0.05


@pytest.fixture(scope="module")
def banking_outputs() -> tuple[np.ndarray, np.ndarray]:
    """Real outputs on banking77's 3,080 test rows, the population the splits are drawn from:
    a first stage's confidence and correctness (tfidf on words, trained on 4,000 training
    rows). The last stage answers what is left, so its accuracy does not enter the bound."""
    train = load_dataset("builtin:banking77:train", "text", "label").subset(range(4000))
    test = load_dataset("builtin:banking77:test", "text", "label")
    test.label_set = train.label_set
    proba = create("tfidf", {"word_ngrams": [1, 1]}).fit(train).predict_proba(test.texts)
    right = proba.argmax(axis=1) == test.targets(train.label_set)
    return proba.max(axis=1), np.stack([right, np.ones_like(right)])


def _auto_error(threshold: float, confidence: np.ndarray, correct: np.ndarray) -> float:
    answered = confidence >= threshold
    return float((~correct[answered]).mean()) if answered.any() else 0.0


def test_the_bound_holds_on_new_rows_in_at_least_1_minus_delta_of_splits(banking_outputs):
    """The 3,080 rows stand for the population: each draw is a calibration sample from it (with
    replacement, so rows are independent draws from it), and a chosen threshold violates the
    bound when its error among the rows it answers, over the whole population, exceeds alpha.
    (Judged on a finite test half instead, even a threshold whose true error is exactly alpha
    would look violated half of the time.)"""
    confidence, correct = banking_outputs
    rng = np.random.default_rng(0)
    n, draws = len(confidence), 200
    violations = {"certified": 0, "plug-in": 0}
    coverage = []
    for _ in range(draws):
        cal = rng.integers(0, n, size=n // 2)
        conf_cal, ok_cal = [confidence[cal]], [correct[0][cal], correct[1][cal]]
        grid = candidate_grid(conf_cal, [None], 140)
        thresholds, chosen, met = certify_thresholds(
            conf_cal, ok_cal, np.zeros(2), grid, ALPHA, DELTA
        )
        assert met and chosen["certified"]["stages"][0]["certified"]
        coverage.append(float((confidence >= thresholds[0]).mean()))
        # the plug-in rule: the lowest threshold whose calibration error is within alpha
        plug_in = min(
            (t for t in grid[0] if _auto_error(t, conf_cal[0], ok_cal[0]) <= ALPHA),
            default=2.0,
        )
        for name, t in (("certified", thresholds[0]), ("plug-in", plug_in)):
            violations[name] += _auto_error(t, confidence, correct[0]) > ALPHA
    rates = {name: count / draws for name, count in violations.items()}
    assert rates["certified"] <= DELTA, rates
    assert rates["plug-in"] > 4 * DELTA  # met on the calibration rows, missed far more often
    assert np.mean(coverage) > 0.2, np.mean(coverage)  # not bought by answering nothing


def test_a_certified_cascade_records_its_bound_and_evaluation_reports_it(tmp_path) -> None:
    import docsort

    train = load_dataset("builtin:bbc:train", "text", "label").subset(range(800))
    test = load_dataset("builtin:bbc:test", "text", "label").subset(range(200))
    weak = {"kind": "tfidf", "word_ngrams": [1, 1], "max_features": 300}
    model = create(
        "cascade",
        {"stages": [weak, {"kind": "tfidf"}], "select": {"max_auto_error": 0.05, "delta": 0.1}},
    ).fit(train)
    certified = model.selection_["certified"]
    assert certified["max_auto_error"] == 0.05 and certified["delta"] == 0.1
    stage = certified["stages"][0]
    assert stage["answered"] > 0 and stage["error_bound"] <= 0.05
    assert stage["observed_error"] <= stage["error_bound"]
    docsort.evaluate(model, test, out=tmp_path / "eval")
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "Certified (Learn then Test)" in report and "at most 5.0%" in report


def test_a_fixed_threshold_is_reported_not_certified() -> None:
    rng = np.random.default_rng(1)
    confidence = rng.random(500)
    correct = [rng.random(500) < confidence, np.ones(500, dtype=bool)]
    grids = candidate_grid([confidence], [0.3], 140)
    thresholds, chosen, _ = certify_thresholds([confidence], correct, np.zeros(2), grids, 0.05, 0.1)
    assert thresholds == [0.3] and chosen["certified"]["stages"][0]["certified"] is False


@pytest.mark.parametrize(
    ("select", "message"),
    [
        ({"delta": 0.05}, "give it with max_auto_error"),
        ({"max_auto_error": 0}, "max_auto_error must be in (0, 1)"),
        ({"max_auto_error": 0.02, "delta": 1.5}, "delta must be in (0, 1)"),
        ({"max_auto_error": 0.02, "max_escalation_rate": 0.3}, "exactly one of"),
    ],
)
def test_bad_certification_settings_are_one_line_errors(select, message) -> None:
    params = {"stages": [{"kind": "tfidf"}, {"kind": "tfidf"}], "select": select}
    with pytest.raises(DocsortError) as error:
        create("cascade", params).check()
    assert message in str(error.value) and "\n" not in str(error.value)

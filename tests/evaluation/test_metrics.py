"""Metrics against sklearn and against tiny cases computed by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
)

from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.evaluation import (
    CostModel,
    compute_metrics,
    expected_calibration_error,
    reliability_bins,
)

# --- hand-checked single-label case -----------------------------------------------------
# 3 labels, 6 docs.  true: a a b b c c   predicted: a b b b c a
# Confusion (rows true a,b,c; cols predicted a,b,c): [[1,1,0],[0,2,0],[1,0,1]]
# accuracy = 4/6.  a: P 1/2 R 1/2 F1 1/2.  b: P 2/3 R 1 F1 4/5.  c: P 1 R 1/2 F1 2/3.
# macro-F1 = (1/2 + 4/5 + 2/3) / 3 = 59/90; weighted = macro (equal support);
# micro-F1 = accuracy.
# Confidence in the predicted label and correctness, 5 bins of width 0.2:
#   (0.4, 0.6]: docs 1 (0.5, wrong), 4 (0.5, right)  -> acc 0.5, conf 0.5, gap 0
#   (0.6, 0.8]: docs 2 (0.7, right), 5 (0.7, wrong)  -> acc 0.5, conf 0.7, gap 0.2
#   (0.8, 1.0]: docs 0 (0.9, right), 3 (0.9, right)  -> acc 1.0, conf 0.9, gap 0.1
# ECE = 2/6 * 0 + 2/6 * 0.2 + 2/6 * 0.1 = 0.1
HAND_LABELS = LabelSet(("a", "b", "c"))
HAND_TRUE = np.array([0, 0, 1, 1, 2, 2])
HAND_PROBA = np.array(
    [
        [0.9, 0.05, 0.05],
        [0.3, 0.5, 0.2],
        [0.1, 0.7, 0.2],
        [0.05, 0.9, 0.05],
        [0.3, 0.2, 0.5],
        [0.7, 0.1, 0.2],
    ]
)


def _hand_metrics(**kwargs: object) -> dict:
    return compute_metrics(HAND_LABELS, HAND_TRUE, HAND_PROBA, seconds=3.0, **kwargs)


def test_hand_case_single_label() -> None:
    m = compute_metrics(HAND_LABELS, HAND_TRUE, HAND_PROBA, seconds=3.0, n_bins=5)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["macro_f1"] == pytest.approx(59 / 90)
    assert m["weighted_f1"] == pytest.approx(59 / 90)
    assert m["micro_f1"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == {
        "labels": ["a", "b", "c"],
        "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 1]],
    }
    assert m["per_class"]["a"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert m["per_class"]["b"]["f1"] == pytest.approx(0.8)
    assert m["per_class"]["c"]["precision"] == pytest.approx(1.0)
    assert m["ece"] == pytest.approx(0.1)
    assert m["multi_label"] is False
    assert m["n"] == 6


def test_hand_case_ece_and_bins() -> None:
    confidence = HAND_PROBA.max(axis=1)
    correct = HAND_PROBA.argmax(axis=1) == HAND_TRUE
    assert expected_calibration_error(confidence, correct, n_bins=5) == pytest.approx(0.1)
    bins = reliability_bins(confidence, correct, n_bins=5)
    assert [b["count"] for b in bins] == [0, 0, 2, 2, 2]
    assert bins[0]["accuracy"] is None and bins[0]["confidence"] is None
    assert bins[3]["accuracy"] == pytest.approx(0.5)
    assert bins[3]["confidence"] == pytest.approx(0.7)
    assert bins[4]["lower"] == pytest.approx(0.8) and bins[4]["upper"] == pytest.approx(1.0)


def test_ece_extremes() -> None:
    # Always right at confidence 1, or right half the time at 0.5: perfectly calibrated.
    assert expected_calibration_error(np.ones(4), np.ones(4)) == 0.0
    assert expected_calibration_error(np.full(4, 0.5), np.array([1, 0, 1, 0])) == 0.0
    # Always wrong at confidence 0.9: off by 0.9.
    assert expected_calibration_error(np.full(3, 0.9), np.zeros(3)) == pytest.approx(0.9)
    assert expected_calibration_error(np.array([]), np.array([])) == 0.0


def test_boundaries_and_edges_of_bins() -> None:
    # 0 falls in the first bin and 1 in the last (bins are right-closed).
    counts = [b["count"] for b in reliability_bins(np.array([0.0, 1.0]), np.array([0, 1]), 4)]
    assert counts == [1, 0, 0, 1]
    with pytest.raises(ValueError):
        reliability_bins(np.array([1.5]), np.array([1]))


def test_y_pred_defaults_to_argmax() -> None:
    explicit = _hand_metrics(y_pred=HAND_PROBA.argmax(axis=1))
    assert explicit == _hand_metrics()


def test_single_label_matches_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(7)
    n, k = 300, 5
    labels = LabelSet(tuple(f"l{i}" for i in range(k)))
    y_true = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    y_pred = proba.argmax(axis=1)
    m = compute_metrics(labels, y_true, proba, seconds=1.5)

    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    for avg in ("macro", "micro", "weighted"):
        expected = f1_score(y_true, y_pred, average=avg, zero_division=0)
        assert m[f"{avg}_f1"] == pytest.approx(expected)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    for i, name in enumerate(labels.names):
        assert m["per_class"][name] == pytest.approx(
            {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]}
        )
    assert m["confusion_matrix"]["matrix"] == confusion_matrix(y_true, y_pred).tolist()
    confidence = proba.max(axis=1)
    assert m["ece"] == pytest.approx(expected_calibration_error(confidence, y_pred == y_true))
    assert m["docs_per_second"] == pytest.approx(200.0)
    json.dumps(m, allow_nan=False)  # plain JSON: no numpy types, no NaN


def test_zero_support_label_is_listed_but_not_averaged() -> None:
    labels = LabelSet(("a", "b", "c", "never"))
    proba = np.hstack([HAND_PROBA, np.zeros((6, 1))])
    m = compute_metrics(labels, HAND_TRUE, proba, seconds=1.0)
    assert m["per_class"]["never"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["macro_f1"] == pytest.approx(59 / 90)  # same as without the unused label
    assert m["n_labels"] == 4 and m["n_labels_averaged"] == 3
    assert m["confusion_matrix"]["matrix"][3] == [0, 0, 0, 0]


def test_predicted_label_without_support_counts_in_macro() -> None:
    # Predicting a label that never occurs is an error and must cost macro-F1 (as in sklearn).
    labels = LabelSet(("a", "b"))
    y_true, y_pred = np.array([0, 0]), np.array([0, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6]])
    m = compute_metrics(labels, y_true, proba, y_pred, seconds=1.0)
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))


# --- hand-checked multi-label case ------------------------------------------------------
# 3 labels, 4 docs.      true        predicted
#   doc 0              [1, 0, 1]    [1, 0, 1]   exact
#   doc 1              [0, 1, 0]    [0, 1, 1]   one false positive (label 2)
#   doc 2              [1, 1, 0]    [1, 0, 0]   one false negative (label 1)
#   doc 3              [0, 0, 1]    [0, 0, 1]   exact
# subset accuracy = 2/4; Hamming loss = 2 wrong cells / 12 = 1/6.
# label 0: tp 2 -> F1 1.  label 1: tp 1, fn 1 -> F1 2/3.  label 2: tp 2, fp 1 -> F1 4/5.
# macro-F1 = (1 + 2/3 + 4/5) / 3 = 37/45; micro: tp 5, fp 1, fn 1 -> 10/12 = 5/6.
# samples-F1 = (1 + 2/3 + 2/3 + 1) / 4 = 5/6.  label 2 as [[tn, fp], [fn, tp]] = [[1, 1], [0, 2]].
ML_LABELS = LabelSet(("x", "y", "z"), multi_label=True)
ML_TRUE = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
ML_PRED = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 0], [0, 0, 1]])
ML_PROBA = np.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.6], [0.9, 0.4, 0.1], [0.1, 0.2, 0.9]])


def test_hand_case_multi_label() -> None:
    m = compute_metrics(ML_LABELS, ML_TRUE, ML_PROBA, ML_PRED, seconds=2.0)
    assert m["multi_label"] is True
    assert m["accuracy"] == m["subset_accuracy"] == pytest.approx(0.5)
    assert m["hamming_loss"] == pytest.approx(1 / 6)
    assert m["macro_f1"] == pytest.approx(37 / 45)
    assert m["micro_f1"] == pytest.approx(5 / 6)
    assert m["samples_f1"] == pytest.approx(5 / 6)
    assert m["per_class"]["y"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    )
    assert m["confusion_matrix"]["labels"] == ["x", "y", "z"]
    assert m["confusion_matrix"]["matrix"][2] == [[1, 1], [0, 2]]


def test_multi_label_matches_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(3)
    n, k = 200, 6
    labels = LabelSet(tuple(f"t{i}" for i in range(k)), multi_label=True)
    y_true = (rng.random((n, k)) < 0.3).astype(int)
    proba = rng.random((n, k))
    y_pred = (proba > 0.5).astype(int)
    m = compute_metrics(labels, y_true, proba, y_pred, seconds=4.0)

    assert m["subset_accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["hamming_loss"] == pytest.approx(hamming_loss(y_true, y_pred))
    for avg in ("macro", "micro", "weighted", "samples"):
        expected = f1_score(y_true, y_pred, average=avg, zero_division=0)
        assert m[f"{avg}_f1"] == pytest.approx(expected)
    expected_cm = multilabel_confusion_matrix(y_true, y_pred).tolist()
    assert m["confusion_matrix"]["matrix"] == expected_cm
    # ECE over every (doc, label) cell: the probability against whether the label is true.
    assert m["ece"] == pytest.approx(expected_calibration_error(proba.ravel(), y_true.ravel()))
    json.dumps(m, allow_nan=False)


def test_multi_label_needs_y_pred() -> None:
    with pytest.raises(ValueError, match="y_pred"):
        compute_metrics(ML_LABELS, ML_TRUE, ML_PROBA, seconds=1.0)


def test_speed_and_cost_keys() -> None:
    model = CostModel(hardware_per_hour=3.6, prompt_per_1k_tokens=1.0)
    m = _hand_metrics(cost_model=model, extra_cost={"prompt_tokens": 600, "usd": 0.06})
    # 3 s * 3.6/3600 = 0.003; 600 tokens * 1/1k = 0.6; + 0.06 flat = 0.663 for 6 docs.
    assert m["cost"]["total_usd"] == pytest.approx(0.663)
    assert m["cost_per_1k"] == pytest.approx(0.663 * 1000 / 6)
    assert m["seconds"] == 3.0
    assert m["docs_per_second"] == pytest.approx(2.0)
    default = _hand_metrics()
    assert default["cost_per_1k"] == pytest.approx(CostModel().per_1k_docs(6, 3.0))
    assert (
        compute_metrics(HAND_LABELS, HAND_TRUE, HAND_PROBA, seconds=0.0)["docs_per_second"] is None
    )


def test_input_checks() -> None:
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(HAND_LABELS, HAND_TRUE[:5], HAND_PROBA, seconds=1.0)
    with pytest.raises(ValueError, match="extra_cost"):
        _hand_metrics(extra_cost={"tokens": 5})
    with pytest.raises(DocsortError, match="no documents"):
        compute_metrics(HAND_LABELS, np.array([], dtype=int), np.zeros((0, 3)), seconds=0.0)


def test_a_registered_metric_reaches_every_evaluation() -> None:
    from docsort.evaluation.metrics import METRICS, register_metric

    @register_metric("errors")
    def errors(s) -> float:
        return float((s.y_true != s.y_pred).sum())

    try:
        labels = LabelSet(("a", "b"))
        proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
        result = compute_metrics(labels, np.array([0, 1, 1]), proba, seconds=1.0)
        assert result["errors"] == 1.0 and result["accuracy"] == pytest.approx(2 / 3)
        with pytest.raises(ValueError, match="registered twice"):
            register_metric("errors")(lambda s: 0.0)
    finally:
        METRICS.pop("errors")

"""One metrics dict per evaluated model: quality, calibration, speed and cost side by side.

Every number comes from sklearn (``zero_division=0``) so results match what readers can
reproduce. Averaged F1 scores (macro/micro/weighted) use the labels that occur in the truth
or in the predictions, as sklearn does by default for single-label data: a label absent from
both has no evidence either way and would otherwise drag macro-F1 down as a fake 0. Such
labels are still listed in ``per_class`` (support 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
)

from docsort import registry
from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.models.calibration import expected_calibration_error, reliability_bins
from docsort.models.cost import CostModel

EXTRA_COST_KEYS = ("prompt_tokens", "completion_tokens", "usd")
_PROBA_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Scored:
    """What a metric sees: the labels, truth and decisions (indices, or multi-hot for
    multi-label), the probabilities, and the label indices that averages run over."""

    label_set: LabelSet
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray
    averaged: list[int]


Metric = Callable[[Scored], float]
METRICS: dict[str, Metric] = {}  # name in metrics.json -> metric; see register_metric


def register_metric(name: str) -> Callable[[Metric], Metric]:
    """Decorator: every evaluation reports ``name`` in metrics.json, computed by the decorated
    function from a ``Scored``. The extension point for a metric a team needs (recall at a
    fixed precision, a cost-weighted error); a name is registered once."""

    def wrap(metric: Metric) -> Metric:
        registry.add(METRICS, name, metric, "metric")
        return metric

    return wrap


@register_metric("accuracy")
def _accuracy(s: Scored) -> float:
    """Share of rows right (multi-label: every label of the row right, subset accuracy)."""
    return accuracy_score(s.y_true, s.y_pred)


def _f1(average: str) -> Metric:
    def f1(s: Scored) -> float:
        return f1_score(s.y_true, s.y_pred, labels=s.averaged, average=average, zero_division=0)

    return f1


for _average in ("macro", "micro", "weighted"):
    register_metric(f"{_average}_f1")(_f1(_average))


def compute_metrics(
    label_set: LabelSet,
    y_true: np.ndarray,
    proba: np.ndarray,
    y_pred: np.ndarray | None = None,
    *,
    seconds: float,
    cost_model: CostModel | None = None,
    extra_cost: dict[str, Any] | None = None,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Score predictions for ``label_set`` and return a JSON-serialisable dict.

    Single-label: ``y_true`` holds label indices ``[n]``, ``proba`` is ``[n, L]`` and
    ``y_pred`` defaults to its argmax. Multi-label: ``y_true`` and ``y_pred`` are multi-hot
    ``[n, L]`` (``y_pred`` is required because thresholds live in the model) and ``proba``
    holds per-label probabilities. ``seconds`` is the wall time to predict the ``n`` docs;
    ``extra_cost`` may give ``prompt_tokens``/``completion_tokens`` (priced by the cost
    model) and ``usd`` (a flat amount added as is, e.g. a known API bill).

    Single-label ECE bins the probability given to the predicted label (the max probability
    when ``y_pred`` is the argmax) against correctness; multi-label ECE bins every
    (doc, label) probability against whether that label is true.
    """
    n_labels = len(label_set)
    proba = _check_proba(proba, n_labels)
    if label_set.multi_label:
        y_true, y_pred = _check_multi_label(y_true, y_pred, proba)
    else:
        y_true, y_pred = _check_single_label(y_true, y_pred, proba)
    n = len(y_true)
    if n == 0:
        raise DocsortError("nothing to evaluate: the evaluation data has no documents")

    averaged = _averaged_labels(label_set, y_true, y_pred)
    result: dict[str, Any] = {
        "multi_label": label_set.multi_label,
        "n": n,
        "n_labels": n_labels,
        "n_labels_averaged": len(averaged),
    }
    scored = Scored(label_set, y_true, y_pred, proba, averaged)
    for name, metric in METRICS.items():
        result[name] = float(metric(scored))
    result["per_class"] = _per_class(label_set, y_true, y_pred)
    if label_set.multi_label:
        result.update(_multi_label_extras(label_set, y_true, y_pred))
        confidence, correct = proba.ravel(), y_true.ravel()
    else:
        result["confusion_matrix"] = _confusion(label_set, y_true, y_pred)
        confidence, correct = proba[np.arange(n), y_pred], y_pred == y_true
    result["ece"] = expected_calibration_error(confidence, correct, n_bins)
    result["reliability"] = reliability_bins(confidence, correct, n_bins)
    result.update(_speed_and_cost(n, seconds, cost_model, extra_cost))
    return result


def _check_proba(proba: np.ndarray, n_labels: int) -> np.ndarray:
    """Probabilities as floats in [0, 1]; tiny float overshoot (softmax 1.0000001) is clipped."""
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] != n_labels:
        raise ValueError(f"proba must have shape [n, {n_labels}], got {proba.shape}")
    if proba.size and (
        np.isnan(proba).any()
        or proba.min() < -_PROBA_TOLERANCE
        or proba.max() > 1 + _PROBA_TOLERANCE
    ):
        raise ValueError("proba values must lie in [0, 1]")
    return np.clip(proba, 0.0, 1.0)


def _check_single_label(
    y_true: np.ndarray, y_pred: np.ndarray | None, proba: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n, n_labels = proba.shape
    y_true = _as_indices(y_true, n, n_labels, "y_true")
    if y_pred is None:
        y_pred = proba.argmax(axis=1) if n else np.zeros(0, dtype=int)
    return y_true, _as_indices(y_pred, n, n_labels, "y_pred")


def _as_indices(values: np.ndarray, n: int, n_labels: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape [{n}] (label indices), got {arr.shape}")
    if n and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= n_labels):
        raise ValueError(f"{name} must hold integer label indices in [0, {n_labels})")
    return arr.astype(int)


def _check_multi_label(
    y_true: np.ndarray, y_pred: np.ndarray | None, proba: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if y_pred is None:
        raise ValueError("multi-label metrics need y_pred: the thresholds live in the model")
    shape = proba.shape
    return _as_multi_hot(y_true, shape, "y_true"), _as_multi_hot(y_pred, shape, "y_pred")


def _as_multi_hot(values: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != shape:
        raise ValueError(f"{name} must be multi-hot with shape {list(shape)}, got {arr.shape}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must be multi-hot: only 0 and 1")
    return arr.astype(int)


def _averaged_labels(label_set: LabelSet, y_true: np.ndarray, y_pred: np.ndarray) -> list[int]:
    """Label indices that occur in the truth or the predictions (all labels if none do)."""
    if label_set.multi_label:
        seen = np.flatnonzero(y_true.sum(axis=0) + y_pred.sum(axis=0))
    else:
        seen = np.union1d(y_true, y_pred)
    return [int(i) for i in seen] if len(seen) else list(range(len(label_set)))


def _per_class(
    label_set: LabelSet, y_true: np.ndarray, y_pred: np.ndarray
) -> dict[str, dict[str, float | int]]:
    """Precision/recall/F1/support for every label, including those with zero support."""
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(len(label_set))), zero_division=0
    )
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(label_set.names)
    }


def _confusion(label_set: LabelSet, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Single-label confusion matrix: rows are true labels, columns predicted."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(label_set))))
    return {"labels": list(label_set.names), "matrix": matrix.tolist()}


def _multi_label_extras(
    label_set: LabelSet, y_true: np.ndarray, y_pred: np.ndarray
) -> dict[str, Any]:
    """Subset accuracy, Hamming loss, samples-F1 and one [[tn, fp], [fn, tp]] per label."""
    per_label = multilabel_confusion_matrix(y_true, y_pred, labels=list(range(len(label_set))))
    return {
        "subset_accuracy": float(accuracy_score(y_true, y_pred)),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
        "samples_f1": float(f1_score(y_true, y_pred, average="samples", zero_division=1)),
        "confusion_matrix": {"labels": list(label_set.names), "matrix": per_label.tolist()},
    }


def _speed_and_cost(
    n: int, seconds: float, cost_model: CostModel | None, extra_cost: dict[str, Any] | None
) -> dict[str, Any]:
    """Throughput and USD per 1,000 docs; ``docs_per_second`` is None for a zero-time run."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
    extra = dict(extra_cost or {})
    unknown = sorted(set(extra) - set(EXTRA_COST_KEYS))
    if unknown:
        raise ValueError(f"extra_cost has unknown keys {unknown}; use {list(EXTRA_COST_KEYS)}")
    model = cost_model or CostModel()
    prompt = int(extra.get("prompt_tokens", 0))
    completion = int(extra.get("completion_tokens", 0))
    usd = float(extra.get("usd", 0.0))
    per_1k = model.per_1k_docs(n, seconds, prompt, completion) + usd * 1000.0 / n
    return {
        "seconds": float(seconds),
        "docs_per_second": n / seconds if seconds > 0 else None,
        "cost_per_1k": per_1k,
        "cost": {
            "total_usd": per_1k * n / 1000.0,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "extra_usd": usd,
            "cost_model": model.to_dict(),
        },
    }


def compute_score_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    seconds: float,
    cost_model: CostModel | None = None,
    max_levels: int = 20,
) -> dict[str, Any]:
    """Metrics of a scoring model (the ``pair`` kind): Pearson r (what phrase-matching tasks
    are judged by), Spearman rho (the ranking alone), MSE and MAE on the data's own scale, and
    when the truth has at most ``max_levels`` distinct values the mean predicted score and
    count per true level. A constant prediction has no correlation: r and rho are 0 then."""
    from scipy.stats import pearsonr, spearmanr

    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-d")
    n = len(y_true)
    if n == 0:
        raise DocsortError("nothing to evaluate: the evaluation data has no rows")
    varied = n > 1 and np.ptp(y_true) > 0 and np.ptp(y_pred) > 0
    result: dict[str, Any] = {
        "task": "scores",
        "n": n,
        "pearson": float(pearsonr(y_true, y_pred)[0]) if varied else 0.0,
        "spearman": float(spearmanr(y_true, y_pred)[0]) if varied else 0.0,
        "mse": float(np.mean((y_true - y_pred) ** 2)),
        "mae": float(np.mean(np.abs(y_true - y_pred))),
        "truth_mean": float(y_true.mean()),
        "predicted_mean": float(y_pred.mean()),
    }
    levels = np.unique(y_true)
    if len(levels) <= max_levels:
        result["per_level"] = {
            f"{level:g}": {
                "count": int((y_true == level).sum()),
                "predicted_mean": float(y_pred[y_true == level].mean()),
                "predicted_std": float(y_pred[y_true == level].std()),
            }
            for level in levels
        }
    result.update(_speed_and_cost(n, seconds, cost_model, None))
    return result

"""Calibration: does a model's stated confidence match how often it is right?

Bins are equal-width over [0, 1] and, like sklearn's ``calibration_curve``, right-closed:
bin ``i`` holds ``lower < c <= upper`` and the first bin also holds ``c == 0``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _validate(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> tuple[np.ndarray, ...]:
    conf = np.asarray(confidence, dtype=float).ravel()
    hit = np.asarray(correct, dtype=float).ravel()
    if conf.shape != hit.shape:
        raise ValueError(f"confidence has {conf.size} values but correct has {hit.size}")
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    if conf.size and (np.isnan(conf).any() or conf.min() < 0 or conf.max() > 1):
        raise ValueError("confidence values must lie in [0, 1]")
    return conf, hit


def _bin_index(conf: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges and each value's bin, right-closed as in sklearn's calibration_curve."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return edges, np.searchsorted(edges[1:-1], conf, side="left")


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15
) -> list[dict[str, Any]]:
    """Per-bin count, accuracy and mean confidence, for reliability diagrams and reports.

    Every bin is listed so plots keep a fixed x-axis; an empty bin has ``count`` 0 and
    ``accuracy``/``confidence`` set to ``None`` (JSON has no NaN).
    """
    conf, hit = _validate(confidence, correct, n_bins)
    edges, idx = _bin_index(conf, n_bins)
    counts = np.bincount(idx, minlength=n_bins)
    hit_sums = np.bincount(idx, weights=hit, minlength=n_bins)
    conf_sums = np.bincount(idx, weights=conf, minlength=n_bins)
    bins = []
    for i in range(n_bins):
        count = int(counts[i])
        bins.append(
            {
                "lower": float(edges[i]),
                "upper": float(edges[i + 1]),
                "count": count,
                "accuracy": float(hit_sums[i] / count) if count else None,
                "confidence": float(conf_sums[i] / count) if count else None,
            }
        )
    return bins


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15
) -> float:
    """Count-weighted mean of |accuracy - confidence| over equal-width bins (0 for no data)."""
    conf, _ = _validate(confidence, correct, n_bins)
    if conf.size == 0:
        return 0.0
    gaps = sum(
        b["count"] * abs(b["accuracy"] - b["confidence"])
        for b in reliability_bins(confidence, correct, n_bins)
        if b["count"]
    )
    return float(gaps / conf.size)


# -- temperature scaling --------------------------------------------------------------------
# One scalar T divides every logit: accuracy and rankings stay the same, only confidence moves
# (Guo et al., 2017). Working from probabilities keeps it model-agnostic: for softmax outputs
# softmax(log p / T) == softmax(logits / T); for one-vs-rest sigmoids, sigmoid(logit(p) / T).

_EPS = 1e-12


def _logits(proba: np.ndarray, multi_label: bool) -> np.ndarray:
    p = np.clip(np.asarray(proba, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p) if multi_label else np.log(p)


def apply_temperature(proba: np.ndarray, temperature: float, multi_label: bool) -> np.ndarray:
    """Probabilities with their logits divided by ``temperature`` (1 changes nothing)."""
    if temperature == 1.0 or len(proba) == 0:
        return proba
    z = _logits(proba, multi_label) / temperature
    if multi_label:
        return 1.0 / (1.0 + np.exp(-z))
    z -= z.max(axis=1, keepdims=True)
    exp = np.exp(z)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, y: np.ndarray, multi_label: bool) -> float:
    """The temperature that minimises the negative log-likelihood of ``y`` (class indices, or a
    multi-hot matrix for multi-label) under ``proba``; searched over log T in [1/20, 20]."""
    from scipy.optimize import minimize_scalar

    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    if len(proba) == 0:
        raise ValueError("no rows to fit a temperature on")

    def nll(log_t: float) -> float:
        p = np.clip(apply_temperature(proba, float(np.exp(log_t)), multi_label), _EPS, 1 - _EPS)
        if multi_label:
            return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())
        return float(-np.log(p[np.arange(len(y)), y]).mean())

    best = minimize_scalar(nll, bounds=(-np.log(20), np.log(20)), method="bounded")
    return float(np.exp(best.x))

"""Per-label decision thresholds for multi-label models, chosen on validation data."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

CANDIDATES = np.round(np.arange(0.05, 0.951, 0.05), 2)


def tune_thresholds(proba: np.ndarray, y_true: np.ndarray, default: float = 0.5) -> np.ndarray:
    """For each label, the threshold that maximises that label's F1 on validation rows.

    A label absent from the validation rows keeps the global threshold that maximises micro-F1,
    so rare labels are not given an arbitrary cut.
    """
    global_scores = [
        f1_score(y_true, (proba >= t).astype(int), average="micro", zero_division=0)
        for t in CANDIDATES
    ]
    global_best = float(CANDIDATES[int(np.argmax(global_scores))]) if len(proba) else default
    thresholds = np.full(proba.shape[1], global_best)
    for j in range(proba.shape[1]):
        if y_true[:, j].sum() == 0:
            continue
        scores = [
            f1_score(y_true[:, j], (proba[:, j] >= t).astype(int), zero_division=0)
            for t in CANDIDATES
        ]
        thresholds[j] = float(CANDIDATES[int(np.argmax(scores))])
    return thresholds

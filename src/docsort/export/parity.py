"""How closely an exported model answers like its source, on the same rows, and how fast each is.

Both models predict through ``predict_proba`` (long-document windows and temperature included,
as ``predict`` serves them); the decisions compared are ``decide``'s (argmax, or the multi-label
thresholds: a multi-label row agrees when its whole label set does).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from docsort.models.base import Classifier

WARM_UP = 8  # rows each model predicts once before it is timed (lazy set-up, first-call costs)


def timed_proba(model: Classifier, texts: Sequence[str]) -> tuple[np.ndarray, float]:
    """Probabilities for ``texts`` and the seconds they took, after a short warm-up."""
    model.predict_proba(list(texts[:WARM_UP]))
    start = time.perf_counter()
    proba = model.predict_proba(list(texts))
    return proba, time.perf_counter() - start


def compare(source: Classifier, exported: Classifier, texts: Sequence[str]) -> dict[str, Any]:
    """Label agreement, max and mean |Δp| over every probability, and docs/s of both."""
    reference, source_seconds = timed_proba(source, texts)
    proba, exported_seconds = timed_proba(exported, texts)
    same = source.decide(reference) == exported.decide(proba)
    agreeing = same.all(axis=1) if same.ndim == 2 else same
    delta = np.abs(reference - proba)
    n = len(texts)
    return {
        "rows": n,
        "label_agreement": round(float(agreeing.mean()), 6) if n else None,
        "disagreeing_rows": int((~agreeing).sum()),
        "max_abs_dp": float(delta.max()) if n else None,
        "mean_abs_dp": float(delta.mean()) if n else None,
        "docs_per_s": {
            "source": round(n / source_seconds, 1) if source_seconds else None,
            "onnx": round(n / exported_seconds, 1) if exported_seconds else None,
        },
        "speedup": round(source_seconds / exported_seconds, 2) if exported_seconds else None,
    }

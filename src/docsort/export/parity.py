"""How closely an exported model answers like its source, on the same rows, and how fast each is.

Both models predict through ``predict_proba`` (long-document windows and temperature included,
as ``predict`` serves them); the decisions compared are ``decide``'s (argmax, or the multi-label
thresholds: a multi-label row agrees when its whole label set does). A pair scorer is compared
by ``compare_scores``: Pearson r between the two models' scores on the same rows, and each
model's Pearson r with the rows' own scores when they have them (the task metric).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from docsort.data.dataset import Dataset
from docsort.models.base import Classifier, Scorer

WARM_UP = 8  # rows each model predicts once before it is timed (lazy set-up, first-call costs)


def timed_proba(model: Classifier, texts: Sequence[str]) -> tuple[np.ndarray, float]:
    """Probabilities for ``texts`` and the seconds they took, after a short warm-up."""
    model.predict_proba(list(texts[:WARM_UP]))
    start = time.perf_counter()
    proba = model.predict_proba(list(texts))
    return proba, time.perf_counter() - start


def compare(source: Classifier, exported: Classifier, texts: Sequence[str]) -> dict[str, Any]:
    """Label agreement, max and mean |Δp| over every probability, and docs/s of both; for a
    model that routes (a cascade), the share of rows answered by the same stage."""
    reference, source_seconds = timed_proba(source, texts)
    proba, exported_seconds = timed_proba(exported, texts)
    routes = _same_stages(source, exported, texts)
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
        **routes,
    }


def _same_stages(source: Classifier, exported: Classifier, texts: Sequence[str]) -> dict:
    """For a routing model: how many rows each model's stages answered, and the share of rows
    the same stage answered in both (empty for models that do not route)."""
    _, trace = source._raw_proba_traced(list(texts))
    stage = getattr(trace, "stage", None)
    if stage is None:
        return {}
    other = exported._raw_proba_traced(list(texts))[1].stage
    names = source.answer_names()  # type: ignore[attr-defined]

    def counts(stages: np.ndarray) -> dict[str, int]:
        return {names[k]: int((stages == k).sum()) for k in range(len(names))}

    return {
        "stage_agreement": round(float((stage == other).mean()), 6) if len(texts) else None,
        "stages": {"source": counts(stage), "onnx": counts(other)},
    }


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def timed_scores(model: Scorer, data: Dataset) -> tuple[np.ndarray, float]:
    model.predict_scores(data.subset(np.arange(min(WARM_UP, len(data)))))
    start = time.perf_counter()
    scores = model.predict_scores(data)
    return np.asarray(scores, dtype=np.float64), time.perf_counter() - start


def compare_scores(source: Scorer, exported: Scorer, data: Dataset) -> dict[str, Any]:
    """Pearson r between the exported and the source scores, max and mean |Δscore|, the task
    Pearson r of both (when ``data`` has scores) and docs/s of both."""
    reference, source_seconds = timed_scores(source, data)
    scores, exported_seconds = timed_scores(exported, data)
    delta = np.abs(reference - scores)
    n = len(data)
    task: dict[str, Any] | None = None
    if data.labels is not None:
        truth = data.scores()
        task = {
            "source": _pearson(truth, reference),
            "onnx": _pearson(truth, scores),
        }
        if task["source"] is not None and task["onnx"] is not None:
            task["difference"] = abs(task["source"] - task["onnx"])
    return {
        "rows": n,
        "pearson_r": _pearson(reference, scores),
        "max_abs_dscore": float(delta.max()) if n else None,
        "mean_abs_dscore": float(delta.mean()) if n else None,
        "task_pearson": task,
        "docs_per_s": {
            "source": round(n / source_seconds, 1) if source_seconds else None,
            "onnx": round(n / exported_seconds, 1) if exported_seconds else None,
        },
        "speedup": round(source_seconds / exported_seconds, 2) if exported_seconds else None,
    }

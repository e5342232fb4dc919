"""A cascade's evaluation: what each stage answered and cost, every stage alone on the same
rows, and the threshold sweep. Apart from the kind, which only routes documents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from docsort.models.cost import CostModel
from docsort.models.kinds.cascade import CascadeClassifier, Routed, threshold_sweep


def evaluation_breakdown(
    model: CascadeClassifier,
    routed: Routed,
    texts: Sequence[str],
    y_true: np.ndarray,
    cost_model: CostModel | None = None,
    complete: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    """Per stage: the share it answered, its accuracy on those rows, its seconds and cost; the
    threshold sweep; the cascade's total USD. With ``complete``, each stage also scores the rows
    it was not sent (after the timed pass, which the cascade's own numbers come from), giving
    every stage's accuracy and speed alone on the same rows and the sweep over them."""
    n, n_stages = len(texts), len(model.stages_)
    prices = model.stage_cost_models(cost_model)
    usd = [prices[k].usage(float(routed.seconds[k]), routed.tokens[k]) for k in range(n_stages)]
    stages = []
    full_probas, alone_usd = [], []
    for k in range(n_stages):
        answered = routed.stage == k
        hits = routed.proba[answered].argmax(axis=1) == y_true[answered]
        row: dict[str, Any] = {
            "name": model.stage_names_[k],
            "kind": model.stages_[k].kind,
            "threshold": (model.stage_thresholds_[k] if k < len(model.stage_thresholds_) else None),
            "share": float(answered.mean()) if n else 0.0,
            "reached": len(routed.seen[k]) / n if n else 0.0,
            "n_answered": int(answered.sum()),
            "n_reached": len(routed.seen[k]),
            "accuracy": float(hits.mean()) if answered.any() else None,
            "seconds": float(routed.seconds[k]),
            "tokens": routed.tokens[k],
            "cost_per_1k": float(usd[k] * 1000 / n) if n else 0.0,
        }
        if complete:
            rest = np.setdiff1d(np.arange(n), routed.seen[k])
            proba, seconds, tokens = model._run_stage(k, [texts[i] for i in rest])
            full = np.zeros((n, len(model.labels_)))
            full[routed.seen[k]] = routed.stage_proba[k]
            full[rest] = proba
            full_probas.append(full)
            seconds += float(routed.seconds[k])
            tokens = {
                key: tokens.get(key, 0) + routed.tokens[k].get(key, 0)
                for key in {*tokens, *routed.tokens[k]}
            }
            alone_usd.append(prices[k].usage(seconds, tokens))
            row.update(
                {
                    "alone_accuracy": float((full.argmax(axis=1) == y_true).mean()),
                    "alone_seconds": seconds,
                    "alone_docs_per_second": n / seconds if seconds > 0 else None,
                    "alone_cost_per_1k": alone_usd[-1] * 1000 / n if n else 0.0,
                }
            )
        stages.append(row)
    human = model.human_
    if human:
        stages.append(_human_row(human, routed, y_true, n))
        usd.append(human["usd_per_doc"] * stages[-1]["n_answered"])
    sweep: list[dict[str, Any]] = []
    if complete and n:
        early = full_probas if human else full_probas[:-1]
        correct, per_doc = model.with_people(
            [p.argmax(axis=1) == y_true for p in full_probas], list(np.array(alone_usd) / n), n
        )
        sweep = threshold_sweep(
            [model.confidence_of(p) for p in early],
            correct,
            per_doc,
            model.stage_thresholds_,
            model.stage_names_,
        )
    return stages, sweep, float(sum(usd))


def _human_row(human: dict[str, Any], routed: Routed, y_true: np.ndarray, n: int) -> dict[str, Any]:
    """The human stage: the rows sent to people, what they cost, and how often the last model
    stage's suggestion for them was right (``suggestion_accuracy``; their own answers are
    not known here)."""
    sent = routed.stage == len(routed.seen)
    guessed = routed.proba[sent].argmax(axis=1) == y_true[sent]
    return {
        "name": human["name"],
        "kind": "human",
        "threshold": None,
        "share": float(sent.mean()) if n else 0.0,
        "reached": float(sent.mean()) if n else 0.0,
        "n_answered": int(sent.sum()),
        "n_reached": int(sent.sum()),
        "accuracy": None,
        "suggestion_accuracy": float(guessed.mean()) if sent.any() else None,
        "seconds": 0.0,
        "tokens": {},
        "cost_per_1k": human["usd_per_doc"] * float(sent.sum()) * 1000 / n if n else 0.0,
    }

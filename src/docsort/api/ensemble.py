"""Several saved models served as one (the ``ensemble`` kind), with no training rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from docsort.models.base import Model


def ensemble(
    model_dirs: Sequence[str | Path],
    *,
    weights: Sequence[float] | None = None,
    out: str | Path | None = None,
) -> Model:
    """The weighted mean of the saved models' probabilities, or of their scores for pair
    models; with ``out`` the ensemble, its members copied inside, is saved there."""
    from docsort.models.kinds.ensemble import build_ensemble

    model = build_ensemble(model_dirs, weights)
    if out is not None:
        model.save(out)
    return model

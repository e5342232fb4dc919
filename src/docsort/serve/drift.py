"""Drift: is the traffic still like the documents the model was made for?

The service keeps the last ``window`` predictions it served and compares them with a
*reference*: the model's own predictions on rows like the ones it should see (``docsort serve
--drift-reference DATA``: e.g. its test set), or else the first ``window`` predictions it
served. Not its training rows: a model is surer of the rows it was fitted on (tfidf on 240
arXiv rows: mean top probability 0.78 on them, 0.63 on held-out rows of the same source,
confidence PSI 1.4), so every window of new traffic would look drifted. Four signals, each
computed from the predictions alone, so no label is needed:

- **confidence**: the distribution of each prediction's top probability: the population
  stability index (PSI) over ten bins cut at the reference's deciles, and the two-sample
  Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``) of the two samples;
- **labels**: the PSI of the predicted label shares;
- **stages**: the PSI of the answering stages' shares (cascades);
- **review**: the share answered by a human stage or escalated to the last stage, against the
  share the cascade's selection allows (its ``max_escalation_rate``, else the one-sided 99 %
  Clopper-Pearson bound of the share it escalated on the selection rows): above it, the
  cascade is spending more than it promised, and the service logs a warning.

PSI = Σ (p − q) · ln(p / q) over the bins, with 0.5 added to each count so an empty bin does
not make it infinite; 0.1 is the customary "moderate" and 0.25 the "significant" shift.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger("docsort.serve")

PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
KS_ALPHA = 0.01  # a KS p-value below this counts as a shift
MIN_ROWS = 50  # fewer predictions in the window: too few to compare
DEFAULT_WINDOW = 500
REFERENCE_ROWS = 2000  # rows of the reference data predicted at start at most
BUDGET_CONFIDENCE = 0.99
BINS = 10


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two count vectors over the same bins (0.5 smoothing)."""
    p = np.asarray(actual, dtype=float) + 0.5
    q = np.asarray(expected, dtype=float) + 0.5
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((p - q) * np.log(p / q)))


def counts_over(names: Sequence[str], values: Iterable[str]) -> list[int]:
    """Counts of ``values`` over ``names`` (a value not among them counts in a last bin)."""
    seen = Counter(values)
    known = [seen.pop(name, 0) for name in names]
    return [*known, sum(seen.values())]


@dataclass
class Reference:
    """What the model's predictions look like on rows like its training data."""

    confidence: np.ndarray  # top probability of each reference prediction
    label_shares: dict[str, float]
    stage_shares: dict[str, float] = field(default_factory=dict)
    escalation_budget: float | None = None  # share escalated (or to people) allowed
    escalated_names: tuple[str, ...] = ()  # the stages whose answers count as escalated
    source: str = ""

    @property
    def edges(self) -> np.ndarray:
        """Inner bin edges: the reference confidence's deciles."""
        return np.unique(np.quantile(self.confidence, np.linspace(0, 1, BINS + 1)[1:-1]))

    @classmethod
    def from_rows(
        cls, rows: Sequence[Mapping[str, Any]], model: Any = None, source: str = ""
    ) -> Reference:
        """The reference from prediction rows (as ``docsort predict`` writes them) and, for a
        cascade, the escalation its selection allows."""
        if not rows:
            raise ValueError("a drift reference needs at least one prediction")
        labels = [_label(row) for row in rows]
        stages = [row["stage"] for row in rows if row.get("stage") is not None]
        budget, escalated = escalation_budget(model)
        return cls(
            confidence=np.array([float(row["confidence"]) for row in rows]),
            label_shares=_shares(labels),
            stage_shares=_shares(stages),
            escalation_budget=budget,
            escalated_names=escalated,
            source=source,
        )


def escalation_budget(model: Any) -> tuple[float | None, tuple[str, ...]]:
    """A cascade's allowed share of escalated documents (to people, or else to its last
    stage), and the names of the stages that count; ``(None, ())`` for other models."""
    if model is None or not model.capabilities().selects_thresholds:
        return None, ()
    budget, last = model.escalation_budget(BUDGET_CONFIDENCE)
    return (budget, (last,)) if budget is not None else (None, ())


class DriftMonitor:
    """The last ``window`` served predictions against a reference (``None``: the first
    ``window`` predictions observed become it); thread-safe."""

    def __init__(
        self, reference: Reference | None = None, window: int = DEFAULT_WINDOW, model: Any = None
    ) -> None:
        if window < MIN_ROWS:
            raise ValueError(f"a drift window holds at least {MIN_ROWS} predictions")
        self.reference = reference
        self.window = window
        self._model = model  # for the escalation budget of a reference made from traffic
        self._baseline: list[Mapping[str, Any]] = []
        self._rows: deque[tuple[float, str, str | None]] = deque(maxlen=window)
        self._lock = threading.Lock()
        self._over_budget = False

    def observe(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add served prediction rows; warns (once per crossing) when the window escalates more
        than the cascade's budget."""
        with self._lock:
            for row in rows:
                if self.reference is None:  # still collecting the baseline
                    self._baseline.append(row)
                    if len(self._baseline) == self.window:
                        source = f"the first {self.window} predictions served"
                        self.reference = Reference.from_rows(self._baseline, self._model, source)
                        self._baseline = []
                    continue
                self._rows.append((float(row["confidence"]), _label(row), row.get("stage")))
            over = self._escalation_over_budget()
            crossed, self._over_budget = over and not self._over_budget, over
        if crossed:
            report = self.report()
            log.warning(
                "the cascade escalated %.1f%% of the last %d documents, more than the %.1f%% "
                "its thresholds were chosen for: traffic may have drifted",
                100 * report["review"]["share"],
                report["rows"],
                100 * report["review"]["budget"],
            )

    def _escalation_over_budget(self) -> bool:
        if self.reference is None:
            return False
        budget = self.reference.escalation_budget
        if budget is None or len(self._rows) < MIN_ROWS:
            return False
        escalated = sum(1 for _, _, stage in self._rows if stage in self.reference.escalated_names)
        return escalated / len(self._rows) > budget

    def report(self) -> dict[str, Any]:
        """The four signals on the current window (``None`` where it is too small)."""
        with self._lock:
            rows, ref, collected = list(self._rows), self.reference, len(self._baseline)
        out: dict[str, Any] = {
            "rows": len(rows),
            "window": self.window,
            "reference": (
                {"rows": len(ref.confidence), "source": ref.source}
                if ref is not None
                else {
                    "rows": collected,
                    "source": f"collecting the first {self.window} predictions served",
                }  # fmt: skip
            ),
            "min_rows": MIN_ROWS,
        }
        if ref is None or len(rows) < MIN_ROWS:
            return {**out, "drifted": None, "confidence": None, "labels": None, "stages": None,
                    "review": None}  # fmt: skip
        from scipy.stats import ks_2samp

        confidence = np.array([c for c, _, _ in rows])
        edges = ref.edges
        expected = np.bincount(np.searchsorted(edges, ref.confidence, side="right"),
                               minlength=len(edges) + 1)  # fmt: skip
        actual = np.bincount(np.searchsorted(edges, confidence, side="right"),
                             minlength=len(edges) + 1)  # fmt: skip
        ks = ks_2samp(ref.confidence, confidence)
        names = list(ref.label_shares)
        n_ref = len(ref.confidence)
        label_psi = psi(
            [*(ref.label_shares[n] * n_ref for n in names), 0.0],
            counts_over(names, (label for _, label, _ in rows)),
        )
        stages = [stage for _, _, stage in rows if stage is not None]
        stage_psi = None
        if ref.stage_shares and stages:
            stage_names = list(ref.stage_shares)
            stage_psi = psi(
                [*(ref.stage_shares[n] * n_ref for n in stage_names), 0.0],
                counts_over(stage_names, stages),
            )
        review = None
        if ref.escalated_names:
            share = sum(1 for s in stages if s in ref.escalated_names) / len(rows)
            review = {
                "stages": list(ref.escalated_names),
                "share": share,
                "reference_share": sum(ref.stage_shares.get(n, 0.0) for n in ref.escalated_names),
                "budget": ref.escalation_budget,
                "over_budget": ref.escalation_budget is not None and share > ref.escalation_budget,
            }
        confidence_psi = psi(expected, actual)
        drifted = (
            confidence_psi > PSI_SIGNIFICANT
            or float(ks.pvalue) < KS_ALPHA
            or label_psi > PSI_SIGNIFICANT
            or (stage_psi is not None and stage_psi > PSI_SIGNIFICANT)
            or bool(review and review["over_budget"])
        )
        return {
            **out,
            "drifted": drifted,
            "confidence": {
                "psi": confidence_psi,
                "ks_statistic": float(ks.statistic),
                "ks_pvalue": float(ks.pvalue),
                "mean": float(confidence.mean()),
                "reference_mean": float(ref.confidence.mean()),
            },
            "labels": {"psi": label_psi},
            "stages": None if stage_psi is None else {"psi": stage_psi},
            "review": review,
        }


def monitor_for(
    model: Any, source: str | None = None, window: int = DEFAULT_WINDOW
) -> DriftMonitor | None:
    """A monitor for ``model``: its reference the model's predictions on up to
    ``REFERENCE_ROWS`` rows of ``source`` (a sample, fixed seed), or without ``source`` the
    first ``window`` predictions served. ``None`` for a pair model (scores: no labels or
    confidences to compare)."""
    from pathlib import Path

    from docsort import api

    if model.capabilities().scores:
        return None
    if source is None:
        return DriftMonitor(None, window, model)
    if not (str(source).startswith("builtin:") or Path(source).exists()):
        raise api.DocsortError(f"--drift-reference {source!r}: no such file or folder")
    columns = api.Columns().or_trained(model.input_spec_)
    data = api.read_rows(source, columns, labelled=False)
    if len(data) == 0:
        raise api.DocsortError(f"--drift-reference {source!r} holds no text to predict")
    keep = np.sort(np.random.default_rng(0).permutation(len(data))[:REFERENCE_ROWS])
    texts = [data.texts[i] for i in keep]  # read as the model reads its columns
    rows = api.run_predict(api.PredictRequest(model=model, data=texts)).rows
    source_name = f"{source} ({len(keep)} rows)"
    return DriftMonitor(Reference.from_rows(rows, model, source=source_name), window, model)


def _label(row: Mapping[str, Any]) -> str:
    if "label" in row:
        return str(row["label"])
    return "|".join(sorted(row.get("labels") or [])) or "(none)"


def _shares(values: Sequence[str]) -> dict[str, float]:
    counts = Counter(values)
    total = sum(counts.values())
    return {name: count / total for name, count in sorted(counts.items())} if total else {}


__all__ = ["DriftMonitor", "Reference", "escalation_budget", "monitor_for", "psi"]

"""The label-error audit, as every entry point asks for it (``docsort audit``).

``run_audit`` checks the request once (kind and parameters, folds against the rows each label
has, the columns, ``--out``), then trains the kind on k−1 stratified folds through the same
``prepare_train``/``fit`` as ``docsort train`` and predicts the held-out fold, so every row gets
a probability from a model that never saw it. ``docsort.quality.audit`` hands those to
cleanlab's confident learning and writes the suspects, the report and a cleaned copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from docsort.api.positions import Positioned, read_positioned
from docsort.api.prediction import run_batched
from docsort.api.rows import Columns, Source, notes_on, read_labels
from docsort.api.training import TrainRequest, fit, prepare_train
from docsort.data.dataset import Dataset
from docsort.data.labels import LabelSet, _cut
from docsort.errors import DocsortError
from docsort.io import atomic_dir, check_replaceable
from docsort.models.base import Runtime, is_number
from docsort.progress import progress_bar
from docsort.quality import audit as quality

AUDIT = "a docsort audit"
MAX_FOLDS = 20
TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".json", ".parquet", ".pq")


def is_audit_dir(path: Path) -> bool:
    """A folder an earlier audit wrote, which a new audit may replace whole."""
    return (path / quality.SUMMARY).is_file() and (path / quality.SUSPECTS).is_file()


@dataclass
class AuditRequest:
    """Find rows whose label looks wrong: out-of-fold probabilities of a ``kind`` (default
    tfidf) trained ``folds`` times, then confident learning. ``fix`` (``drop`` or ``relabel``)
    also writes a cleaned copy of the input into ``out``."""

    data: Source
    out: str | Path | None = None
    kind: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    config: str | Path | None = None
    columns: Columns = field(default_factory=Columns)
    labels: str | Path | LabelSet | None = None
    folds: int = 5
    seed: int = 0
    fix: str | None = None
    filter_by: str = "prune_by_noise_rate"
    rank_by: str = "self_confidence"
    top: int = 20  # suspects shown in report.md (all are in suspects.csv)
    runtime: Runtime | None = None


@dataclass
class AuditResult:
    findings: quality.Findings
    summary: dict[str, Any]
    data: Dataset
    proba: np.ndarray  # out-of-fold probabilities, in data order
    positions: np.ndarray
    cleaned: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def suspects(self) -> list[quality.Suspect]:
        return self.findings.suspects


def run_audit(request: AuditRequest) -> AuditResult:
    """Check ``request``, compute out-of-fold probabilities, find and write the suspects."""
    _check_options(request)
    if request.out is not None:  # before any training: a wrong --out costs a second
        check_replaceable(request.out, is_audit_dir, AUDIT)
    labels = read_labels(request.labels)
    read = read_positioned(request.data, request.columns, labels=labels)
    data = read.data
    if data.multi_label:
        raise DocsortError(
            f"{_name(request.data)} is multi-label: docsort audit checks single-label data "
            "only (cleanlab's multi-label audit is not wired in yet)"
        )
    # the kind, its parameters and the options, checked once on all rows before any fold
    plan = prepare_train(_fold_request(request, data))
    kind = plan.model.kind
    if plan.model.capabilities().scores:
        raise DocsortError(
            f"the {kind} model gives scores, not label probabilities: audit a classifier kind"
        )
    _check_folds(data, request.folds)
    notes = notes_on(data, _name(request.data))
    proba = out_of_fold(request, data)
    assert data.label_set is not None
    names, given, proba = _present_labels(data, proba)
    findings = quality.find_suspects(
        given, proba, names, data.texts, read.positions,
        filter_by=request.filter_by, rank_by=request.rank_by,
    )  # fmt: skip
    cleaned = _cleaned(read, findings, request)
    summary = quality.summarise(
        findings,
        names,
        given,
        {
            "source": _name(request.data),
            "kind": kind,
            "params": plan.model.get_params(),
            "folds": request.folds,
            "seed": request.seed,
            "skipped": data.skipped,
            "fix": request.fix,
            "cleaned_file": cleaned[0] if cleaned else None,
            "cleaned_rows": len(cleaned[1]) if cleaned else None,
        },
    )
    if request.out is not None:
        with atomic_dir(request.out, replaces=is_audit_dir, what=AUDIT) as folder:
            quality.write_audit(
                Path(folder), findings, summary, title=_name(request.data), top=request.top,
                cleaned=cleaned,
            )  # fmt: skip
    return AuditResult(
        findings, summary, data, proba, read.positions, cleaned[1] if cleaned else None, notes
    )


def out_of_fold(request: AuditRequest, data: Dataset) -> np.ndarray:
    """Each row's probabilities from the model trained on the other ``folds`` − 1 folds
    (stratified, seeded), columns in ``data.label_set`` order."""
    from sklearn.model_selection import StratifiedKFold

    assert data.label_set is not None
    names = list(data.label_set.names)
    y = data.targets()
    proba = np.zeros((len(data), len(names)), dtype=np.float64)
    splits = StratifiedKFold(n_splits=request.folds, shuffle=True, random_state=request.seed)
    with progress_bar("out-of-fold", total=request.folds) as advance:
        for train_idx, held_idx in splits.split(np.zeros(len(y)), y):
            plan = prepare_train(_fold_request(request, data.subset(train_idx)))
            model = fit(plan)
            part = run_batched(model, data.subset(held_idx).texts, description="scoring").proba
            order = [model.labels_.names.index(n) for n in names]
            proba[held_idx] = part[:, order]
            advance(1)
    return proba


def _fold_request(request: AuditRequest, rows: Dataset) -> TrainRequest:
    return TrainRequest(
        data=rows,
        kind=request.kind,
        params=dict(request.params),
        config=request.config,
        columns=request.columns,
        seed=request.seed,
        runtime=request.runtime,
    )


def _present_labels(data: Dataset, proba: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The labels some row has (a labels file may list more), the rows' label indices among
    them and the probabilities of those labels only, renormalised: confident learning counts
    given labels, and a label no row has cannot be one."""
    assert data.label_set is not None
    counts = data.label_counts()
    keep = [i for i, n in enumerate(data.label_set.names) if counts[n]]
    names = [data.label_set.names[i] for i in keep]
    position = {n: j for j, n in enumerate(names)}
    given = np.array([position[label] for label in data.labels or []], dtype=np.int64)
    part = proba[:, keep]
    totals = part.sum(axis=1, keepdims=True)
    return names, given, np.divide(part, totals, out=np.full_like(part, 1 / len(keep)),
                                   where=totals > 0)  # fmt: skip


def _check_options(request: AuditRequest) -> None:
    folds = request.folds
    if not (is_number(folds) and float(folds).is_integer() and 2 <= folds <= MAX_FOLDS):
        raise DocsortError(f"--folds must be a whole number from 2 to {MAX_FOLDS}, not {folds}")
    if request.fix is not None and request.fix not in quality.FIXES:
        raise DocsortError(f"fix must be drop or relabel, not {request.fix!r}")
    if request.filter_by not in quality.FILTERS:
        raise DocsortError(
            f"--filter-by must be one of {', '.join(quality.FILTERS)}, not {request.filter_by!r}"
        )
    if request.rank_by not in quality.RANKINGS:
        raise DocsortError(
            f"--rank-by must be one of {', '.join(quality.RANKINGS)}, not {request.rank_by!r}"
        )
    if not (is_number(request.top) and request.top >= 0):
        raise DocsortError(f"--top must be 0 or more, not {request.top}")


def _check_folds(data: Dataset, folds: int) -> None:
    """Every label needs a row in each fold, or some folds' models would not know it."""
    counts = data.label_counts()
    if len(counts) < 2:
        raise DocsortError(
            f"{data.name or 'the data'} has one label only: an audit compares labels, it needs "
            "two or more"
        )
    label, fewest = min(counts.items(), key=lambda kv: (kv[1], kv[0]))
    if fewest < folds:
        raise DocsortError(
            f"label {_cut(label)} has {fewest} row(s): with --folds {folds} each label needs at "
            f"least {folds} (use --folds {max(2, fewest)} if {fewest} ≥ 2, or merge or drop "
            "the label)"
        )


def _cleaned(
    read: Positioned, findings: quality.Findings, request: AuditRequest
) -> tuple[str, pd.DataFrame] | None:
    if request.fix is None:
        return None
    frame = read.frame
    label = request.columns.label or "label"
    if frame is None:  # a Dataset in memory: its texts and labels
        frame = pd.DataFrame({"text": read.data.texts, label: read.data.labels})
    suffix = _suffix(request.data)
    name = f"cleaned{suffix}"
    return name, quality.cleaned_frame(frame, findings.suspects, label, request.fix)


def _suffix(source: Source) -> str:
    if isinstance(source, str | Path) and not str(source).startswith("builtin:"):
        suffix = Path(str(source)).suffix.lower()
        if suffix in TABLE_SUFFIXES:
            return suffix
    return ".csv"


def _name(source: Source) -> str:
    if isinstance(source, Dataset):
        return source.name or "the rows"
    return "records" if isinstance(source, list) else str(source)

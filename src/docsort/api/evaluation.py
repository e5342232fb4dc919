"""Evaluation and comparison on labelled rows: metrics, the per-row predictions, a report.

The request reads the rows with the columns the model was trained with unless told otherwise,
runs the model once (timed) and hands the numbers to ``docsort.evaluation``, which writes the
report; only this step imports the report and matplotlib, never loading or predicting.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from docsort.api.common import long_doc_for, open_model
from docsort.api.prediction import Run, answering_stages, run_batched
from docsort.api.redaction import redact_like_training
from docsort.api.registry import local_model_dir
from docsort.api.rows import Columns, Source, notes_on, prediction_rows, read_rows, write_jsonl
from docsort.data.dataset import Dataset, real_rows
from docsort.errors import DocsortError
from docsort.io import atomic_dir, check_replaceable
from docsort.models.base import Classifier, Model, Runtime, check_labels_known, read_manifest
from docsort.models.cost import CostModel

PRICED_TOKENS = ("prompt_tokens", "completion_tokens")  # what CostModel prices
PREDICTIONS = "predictions.jsonl"  # written by evaluate beside metrics.json
TOP_PROBABILITIES = 5  # most probable labels kept per row of predictions.jsonl
REPORT = "a docsort report"


def is_report_dir(path: Path) -> bool:
    """A folder an earlier ``eval`` or ``compare`` wrote, which a new report may replace whole;
    any other non-empty folder is the user's and is left alone."""
    return (path / "metrics.json").is_file() or (path / "comparison.json").is_file()


@dataclass
class EvalRequest:
    """Score a saved model (or a model object) on labelled rows; ``out`` gets the report."""

    model: Model | str | Path
    data: Source
    out: str | Path | None = None
    columns: Columns = field(default_factory=Columns)
    long_doc: dict[str, Any] | None = None
    sweep: bool = True  # a cascade: every stage alone on the same rows, and the sweep
    title: str | None = None
    cost_model: CostModel | None = None
    runtime: Runtime | None = None


@dataclass
class EvalResult:
    model: Model
    data: Dataset
    metrics: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def scores(self) -> bool:
        return self.model.capabilities().scores


def run_evaluate(request: EvalRequest) -> EvalResult:
    """Open the model, read the rows as it was trained to read them, evaluate."""
    if request.out is not None:  # before the model runs: a wrong --out costs a second
        check_replaceable(request.out, is_report_dir, REPORT)
    model = open_model(request.model, request.runtime)
    model.long_doc_ = long_doc_for(model, request.long_doc, current=model.long_doc_)
    columns = request.columns.or_trained(model.input_spec_)
    data, written = real_rows(read_rows(request.data, columns))
    data, redacted = redact_like_training(model, data)
    left_out = [f"left out {written:,} row(s) written by augmentation"] if written else []
    metrics = evaluate(
        model,
        data,
        out=request.out,
        cost_model=request.cost_model,
        title=request.title,
        sweep=request.sweep,
    )
    notes = notes_on(data, str(request.data)) + left_out + redacted
    return EvalResult(model, data, metrics, notes)


def evaluate(
    model: Model | str | Path,
    data: Dataset,
    *,
    out: str | Path | None = None,
    cost_model: Any = None,
    title: str | None = None,
    sweep: bool = True,
) -> dict[str, Any]:
    """Score ``model`` on labelled ``data``; ``out`` gets metrics.json, report.md and plots.

    ``ece_uncalibrated`` is the ECE before the model's temperature (equal to ``ece`` for a model
    never calibrated). A cascade adds ``stages`` (share answered, accuracy on those rows,
    seconds, cost) and, with ``sweep``, every stage alone on the same rows and a threshold sweep
    (``threshold_sweep.csv`` and ``.png``); those extra stage runs are not part of the timing.

    A scoring model (the pair kind) is judged by Pearson and Spearman correlation instead."""
    from docsort.evaluation.metrics import compute_metrics
    from docsort.models.calibration import expected_calibration_error

    model = open_model(model)
    if data.labels is None:
        raise DocsortError(f"{data.name or 'the data'} has no labels to evaluate against")
    if model.capabilities().scores:
        return _evaluate_scores(model, data, out=out, cost_model=cost_model, title=title)
    if data.multi_label != model.labels_.multi_label:
        kind = "multi-label" if model.labels_.multi_label else "single-label"
        raise DocsortError(f"the model is {kind} but {data.name or 'the data'} is not")
    check_labels_known(model, list(data.label_counts()), data.name or "evaluation data")
    y_true = data.targets(model.labels_)
    cost_model = cost_model or CostModel()
    run = run_batched(model, data.texts, description="evaluating")
    decisions = model.decide(run.proba)
    metrics = compute_metrics(
        model.labels_,
        y_true,
        run.proba,
        decisions,
        seconds=run.seconds,
        cost_model=cost_model,
        extra_cost={k: v for k, v in run.tokens.items() if k in PRICED_TOKENS},
    )
    if model.labels_.multi_label:
        raw_confidence, raw_correct = run.raw.ravel(), y_true.ravel()
    else:
        raw_confidence = run.raw[np.arange(len(y_true)), decisions]
        raw_correct = decisions == y_true
    metrics["ece_uncalibrated"] = expected_calibration_error(raw_confidence, raw_correct)
    metrics["temperature"] = model.temperature_
    metrics["calibration"] = model.calibration_
    if run.routed is not None:
        _add_cascade_metrics(metrics, model, run, data.texts, y_true, cost_model, sweep)
    metrics["model_info"] = model_summary(model)
    metrics["data"] = {"source": data.name, "n": len(data), "skipped": data.skipped}
    if out is not None:
        from docsort.evaluation.report import write_report
        from docsort.evaluation.results import confident_mistakes

        rows = evaluation_rows(model, data, run.proba, answering_stages(model, run))
        with atomic_dir(out, replaces=is_report_dir, what=REPORT) as folder:
            write_jsonl(Path(folder) / PREDICTIONS, rows)
            write_report(
                metrics,
                folder,
                title=title or f"{model.kind} on {data.name}",
                model_info=metrics["model_info"],
                mistakes=confident_mistakes(rows, data.texts),
            )
    return metrics


def evaluation_rows(
    model: Classifier, data: Dataset, proba: np.ndarray, stages: Sequence[str] | None = None
) -> list[dict]:
    """Per evaluated row: its index, true label(s), the prediction (as ``predict`` gives it, with
    the ``TOP_PROBABILITIES`` most probable labels) and whether it was right, for error
    analysis without rerunning the model."""
    assert data.labels is not None
    rows = []
    for i, (row, true) in enumerate(
        zip(prediction_rows(model, proba, stages=stages), data.labels, strict=True)
    ):
        if model.labels_.multi_label:
            true = sorted(true)
            correct = set(true) == set(row["labels"])
        else:
            correct = true == row["label"]
        top = dict(list(row["probabilities"].items())[:TOP_PROBABILITIES])
        rows.append({"row": i, "true": true, **row, "probabilities": top, "correct": correct})
    return rows


def _add_cascade_metrics(
    metrics: dict[str, Any],
    model: Any,
    run: Run,
    texts: Sequence[str],
    y_true: np.ndarray,
    cost_model: Any,
    sweep: bool,
) -> None:
    """Stage breakdown and sweep; the cascade's cost is the sum of its stages' (each stage may
    have its own prices)."""
    from docsort.evaluation.cascade import evaluation_breakdown

    stages, sweep_rows, total_usd = evaluation_breakdown(
        model, run.routed, texts, y_true, cost_model, complete=sweep
    )
    n = len(texts)
    metrics["stages"] = stages
    metrics["thresholds"] = model.stage_thresholds_
    metrics["confidence"] = model.confidence
    metrics["escalated_to_last"] = stages[-1]["reached"]
    if model.human_:  # what the models answered alone, and what went to people
        auto = run.routed.stage < len(model.stages_)
        metrics["coverage"] = float(auto.mean()) if n else 0.0
        metrics["review_share"] = 1.0 - metrics["coverage"] if n else 0.0
        hits = run.proba[auto].argmax(axis=1) == y_true[auto]
        metrics["auto_accuracy"] = float(hits.mean()) if auto.any() else None
    metrics["selection"] = model.selection_
    metrics["cost_per_1k"] = total_usd * 1000 / n
    metrics["cost"]["total_usd"] = total_usd
    if sweep:
        metrics["sweep"] = sweep_rows


def _evaluate_scores(
    model: Any,
    data: Dataset,
    *,
    out: str | Path | None,
    cost_model: Any,
    title: str | None,
) -> dict[str, Any]:
    from docsort.evaluation.metrics import compute_score_metrics

    truth = data.scores()
    start = time.perf_counter()
    predicted = model.predict_scores(data)
    seconds = time.perf_counter() - start
    metrics = compute_score_metrics(
        truth, predicted, seconds=seconds, cost_model=cost_model or CostModel()
    )
    metrics["model_info"] = model_summary(model)
    metrics["data"] = {"source": data.name, "n": len(data), "skipped": data.skipped}
    if out is not None:
        from docsort.evaluation.report import write_score_report
        from docsort.evaluation.results import largest_errors

        rows = [
            {
                "row": i,
                "true": float(t),
                "score": round(float(s), 6),
                "error": round(float(s - t), 6),
            }
            for i, (t, s) in enumerate(zip(truth, predicted, strict=True))
        ]
        with atomic_dir(out, replaces=is_report_dir, what=REPORT) as folder:
            write_jsonl(Path(folder) / PREDICTIONS, rows)
            write_score_report(
                metrics,
                folder,
                title=title or f"{model.kind} on {data.name}",
                model_info=metrics["model_info"],
                y_true=truth,
                y_pred=predicted,
                mistakes=largest_errors(data, rows),
            )
    return metrics


def model_summary(model: Model) -> dict[str, Any]:
    return {
        "kind": model.kind,
        "labels": len(model.labels_),
        "multi_label": model.labels_.multi_label,
        "train_fingerprint": model.train_fingerprint_,
        "params": model.get_params(),
    }


@dataclass
class CompareRequest:
    """Several saved models scored on the very same rows (read as the first was trained)."""

    models: Sequence[str | Path]
    data: Source
    out: str | Path | None = None
    columns: Columns = field(default_factory=Columns)
    cost_model: CostModel | None = None
    runtime: Runtime | None = None


def run_compare(request: CompareRequest) -> list[dict[str, Any]]:
    if not request.models:
        raise DocsortError("compare needs at least one model directory")
    if request.out is not None:
        check_replaceable(request.out, is_report_dir, REPORT)
    first = local_model_dir(request.models[0])  # a registry reference: its local copy
    spec = dict(read_manifest(first).get("input") or {})
    data = read_rows(request.data, request.columns.or_trained(spec))
    return compare(
        request.models, data, out=request.out, cost_model=request.cost_model,
        runtime=request.runtime,
    )  # fmt: skip


def compare(
    model_dirs: Sequence[str | Path],
    data: Dataset,
    *,
    out: str | Path | None = None,
    cost_model: Any = None,
    runtime: Runtime | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every model on the very same rows; one table and an accuracy-vs-throughput plot."""
    rows = []
    for directory in model_dirs:
        model = open_model(directory, runtime)
        if model.capabilities().scores:
            raise DocsortError(
                f"{directory} is a {model.kind} model giving scores: compare ranks classifiers; "
                "use eval for it"
            )
        metrics = evaluate(model, data, cost_model=cost_model)
        rows.append(
            {
                "model": Path(directory).name or str(directory),
                "kind": metrics["model_info"]["kind"],
                **metrics,
            }
        )
    if out is not None:
        from docsort.evaluation.report import write_comparison

        with atomic_dir(out, replaces=is_report_dir, what=REPORT) as folder:
            write_comparison(rows, folder)
    return rows

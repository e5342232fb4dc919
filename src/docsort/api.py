"""The Python API behind every CLI command: train, evaluate, predict, compare.

Each function takes plain values (paths, datasets, models) and returns plain results, so a
notebook and the CLI run exactly the same code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from docsort.data.dataset import Dataset, stratified_split
from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.io import atomic_path
from docsort.models.base import (
    Classifier,
    check_labels_known,
    create,
    load,
    read_manifest,
)
from docsort.progress import progress_bar
from docsort.text.chunking import LongDoc

if TYPE_CHECKING:
    from docsort.models.cascade import Routed

PRICED_TOKENS = ("prompt_tokens", "completion_tokens")  # what CostModel prices
PREDICTIONS = "predictions.jsonl"  # written by evaluate beside metrics.json
TOP_PROBABILITIES = 5  # most probable labels kept per row of predictions.jsonl
MISTAKE_CHARS = 160  # characters of each text shown in the report's mistakes table


def train(
    train_data: Dataset,
    *,
    kind: str = "tfidf",
    params: dict[str, Any] | None = None,
    valid_data: Dataset | None = None,
    valid_split: float | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    input_spec: dict[str, Any] | None = None,
    long_doc: LongDoc | dict[str, Any] | None = None,
    calibrate: bool = False,
    calibration_split: float = 0.1,
) -> Classifier:
    """Fit a model of ``kind``; with ``out`` it is saved there (atomically).

    ``long_doc`` (a ``LongDoc`` or its settings) makes the model read long texts in windows or
    truncated, both in training (windows inherit their document's label) and later.
    ``calibrate`` fits a temperature on the validation rows (``valid_data`` or ``valid_split``);
    with neither, on a stratified ``calibration_split`` of the training rows held out for it
    (the model is then trained on the rest). ``model.calibration_`` records which."""
    if valid_data is None and valid_split:
        train_data, valid_data = stratified_split(train_data, valid_split, seed)
    calibration_rows, calibration_source = valid_data, "validation rows"
    if calibrate and valid_data is None:
        train_data, calibration_rows = stratified_split(train_data, calibration_split, seed)
        calibration_source = f"training rows held out ({calibration_split:.0%})"
    model = create(kind, params)
    if long_doc is not None and kind == "cascade":
        raise DocsortError(
            "a cascade reads long documents as each stage does: give long_doc settings to the "
            "stages (train them with --long-doc), not to the cascade"
        )
    if long_doc is not None and model.output == "scores":
        raise DocsortError(
            f"the {kind} model scores short pairs: long-document options do not apply"
        )
    if long_doc is not None:
        from docsort.text.chunking import training_pieces

        config = long_doc if isinstance(long_doc, LongDoc) else LongDoc.from_dict(long_doc)
        if config is not None:
            train_data = training_pieces(train_data, config, model.token_spans())
        model.long_doc_ = config
    model.fit(train_data, valid_data)
    if calibrate and calibration_rows is not None:
        model.calibrate(calibration_rows)
        model.calibration_ = {
            "source": calibration_source,
            "rows": len(calibration_rows),
            "temperature": model.temperature_,
        }
    model.input_spec_ = dict(input_spec or {})
    if out is not None:
        model.save(out)
    return model


def ensemble(
    model_dirs: Sequence[str | Path],
    *,
    weights: Sequence[float] | None = None,
    out: str | Path | None = None,
) -> Classifier:
    """Several saved models as one (the ``ensemble`` kind): the weighted mean of their
    probabilities, or of their scores for pair models. No training rows are needed; with
    ``out`` the ensemble, its members copied inside, is saved there."""
    from docsort.models.ensemble import build_ensemble

    model = build_ensemble(model_dirs, weights)
    if out is not None:
        model.save(out)
    return model


def open_model(model: Classifier | str | Path) -> Classifier:
    return model if isinstance(model, Classifier) else load(model)


def input_spec_of(model_dir: str | Path) -> dict[str, Any]:
    """The text/label columns a saved model was trained with: defaults for eval and predict."""
    return dict(read_manifest(model_dir).get("input") or {})


@dataclass
class Run:
    """One timed pass of a model over texts: probabilities as served (``proba``) and before
    temperature scaling (``raw``), seconds, tokens used, and a cascade's routing."""

    proba: np.ndarray
    raw: np.ndarray
    seconds: float
    tokens: dict[str, int]
    routed: Routed | None = None


def run_batched(
    model: Classifier, texts: Sequence[str], batch_size: int = 2048, description: str = "predicting"
) -> Run:
    """Probabilities for all ``texts`` with a progress bar, in one pass: the raw ones come from
    ``_raw_proba`` (long documents aggregated as configured) and the temperature, if any, is
    applied after, so a calibrated model is not run twice to report both."""
    parts: list[np.ndarray] = []
    traces: list[Any] = []
    before = model.token_usage()
    start = time.perf_counter()
    with progress_bar(description, total=len(texts)) as advance:
        for batch in _batches(texts, batch_size):
            raw_part, trace = model._raw_proba_traced(batch)
            parts.append(raw_part)
            traces.append(trace)
            advance(len(batch))
    seconds = time.perf_counter() - start
    after = model.token_usage()
    raw = np.vstack(parts) if parts else np.zeros((0, len(model.labels_)))
    proba = model.scale_proba(raw)
    routed = model._join_traces(traces)
    tokens = {key: after[key] - before.get(key, 0) for key in after}
    return Run(proba, raw, seconds, tokens, routed)


def answering_stages(model: Classifier, run: Run) -> list[str] | None:
    """A cascade's run: the name of the stage that answered each row; else ``None``."""
    if run.routed is None:
        return None
    return [model.stage_names_[k] for k in run.routed.stage]  # type: ignore[attr-defined]


def predict_proba_batched(
    model: Classifier, texts: Sequence[str], batch_size: int = 2048, description: str = "predicting"
) -> tuple[np.ndarray, float]:
    """Probabilities for all ``texts`` with a progress bar; returns them and the seconds spent."""
    run = run_batched(model, texts, batch_size, description)
    return run.proba, run.seconds


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def evaluate(
    model: Classifier | str | Path,
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
    from docsort.evaluation import CostModel, compute_metrics, write_report
    from docsort.evaluation.calibration import expected_calibration_error

    model = open_model(model)
    if data.labels is None:
        raise DocsortError(f"{data.name or 'the data'} has no labels to evaluate against")
    if model.output == "scores":
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
        _add_cascade_metrics(metrics, model, run.routed, data.texts, y_true, cost_model, sweep)
    metrics["model_info"] = model_summary(model)
    metrics["data"] = {"source": data.name, "n": len(data), "skipped": data.skipped}
    if out is not None:
        rows = evaluation_rows(model, data, run.proba, answering_stages(model, run))
        write_jsonl(Path(out) / PREDICTIONS, rows)
        title = title or f"{model.kind} on {data.name}"
        write_report(
            metrics,
            out,
            title=title,
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


def confident_mistakes(rows: Sequence[dict], texts: Sequence[str], n: int = 10) -> list[dict]:
    """The ``n`` wrong predictions the model was surest of, with the start of each text: often
    label noise or two labels that overlap, the first things to look at."""
    wrong = sorted((r for r in rows if not r["correct"]), key=lambda r: -r["confidence"])
    return [
        {
            "row": r["row"],
            "true": _joined(r["true"]),
            "predicted": _joined(r.get("label", r.get("labels"))),
            "confidence": r["confidence"],
            "text": texts[r["row"]][:MISTAKE_CHARS],
        }
        for r in wrong[:n]
    ]


def _joined(labels: Any) -> str:
    return ", ".join(labels) if isinstance(labels, list | tuple) else str(labels)


def largest_errors(data: Dataset, rows: Sequence[dict], n: int = 10) -> list[dict]:
    """The ``n`` pairs scored furthest from the truth, with their texts."""
    worst = sorted(rows, key=lambda r: -abs(r["error"]))[:n]
    out = []
    for r in worst:
        i = r["row"]
        pair = f"{data.texts[i]} → {data.text_pair[i] if data.text_pair else ''}"
        if data.context is not None:
            pair += f" ({data.context[i]})"
        out.append({"row": i, "true": r["true"], "score": r["score"], "pair": pair})
    return out


def _add_cascade_metrics(
    metrics: dict[str, Any],
    model: Any,
    routed: Any,
    texts: Sequence[str],
    y_true: np.ndarray,
    cost_model: Any,
    sweep: bool,
) -> None:
    """Stage breakdown and sweep; the cascade's cost is the sum of its stages' (each stage may
    have its own prices)."""
    from docsort.models.cascade import evaluation_breakdown

    stages, sweep_rows, total_usd = evaluation_breakdown(
        model, routed, texts, y_true, cost_model, complete=sweep
    )
    n = len(texts)
    metrics["stages"] = stages
    metrics["thresholds"] = model.stage_thresholds_
    metrics["confidence"] = model.confidence
    metrics["escalated_to_last"] = stages[-1]["reached"]
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
    from docsort.evaluation import CostModel, compute_score_metrics, write_score_report

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
        rows = [
            {
                "row": i,
                "true": float(t),
                "score": round(float(s), 6),
                "error": round(float(s - t), 6),
            }
            for i, (t, s) in enumerate(zip(truth, predicted, strict=True))
        ]
        write_jsonl(Path(out) / PREDICTIONS, rows)
        write_score_report(
            metrics,
            out,
            title=title or f"{model.kind} on {data.name}",
            model_info=metrics["model_info"],
            y_true=truth,
            y_pred=predicted,
            mistakes=largest_errors(data, rows),
        )
    return metrics


def model_summary(model: Classifier) -> dict[str, Any]:
    return {
        "kind": model.kind,
        "labels": len(model.labels_),
        "multi_label": model.labels_.multi_label,
        "train_fingerprint": model.train_fingerprint_,
        "params": model.get_params(),
    }


def prediction_rows(
    model: Classifier,
    proba: np.ndarray,
    top_k: int | None = None,
    at_least_one: bool = False,
    stages: Sequence[str] | None = None,
) -> list[dict]:
    """One JSON-ready row per document: label(s), confidence and the probability of each label.

    ``top_k`` keeps the k most probable labels (multi-label: at most k are chosen);
    ``at_least_one`` gives a multi-label row that met no threshold its most probable label;
    ``stages`` (a cascade's) adds which stage answered."""
    from docsort.models.thresholds import limit_decisions

    names = model.labels_.names
    decisions = model.decide(proba)
    if model.labels_.multi_label:
        decisions = limit_decisions(proba, decisions, top_k, at_least_one)
    rows = []
    for i, p in enumerate(proba):
        order = np.argsort(-p)[: top_k or len(names)]
        probabilities = {names[j]: round(float(p[j]), 6) for j in order}
        if model.labels_.multi_label:
            chosen = [names[j] for j in np.flatnonzero(decisions[i])]
            confidence = float(min((p[names.index(n)] for n in chosen), default=1 - p.max()))
            rows.append(
                {
                    "labels": chosen,
                    "confidence": round(confidence, 6),
                    "probabilities": probabilities,
                }
            )
        else:
            rows.append(
                {
                    "label": names[int(decisions[i])],
                    "confidence": round(float(p.max()), 6),
                    "probabilities": probabilities,
                }
            )
        if stages is not None:
            rows[-1]["stage"] = stages[i]
    return rows


def predict(
    model: Classifier | str | Path,
    texts: Sequence[str] | Dataset,
    *,
    labels: LabelSet | None = None,
    top_k: int | None = None,
    at_least_one: bool = False,
    adapt: bool = False,
    windows: bool = False,
) -> list[dict]:
    """Predict ``texts``. ``labels`` (a labels file): a kind that reads label descriptions
    (``dual``) scores exactly those labels, new ones included, without retraining; for the
    other kinds it must not name labels the model lacks. ``windows`` adds each text's pieces
    (character span, tokens, probabilities). ``adapt`` (dual): first move each label vector
    toward the texts it claims most confidently (transductive; measured in benchmarks/dual.py).
    A scoring model (the pair kind) takes a ``Dataset`` of pairs and gives ``{"score": s}``."""
    model = open_model(model)
    if model.output == "scores":
        if labels is not None or top_k is not None or windows or adapt or at_least_one:
            raise DocsortError(
                "a pair model gives scores: --labels, --top-k, --at-least-one, --adapt and "
                "--windows do not apply"
            )
        if not isinstance(texts, Dataset):
            raise DocsortError("a pair model predicts rows with two texts: pass a pair Dataset")
        return [{"score": round(float(s), 6)} for s in model.predict_scores(texts)]
    if isinstance(texts, Dataset):
        texts = texts.texts
    model = with_labels(model, labels)
    if adapt:
        if not hasattr(model, "adapt"):
            raise DocsortError(
                f"--adapt needs a model that reads label texts (dual), not {model.kind!r}"
            )
        model = model.adapt(texts)
    run = run_batched(model, texts)
    rows = prediction_rows(model, run.proba, top_k, at_least_one, answering_stages(model, run))
    if windows:
        for row, pieces in zip(rows, model.window_scores(texts), strict=True):
            row["windows"] = pieces
    return rows


def with_labels(model: Classifier, labels: LabelSet | None) -> Classifier:
    """``model`` scoring ``labels``: re-aimed when its kind reads label texts, else checked."""
    if labels is None:
        return model
    if getattr(model, "scores_new_labels", False):
        return model.with_labels(labels)  # type: ignore[attr-defined]
    check_labels_known(model, labels.names, "labels file")
    return model


def zero_shot_model(spec: str, labels: LabelSet | None) -> Classifier:
    """``dual`` or ``dual:BASE``: a dual encoder that scores ``labels`` from their
    descriptions with no training rows (``docsort predict dual:minilm DATA --labels FILE``)."""
    kind, _, base = spec.partition(":")
    if kind != "dual":
        raise DocsortError(f"model directory not found: {spec}")
    if labels is None:
        raise DocsortError(f"{spec} scores the labels of a labels file: pass --labels FILE")
    from docsort.models.dual import zero_shot

    return zero_shot(labels, **({"base": base} if base else {}))


def jsonl_lines(rows: Sequence[dict], extra: dict[str, list] | None = None) -> Iterator[str]:
    """Prediction rows as JSON lines, each led by the ``extra`` input columns (e.g. ids)."""
    for i, row in enumerate(rows):
        carried = {k: _plain(v[i]) for k, v in (extra or {}).items()}
        yield json.dumps({**carried, **row}, ensure_ascii=False) + "\n"


def write_jsonl(
    path: str | Path, rows: Sequence[dict], extra: dict[str, list] | None = None
) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        handle.writelines(jsonl_lines(rows, extra))


def _plain(value: Any) -> Any:
    """numpy scalars (from table columns) as plain JSON values."""
    return value.item() if hasattr(value, "item") else value


def compare(
    model_dirs: Sequence[str | Path],
    data: Dataset,
    *,
    out: str | Path | None = None,
    cost_model: Any = None,
) -> list[dict[str, Any]]:
    """Evaluate every model on the very same rows; one table and an accuracy-vs-throughput plot."""
    from docsort.evaluation import write_comparison

    rows = []
    for directory in model_dirs:
        model = load(directory)
        if model.output == "scores":
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
        write_comparison(rows, out)
    return rows

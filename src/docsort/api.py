"""The Python API behind every CLI command: train, evaluate, predict, compare.

Each function takes plain values (paths, datasets, models) and returns plain results, so a
notebook and the CLI run exactly the same code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from docsort.data.dataset import Dataset, stratified_split
from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.io import atomic_path
from docsort.models.base import Classifier, check_labels_known, create, load, read_manifest
from docsort.progress import progress_bar
from docsort.text.chunking import LongDoc


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
) -> Classifier:
    """Fit a model of ``kind``; with ``out`` it is saved there (atomically).

    ``long_doc`` (a ``LongDoc`` or its settings) makes the model read long texts in windows or
    truncated, both in training (windows inherit their document's label) and later."""
    if valid_data is None and valid_split:
        train_data, valid_data = stratified_split(train_data, valid_split, seed)
    model = create(kind, params)
    if long_doc is not None:
        from docsort.text.chunking import training_pieces

        config = long_doc if isinstance(long_doc, LongDoc) else LongDoc.from_dict(long_doc)
        if config is not None:
            train_data = training_pieces(train_data, config, model.token_spans())
        model.long_doc_ = config
    model.fit(train_data, valid_data)
    model.input_spec_ = dict(input_spec or {})
    if out is not None:
        model.save(out)
    return model


def open_model(model: Classifier | str | Path) -> Classifier:
    return model if isinstance(model, Classifier) else load(model)


def input_spec_of(model_dir: str | Path) -> dict[str, Any]:
    """The text/label columns a saved model was trained with: defaults for eval and predict."""
    return dict(read_manifest(model_dir).get("input") or {})


def predict_proba_batched(
    model: Classifier, texts: Sequence[str], batch_size: int = 2048, description: str = "predicting"
) -> tuple[np.ndarray, float]:
    """Probabilities for all ``texts`` with a progress bar; returns them and the seconds spent."""
    parts: list[np.ndarray] = []
    start = time.perf_counter()
    with progress_bar(description, total=len(texts)) as advance:
        for batch in _batches(texts, batch_size):
            parts.append(model.predict_proba(batch))
            advance(len(batch))
    seconds = time.perf_counter() - start
    if not parts:
        return np.zeros((0, len(model.labels_))), seconds
    return np.vstack(parts), seconds


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
) -> dict[str, Any]:
    """Score ``model`` on labelled ``data``; ``out`` gets metrics.json, report.md and plots."""
    from docsort.evaluation import CostModel, compute_metrics, write_report

    model = open_model(model)
    if data.labels is None:
        raise DocsortError(f"{data.name or 'the data'} has no labels to evaluate against")
    if data.multi_label != model.labels_.multi_label:
        kind = "multi-label" if model.labels_.multi_label else "single-label"
        raise DocsortError(f"the model is {kind} but {data.name or 'the data'} is not")
    check_labels_known(model, list(data.label_counts()), data.name or "evaluation data")
    y_true = data.targets(model.labels_)
    proba, seconds = predict_proba_batched(model, data.texts, description="evaluating")
    metrics = compute_metrics(
        model.labels_,
        y_true,
        proba,
        model.decide(proba),
        seconds=seconds,
        cost_model=cost_model or CostModel(),
    )
    metrics["model_info"] = model_summary(model)
    metrics["data"] = {"source": data.name, "n": len(data), "skipped": data.skipped}
    if out is not None:
        title = title or f"{model.kind} on {data.name}"
        write_report(metrics, out, title=title, model_info=metrics["model_info"])
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
    model: Classifier, proba: np.ndarray, top_k: int | None = None, at_least_one: bool = False
) -> list[dict]:
    """One JSON-ready row per document: label(s), confidence and the probability of each label.

    ``top_k`` keeps the k most probable labels (multi-label: at most k are chosen);
    ``at_least_one`` gives a multi-label row that met no threshold its most probable label."""
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
    return rows


def predict(
    model: Classifier | str | Path,
    texts: Sequence[str],
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
    toward the texts it claims most confidently (transductive; measured in benchmarks/dual.py)."""
    model = with_labels(open_model(model), labels)
    if adapt:
        if not hasattr(model, "adapt"):
            raise DocsortError(
                f"--adapt needs a model that reads label texts (dual), not {model.kind!r}"
            )
        model = model.adapt(texts)
    proba, _ = predict_proba_batched(model, texts)
    rows = prediction_rows(model, proba, top_k, at_least_one)
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
        metrics = evaluate(directory, data, cost_model=cost_model)
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

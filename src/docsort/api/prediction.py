"""Prediction: the lean path every entry point serves from.

Loading a saved model and predicting imports no evaluation report and no matplotlib (a test
checks ``sys.modules``), so a service or a batch worker starts fast and small.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from docsort.api.common import long_doc_for, open_model, zero_shot_model, zero_shot_spec
from docsort.api.redaction import redact_like_training
from docsort.api.rows import Columns, Source, notes_on, prediction_rows, read_labels, read_rows
from docsort.data.dataset import Dataset
from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.models.base import Classifier, Model, Runtime, check_labels_known
from docsort.progress import progress_bar

if TYPE_CHECKING:
    from docsort.models.kinds.cascade import Routed

OUTPUT_FIELDS = (
    "label", "labels", "confidence", "probabilities", "stage", "windows", "features", "score"
)  # fmt: skip
TOP_FEATURES = 10  # n-grams listed per predicted label by ``explain``


@dataclass
class PredictRequest:
    """Predict rows of ``data`` with a saved model, a model object, or ``dual[:BASE]`` (zero-shot
    over the ``labels`` file's descriptions)."""

    model: Model | str | Path
    data: Source | Sequence[str]
    columns: Columns = field(default_factory=Columns)
    labels: str | Path | LabelSet | None = None
    top_k: int | None = None
    at_least_one: bool = False
    adapt: bool = False
    windows: bool = False
    explain: bool = False
    long_doc: dict[str, Any] | None = None
    runtime: Runtime | None = None


@dataclass
class PredictResult:
    rows: list[dict]
    extra: dict[str, list]  # input columns carried into each output row (``--keep``)
    notes: list[str] = field(default_factory=list)  # rows skipped, texts cut


def run_predict(request: PredictRequest) -> PredictResult:
    """Check the request, read the rows as the model was trained to read them, predict."""
    if request.top_k is not None and request.top_k < 1:
        raise DocsortError(f"--top-k must be at least 1, not {request.top_k}")
    clash = sorted(set(request.columns.keep) & set(OUTPUT_FIELDS))
    if clash:
        raise DocsortError(
            f"--keep {clash[0]!r} would be overwritten by the prediction's own {clash[0]!r} "
            "field: rename that input column"
        )
    labels = read_labels(request.labels)
    model = _model_of(request.model, labels, request.runtime)
    model.long_doc_ = long_doc_for(model, request.long_doc, current=model.long_doc_)
    if isinstance(request.data, Dataset | str | Path) or _records(request.data):
        columns = request.columns.or_trained(model.input_spec_)
        data = read_rows(request.data, columns, labelled=False)
    else:
        data = Dataset(texts=list(request.data), name="texts")
    data, redacted = redact_like_training(model, data)
    inputs = data if model.capabilities().scores else data.texts
    rows = predict(
        model,
        inputs,
        labels=labels,
        top_k=request.top_k,
        at_least_one=request.at_least_one,
        adapt=request.adapt,
        windows=request.windows,
        explain=request.explain,
    )
    notes = notes_on(data, str(request.data), labelled=False) + redacted
    return PredictResult(rows, data.extra, notes)


def _records(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict)


def _model_of(model: Model | str | Path, labels: LabelSet | None, runtime: Runtime | None) -> Model:
    if isinstance(model, str) and zero_shot_spec(model) is not None:
        zero_shot = zero_shot_model(model, labels)
        zero_shot.apply_runtime(runtime)
        return zero_shot
    return open_model(model, runtime)


def predict(
    model: Model | str | Path,
    texts: Sequence[str] | Dataset,
    *,
    labels: LabelSet | None = None,
    top_k: int | None = None,
    at_least_one: bool = False,
    adapt: bool = False,
    windows: bool = False,
    explain: bool = False,
) -> list[dict]:
    """Predict ``texts``. ``labels`` (a labels file): a kind that reads label descriptions
    (``dual``) scores exactly those labels, new ones included, without retraining; for the
    other kinds it must not name labels the model lacks. ``windows`` adds each text's pieces
    (character span, tokens, probabilities); ``explain`` adds the windows and, for a kind that
    has them, the n-grams that pushed each text toward its predicted labels. ``adapt`` (dual):
    first move each label vector toward the texts it claims most confidently (transductive;
    measured in benchmarks/dual.py).
    A scoring model (the pair kind) takes a ``Dataset`` of pairs and gives ``{"score": s}``."""
    model = open_model(model)
    caps = model.capabilities()
    if caps.scores:
        if labels is not None or top_k is not None or windows or explain or adapt or at_least_one:
            raise DocsortError(
                "a pair model gives scores: --labels, --top-k, --at-least-one, --adapt, "
                "--windows and --explain do not apply"
            )
        if not isinstance(texts, Dataset):
            raise DocsortError("a pair model predicts rows with two texts: pass a pair Dataset")
        return [{"score": round(float(s), 6)} for s in model.predict_scores(texts)]
    if isinstance(texts, Dataset):
        texts = texts.texts
    model = with_labels(model, labels)
    if adapt:
        if not caps.adapts:
            raise DocsortError(
                f"--adapt needs a model that reads label texts (dual), not {model.kind!r}"
            )
        model = model.adapt(texts)  # type: ignore[attr-defined]
    run = run_batched(model, texts)
    rows = prediction_rows(model, run.proba, top_k, at_least_one, answering_stages(model, run))
    if windows or explain:
        for row, pieces in zip(rows, model.window_scores(texts), strict=True):
            row["windows"] = pieces
    if explain and model.capabilities().explains:
        index = {name: i for i, name in enumerate(model.labels_.names)}
        predicted = [[index[n] for n in row.get("labels", [row.get("label")])] for row in rows]
        shown = model.top_features(texts, predicted, TOP_FEATURES)  # type: ignore[attr-defined]
        for row, features in zip(rows, shown, strict=True):
            row["features"] = features
    return rows


def with_labels(model: Model, labels: LabelSet | None) -> Model:
    """``model`` scoring ``labels``: re-aimed when its kind reads label texts, else checked."""
    if labels is None:
        return model
    if model.capabilities().scores_new_labels:
        return model.with_labels(labels)  # type: ignore[attr-defined]
    check_labels_known(model, labels.names, "labels file")
    return model


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
    names = model.answer_names()  # type: ignore[attr-defined]
    return [names[k] for k in run.routed.stage]


def predict_proba_batched(
    model: Classifier, texts: Sequence[str], batch_size: int = 2048, description: str = "predicting"
) -> tuple[np.ndarray, float]:
    """Probabilities for all ``texts`` with a progress bar; returns them and the seconds spent."""
    run = run_batched(model, texts, batch_size, description)
    return run.proba, run.seconds


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

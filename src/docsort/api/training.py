"""Training, as every entry point asks for it: one request, checked once, then fitted.

``prepare_train`` reads the data, the labels file and the config, builds the model once and
checks everything that can be checked before training (unknown parameters and bad values,
options that do not apply to the kind, long-document windows against what the model reads);
``fit`` then trains and saves. A notebook calls ``docsort.train`` with rows in memory; the CLI
and the service build a ``TrainRequest``; both run the code below.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from docsort.api.augmentation import AugmentSpec, augment_rows
from docsort.api.common import long_doc_for, models_beside, read_config
from docsort.api.redaction import counts_line, redact_train_rows, redaction_record
from docsort.api.rows import Columns, Source, notes_on, read_labels, read_rows
from docsort.api.workers import check_workers, fit_on_workers
from docsort.data.dataset import Dataset, stratified_split
from docsort.data.labels import LabelSet, _cut
from docsort.errors import DocsortError
from docsort.io import check_replaceable
from docsort.models.base import Model, Runtime, create, get_kind, is_model_dir, is_number
from docsort.redact import RedactSpec
from docsort.text.chunking import LongDoc, training_pieces

SELECT_KEYS = ("target_accuracy", "max_cost_per_1k", "max_escalation_rate", "max_auto_error")


@dataclass
class TrainRequest:
    """Everything a training run needs, as plain values (a REST body or CLI options map onto
    it one to one). ``kind`` defaults to the config's ``kind:``, then ``tfidf``."""

    data: Source
    out: str | Path | None = None
    kind: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    config: str | Path | None = None  # YAML of parameters; ``params`` override it
    columns: Columns = field(default_factory=Columns)
    valid: Source | None = None
    valid_split: float | None = None
    labels: str | Path | LabelSet | None = None
    seed: int = 0
    long_doc: dict[str, Any] | LongDoc | None = None
    calibrate: bool = False
    calibration_split: float = 0.1
    select: dict[str, float] = field(default_factory=dict)  # a composite's threshold target
    zero_shot: bool = False
    soft: str | None = None  # column of soft targets (kinds that read them)
    context_map: str | Path | None = None  # pair models: code,title CSV
    runtime: Runtime | None = None
    input_spec: dict[str, Any] | None = None  # columns to record; default: from ``columns``
    redact: RedactSpec | None = None  # personal data out of the rows before fitting (--redact)
    # fit on Ray Train workers (DDP; api/workers.py): how many, an existing cluster, CPUs each,
    # where Ray keeps the run (a path every node sees)
    workers: int | None = None
    address: str | None = None
    cpus_per_worker: float | None = None
    storage: str | None = None


@dataclass
class TrainPlan:
    """A checked request: the unfitted model and the rows it will be fitted on."""

    request: TrainRequest
    model: Model
    train: Dataset
    valid: Dataset | None
    long_doc: LongDoc | None
    input_spec: dict[str, Any]

    notes: list[str] = field(default_factory=list)  # what the user should know before training
    augment: AugmentSpec | None = None  # new rows written for the training side (augment:)
    workers_run: dict[str, Any] | None = None  # what the workers reported (set by fit)


def prepare_train(request: TrainRequest) -> TrainPlan:
    """Check ``request`` and read its rows; nothing is trained or written yet."""
    params = {**read_config(request.config), **request.params}
    kind = request.kind or params.pop("kind", None) or "tfidf"
    params.pop("kind", None)
    # not a parameter of any kind: rows written before fitting, checked before anything runs
    augment = params.pop("augment", None)
    augment = None if augment is None else AugmentSpec.from_mapping(augment)
    for key in ("stages", "members"):
        models_beside(params.get(key), request.config)
    _fold_options(kind, request, params)
    model = create(kind, params)
    caps = model.capabilities()
    model.check()
    check_workers(request, model)
    columns = request.columns
    if not caps.scores and (columns.pair or columns.context or request.context_map):
        raise DocsortError("--pair, --context and --context-map are options of the pair model")
    if caps.scores and request.labels is not None:
        raise DocsortError("a pair model learns numeric scores: --labels does not apply")
    for option, share in (
        ("--valid-split", request.valid_split),
        ("calibration_split", request.calibration_split),
    ):
        if share is not None and not (is_number(share) and 0 < share < 1):
            raise DocsortError(f"{option} must be a share between 0 and 1 (e.g. 0.2), not {share}")
    long_doc = long_doc_for(model, request.long_doc)
    if request.out is not None:  # before any training: a wrong --out costs a second
        check_replaceable(request.out, is_model_dir, "a docsort model")
    labels = read_labels(request.labels)
    if request.soft:
        columns = replace(columns, keep=(*columns.keep, request.soft))
    train = read_rows(request.data, columns, labels=labels)
    valid = None
    if request.valid is not None:
        valid = read_rows(request.valid, columns, labels=None if caps.scores else train.label_set)
    spec = request.input_spec if request.input_spec is not None else columns.spec(caps.scores)
    notes = notes_on(train, _name(request.data))
    if valid is not None:
        notes += notes_on(valid, _name(request.valid))
    if labels is not None and not caps.trains_without_rows:
        absent = [n for n in labels.names if n not in train.label_counts()]
        if absent:
            notes.append(
                f"the labels file lists {len(absent)} label(s) no training row has (first: "
                f"{_cut(absent[0])}); the model will never predict them"
            )
    if request.redact is not None:  # recorded, so that predict and eval redact the same way
        train, valid, found = redact_train_rows(train, valid, request.redact)
        notes.append(f"{counts_line(found)} in the training and validation rows")
        spec = {**spec, "redact": redaction_record(request.redact)}
    if augment is not None and caps.scores:
        raise DocsortError("augment writes labelled texts; a pair model's rows are not supported")
    return TrainPlan(request, model, train, valid, long_doc, spec, notes, augment)


def _name(source: Source | None) -> str:
    return source.name or "the rows" if isinstance(source, Dataset) else str(source)


def _fold_options(kind: str, request: TrainRequest, params: dict[str, Any]) -> None:
    """Options that are parameters of some kinds only (``--zero-shot``, ``--soft``,
    ``--context-map``, a cascade's target, run-time settings) put into ``params``; the kind's
    own check then judges their values."""
    cls = get_kind(kind)
    if request.select:
        if not cls.tags.selects_thresholds:
            raise DocsortError(
                f"--{next(iter(request.select)).replace('_', '-')} chooses a cascade's "
                "thresholds: use it with --model cascade"
            )
        if len([k for k in request.select if k != "delta"]) > 1:
            options = ", ".join("--" + k.replace("_", "-") for k in SELECT_KEYS)
            raise DocsortError(f"give one of {options}")
        params["select"] = dict(request.select)
    accepted = cls.param_names()
    for flag, param, value in (
        ("--zero-shot", "zero_shot", request.zero_shot),
        ("--soft", "soft_column", request.soft),
    ):
        if value and param not in accepted:
            raise DocsortError(f"{flag} needs a kind that reads it (dual), not {kind!r}")
        if value:
            params[param] = value
    if request.context_map is not None:
        if not request.columns.context:
            raise DocsortError("--context-map maps the codes of a --context column: name it")
        params["context_map"] = str(request.context_map)
    for name, value in (request.runtime.given() if request.runtime else {}).items():
        if name in cls.runtime_params:
            params[cls.runtime_params[name]] = value


def fit(plan: TrainPlan) -> Model:
    """Train the planned model; saved to the request's ``out`` (atomically) when given.

    ``long_doc`` makes the model read long texts in windows or truncated, in training (windows
    inherit their document's label) and later. ``calibrate`` fits a temperature on the
    validation rows (``valid`` or ``valid_split``); with neither, on a stratified
    ``calibration_split`` of the training rows held out for it (the model is then trained on
    the rest). ``model.calibration_`` records which. A config's ``augment:`` writes new rows
    from the training rows after those splits (``api/augmentation.py``); the model records
    what was kept."""
    request, model = plan.request, plan.model
    train, valid = plan.train, plan.valid
    if valid is None and request.valid_split:
        train, valid = stratified_split(train, request.valid_split, request.seed)
    calibration_rows, calibration_source = valid, "validation rows"
    if request.calibrate and valid is None:
        train, calibration_rows = stratified_split(train, request.calibration_split, request.seed)
        calibration_source = f"training rows held out ({request.calibration_split:.0%})"
    augmented = None
    if plan.augment is not None:  # after the splits: only training rows are restated
        device = request.runtime.device if request.runtime and request.runtime.device else "cpu"
        train, augmented = augment_rows(train, plan.augment, device=device)
    if plan.long_doc is not None:
        train = training_pieces(train, plan.long_doc, model.token_spans())
        model.long_doc_ = plan.long_doc
    with parameter_errors_named(model):
        if request.workers is None:
            model.fit(train, valid)
        else:  # the same fit, on Ray Train workers; the model comes back as rank 0 saved it
            model, plan.workers_run = fit_on_workers(request, model, train, valid)
    if request.calibrate and calibration_rows is not None:
        model.calibrate(calibration_rows)
        model.calibration_ = {
            "source": calibration_source,
            "rows": len(calibration_rows),
            "temperature": model.temperature_,
        }
    model.input_spec_ = dict(plan.input_spec)
    model.trained_on_ = trained_on(request, rows=len(plan.train))
    if augmented is not None:
        model.trained_on_["augment"] = {
            **augmented["spec"],
            **{k: augmented[k] for k in ("sources", "kept", "dropped")},
        }
    if request.out is not None:
        model.save(request.out)
    return model


def trained_on(request: TrainRequest, rows: int) -> dict[str, Any]:
    """What a saved model records of how it was trained, so that ``docsort retrain`` can train
    its next version the same way: the data (a path made absolute, or a built-in set; rows in
    memory have no name to record), the row count and the split options."""
    return {
        "data": source_name(request.data),
        "valid": source_name(request.valid),
        "rows": rows,
        "seed": request.seed,
        "valid_split": request.valid_split,
        "calibrate": request.calibrate,
        "calibration_split": request.calibration_split,
    }


def source_name(source: Source | None) -> str | None:
    """A source as a saved model records it: a file's absolute path, a built-in set's name;
    ``None`` for rows in memory or standard input."""
    if source is None or isinstance(source, Dataset | list) or str(source) == "-":
        return None
    text = str(source)
    return text if text.startswith("builtin:") else str(Path(text).resolve())


@contextmanager
def parameter_errors_named(model: Model) -> Iterator[None]:
    """A ``ValueError`` or ``TypeError`` that scikit-learn raises from a fit is (almost always)
    a parameter value the kind's rules let through: one line naming the kind, with the
    original chained for developers. Errors raised elsewhere (docsort's own code, torch)
    stay what they are: they are bugs to see, not to hide."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        if not _raised_by_sklearn(exc):
            raise
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DocsortError(
            f"{model.kind} could not be fitted with these parameters: {detail[:300]}"
        ) from exc


def _raised_by_sklearn(exc: BaseException) -> bool:
    """Whether the innermost frame that raised ``exc`` is scikit-learn's own code."""
    from sklearn.utils._param_validation import InvalidParameterError

    if isinstance(exc, InvalidParameterError):
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and f"{os.sep}sklearn{os.sep}" in tb.tb_frame.f_code.co_filename


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
    runtime: Runtime | None = None,
) -> Model:
    """Fit a model of ``kind`` on rows in memory; with ``out`` it is saved there (atomically).
    The same checks and steps as ``docsort train`` (see ``fit``)."""
    request = TrainRequest(
        data=train_data,
        out=out,
        kind=kind,
        params=dict(params or {}),
        valid=valid_data,
        valid_split=valid_split,
        seed=seed,
        long_doc=long_doc,
        calibrate=calibrate,
        calibration_split=calibration_split,
        runtime=runtime,
        input_spec=dict(input_spec or {}),
    )
    return fit(prepare_train(request))

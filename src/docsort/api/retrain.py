"""Retraining behind a gate: the next version of a registered model, trained the way its
champion was on its training rows plus the corrections people sent to the service, registered
as ``challenger``, and promoted only if it is not worse than the champion on a fixed holdout.

The champion's saved manifest says how it was trained (kind, parameters, the columns it read,
long-document and redaction settings, calibration, a config's ``augment:`` and, for models
trained by this version of docsort, the training data and split options), so the only new input
is the feedback. Augmented rows are written anew from the new training rows. A
feedback row whose text is one of the training texts replaces that row (a correction of the
training data); the others are added. ``feedback_repeat`` adds each feedback row that many
times: a handful of corrections among thousands of rows may otherwise move the model too
little to fix them, and how many repeats are enough is measured on the corrected rows
themselves (``corrected`` in the result: champion and challenger right on them).

``method="grpo"`` tunes the champion itself from the feedback instead (``api/rewards.py``: the
ratings of the answers served and the corrections as rewards, GRPO with fresh LoRA adapters,
the champion as the frozen reference), for kinds that declare ``reward_tunes``; the challenger
is registered and gated the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from docsort.api.augmentation import AugmentSpec
from docsort.api.feedback import FeedbackRows, check_min_rating, feedback_rows
from docsort.api.redaction import redact_like_training, trained_redaction
from docsort.api.registry import (
    PromoteRequest,
    PromoteResult,
    RegisterRequest,
    check_name,
    resolve_reference,
    run_promote,
    run_register,
)
from docsort.api.rewards import RewardTuning, corrected_dataset, reward_rows, reward_tuned
from docsort.api.rows import Columns, Source, read_rows
from docsort.api.training import TrainRequest, fit, prepare_train, source_name
from docsort.data.dataset import Dataset, label_names
from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.io import check_replaceable
from docsort.models.base import Model, Runtime, is_model_dir, load
from docsort.models.nn.grpo import GrpoArgs

MAX_REPEAT = 100
AUGMENT_SETTINGS = {f.name for f in fields(AugmentSpec)}  # trained_on.augment less its counts
METHODS = ("supervised", "grpo")


@dataclass
class RetrainRequest:
    """Train the next version of the registered model ``name`` into ``out``.

    ``data`` is the training data (default: what the champion's manifest records);
    ``store`` the service's feedback store (a SQLAlchemy URL) whose corrections are added;
    with ``holdout`` the challenger and the champion are evaluated on it, and with ``promote``
    the challenger becomes champion when it is not worse by more than ``tolerance``.
    ``method`` is ``supervised`` (train anew on the data plus the feedback) or ``grpo`` (tune
    the champion from the feedback's rewards, with ``grpo``'s settings; needs ``store``)."""

    name: str
    out: str | Path
    data: Source | None = None
    store: str | None = None
    min_rating: int | None = None
    feedback_repeat: int = 1
    holdout: Source | None = None
    promote: bool = False
    tolerance: float = 0.01
    metric: str | None = None
    force: bool = False
    tracking_uri: str | None = None
    runtime: Runtime | None = None
    method: str = "supervised"
    grpo: GrpoArgs | None = None


@dataclass
class Corrected:
    """How many of the feedback rows each model labels as the feedback says."""

    rows: int
    champion: int
    challenger: int

    def line(self) -> str:
        return (
            f"corrected rows right: champion {self.champion}/{self.rows}, "
            f"challenger {self.challenger}/{self.rows}"
        )


@dataclass
class RetrainResult:
    name: str
    champion: str  # the version retrained from
    version: str  # the challenger registered
    out: Path
    training_rows: int  # of the original data
    feedback_rows: int  # added (before repeats)
    replaced: int  # training rows whose text a feedback row corrected
    new_labels: list[str]
    corrected: Corrected | None
    promoted: PromoteResult | None = None
    notes: list[str] = field(default_factory=list)
    method: str = "supervised"
    reward: RewardTuning | None = None  # what GRPO did (method grpo)


@dataclass
class _Trained:
    """A challenger saved to ``out``, before it is registered."""

    description: str
    training_rows: int
    feedback_rows: int
    replaced: int
    new_labels: list[str]
    corrected: Corrected | None
    notes: list[str]
    reward: RewardTuning | None = None


def run_retrain(request: RetrainRequest) -> RetrainResult:
    """Check everything, train (or tune), register as challenger, and gate the promotion."""
    name = check_name(request.name)
    check_min_rating(request.min_rating)
    method = request.method
    if method not in METHODS:
        raise DocsortError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    repeat = request.feedback_repeat
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise DocsortError(f"--feedback-repeat must be a whole number 1-{MAX_REPEAT}, not {repeat}")
    grpo = request.grpo if request.grpo is not None else GrpoArgs()
    if method == "grpo":
        _check_grpo_request(request)
        grpo.check()
    elif request.grpo is not None:
        raise DocsortError("GRPO settings are read by --method grpo only: add it, or drop them")
    if request.promote and request.holdout is None and not request.force:
        raise DocsortError(
            "--promote compares the challenger with the champion on --holdout DATA: give it "
            "(or --force to promote without a comparison)"
        )
    check_replaceable(request.out, is_model_dir, "a docsort model")
    champion_ref = resolve_reference(f"models:/{name}@champion", request.tracking_uri)
    champion = load(champion_ref.path, runtime=request.runtime)
    caps = champion.capabilities()
    if method == "grpo" and not caps.reward_tunes:
        raise DocsortError(
            f"{name} is a {champion.kind} model, which cannot be tuned from rewards: retrain "
            "it with --method supervised (GRPO needs a kind that declares reward tuning, "
            "e.g. dual)"
        )
    if caps.scores and request.store is not None:
        raise DocsortError(
            f"{name} is a pair model: its feedback holds ratings, not scores to train on; "
            "retrain it from new data without --store"
        )
    if method == "grpo":
        trained = _reward_tuned(request, champion, champion_ref.version, grpo)
    else:
        trained = _supervised(request, champion, champion_ref.version)
    registered = run_register(
        RegisterRequest(
            model=request.out,
            name=name,
            alias="challenger",
            description=trained.description,
            tracking_uri=request.tracking_uri,
        )
    )
    promoted = None
    notes = list(trained.notes)
    if request.promote:
        gate = PromoteRequest(
            name=name,
            version=registered.version,
            holdout=request.holdout,
            tolerance=request.tolerance,
            metric=request.metric,
            force=request.force,
            tracking_uri=request.tracking_uri,
            runtime=request.runtime,
        )
        try:
            promoted = run_promote(gate)
        except DocsortError as exc:  # the challenger stays registered: say so
            raise DocsortError(
                f"version {registered.version} of {name} is registered as challenger, not "
                f"promoted: {exc}"
            ) from None
    elif request.holdout is not None:
        notes.append(
            f"not promoted: docsort registry promote {name} challenger --holdout "
            f"{request.holdout} compares it with the champion first"
        )
    return RetrainResult(
        name=name,
        champion=champion_ref.version,
        version=registered.version,
        out=Path(request.out),
        training_rows=trained.training_rows,
        feedback_rows=trained.feedback_rows,
        replaced=trained.replaced,
        new_labels=trained.new_labels,
        corrected=trained.corrected,
        promoted=promoted,
        notes=notes,
        method=method,
        reward=trained.reward,
    )


def _check_grpo_request(request: RetrainRequest) -> None:
    if request.store is None:
        raise DocsortError("--method grpo learns from the feedback in --store URL: give it")
    if request.data is not None:
        raise DocsortError(
            "--method grpo tunes the champion from feedback alone: --data is read by "
            "--method supervised"
        )
    if request.feedback_repeat != 1:
        raise DocsortError("--feedback-repeat is read by --method supervised (GRPO samples)")


def _supervised(request: RetrainRequest, champion: Model, version: str) -> _Trained:
    """Train anew the way the champion was, on its data plus the feedback; saved to out."""
    repeat = request.feedback_repeat
    trained = champion.trained_on_ or {}
    data = request.data if request.data is not None else trained.get("data")
    if data is None:
        raise DocsortError(
            f"the champion of {request.name} does not record its training data (trained from "
            "memory or by an older docsort): give it with --data"
        )
    if not str(data).startswith("builtin:") and not Path(str(data)).exists():
        raise DocsortError(f"training data not found: {str(data)!r} (give it with --data)")
    spec = dict(champion.input_spec_ or {})
    spec.pop("redact", None)  # recorded again by training, from the redaction it applies
    columns = Columns().or_trained(spec)
    original = read_rows(data, columns)
    notes: list[str] = []
    feedback = None
    if request.store is not None:
        feedback = feedback_rows(request.store, request.min_rating)
        if not feedback.rows:
            raise DocsortError(
                "the store holds no feedback that can be a training row "
                f"({feedback.skipped_summary()})"
            )
        if feedback.skipped:
            notes.append(f"feedback {feedback.skipped_summary()}")
    added = _feedback_dataset(feedback, columns, champion) if feedback else None
    train, replaced = _merged(original, added, repeat, champion.labels_)
    new_labels = [n for n in train.label_set.names if n not in champion.labels_.names]
    if new_labels:
        notes.append(f"feedback adds {len(new_labels)} label(s) the champion did not know")
    params = champion.get_params()
    augment = trained.get("augment")
    if augment:  # written anew from this data, as the champion's were (the counts are its own)
        params["augment"] = {k: v for k, v in augment.items() if k in AUGMENT_SETTINGS}
        if request.runtime is not None and request.runtime.threads:
            params["augment"]["threads"] = request.runtime.threads  # this run's, never recorded
        unrecorded = sorted(AUGMENT_SETTINGS - set(augment) - {"threads"})
        notes.append(
            f"augmentation repeated as the champion's ({augment.get('method')})"
            + (f"; not recorded, so defaults: {', '.join(unrecorded)}" if unrecorded else "")
        )
    plan = prepare_train(
        TrainRequest(
            data=train,
            out=None,  # saved below, with the data it was trained on named
            kind=champion.kind,
            params=params,
            valid=trained.get("valid"),
            valid_split=trained.get("valid_split"),
            seed=int(trained.get("seed") or 0),
            long_doc=champion.long_doc_,
            calibrate=champion.calibration_ is not None,
            calibration_split=float(trained.get("calibration_split") or 0.1),
            runtime=request.runtime,
            input_spec=spec,
            redact=trained_redaction(champion),
        )
    )
    challenger = fit(plan)
    challenger.trained_on_ = {**(challenger.trained_on_ or {}), "data": source_name(data)}
    challenger.save(request.out)
    corrected = _corrected(added, champion, challenger) if added is not None else None
    return _Trained(
        description=_description(version, data, feedback, repeat),
        training_rows=len(original),
        feedback_rows=0 if added is None else len(added),
        replaced=replaced,
        new_labels=new_labels,
        corrected=corrected,
        notes=[*plan.notes, *notes],
    )


def _reward_tuned(
    request: RetrainRequest, champion: Model, version: str, args: GrpoArgs
) -> _Trained:
    """Tune the champion by GRPO on the feedback's rewards; saved to out."""
    assert request.store is not None  # checked first
    spec = dict(champion.input_spec_ or {})
    spec.pop("redact", None)
    columns = Columns().or_trained(spec)
    data = reward_rows(request.store, champion, columns, request.min_rating)
    if not data.rows:
        raise DocsortError(
            f"the store holds no feedback GRPO can learn from ({data.skipped_summary()})"
        )
    notes = [f"feedback {data.skipped_summary()}"] if data.skipped else []
    challenger, tuning = reward_tuned(champion, data, args)
    challenger.save(request.out)
    corrected_rows = corrected_dataset(data, champion)
    corrected = (
        _corrected(corrected_rows, champion, challenger, redacted=True)
        if corrected_rows is not None
        else None
    )
    return _Trained(
        description=(
            f"tuned by GRPO from version {version} on {len(data.rows)} feedback rows "
            f"({data.corrections} corrected, {data.rated} rated)"
        ),
        training_rows=0,
        feedback_rows=len(data.rows),
        replaced=0,
        new_labels=[],
        corrected=corrected,
        notes=notes,
        reward=tuning,
    )


def _feedback_dataset(feedback: FeedbackRows, columns: Columns, champion: Model) -> Dataset:
    """The feedback rows read with the champion's columns: a text sent to a model that reads one
    column is that column; records keep their own columns."""
    text_columns = list(columns.text or ("text",))
    label = columns.label or "label"
    records = []
    for row in feedback.rows:
        record = {k: v for k, v in row.items() if k not in ("label", "weight")}
        if "text" in record and len(text_columns) == 1 and text_columns[0] != "text":
            record[text_columns[0]] = record.pop("text")
        missing = [c for c in text_columns if c not in record]
        if missing and columns.template is None:
            raise DocsortError(
                f"feedback on prediction {row.get('prediction_id')} has no {missing[0]!r}: the "
                f"champion reads {', '.join(text_columns)}"
            )
        record[label] = row["label"]
        records.append(record)
    multi = champion.labels_.multi_label
    if multi:
        records = [{**r, label: list(label_names(r[label]))} for r in records]
    elif any(isinstance(r[label], list) for r in records):
        raise DocsortError("the feedback holds several labels per row; the champion gives one")
    labels = LabelSet.from_labels(
        [*champion.labels_.names, *(n for r in records for n in label_names(r[label]))],
        multi_label=multi,
    )
    return read_rows(records, columns, labels=labels)


def _merged(
    original: Dataset, added: Dataset | None, repeat: int, known: LabelSet
) -> tuple[Dataset, int]:
    """The original rows with the feedback's: a feedback row replaces the rows of the same
    text, and is added ``repeat`` times. The labels are the champion's (in its order, with
    its descriptions), then any the rows bring that it did not know."""
    keep = list(range(len(original)))
    texts: list[str] = []
    labels: list[Any] = []
    if added is not None:
        corrected = set(added.texts)
        keep = [i for i, text in enumerate(original.texts) if text not in corrected]
        texts, labels = added.texts * repeat, list(added.labels) * repeat
    texts = [original.texts[i] for i in keep] + texts
    labels = [original.labels[i] for i in keep] + labels
    names = list(known.names)
    for value in labels:
        for label in label_names(value):
            if label not in known and label not in names:
                names.append(label)
    label_set = LabelSet(tuple(names), dict(known.descriptions), known.multi_label)
    name = original.name if added is None else f"{original.name} and {len(added)} feedback rows"
    return Dataset(texts, labels, label_set, name=name), len(original) - len(keep)


def _corrected(
    added: Dataset, champion: Model, challenger: Model, redacted: bool = False
) -> Corrected:
    """How many feedback rows each model labels as the feedback says (read as it reads texts:
    redacted when it was trained on redacted rows, unless ``redacted`` says they are)."""
    right = []
    for model in (champion, challenger):
        rows = added if redacted else redact_like_training(model, added)[0]
        predicted = model.predict(rows.texts)
        right.append(int(sum(_same(p, t) for p, t in zip(predicted, added.labels, strict=True))))
    return Corrected(len(added), right[0], right[1])


def _same(predicted: Any, truth: Any) -> bool:
    if isinstance(truth, tuple | list):
        return set(np.atleast_1d(predicted).tolist()) == set(truth)
    return predicted == truth


def _description(champion: str, data: Source, feedback: FeedbackRows | None, repeat: int) -> str:
    source = f"retrained from version {champion} on {data}"
    if feedback is None:
        return source
    return f"{source} with {len(feedback.rows)} feedback rows (each {repeat}x)"


__all__ = ["Corrected", "RetrainRequest", "RetrainResult", "run_retrain"]

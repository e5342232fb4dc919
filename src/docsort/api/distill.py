"""Distillation: a big model (the teacher) labels unlabelled rows, a small one (the student)
learns from those labels alone.

``prepare_distill`` checks the request once, cheap checks first (the student kind and its
parameters, ``--soft`` against what the kind reads, the shares, ``--out``), then opens the
teacher and reads the rows; ``run_distill`` has the teacher label every row with its
probabilities (a teacher whose capabilities say ``adapts`` first re-aims itself on the whole
pool, as ``predict --adapt`` does), drops the rows it is less sure of than
``min_confidence``, holds out ``valid_share`` of the rest, trains the student on the hard
pseudo-labels (or, with ``soft``, the teacher's probabilities, for kinds that read soft
targets), scores the held-out rows against the teacher (agreement) and saves the student as
a normal model directory with ``distill.json`` beside its weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from docsort.api.common import open_model, read_config, zero_shot_model, zero_shot_spec
from docsort.api.prediction import run_batched, with_labels
from docsort.api.rows import Columns, Source, notes_on, read_labels, read_rows
from docsort.api.training import TrainRequest, fit, prepare_train
from docsort.data.dataset import Dataset, stratified_split
from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.io import atomic_dir, check_replaceable, write_json
from docsort.models.base import REGISTRY, Model, Runtime, create, get_kind, is_model_dir, is_number
from docsort.tracking.uri import is_reference

REPORT = "distill.json"
SOFT_PARAM = "soft_column"  # the parameter a kind that learns from soft targets has
SOFT_COLUMN = "teacher_probabilities"  # where the teacher's probabilities ride on the rows


@dataclass
class DistillRequest:
    """A distillation run as plain values (the CLI's options map onto it one to one).

    ``teacher``: a saved model (directory, registry reference or object) or ``dual[:BASE]``
    for zero-shot over the ``labels`` file's descriptions. ``data``: rows to label; a label
    column is never read. ``teacher_proba``: the teacher's probabilities of ``data`` already
    computed (rows × the teacher's labels, in order): the teacher is then not run."""

    teacher: Model | str | Path
    data: Source
    student: str
    out: str | Path | None = None
    student_config: str | Path | None = None
    student_params: dict[str, Any] = field(default_factory=dict)
    columns: Columns = field(default_factory=Columns)
    labels: str | Path | LabelSet | None = None
    min_confidence: float | None = None
    soft: bool = False
    valid_share: float = 0.1
    seed: int = 0
    runtime: Runtime | None = None
    teacher_proba: np.ndarray | None = None


@dataclass
class DistillPlan:
    """A checked request: the teacher, the rows and the student's parameters."""

    request: DistillRequest
    teacher: Model
    rows: Dataset
    student_params: dict[str, Any]
    input_spec: dict[str, Any]  # the columns the student records (the teacher's)
    notes: list[str] = field(default_factory=list)


@dataclass
class DistillResult:
    student: Model
    report: dict[str, Any]  # what distill.json holds
    notes: list[str] = field(default_factory=list)


def soft_kinds() -> list[str]:
    """The kinds that learn from soft targets (they have a ``soft_column`` parameter)."""
    get_kind("tfidf")  # registers the built-in kinds
    return sorted(name for name, cls in REGISTRY.items() if SOFT_PARAM in cls.param_names())


def prepare_distill(request: DistillRequest) -> DistillPlan:
    """Check ``request``, open the teacher and read the rows; nothing is trained yet."""
    params = {**read_config(request.student_config), **request.student_params}
    given_kind = params.pop("kind", None)
    if given_kind is not None and given_kind != request.student:
        raise DocsortError(
            f"the student config says kind: {given_kind} but --student is {request.student}: "
            "drop one"
        )
    student = create(request.student, params)  # an unknown kind or parameter: one line
    caps = student.capabilities()
    if caps.scores:
        raise DocsortError(
            f"a {request.student} model learns scores of text pairs, not labels: it cannot be "
            "a student"
        )
    student.check()
    if request.soft and SOFT_PARAM not in type(student).param_names():
        raise DocsortError(
            f"--soft needs a student kind that learns from soft targets ("
            f"{', '.join(soft_kinds())}), not {request.student!r}; without --soft it learns "
            "the teacher's top labels"
        )
    confidence = request.min_confidence
    if confidence is not None and not (is_number(confidence) and 0 <= confidence < 1):
        raise DocsortError(f"--min-confidence must be a probability in [0, 1), not {confidence}")
    share = request.valid_share
    if not (is_number(share) and 0 < share < 1):
        raise DocsortError(f"--valid-share must be a share between 0 and 1 (e.g. 0.1), not {share}")
    if request.out is not None:
        check_replaceable(request.out, is_model_dir, "a docsort model")
    labels = read_labels(request.labels)
    teacher = _teacher(request.teacher, labels, request.runtime)
    tcaps = teacher.capabilities()
    if tcaps.scores:
        raise DocsortError("the teacher gives scores of text pairs, not labels: it cannot teach")
    if teacher.labels_.multi_label:
        raise DocsortError("distill learns single-label students: this teacher is multi-label")
    columns = request.columns.or_trained(getattr(teacher, "input_spec_", None) or {})
    rows = read_rows(request.data, columns, labelled=False)
    if len(rows) == 0:
        raise DocsortError(f"{_name(request.data)} has no rows with text to label")
    if request.teacher_proba is not None:
        shape = np.shape(request.teacher_proba)
        if shape != (len(rows), len(teacher.labels_)):
            raise DocsortError(
                f"teacher_proba is {shape}, not one row per text and one column per label "
                f"({len(rows)}, {len(teacher.labels_)})"
            )
    if request.soft:
        params[SOFT_PARAM] = SOFT_COLUMN
    notes = notes_on(rows, _name(request.data), labelled=False)
    return DistillPlan(request, teacher, rows, params, columns.spec(False), notes)


def _teacher(spec: Model | str | Path, labels: LabelSet | None, runtime: Runtime | None) -> Model:
    if isinstance(spec, str) and zero_shot_spec(spec) is not None:
        model = zero_shot_model(spec, labels)
        model.apply_runtime(runtime)
        return model
    if isinstance(spec, str | Path) and not is_reference(spec) and not Path(spec).exists():
        raise DocsortError(
            f"teacher not found: {str(spec)!r} (give a saved model directory, a registry "
            "reference, or dual[:BASE] with --labels)"
        )
    return with_labels(open_model(spec, runtime), labels)


def _name(source: Source) -> str:
    return source.name or "the rows" if isinstance(source, Dataset) else str(source)


def run_distill(request: DistillRequest) -> DistillResult:
    """Check the request, then label, filter, train, score and save (see the module)."""
    return distill(prepare_distill(request))


def distill(plan: DistillPlan) -> DistillResult:
    request, teacher, rows = plan.request, plan.teacher, plan.rows
    started = time.perf_counter()
    adapted: bool | None = False
    if request.teacher_proba is not None:  # the caller ran the teacher: adapted or not, unknown
        adapted = None
        proba, teacher_seconds = np.asarray(request.teacher_proba, dtype=np.float64), 0.0
    else:
        begun = time.perf_counter()
        if teacher.capabilities().adapts:
            teacher = teacher.adapt(rows.texts)  # type: ignore[attr-defined]
            adapted = True
        proba = run_batched(teacher, rows.texts, description="teacher labelling").proba
        teacher_seconds = time.perf_counter() - begun
    names = teacher.labels_.names
    top = teacher.decide(proba)
    confidence = proba[np.arange(len(proba)), top]
    keep = np.ones(len(rows), dtype=bool)
    if request.min_confidence is not None:
        keep = confidence >= request.min_confidence
    dropped = int((~keep).sum())
    if not keep.any():
        raise DocsortError(
            f"the teacher is sure of no row at --min-confidence {request.min_confidence} "
            f"(its highest confidence is {confidence.max():.3f}): lower it"
        )
    kept = np.flatnonzero(keep)
    pseudo = [names[int(top[i])] for i in kept]
    present = [n for n in names if n in set(pseudo)]
    if len(present) < 2:
        raise DocsortError(
            f"the teacher gave every kept row the same label ({present[0]!r}): a student needs "
            "two labels or more (lower --min-confidence, or give more varied rows)"
        )
    labelled = Dataset(
        [rows.texts[i] for i in kept],
        pseudo,
        label_set=LabelSet(
            tuple(present),
            {
                n: teacher.labels_.descriptions[n]
                for n in present
                if n in teacher.labels_.descriptions
            },
        ),
        name=f"{rows.name or 'rows'} labelled by the teacher",
    )
    if request.soft:
        labelled.extra[SOFT_COLUMN] = [
            {names[j]: float(proba[i, j]) for j in range(len(names)) if names[j] in present}
            for i in kept
        ]
    if len(labelled) < 2:
        raise DocsortError("one row is left to learn from: give more rows")
    train_rows, held_out = stratified_split(labelled, request.valid_share, request.seed)
    train_request = TrainRequest(
        data=train_rows,
        kind=request.student,
        params=dict(plan.student_params),
        seed=request.seed,
        runtime=request.runtime,
        input_spec=dict(plan.input_spec),
    )
    begun = time.perf_counter()
    student = fit(prepare_train(train_request))
    student_seconds = time.perf_counter() - begun
    run = run_batched(student, held_out.texts, description="scoring the held-out rows")
    decided = student.decide(run.proba)
    agreement = float(
        np.mean(
            [
                student.labels_.names[int(d)] == t
                for d, t in zip(decided, held_out.labels, strict=True)
            ]
        )
    )
    absent = [n for n in names if n not in present]
    report = {
        "teacher": _describe(request.teacher),
        "teacher_kind": teacher.kind,
        "teacher_adapted": adapted,
        "student": request.student,
        "soft": request.soft,
        "min_confidence": request.min_confidence,
        "rows": len(rows),
        "rows_dropped": dropped,
        "rows_trained": len(train_rows),
        "rows_held_out": len(held_out),
        "agreement": round(agreement, 6),
        "labels_never_given": absent,
        "seconds": {
            "teacher": round(teacher_seconds, 3),
            "student_training": round(student_seconds, 3),
            "student_held_out": round(run.seconds, 3),
            "total": round(time.perf_counter() - started, 3),
        },
    }
    notes = list(plan.notes)
    if dropped:
        notes.append(
            f"dropped {dropped:,} of {len(rows):,} row(s) the teacher gave less than "
            f"{request.min_confidence} confidence"
        )
    if absent:
        notes.append(
            f"the teacher gave no kept row {len(absent)} label(s) (first: {absent[0]!r}); "
            "the student will never predict them"
        )
    if request.out is not None:
        with atomic_dir(request.out, replaces=is_model_dir, what="a docsort model") as tmp:
            student.save(tmp)
            write_json(tmp / REPORT, report)
    return DistillResult(student, report, notes)


def _describe(teacher: Model | str | Path) -> str:
    if isinstance(teacher, Model):
        return f"a {teacher.kind} model object"
    return str(teacher)

"""``docsort distill``: a teacher labels unlabelled rows, a student kind learns from them."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from docsort import api
from docsort.api.distill import DistillRequest, run_distill
from docsort.cli.app import (
    AS_TRAINED,
    DEVICE_HELP,
    TEMPLATE_HELP,
    TEXT_HELP,
    THREADS_HELP,
    err_console,
    runtime_options,
    warn,
)
from docsort.progress import status


def distill(
    teacher: str = typer.Argument(
        ...,
        help="The teacher: a saved model directory, a registry reference (models:/NAME@ALIAS), "
        "or dual[:BASE] for zero-shot over the --labels file's descriptions.",
    ),
    data: str = typer.Argument(
        ...,
        help="Unlabelled rows: a CSV/TSV/JSONL/Parquet file, a folder of .txt, "
        "builtin:NAME[:split] or - for stdin. A label column, if present, is not read.",
    ),
    student: str = typer.Option(
        ..., "--student", help="The student's kind: tfidf, static, embed, encoder, ..."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Directory to save the student in (a normal model dir + distill.json)."
    ),
    student_config: Path | None = typer.Option(
        None, "--student-config", help="YAML of the student kind's parameters."
    ),
    min_confidence: float | None = typer.Option(
        None,
        "--min-confidence",
        help="Train only on rows the teacher gives at least this probability (the rest are "
        "dropped and counted).",
    ),
    soft: bool = typer.Option(
        False,
        "--soft",
        help="Learn the teacher's probabilities, not only its top label (kinds that read soft "
        "targets; others are refused naming those that can).",
    ),
    valid_share: float = typer.Option(
        0.1,
        "--valid-share",
        help="Share of the labelled rows held out to score the student against the teacher "
        "(agreement).",
    ),
    labels: Path | None = typer.Option(
        None,
        "--labels",
        help="Labels file (YAML): the labels and descriptions a dual teacher scores (needed for "
        "dual[:BASE]); for other teachers every label in it must be known to them.",
    ),
    text: str | None = typer.Option(
        None, "--text", help=TEXT_HELP + " Default: as the teacher was trained, else text."
    ),  # fmt: skip
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP + AS_TRAINED),
    seed: int = typer.Option(0, "--seed", help="Seed of the held-out split and of training."),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Distil a teacher into a small fast student with no labels: the teacher labels DATA
    (re-aiming itself on the whole pool first when it can, as a zero-shot dual does), rows
    under --min-confidence are dropped, the student trains on the teacher's labels (or its
    probabilities with --soft), and a held-out share says how often the two agree."""
    request = DistillRequest(
        teacher=teacher,
        data=data,
        student=student,
        out=out,
        student_config=student_config,
        columns=api.Columns.parse(text, template=template),
        labels=labels,
        min_confidence=min_confidence,
        soft=soft,
        valid_share=valid_share,
        seed=seed,
        runtime=runtime_options(device, threads),
    )
    with status(f"distilling {teacher} into a {student} student"):
        result = run_distill(request)
    warn(result.notes)
    report = result.report
    err_console.print(
        f"trained a {student} student on {report['rows_trained']:,} row(s) labelled by the "
        f"teacher ({report['rows_dropped']:,} dropped); agreement with the teacher on "
        f"{report['rows_held_out']:,} held-out row(s): {report['agreement']:.1%} → {out}"
    )
    print(json.dumps(report))

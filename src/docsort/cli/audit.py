"""``docsort audit``: options into an ``AuditRequest``, the findings printed."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from docsort import api
from docsort.api import AuditRequest, run_audit
from docsort.cli.app import (
    DEVICE_HELP,
    LABEL_HELP,
    LABELS_HELP,
    STRICT_HELP,
    TEMPLATE_HELP,
    TEXT_HELP,
    THREADS_HELP,
    out_console,
    runtime_options,
    warn,
)
from docsort.progress import status


def audit(
    data: str = typer.Argument(
        ..., help="Labelled data to audit: a file, a folder or builtin:NAME[:split]."
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Directory for suspects.csv, report.md, audit.json (and the cleaned file).",
    ),
    model: str | None = typer.Option(
        None, "--model", help="Kind trained on each fold (default: the config's kind, or tfidf)."
    ),
    config: Path | None = typer.Option(None, "--config", help="YAML of the kind's parameters."),
    folds: int = typer.Option(
        5, "--folds", help="Stratified folds: each row is scored by a model trained on the rest."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and of training."),
    text: str = typer.Option("text", "--text", help=TEXT_HELP),
    label: str = typer.Option("label", "--label", help=LABEL_HELP),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    labels: Path | None = typer.Option(None, "--labels", help=LABELS_HELP),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    drop: bool = typer.Option(
        False, "--drop", help="Also write the input without the suspect rows (cleaned.<ext>)."
    ),
    relabel: bool = typer.Option(
        False,
        "--relabel",
        help="Also write the input with each suspect's label replaced by the suggested one.",
    ),
    filter_by: str = typer.Option(
        "prune_by_noise_rate",
        "--filter-by",
        help="cleanlab's rule for flagging a row: prune_by_noise_rate, prune_by_class, both, "
        "confident_learning, low_normalized_margin or low_self_confidence.",
    ),
    rank_by: str = typer.Option(
        "self_confidence",
        "--rank-by",
        help="Label quality score suspects are ranked by: self_confidence, normalized_margin "
        "or confidence_weighted_entropy.",
    ),
    top: int = typer.Option(20, "--top", help="Suspects shown in report.md (all are in the CSV)."),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Find rows whose label looks wrong: out-of-fold probabilities of any kind, then
    confident learning (cleanlab). suspects.csv lists them most suspect first, with `row` the
    0-based position in the input; --drop or --relabel writes a cleaned copy."""
    if drop and relabel:
        raise api.DocsortError("give --drop or --relabel, not both")
    request = AuditRequest(
        data=data,
        out=out,
        kind=model,
        config=config,
        columns=api.Columns.parse(text, label=label, template=template, strict=strict),
        labels=labels,
        folds=folds,
        seed=seed,
        fix="drop" if drop else "relabel" if relabel else None,
        filter_by=filter_by,
        rank_by=rank_by,
        top=top,
        runtime=runtime_options(device, threads),
    )
    with status(f"auditing {data} ({folds} folds)"):
        result = run_audit(request)
    warn(result.notes)
    s = result.summary
    out_console.print(
        f"{s['suspects']:,} suspect label(s) in {s['rows']:,} rows ({s['suspect_share']:.1%}); "
        f"out-of-fold accuracy {s['oof_accuracy']:.1%} ({s['kind']}, {s['folds']} folds)"
    )
    for suspect in result.suspects[:5]:
        out_console.print(
            f"  row {suspect.row}: {escape(suspect.given)} ({suspect.p_given:.2f}) → "
            f"{escape(suspect.suggested)} ({suspect.p_suggested:.2f})",
            highlight=False,
        )
    if s["cleaned_file"]:
        out_console.print(
            f"cleaned ({s['fix']}): {out / s['cleaned_file']}, {s['cleaned_rows']:,} rows"
        )
    out_console.print(f"report: {out / 'report.md'}")

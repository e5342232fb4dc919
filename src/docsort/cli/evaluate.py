"""``docsort eval`` and ``docsort compare``."""

from __future__ import annotations

from pathlib import Path

import typer

from docsort import api
from docsort.cli import render
from docsort.cli.app import (
    AGGREGATE_HELP,
    AS_TRAINED,
    CONTEXT_HELP,
    DEVICE_HELP,
    LABEL_HELP,
    LABEL_SEP_HELP,
    LONG_DOC_HELP,
    OVERLAP_HELP,
    PAIR_HELP,
    STRICT_HELP,
    TEMPLATE_HELP,
    TEXT_HELP,
    THREADS_HELP,
    WINDOW_HELP,
    long_doc_options,
    out_console,
    runtime_options,
    warn,
)
from docsort.progress import status


def eval_command(
    model_dir: Path = typer.Argument(
        ..., help="A saved model directory, or a registry reference (models:/NAME@champion)."
    ),
    data: str = typer.Argument(
        ..., help="Labelled data: a file, a folder or builtin:NAME[:split]."
    ),
    out: Path = typer.Option(..., "--out", help="Directory for metrics.json, report.md and plots."),
    text: str | None = typer.Option(None, "--text", help=TEXT_HELP + AS_TRAINED),
    label: str | None = typer.Option(None, "--label", help=LABEL_HELP + AS_TRAINED),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    label_sep: str | None = typer.Option(None, "--label-sep", help=LABEL_SEP_HELP),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    long_doc: str | None = typer.Option(None, "--long-doc", help=LONG_DOC_HELP),
    window: int | None = typer.Option(None, "--window", help=WINDOW_HELP),
    overlap: int | None = typer.Option(None, "--overlap", help=OVERLAP_HELP),
    aggregate: str | None = typer.Option(None, "--aggregate", help=AGGREGATE_HELP),
    sweep: bool = typer.Option(
        True,
        "--sweep/--no-sweep",
        help="Cascade: also run each stage on the rows it was not sent (untimed) for its "
        "accuracy alone and the threshold sweep.",
    ),
    pair: str | None = typer.Option(None, "--pair", help=PAIR_HELP + AS_TRAINED),
    context: str | None = typer.Option(None, "--context", help=CONTEXT_HELP + AS_TRAINED),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Evaluate a saved model on labelled data and write a report."""
    request = api.EvalRequest(
        model=model_dir,
        data=data,
        out=out,
        columns=api.Columns.parse(
            text,
            label=label,
            template=template,
            label_sep=label_sep,
            strict=strict,
            pair=pair,
            context=context,
        ),  # fmt: skip
        long_doc=long_doc_options(long_doc, window, overlap, aggregate),
        sweep=sweep,
        title=f"{model_dir.name} on {data}",
        runtime=runtime_options(device, threads),
    )
    with status(f"evaluating {model_dir} on {data}"):
        result = api.run_evaluate(request)
    warn(result.notes)
    if result.scores:
        render.score_metrics_table(model_dir.name, result.metrics)
    else:
        render.metrics_table([{"model": model_dir.name, **result.metrics}])
    if result.metrics.get("stages"):
        render.stages_table(result.metrics["stages"])
    out_console.print(f"report: {out / 'report.md'}")


def compare(
    model_dirs: list[Path] = typer.Argument(..., help="Saved model directories."),
    data: str = typer.Option(..., "--data", help="Labelled data all models are scored on."),
    out: Path = typer.Option(..., "--out", help="Directory for the comparison table and plot."),
    text: str | None = typer.Option(
        None, "--text", help=TEXT_HELP + " Default: the first model's."
    ),
    label: str | None = typer.Option(None, "--label", help=LABEL_HELP),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    label_sep: str | None = typer.Option(None, "--label-sep", help=LABEL_SEP_HELP),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Score several models on the very same rows: one table, one accuracy-vs-speed plot."""
    request = api.CompareRequest(
        models=model_dirs,
        data=data,
        out=out,
        columns=api.Columns.parse(text, label=label, template=template, label_sep=label_sep),
        runtime=runtime_options(device, threads),
    )
    rows = api.run_compare(request)
    render.metrics_table(rows)
    out_console.print(f"comparison: {out / 'comparison.md'}")

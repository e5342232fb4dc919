"""``docsort suggest``: options into a ``SuggestRequest``, the pick written and summarised."""

from __future__ import annotations

from pathlib import Path

import typer

from docsort import api
from docsort.api import SuggestRequest, run_suggest
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


def suggest(
    paths: list[str] = typer.Argument(
        ...,
        metavar="MODEL... POOL",
        help="One saved model (several for --strategy committee), then the unlabelled pool: "
        "a file, a folder of .txt or - for stdin.",
    ),
    out: Path = typer.Option(..., "--out", help="CSV of the rows to label (e.g. to_label.csv)."),
    n: int = typer.Option(100, "--n", help="How many rows to suggest."),
    strategy: str = typer.Option(
        "margin",
        "--strategy",
        help="margin (smallest gap between the top two labels), entropy, committee "
        "(disagreement of several models) or random (the baseline).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of random picks and of the clustering."),
    candidates: int = typer.Option(
        5,
        "--candidates",
        help="Consider the candidates×n most uncertain rows, cluster them (TF-IDF) into n "
        "groups and take each group's most uncertain; 1: the n most uncertain as they are.",
    ),
    text: str | None = typer.Option(None, "--text", help=TEXT_HELP + AS_TRAINED),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    keep: str | None = typer.Option(
        None, "--keep", help="Pool columns to copy into each output row, e.g. id."
    ),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Pick the pool rows to label next: the most uncertain (or most disputed) distinct texts,
    spread over clusters. Each output row has `row` (its 0-based position in the pool), the
    model's top label, its confidence, the uncertainty, how many copies the pool has, the text."""
    if len(paths) < 2:
        raise api.DocsortError("give a saved model and the pool: docsort suggest MODEL POOL")
    request = SuggestRequest(
        models=paths[:-1],
        pool=paths[-1],
        n=n,
        strategy=strategy,
        seed=seed,
        out=out,
        columns=api.Columns.parse(text, template=template, keep=keep),
        candidates=candidates,
        runtime=runtime_options(device, threads),
    )
    with status(f"scoring {paths[-1]}"):
        result = run_suggest(request)
    warn(result.notes)
    err_console.print(
        f"suggested {len(result.rows):,} of {result.distinct:,} distinct texts "
        f"({result.pool_rows:,} pool rows, {strategy}) → {out}"
    )

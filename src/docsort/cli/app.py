"""The typer application, its command groups and consoles, and the options commands share.

Commands parse their options into ``docsort.api`` requests, run them and print; they import
nothing from ``docsort.models`` or ``docsort.data`` (a layering test checks this).
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from docsort.api import Runtime
from docsort.errors import DocsortError

app = typer.Typer(
    help="Sort documents into categories: train, evaluate, compare and run classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
datasets_app = typer.Typer(help="Built-in benchmark data sets.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
models_app = typer.Typer(
    help="Pretrained models that resolve offline by alias.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
cache_app = typer.Typer(
    help="What docsort keeps on disk (models, data sets, embeddings) and clearing it.",
    no_args_is_help=True,
)
app.add_typer(cache_app, name="cache")
out_console = Console()
err_console = Console(stderr=True)

TEXT_HELP = "Text column, or several joined (e.g. title,abstract)."
LABEL_HELP = "Label column (multi-label: a list column, or a delimited string with --label-sep)."
TEMPLATE_HELP = 'Join several text columns with a template, e.g. "{title}. {abstract}".'
LABELS_HELP = (
    "labels.yaml fixing label order and descriptions (multi_label, labels: [{name, description}]"
    ", or {label: description | [descriptions]})."
)
STRICT_HELP = "Fail on rows with empty text or no label instead of skipping them."
LABEL_SEP_HELP = "Separator of multi-label strings."
LONG_DOC_HELP = (
    "Read texts longer than --window tokens as overlapping windows (window) or truncated to "
    "their head, tail or both ends (head, tail, head_tail); none: as the model was trained."
)
WINDOW_HELP = (
    "Tokens per window or kept by truncation (default: as many as the model reads, e.g. 254 "
    "for max_length 256; a longer window is an error)."
)
OVERLAP_HELP = "Tokens shared by consecutive windows (default 64)."
AGGREGATE_HELP = "Combine window probabilities by mean, max, weighted (by tokens) or vote."
PAIR_HELP = "pair model: the column of each row's second text (the target phrase)."
CONTEXT_HELP = "pair model: a column of context codes (e.g. CPC classes), read as titles."
CONTEXT_MAP_HELP = (
    "pair model: CSV with code,title columns mapping --context codes to titles (an unknown "
    "code falls back to its parent's title, then to itself); saved with the model."
)
DEVICE_HELP = "Run on auto, cpu or cuda[:N] (a run-time setting: never saved with the model)."
THREADS_HELP = (
    "CPU threads for torch, llama.cpp and the torch-free embedding engines (a run-time setting: "
    "never saved)."
)
AS_TRAINED = " Default: as in training."


def long_doc_options(
    strategy: str | None,
    window: int | None,
    overlap: int | None,
    aggregate: str | None,
    train_on: str | None = None,
) -> dict[str, Any] | None:
    """The long-document options given, as settings for the API to check against the model."""
    given = {
        "strategy": strategy,
        "size": window,
        "overlap": overlap,
        "aggregate": aggregate,
        "train_on": train_on,
    }
    given = {k: v for k, v in given.items() if v is not None}
    return given or None


def runtime_options(device: str | None, threads: int | None) -> Runtime | None:
    if device is None and threads is None:
        return None
    return Runtime(device=device, threads=threads)


def warn(notes: list[str]) -> None:
    """What the API noted on the user's input (rows skipped, texts cut), in yellow on stderr."""
    for note in notes:
        err_console.print(f"[yellow]{escape(note)}[/yellow]", highlight=False, soft_wrap=True)


def parse_weights(weights: str | None) -> list[float] | None:
    if weights is None:
        return None
    try:
        return [float(w) for w in weights.split(",")]
    except ValueError:
        raise DocsortError(f"--weights: numbers separated by commas, not {weights!r}") from None

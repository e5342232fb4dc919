"""``docsort augment``: new training rows for weak classes, written to a file ``train`` reads."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from docsort import api
from docsort.api.augmentation import METHODS, AugmentRequest, AugmentSpec, run_augment
from docsort.cli.app import (
    LABEL_HELP,
    LABEL_SEP_HELP,
    TEMPLATE_HELP,
    TEXT_HELP,
    err_console,
    warn,
)


def augment(
    data: str = typer.Argument(
        ...,
        help="Labelled rows: a CSV/TSV/JSONL/Parquet file, a folder, or builtin:NAME[:split].",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="File to write (CSV, TSV, JSONL, JSON or Parquet by its suffix): the real rows, "
        "then the new ones, with columns text, label, augmentation (the method; empty for a "
        "real row) and origin_row (the row it was written from).",
    ),
    method: str = typer.Option(
        "paraphrase", "--method", help=f"How rows are written: {' or '.join(METHODS)}."
    ),
    classes: str | None = typer.Option(
        None,
        "--classes",
        help="Labels whose rows are restated, comma-separated (default: every label). Pick the "
        "weak ones: the lowest recall in `docsort eval`'s report.",
    ),
    n: int = typer.Option(1, "--n", help="Rows written per source row."),
    max_rows: int | None = typer.Option(
        None, "--max-rows", help="At most this many source rows a class (a seeded sample)."
    ),
    generator: str = typer.Option(
        "qwen-0.5b",
        "--generator",
        help="paraphrase: a GGUF alias (qwen-0.5b, qwen-1.5b) or path run by llama.cpp, or with "
        "--base-url the model name of an OpenAI-compatible endpoint.",
    ),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        help="paraphrase: an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (key "
        "from $OPENAI_API_KEY).",
    ),
    prompt: list[str] | None = typer.Option(
        None,
        "--prompt",
        help="paraphrase: an instruction replacing the built-in ones (repeat for several; one "
        "row per prompt, so --n is at most their number).",
    ),
    translator: str | None = typer.Option(
        None,
        "--translator",
        help="backtranslate: the model translating there (hub id or path), e.g. "
        "Helsinki-NLP/opus-mt-en-de.",
    ),
    back_translator: str | None = typer.Option(
        None,
        "--back-translator",
        help="backtranslate: the model translating back, e.g. Helsinki-NLP/opus-mt-de-en.",
    ),
    max_tokens: int = typer.Option(
        160,
        "--max-tokens",
        help="Longest row written, in tokens (paraphrase: per answer; backtranslate: each way).",
    ),
    no_filter: bool = typer.Option(
        False,
        "--no-filter",
        help="Keep rows another model assigns to another class (by default they are dropped).",
    ),
    filter_model: str | None = typer.Option(
        None,
        "--filter-model",
        help="The saved model that judges new rows (default: tfidf trained on the real rows).",
    ),
    max_copied: float = typer.Option(
        0.9,
        "--max-copied",
        help="Drop a row when this share of its word trigrams is in its source (a copy).",
    ),
    text: str | None = typer.Option(None, "--text", help=TEXT_HELP + " Default: text."),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    label: str | None = typer.Option(None, "--label", help=LABEL_HELP + " Default: label."),
    label_sep: str | None = typer.Option(None, "--label-sep", help=LABEL_SEP_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of the --max-rows sample."),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for llama.cpp (default: all cores but one)."
    ),
    device: str = typer.Option("cpu", "--device", help="backtranslate: cpu or cuda[:N]."),
) -> None:
    """Write new training rows for the chosen classes from their real rows: paraphrases by a
    local LLM or an endpoint, or back-translations. Copies of the source, duplicates of any
    training text and (unless --no-filter) rows a model trained on the real rows assigns to
    another class are dropped and counted. New rows are marked, so training never validates on
    them and evaluation leaves them out."""
    spec = AugmentSpec(
        method=method,
        classes=tuple(c.strip() for c in classes.split(",") if c.strip()) if classes else (),
        n=n,
        max_rows=max_rows,
        generator=generator,
        base_url=base_url,
        prompts=tuple(prompt) if prompt else None,
        threads=threads,
        max_tokens=max_tokens,
        translator=translator,
        back_translator=back_translator,
        filter=not no_filter,
        filter_model=filter_model,
        max_copied=max_copied,
        seed=seed,
    )
    columns = api.Columns.parse(text, template=template, label=label, label_sep=label_sep)
    result = run_augment(AugmentRequest(data, spec, out=out, columns=columns, device=device))
    report = result.report
    warn(result.notes)
    dropped = ", ".join(f"{k} {v}" for k, v in report["dropped"].items() if v) or "none"
    err_console.print(
        f"{method}: {report['written']:,} row(s) written from {report['sources']:,} source "
        f"row(s), {report['kept']:,} kept (dropped: {dropped}) → {out}"
    )
    print(json.dumps(report))

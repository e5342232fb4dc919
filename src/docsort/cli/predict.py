"""``docsort predict``: one JSON line per document, or with ``--engine`` a folder of Parquet
shards written by the local, Ray or Spark engine (``docsort.batch``)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from docsort import api
from docsort.cli.app import (
    AGGREGATE_HELP,
    AS_TRAINED,
    CONTEXT_HELP,
    DEVICE_HELP,
    LONG_DOC_HELP,
    OVERLAP_HELP,
    PAIR_HELP,
    TEMPLATE_HELP,
    TEXT_HELP,
    THREADS_HELP,
    WINDOW_HELP,
    err_console,
    long_doc_options,
    runtime_options,
    warn,
)
from docsort.progress import status


def predict(
    model_dir: str = typer.Argument(
        ...,
        help="A saved model directory, or dual[:BASE] for zero-shot over the --labels file.",
    ),
    input: str = typer.Argument(
        ...,
        help="CSV/TSV/JSONL/Parquet file, a folder of .txt or documents (PDF, DOCX, e-mail, ...), "
        "or - for stdin (one document per line).",
    ),
    out: str = typer.Option(
        ...,
        "--out",
        help="Output JSONL file (- for stdout); with --engine a folder of Parquet shards "
        "and a manifest (--engine local --out FILE.jsonl writes JSONL).",
    ),
    text: str | None = typer.Option(None, "--text", help=TEXT_HELP + AS_TRAINED),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    labels: Path | None = typer.Option(
        None,
        "--labels",
        help="Labels file (YAML). dual: score exactly these labels, new ones included; "
        "other kinds: every label in it must be known to the model.",
    ),
    keep: str | None = typer.Option(
        None, "--keep", help="Input columns to copy into each output row, e.g. id."
    ),
    top_k: int | None = typer.Option(
        None, "--top-k", help="Keep only the k most probable labels (multi-label: choose ≤ k)."
    ),
    at_least_one: bool = typer.Option(
        False, "--at-least-one", help="Multi-label: give each row at least its top label."
    ),
    adapt: bool = typer.Option(
        False,
        "--adapt",
        help="dual: move each label toward the documents it claims most confidently "
        "among the input (transductive) before predicting.",
    ),
    strict: bool = typer.Option(False, "--strict", help="Fail on empty rows instead of skipping."),
    long_doc: str | None = typer.Option(None, "--long-doc", help=LONG_DOC_HELP),
    window: int | None = typer.Option(None, "--window", help=WINDOW_HELP),
    overlap: int | None = typer.Option(None, "--overlap", help=OVERLAP_HELP),
    aggregate: str | None = typer.Option(None, "--aggregate", help=AGGREGATE_HELP),
    windows: bool = typer.Option(
        False, "--windows", help="Add each document's windows and their probabilities."
    ),
    explain: bool = typer.Option(
        False,
        "--explain",
        help="Add why: the windows, and where the kind has them (tfidf) the n-grams that "
        "pushed each document toward its labels.",
    ),
    pair: str | None = typer.Option(None, "--pair", help=PAIR_HELP + AS_TRAINED),
    context: str | None = typer.Option(None, "--context", help=CONTEXT_HELP + AS_TRAINED),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
    engine: str | None = typer.Option(
        None,
        "--engine",
        help="local, ray or spark: predict INPUT (a CSV/JSONL/Parquet file, a folder of them or "
        "a glob) shard by shard into the --out folder; a rerun resumes. Exit status 3: finished, "
        "some rows failed (each written with its error).",
    ),
    shard_rows: int = typer.Option(10_000, "--shard-rows", help="Rows per output shard."),
    address: str | None = typer.Option(
        None, "--address", help="ray: the cluster to join (default: start a local Ray)."
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", help="ray: model actors (default: as many as the CPUs allow)."
    ),
    num_cpus: float = typer.Option(1.0, "--num-cpus", help="ray: CPUs per actor."),
    num_gpus: float = typer.Option(0.0, "--num-gpus", help="ray: GPUs per actor."),
    master: str | None = typer.Option(
        None, "--master", help="spark: the master URL (default local[*])."
    ),
) -> None:
    """Predict labels for new documents: label, confidence and probabilities per row."""
    if engine is not None and not (engine == "local" and _jsonl(out)):
        if adapt or windows or explain:
            raise api.DocsortError(
                "--adapt, --windows and --explain apply to --out FILE.jsonl only"
            )
        from docsort.api.batch import BatchRequest

        batch = BatchRequest(
            model=model_dir,
            data=input,
            out=out,
            engine=engine,
            columns=api.Columns.parse(
                text, template=template, keep=keep, strict=strict, pair=pair, context=context
            ),
            labels=labels,
            top_k=top_k,
            at_least_one=at_least_one,
            long_doc=long_doc_options(long_doc, window, overlap, aggregate),
            runtime=runtime_options(device, threads),
            shard_rows=shard_rows,
            address=address,
            concurrency=concurrency,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            master=master,
        )
        from docsort.cli.batch import predict_batch

        predict_batch(batch)
        return
    request = api.PredictRequest(
        model=model_dir,
        data=input,
        columns=api.Columns.parse(
            text, template=template, keep=keep, strict=strict, pair=pair, context=context
        ),
        labels=labels,
        top_k=top_k,
        at_least_one=at_least_one,
        adapt=adapt,
        windows=windows,
        explain=explain,
        long_doc=long_doc_options(long_doc, window, overlap, aggregate),
        runtime=runtime_options(device, threads),
    )
    with status(f"predicting {input}"):
        result = api.run_predict(request)
    warn(result.notes)
    if out == "-":
        sys.stdout.writelines(api.jsonl_lines(result.rows, result.extra))
        return
    api.write_jsonl(out, result.rows, result.extra)
    err_console.print(f"wrote {len(result.rows):,} predictions → {out}")


def _jsonl(out: str) -> bool:
    return out == "-" or Path(out).suffix.lower() in (".jsonl", ".ndjson")

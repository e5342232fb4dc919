"""``docsort train`` and ``docsort ensemble``: options into a request, the result printed."""

from __future__ import annotations

from pathlib import Path

import typer

from docsort import api
from docsort.api.redaction import redact_spec
from docsort.cli import render
from docsort.cli.app import (
    AGGREGATE_HELP,
    CONTEXT_HELP,
    CONTEXT_MAP_HELP,
    DEVICE_HELP,
    LABEL_HELP,
    LABEL_SEP_HELP,
    LABELS_HELP,
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
    parse_weights,
    runtime_options,
    warn,
)
from docsort.cli.ingest import REDACT_ENGINE_HELP, REDACT_ENTITIES_HELP, REDACT_HELP
from docsort.progress import status


def train(
    data: str = typer.Argument(
        ..., help="Training data: a file, a folder or builtin:NAME[:split]."
    ),
    out: Path = typer.Option(..., "--out", help="Directory to save the model in."),
    model: str | None = typer.Option(None, "--model", help="Model kind (default: tfidf)."),
    text: str = typer.Option("text", "--text", help=TEXT_HELP),
    label: str = typer.Option("label", "--label", help=LABEL_HELP),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    config: Path | None = typer.Option(None, "--config", help="YAML of the kind's parameters."),
    valid: str | None = typer.Option(None, "--valid", help="Validation data (same columns)."),
    valid_split: float | None = typer.Option(
        None, "--valid-split", help="Hold out this share of the training rows for validation."
    ),
    labels: Path | None = typer.Option(None, "--labels", help=LABELS_HELP),
    label_sep: str | None = typer.Option(None, "--label-sep", help=LABEL_SEP_HELP),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of splits and training."),
    long_doc: str | None = typer.Option(None, "--long-doc", help=LONG_DOC_HELP),
    window: int | None = typer.Option(None, "--window", help=WINDOW_HELP),
    overlap: int | None = typer.Option(None, "--overlap", help=OVERLAP_HELP),
    aggregate: str | None = typer.Option(None, "--aggregate", help=AGGREGATE_HELP),
    train_on: str | None = typer.Option(
        None, "--train-on", help="With --long-doc window: train on every window or the head."
    ),
    calibrate: bool = typer.Option(
        False,
        "--calibrate",
        help="Fit a temperature so confidence matches accuracy: on the validation rows "
        "(--valid/--valid-split), else on 10%% of the training rows held out for it.",
    ),
    target_accuracy: float | None = typer.Option(
        None, "--target-accuracy", help="Cascade: cheapest thresholds reaching this accuracy."
    ),
    max_cost_per_1k: float | None = typer.Option(
        None, "--max-cost-per-1k", help="Cascade: most accurate thresholds under this USD/1k."
    ),
    max_escalation_rate: float | None = typer.Option(
        None,
        "--max-escalation-rate",
        help="Cascade: most accurate thresholds sending at most this share to the last stage.",
    ),
    max_auto_error: float | None = typer.Option(
        None,
        "--max-auto-error",
        help="Cascade: certify that, with probability 1 - --delta, at most this share of the "
        "documents each early stage answers alone is wrong (e.g. 0.02); the most coverage "
        "that holds.",
    ),
    delta: float | None = typer.Option(
        None,
        "--delta",
        help="With --max-auto-error: the chance the certified bound may fail (default 0.05).",
    ),
    pair: str | None = typer.Option(None, "--pair", help=PAIR_HELP),
    context: str | None = typer.Option(None, "--context", help=CONTEXT_HELP),
    context_map: Path | None = typer.Option(None, "--context-map", help=CONTEXT_MAP_HELP),
    zero_shot: bool = typer.Option(
        False,
        "--zero-shot",
        help="dual: use no rows, only the labels and their descriptions (from --labels).",
    ),
    soft: str | None = typer.Option(
        None,
        "--soft",
        help="dual: column of soft targets (a probability, or JSON {label: p}) per row.",
    ),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
    redact: str | None = typer.Option(None, "--redact", help=REDACT_HELP),
    redact_entities: str | None = typer.Option(
        None, "--redact-entities", help=REDACT_ENTITIES_HELP
    ),
    redact_engine: str = typer.Option("presidio", "--redact-engine", help=REDACT_ENGINE_HELP),
    workers: int | None = typer.Option(
        None,
        "--workers",
        help="Fine-tune on N Ray Train workers (DDP; gloo on CPUs, one GPU each with --device "
        "cuda), each training on its share of every batch; the kinds that fine-tune a network.",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        help="With --workers: the Ray cluster to run on (HOST:6379, ray://HOST:10001 or auto); "
        "default: a local Ray on this machine.",
    ),
    cpus_per_worker: float | None = typer.Option(
        None, "--cpus-per-worker", help="With --workers: CPUs (torch threads) per worker (1)."
    ),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="With --workers: where Ray keeps the run and the trained model (a folder every "
        "node sees, or s3://...); default: a temporary folder here, removed after.",
    ),
) -> None:
    """Train a model on labelled data and save it to --out.

    A cascade: --model cascade --config cascade.yaml, the YAML holding `stages:` (each a saved
    model {model: DIR} or a kind config {kind: tfidf, ...}) and optionally `select:`.

    A pair model: --model pair with --pair and --context columns (and --context-map).

    A dual model reads label descriptions (--labels FILE); --zero-shot trains on no rows.

    On workers: --workers N [--address HOST:6379] runs the same fine-tuning as Ray Train DDP
    workers and saves the same model dir."""
    select = {
        key: value
        for key, value in {
            "target_accuracy": target_accuracy,
            "max_cost_per_1k": max_cost_per_1k,
            "max_escalation_rate": max_escalation_rate,
            "max_auto_error": max_auto_error,
            "delta": delta,
        }.items()
        if value is not None
    }
    columns = api.Columns.parse(
        text, label=label, template=template, label_sep=label_sep, strict=strict,
        pair=pair, context=context,
    )  # fmt: skip
    request = api.TrainRequest(
        data=data,
        out=out,
        kind=model,
        config=config,
        columns=columns,
        valid=valid,
        valid_split=valid_split,
        labels=labels,
        seed=seed,
        long_doc=long_doc_options(long_doc, window, overlap, aggregate, train_on),
        calibrate=calibrate,
        select=select,
        zero_shot=zero_shot,
        soft=soft,
        context_map=context_map,
        runtime=runtime_options(device, threads),
        redact=redact_spec(redact, redact_entities, redact_engine),
        workers=workers,
        address=address,
        cpus_per_worker=cpus_per_worker,
        storage=storage,
    )
    with status(f"reading {data}"):
        plan = api.prepare_train(request)
    warn(plan.notes)
    kind = plan.model.kind
    where = f" on {workers} Ray workers" if workers else ""
    with status(f"training {kind} on {len(plan.train):,} documents{where}"):
        fitted = api.fit(plan)
    what = "score levels" if fitted.capabilities().scores else "labels"
    out_console.print(
        f"trained [bold]{kind}[/bold] on {len(plan.train):,} documents, "
        f"{len(fitted.labels_)} {what} → {out}"
    )
    if plan.workers_run:
        out_console.print(workers_line(plan.workers_run))
    if fitted.calibration_:
        c = fitted.calibration_
        out_console.print(
            f"calibrated on {c['rows']:,} {c['source']}: temperature {c['temperature']:.3f}"
        )
    chosen = fitted.selection_summary()
    if chosen is not None:
        render.selection(chosen)


def workers_line(run: dict) -> str:
    """``2 Ray workers: 120 + 120 rows each epoch, none shared, fit 41.3 s``."""
    rows = " + ".join(f"{n:,}" for n in run.get("rows_per_worker", []))
    shared = run.get("shared_rows", 0)
    shared_text = "none shared" if not shared else f"{shared:,} shared (a short batch)"
    return (
        f"{run.get('workers')} Ray workers: {rows} rows each epoch, {shared_text}, "
        f"fit {run.get('fit_seconds', 0):.1f} s"
    )


def ensemble(
    model_dirs: list[Path] = typer.Argument(..., help="Saved model directories (two or more)."),
    out: Path = typer.Option(..., "--out", help="Directory the ensemble is saved to."),
    weights: str | None = typer.Option(
        None, "--weights", help="One weight per model, comma-separated (default: equal)."
    ),
) -> None:
    """Serve several saved models as one: the weighted mean of their probabilities, or of their
    scores for pair models. Each model is copied into the ensemble's directory."""
    model = api.ensemble(model_dirs, weights=parse_weights(weights), out=out)
    weights_of = model.member_weights(len(model.members_))  # type: ignore[attr-defined]
    shares = ", ".join(
        f"{name} {w:.2f}"
        for name, w in zip(model.member_names_, weights_of, strict=True)  # type: ignore[attr-defined]
    )
    n = len(model.member_names_)  # type: ignore[attr-defined]
    out_console.print(f"ensemble of {n} {model.output} models ({shares}): {out}")

"""``docsort registry list|register|promote|rollback|archive``: docsort models as versions in
an MLflow model registry, with ``champion`` / ``challenger`` aliases (needs the ``registry``
extra). The registry is ``$MLFLOW_TRACKING_URI``, else a SQLite file in ``$DOCSORT_HOME``
(default ``./.docsort/mlflow.db``); ``--tracking-uri`` overrides both."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import typer
from rich.markup import escape
from rich.table import Table

from docsort.api.registry import (
    PromoteRequest,
    PromoteResult,
    RegisterRequest,
    registry_list,
    run_archive,
    run_promote,
    run_register,
    run_rollback,
)
from docsort.cli.app import DEVICE_HELP, THREADS_HELP, err_console, out_console, runtime_options
from docsort.progress import status

registry_app = typer.Typer(
    help="Model versions in an MLflow registry (champion / challenger aliases); "
    "models:/NAME@champion then works wherever a model directory does.",
    no_args_is_help=True,
)
URI_HELP = (
    "Tracking/registry URI (sqlite:///FILE, http://HOST:PORT). Default: $MLFLOW_TRACKING_URI, "
    "else sqlite in $DOCSORT_HOME (./.docsort/mlflow.db)."
)
NAME_HELP = "Registered model name (no '/', '@' or ':'), e.g. arxiv-topics."


@registry_app.command("list")
def registry_list_command(
    name: str | None = typer.Argument(None, help="A registered model: list its versions."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=URI_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The registered models (versions, champion, challenger), or one model's versions with
    their aliases, kind, key metrics and parent."""
    with status("reading the registry"):
        listed = registry_list(name, tracking_uri)
    if as_json:
        out_console.print_json(json.dumps(listed))
        return
    if name is None:
        table = Table(
            "name", "versions", "latest", "champion", "challenger", title=escape(listed["registry"])
        )
        for row in listed["models"]:
            table.add_row(
                escape(row["name"]),
                str(row["versions"]),
                _or_dash(row["latest"]),
                _or_dash(row["champion"]),
                _or_dash(row["challenger"]),
            )
        out_console.print(table)
        return
    metric_names = sorted({k for row in listed["versions"] for k in row["metrics"]})
    table = Table(
        "version",
        "aliases",
        "status",
        "kind",
        "created",
        *metric_names,
        "parent",
        "data",
        title=escape(f"{name} in {listed['registry']}"),
    )
    for row in listed["versions"]:
        created = datetime.fromtimestamp(row["created"] / 1000, tz=timezone.utc)
        table.add_row(
            row["version"],
            ", ".join(row["aliases"]) or "–",
            "archived" if row["archived"] else "",
            row["kind"],
            created.strftime("%Y-%m-%d %H:%M"),
            *[f"{row['metrics'][m]:.4f}" if m in row["metrics"] else "–" for m in metric_names],
            _or_dash(row["parent"]),
            (row["train_fingerprint"] or "–")[:12],
        )
    out_console.print(table)


def _or_dash(value: object) -> str:
    return "–" if value is None else str(value)


@registry_app.command("register")
def register(
    model_dir: str = typer.Argument(..., help="A saved model directory."),
    name: str = typer.Option(..., "--name", help=NAME_HELP),
    metrics: str | None = typer.Option(
        None,
        "--metrics",
        help="The report folder docsort eval --out wrote (or its "
        "metrics.json): its numbers are logged with the version.",
    ),
    alias: str | None = typer.Option(
        None, "--alias", help="Point challenger (or champion, as promote does) at it."
    ),
    description: str | None = typer.Option(None, "--description", help="Version description."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=URI_HELP),
) -> None:
    """Log a saved model as an MLflow model (pyfunc flavor wrapping the directory) with its
    parameters, metrics and data fingerprint: the next version of NAME."""
    request = RegisterRequest(model_dir, name, metrics, alias, description, tracking_uri)
    with status(f"registering {model_dir}"):
        result = run_register(request)
    moved = f", {result.alias} (was {_or_dash(result.previous)})" if result.alias else ""
    out_console.print(
        f"registered {escape(model_dir)} as version {result.version} of "
        f"{escape(result.name)}{moved}: models:/{escape(result.name)}/{result.version}",
        highlight=False,
        soft_wrap=True,
    )
    err_console.print(
        f"run {result.run_id}, {len(result.metrics)} metric(s), in {escape(result.registry)}",
        highlight=False,
        soft_wrap=True,
    )


@registry_app.command("promote")
def promote(
    name: str = typer.Argument(..., help=NAME_HELP),
    version: str = typer.Argument(..., help="A version number, or challenger."),
    holdout: str | None = typer.Option(
        None,
        "--holdout",
        help="Labelled rows to evaluate the candidate and the champion on "
        "first (read as each was trained); a candidate worse by more than --tolerance is "
        "refused.",
    ),
    tolerance: float = typer.Option(
        0.01, "--tolerance", help="How much worse than the champion the candidate may be."
    ),
    metric: str | None = typer.Option(
        None,
        "--metric",
        help="Metric the gate compares (default macro_f1; spearman for "
        "pair models); lower-is-better ones (ece, mse, mae) are compared that way.",
    ),
    force: bool = typer.Option(False, "--force", help="Promote even if the gate refuses."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=URI_HELP),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Make a version (or the challenger) the champion; the previous champion is remembered,
    so rollback restores it."""
    request = PromoteRequest(
        name,
        version,
        holdout,
        tolerance,
        metric,
        force,
        tracking_uri,
        runtime_options(device, threads),
    )
    with status(f"promoting {name} {version}"):
        result = run_promote(request)
    for note in result.notes:
        err_console.print(f"[yellow]{escape(note)}[/yellow]", highlight=False, soft_wrap=True)
    print_promotion(result)


def print_promotion(result: PromoteResult) -> None:
    """The gate's comparison (when there was one) and the champion now."""
    if result.gate is not None:
        gate = result.gate
        out_console.print(
            f"{gate['metric']} on {escape(gate['holdout'])}: version {gate['candidate_version']}"
            f" {gate['candidate']:.4f}, champion {gate['champion_version']} "
            f"{gate['champion']:.4f} ({_difference(gate['worse_by'])}, tolerance "
            f"{gate['tolerance']:g})",
            highlight=False,
            soft_wrap=True,
        )
    out_console.print(
        f"{escape(result.name)}: champion is version {result.version} "
        f"(was {_or_dash(result.previous)})",
        highlight=False,
    )


def _difference(worse_by: float) -> str:
    return f"better by {-worse_by:.4f}" if worse_by < 0 else f"worse by {worse_by:.4f}"


@registry_app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help=NAME_HELP),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=URI_HELP),
) -> None:
    """Make the champion before the current one champion again (each rollback goes one
    further back)."""
    with status(f"rolling back {name}"):
        before, now = run_rollback(name, tracking_uri)
    out_console.print(
        f"{escape(name)}: champion is version {now} (was {_or_dash(before)})", highlight=False
    )


@registry_app.command("archive")
def archive(
    name: str = typer.Argument(..., help=NAME_HELP),
    version: str = typer.Argument(..., help="The version number to archive."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=URI_HELP),
) -> None:
    """Mark a version archived: kept with its history, its aliases removed, never promoted
    again (the champion cannot be archived)."""
    with status(f"archiving {name} {version}"):
        archived = run_archive(name, version, tracking_uri)
    out_console.print(f"{escape(name)}: version {archived} archived", highlight=False)

"""``docsort tune``: a hyperparameter search, options into a ``TuneRequest``, results printed."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from docsort import api
from docsort.api.tuning import TuneRequest, prepare_tune, run_tune
from docsort.cli.app import (
    DEVICE_HELP,
    LABEL_HELP,
    LABEL_SEP_HELP,
    LABELS_HELP,
    TEMPLATE_HELP,
    TEXT_HELP,
    THREADS_HELP,
    err_console,
    out_console,
    runtime_options,
    warn,
)
from docsort.progress import status

SPACE_HELP = (
    "YAML mapping each parameter to its range: `lr: {type: float, low: 1.0e-5, high: 1.0e-3, "
    "log: true}`, `lora_r: {type: int, low: 4, high: 32}`, `schedule: {type: categorical, "
    "choices: \\[linear, cosine]}`; checked against the kind's parameters before any trial."
)


def tune(
    data: str = typer.Argument(
        ..., help="Training data: a file, a folder or builtin:NAME[:split]."
    ),
    model: str | None = typer.Option(None, "--model", help="Model kind (default: tfidf)."),
    space: Path = typer.Option(..., "--space", help=SPACE_HELP),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Folder for the results: model/ (the best trial, a normal model dir), trials.csv, "
        "summary.json, search.png. The folder of an earlier search is resumed.",
    ),
    trials: int = typer.Option(20, "--trials", help="Trials to run (in all, when resumed)."),
    metric: str = typer.Option(
        "macro_f1",
        "--metric",
        help="What to maximise on the validation rows (macro_f1, "
        "accuracy, micro_f1, weighted_f1; pearson or spearman for a pair model).",
    ),  # fmt: skip
    time_budget: float | None = typer.Option(
        None,
        "--time-budget",
        help="Seconds of search: Optuna starts no trial after it (the running one finishes); "
        "Ray Tune stops every trial still running at it.",
    ),
    backend: str = typer.Option(
        "optuna", "--backend", help="optuna (TPE + median pruning, here) or ray (Ray Tune)."
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help="--backend ray: asha (stop trials that fall behind; default) or pbt "
        "(Population-Based Training: poor trials continue from good ones' checkpoints with "
        "perturbed parameters; kinds whose training loop checkpoints).",
    ),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Optuna study database (e.g. sqlite:///search.db): a killed search started again "
        "continues where it was.",
    ),
    study_name: str | None = typer.Option(
        None, "--study-name", help="The study's name in --storage (default: KIND-METRIC)."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="YAML of the kind's fixed parameters (the space's override them)."
    ),
    text: str = typer.Option("text", "--text", help=TEXT_HELP),
    label: str = typer.Option("label", "--label", help=LABEL_HELP),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    label_sep: str | None = typer.Option(None, "--label-sep", help=LABEL_SEP_HELP),
    labels: Path | None = typer.Option(None, "--labels", help=LABELS_HELP),
    valid: str | None = typer.Option(None, "--valid", help="Validation data (same columns)."),
    valid_split: float = typer.Option(
        0.2, "--valid-split", help="Without --valid: this share of the rows is held out."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the sampler and training."),
    cpus_per_trial: float = typer.Option(
        1.0,
        "--cpus-per-trial",
        help="--backend ray: CPUs each trial reserves (a fraction shares a core; PBT: let "
        "--trials x this fit the CPUs).",
    ),
    gpus_per_trial: float = typer.Option(
        0.0, "--gpus-per-trial", help="--backend ray: GPUs each trial reserves."
    ),
    address: str | None = typer.Option(
        None, "--address", help="--backend ray: a Ray cluster's address (default: a local Ray)."
    ),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Search a kind's hyperparameters; the best trial's model is saved in OUT/model.

    Optuna (default): TPE sampling, trials pruned at the median of earlier ones per epoch,
    resumable with --storage. Ray Tune (--backend ray): trials in parallel, ASHA or PBT."""
    columns = api.Columns.parse(text, label=label, template=template, label_sep=label_sep)
    request = TuneRequest(
        data=data,
        space=space,
        out=out,
        kind=model,
        trials=trials,
        metric=metric,
        time_budget=time_budget,
        backend=backend,
        scheduler=scheduler,
        storage=storage,
        study_name=study_name,
        config=config,
        columns=columns,
        valid=valid,
        valid_split=valid_split,
        labels=labels,
        seed=seed,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        address=address,
        runtime=runtime_options(device, threads),
    )
    with status(f"reading {data}"):
        plan = prepare_tune(request)
    warn(plan.notes)
    how = backend if plan.request.scheduler is None else f"{backend} ({plan.request.scheduler})"
    err_console.print(
        f"tuning {plan.kind} on {len(plan.train):,} rows, {len(plan.valid):,} validation rows: "
        f"{trials} trials by {how}, maximising {metric}",
        highlight=False,
    )
    result = run_tune(plan, say=lambda line: err_console.print(escape(line), highlight=False))
    summary = result.summary
    states = ", ".join(f"{n} {state}" for state, n in sorted(summary["states"].items()))
    out_console.print(f"{len(result.records)} trials ({states}) in {summary['seconds']:.0f} s")
    if summary.get("exploit_steps"):
        out_console.print(f"PBT exploit steps: {summary['exploit_steps']}")
    best = result.best
    if best is None:
        out_console.print("no trial completed: nothing saved")
        raise typer.Exit(1)
    params = ", ".join(f"{k}={v}" for k, v in best.params.items())
    out_console.print(
        f"best: trial {best.number}, {metric} {best.value:.4f} ({escape(params)}) → "
        f"{out / 'model'}; table: {out / 'trials.csv'}, plot: {out / 'search.png'}"
    )

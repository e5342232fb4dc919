"""``docsort retrain NAME``: the next version of a registered model from its training data
plus the service's feedback (or tuned from the feedback's rewards by GRPO), registered as
challenger and promoted behind the gate."""

from __future__ import annotations

import typer
from rich.markup import escape

from docsort.api.retrain import METHODS, RetrainRequest, run_retrain
from docsort.api.rewards import GRPO_SETTINGS_HELP, grpo_settings
from docsort.cli.app import DEVICE_HELP, THREADS_HELP, err_console, out_console, runtime_options
from docsort.cli.registry import NAME_HELP, URI_HELP, print_promotion
from docsort.errors import DocsortError
from docsort.progress import status


def retrain(
    name: str = typer.Argument(..., help=NAME_HELP),
    out: str = typer.Option(..., "--out", help="Folder to save the new version's model in."),
    with_feedback: bool = typer.Option(
        False, "--with-feedback", help="Add the corrections in --store to the training rows."
    ),
    store: str | None = typer.Option(
        None,
        "--store",
        help="SQLAlchemy URL of the service's store (docsort serve --store), e.g. "
        "sqlite:///docsort-serve.sqlite.",
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        help="The training data (default: what the champion was trained on, as its manifest "
        "records). Read with the champion's columns.",
    ),
    min_rating: int | None = typer.Option(
        None, "--min-rating", help="Use only feedback rated at least this (1-5)."
    ),
    feedback_repeat: int = typer.Option(
        1,
        "--feedback-repeat",
        help="Add each feedback row this many times (a few corrections among many rows may "
        "otherwise move the model too little; the result says how many it gets right).",
    ),
    holdout: str | None = typer.Option(
        None,
        "--holdout",
        help="Labelled rows the challenger and the champion are compared on before --promote.",
    ),
    promote: bool = typer.Option(
        False,
        "--promote",
        help="Make the challenger champion if it is not worse than the champion on --holdout "
        "by more than --tolerance.",
    ),
    tolerance: float = typer.Option(
        0.01, "--tolerance", help="How much worse than the champion the challenger may be."
    ),
    metric: str | None = typer.Option(
        None, "--metric", help="Metric the gate compares (default macro_f1)."
    ),
    force: bool = typer.Option(False, "--force", help="Promote even if the gate refuses."),
    method: str = typer.Option(
        "supervised",
        "--method",
        help="supervised: train anew on the training data plus the feedback rows; grpo: tune "
        "the champion from the feedback's rewards (the rating of each answer served, and the "
        "correction when one was sent) with fresh LoRA adapters, the champion as the frozen "
        "reference (dual models; needs --store, not --data). One of: " + ", ".join(METHODS),
    ),
    grpo_param: list[str] | None = typer.Option(
        None, "--grpo-param", help="A GRPO setting KEY=VALUE (repeat it). " + GRPO_SETTINGS_HELP
    ),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=URI_HELP),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Train the next version of NAME the way its champion was trained (kind, parameters,
    columns, long-document and redaction settings), on its training data plus the feedback
    people sent to the service; register it as challenger; with --promote, make it champion
    unless it is worse than the champion on --holdout by more than --tolerance.

    A feedback row whose text is a training text replaces that row; the latest feedback on a
    prediction wins (as in docsort feedback export).

    With --method grpo --store URL the champion itself is tuned by GRPO on the feedback
    (no training data is read): for each document, label sets sampled from its output are
    rewarded by the feedback, the advantages normalised in each group, the update clipped and
    held near the champion by a KL penalty.
    """
    grpo = method == "grpo"
    if with_feedback and store is None:
        raise DocsortError("--with-feedback reads the feedback from --store URL: give it")
    if store is not None and not with_feedback and not grpo:
        raise DocsortError("--store is read with --with-feedback: add it, or leave out --store")
    request = RetrainRequest(
        name=name,
        out=out,
        data=data,
        store=store,
        min_rating=min_rating,
        feedback_repeat=feedback_repeat,
        holdout=holdout,
        promote=promote,
        tolerance=tolerance,
        metric=metric,
        force=force,
        tracking_uri=tracking_uri,
        runtime=runtime_options(device, threads),
        method=method,
        grpo=grpo_settings(grpo_param) if grpo_param else None,
    )
    with status(f"{'tuning' if grpo else 'retraining'} {name}"):
        result = run_retrain(request)
    for note in result.notes:
        err_console.print(f"[yellow]{escape(note)}[/yellow]", highlight=False, soft_wrap=True)
    kept = result.training_rows - result.replaced
    rows = (
        f"{kept} of {result.training_rows} training rows ({result.replaced} replaced by "
        "corrections)"
        if result.replaced
        else f"{result.training_rows} training rows"
    )
    if result.reward is not None:
        out_console.print(
            f"{escape(result.reward.line())}; saved to {escape(str(result.out))}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        out_console.print(
            f"trained on {rows} and {result.feedback_rows} feedback rows; saved to "
            f"{escape(str(result.out))}",
            highlight=False,
            soft_wrap=True,
        )
    if result.corrected is not None:
        out_console.print(result.corrected.line(), highlight=False)
    out_console.print(
        f"registered as version {result.version} of {escape(result.name)} (challenger; "
        f"{'tuned' if result.reward is not None else 'retrained'} from champion version "
        f"{result.champion})",
        highlight=False,
        soft_wrap=True,
    )
    if result.promoted is not None:
        print_promotion(result.promoted)

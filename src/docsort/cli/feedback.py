"""``docsort feedback``: what the service's users sent back, as data to train on."""

from __future__ import annotations

import typer

from docsort.api.feedback import FeedbackExportRequest, run_feedback_export
from docsort.cli.app import err_console
from docsort.progress import status

feedback_app = typer.Typer(
    help="Feedback collected by docsort serve: export it as training data.",
    no_args_is_help=True,
)


@feedback_app.command("export")
def export(
    store: str = typer.Option(
        ...,
        "--store",
        help="SQLAlchemy URL of the service's store, e.g. sqlite:///docsort-serve.sqlite or "
        "postgresql://user@host/db (it must exist: never created here).",
    ),
    out: str = typer.Option(
        ..., "--out", help="The training file to write: .csv or .jsonl (the suffix decides)."
    ),
    min_rating: int | None = typer.Option(
        None,
        "--min-rating",
        help="Keep only feedback rated at least this (1-5); unrated rows are left out too.",
    ),
) -> None:
    """Write feedback joined with its predictions as a training set: columns text (or the
    record's columns), label, weight, prediction_id, model_version.

    The label is the correction sent, or the predicted label where a rating of
    4 or more confirmed it without one; weight is rating / 5 (1.0 unrated); the latest
    feedback on a prediction wins. A row whose text the service did not keep (--log-text hash
    or off) is skipped and counted. The file is written whole or not at all, and
    `docsort train FILE` reads it as it is.
    """
    request = FeedbackExportRequest(store=store, out=out, min_rating=min_rating)
    with status(f"reading {store}"):
        result = run_feedback_export(request)
    err_console.print(result.summary(), highlight=False, soft_wrap=True)

"""The ``docsort`` command line: train, eval, predict, compare, ensemble, demo, datasets,
models, cache. One module per command group; each command parses its options into a
``docsort.api`` request, runs it and prints. Errors the user can fix print one line and exit
with status 2; no traceback."""

from __future__ import annotations

import sys

from rich.markup import escape

from docsort.api import install_termination_handler
from docsort.cli import admin, evaluate, export, feedback, keys, predict, registry, serve, train
from docsort.cli import audit as audit_commands
from docsort.cli import augment as augment_commands
from docsort.cli import distill as distill_commands
from docsort.cli import ingest as ingest_commands
from docsort.cli import retrain as retrain_commands
from docsort.cli import suggest as suggest_commands
from docsort.cli import tune as tune_commands
from docsort.cli.app import app, err_console
from docsort.errors import DocsortError

__all__ = ["app", "main"]

# the top-level commands, in the order --help lists them (the groups register in admin)
app.command()(train.train)
app.command("eval")(evaluate.eval_command)
app.command()(evaluate.compare)
app.command()(predict.predict)
app.command()(train.ensemble)
app.command()(distill_commands.distill)
app.command()(augment_commands.augment)
app.command()(export.export)
app.command()(admin.demo)
app.command()(serve.serve)
app.command()(retrain_commands.retrain)
app.command()(ingest_commands.ingest)
app.command()(audit_commands.audit)
app.command()(suggest_commands.suggest)
app.command()(tune_commands.tune)
app.add_typer(feedback.feedback_app, name="feedback")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(registry.registry_app, name="registry")


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    install_termination_handler()  # SIGTERM cleans up half-written files as Ctrl-C does
    try:
        app()
    except DocsortError as exc:
        # escaped: a path such as 'a[b]' is text, not rich markup
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)

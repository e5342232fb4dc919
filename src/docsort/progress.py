"""One progress bar style for long work; silent when stderr is not a terminal or in tests."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True)


def _enabled() -> bool:
    return sys.stderr.isatty() and not os.environ.get("DOCSORT_NO_PROGRESS")


@contextlib.contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n, description=None)``; draws a bar on an interactive terminal only.

    A new ``description`` replaces the old one, so a training loop can show its running loss
    and validation score in the bar instead of printing lines between redraws.
    """
    if not _enabled() or total <= 0:
        yield _silent
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: int = 1, description: str | None = None) -> None:
            if description is None:
                progress.advance(task, n)
            else:
                progress.update(task, advance=n, description=description)

        yield advance


def _silent(n: int = 1, description: str | None = None) -> None:
    """The bar off a terminal: nothing to draw."""


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner for work whose length is unknown (fitting a model, fetching data)."""
    if not _enabled():
        yield
        return
    with console.status(message):
        yield

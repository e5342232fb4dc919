"""One progress style for long work: a bar on a terminal, a plain line now and then in a log.

Off a terminal (``nohup``, CI, a scheduler's log file) a redrawn bar would be noise, but an
hours-long training run that prints nothing leaves its user guessing; so there a bar becomes a
line every ``$DOCSORT_PROGRESS_SECONDS`` (default 60) while it runs: work shorter than that
prints nothing. ``DOCSORT_NO_PROGRESS=1`` silences both.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from docsort.errors import DocsortError

console = Console(stderr=True)
DEFAULT_LOG_SECONDS = 60.0


def _mode() -> str:
    """ "bar" on a terminal, "lines" in a log, "off" when silenced."""
    if os.environ.get("DOCSORT_NO_PROGRESS"):
        return "off"
    return "bar" if sys.stderr.isatty() else "lines"


def log_interval() -> float:
    """Seconds between progress lines off a terminal (``$DOCSORT_PROGRESS_SECONDS``)."""
    raw = os.environ.get("DOCSORT_PROGRESS_SECONDS", "").strip()
    if not raw:
        return DEFAULT_LOG_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise DocsortError(
            f"DOCSORT_PROGRESS_SECONDS must be a positive number of seconds, got {raw!r}"
        )
    return seconds


@contextlib.contextmanager
def progress_bar(description: str, total: int, completed: int = 0) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n, description=None)``; draws a bar on an interactive terminal, writes
    a line at most every ``log_interval()`` seconds elsewhere. ``completed`` is work done before
    (a resumed run): counted in the total, not in the speed the time left is estimated from.

    A new ``description`` replaces the old one, so a training loop can show its running loss
    and validation score in the bar instead of printing lines between redraws.
    """
    mode = _mode()
    if mode == "off" or total <= 0:
        yield _silent
        return
    if mode == "lines":
        yield _LogLines(description, total, log_interval(), completed)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total, completed=completed)

        def advance(n: int = 1, description: str | None = None) -> None:
            if description is None:
                progress.advance(task, n)
            else:
                progress.update(task, advance=n, description=description)

        yield advance


class _LogLines:
    """The bar as occasional log lines: "training epoch 1/3 loss 0.031: 410/2,451 (17%),
    20m elapsed, ~1h40m left"."""

    def __init__(self, description: str, total: int, every: float, completed: int = 0) -> None:
        self.description, self.total, self.every = description, total, every
        self.done = self.before = completed
        self.started = self.last = time.monotonic()

    def __call__(self, n: int = 1, description: str | None = None) -> None:
        self.done += n
        if description is not None:
            self.description = description
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.started
        line = (
            f"{self.description}: {self.done:,}/{self.total:,} "
            f"({100 * self.done / self.total:.0f}%), {_duration(elapsed)} elapsed"
        )
        if self.before < self.done < self.total:
            rate = (self.done - self.before) / elapsed
            line += f", ~{_duration((self.total - self.done) / rate)} left"
        print(line, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _silent(n: int = 1, description: str | None = None) -> None:
    """The bar when silenced: nothing to draw."""


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner for work whose length is unknown (fitting a model, fetching data); on a
    terminal only: it has no count to log."""
    if _mode() != "bar":
        yield
        return
    with console.status(message):
        yield

"""What the kinds that run native (C/C++) engines share: llama.cpp writes its model-load and
grammar logs to file descriptor 2 even with ``verbose=False``, over docsort's one-line errors
and progress bars; ``quiet_stderr`` sends them to /dev/null for the block."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """File descriptor 2 points at /dev/null inside the block (left alone if it cannot be)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)

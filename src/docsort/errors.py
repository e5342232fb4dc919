"""User-facing errors.

Anything a user can fix (a missing file, a wrong column, an unknown kind) raises
``DocsortError`` with one line that says what to fix. The CLI prints that line and exits
non-zero; it never shows a traceback for these.
"""

import sys


class DocsortError(Exception):
    """An error caused by input the user can correct; its message is one actionable line."""


_warned: set[str] = set()


def warn(message: str) -> None:
    """Tell the user something worth knowing that is not an error (a deprecated parameter
    name, a model saved by a newer docsort): one line ``warning: ...`` on stderr, once per
    process, and not a Python warning, whose file path and source line mean nothing to them."""
    line = " ".join(message.split())
    if line in _warned:
        return
    _warned.add(line)
    print(f"warning: {line}", file=sys.stderr, flush=True)

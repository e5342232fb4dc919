"""User-facing errors.

Anything a user can fix (a missing file, a wrong column, an unknown kind) raises
``DocsortError`` with one line that says what to fix. The CLI prints that line and exits
non-zero; it never shows a traceback for these.
"""


class DocsortError(Exception):
    """An error caused by input the user can correct; its message is one actionable line."""

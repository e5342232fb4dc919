"""The one rule every registry (kinds, readers, metrics, LLM backends) keeps: a name means
one thing, so registering a second, different thing under it is a programming error."""

from __future__ import annotations

from typing import Any


def add(table: dict[str, Any], name: str, value: Any, what: str) -> None:
    """``table[name] = value``, refusing a different value for a name already taken
    (registering the same value again, as a re-imported module does, is fine)."""
    if name in table and table[name] is not value:
        raise ValueError(f"{what} {name!r} is registered twice")
    table[name] = value

"""What each parameter of a kind may be, declared once per kind (``param_rules``).

A rule is a small object saying which values it accepts and, for the error line, what is
allowed: ``Number(min=0, exclusive=True)``, ``Integer(min=1)``, ``Choice("balanced", None)``,
``Pair(Integer(min=1))``, ``Text()``, ``Flag()``, ``Optional(...)``. ``Classifier.check`` applies
a kind's rules before any data is read, so ``C: "abc"`` in a config is one line naming the kind,
the parameter, the value and what is allowed, not a scikit-learn traceback after the data was
read. The values come from YAML or JSON, so a rule accepts what those give (a list for a pair,
never a tuple only) and refuses a list or mapping where one value is expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping as MappingABC
from typing import Any

import numpy as np

from docsort.errors import DocsortError

SHOWN_CHARS = 60  # a value is quoted in an error line up to this many characters


class Rule:
    """Which values a parameter accepts (``accepts``) and what to say is allowed (``allowed``)."""

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def allowed(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.allowed()}>"


def _bounds(low: Any, high: Any, exclusive: bool | str) -> tuple[bool, bool]:
    """Which of the two bounds are exclusive: ``True`` both, ``"min"`` or ``"max"`` one."""
    return exclusive in (True, "min"), exclusive in (True, "max")


def _range_text(low: Any, high: Any, exclusive: bool | str) -> str:
    low_open, high_open = _bounds(low, high, exclusive)
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""


def _within(value: float, low: Any, high: Any, exclusive: bool | str) -> bool:
    low_open, high_open = _bounds(low, high, exclusive)
    if low is not None and (value < low or (low_open and value == low)):
        return False
    return not (high is not None and (value > high or (high_open and value == high)))


class Number(Rule):
    """A finite number (an int or a float, not a ``true``), optionally within bounds;
    ``exclusive``: ``True`` (both bounds), ``"min"`` or ``"max"``; ``what`` says in words what
    is allowed when the bounds alone would not (a probability)."""

    def __init__(
        self,
        min: float | None = None,
        max: float | None = None,
        exclusive: bool | str = False,
        what: str | None = None,
    ) -> None:
        self.min, self.max, self.exclusive, self.what = min, max, exclusive, what

    def accepts(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return False
        if not isinstance(value, (int, float, np.integer, np.floating)):
            return False
        return math.isfinite(value) and _within(value, self.min, self.max, self.exclusive)

    def allowed(self) -> str:
        return self.what or "a number" + _range_text(self.min, self.max, self.exclusive)


class Integer(Rule):
    """A whole number (``3``, not ``3.0`` or ``true``), optionally within inclusive bounds."""

    def __init__(self, min: int | None = None, max: int | None = None) -> None:
        self.min, self.max = min, max

    def accepts(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            return False
        return _within(value, self.min, self.max, False)

    def allowed(self) -> str:
        return "a whole number" + _range_text(self.min, self.max, False)


SEED = Integer(min=0, max=2**32 - 1)  # what numpy and scikit-learn take as a random seed


class Choice(Rule):
    """One of the given values, of the same type (``1`` is not ``true``)."""

    def __init__(self, *choices: Any) -> None:
        self.choices = choices

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(c) and value == c for c in self.choices)

    def allowed(self) -> str:
        shown = [_yaml(c) for c in self.choices]
        if len(shown) == 1 or (len(shown) == 2 and None in self.choices):
            return " or ".join(shown)  # 'balanced' or null
        return f"one of {', '.join(shown)}"


class Registered(Choice):
    """A name in a registry, read when checked: a backend registered later is accepted too."""

    def __init__(self, registry: dict[str, Any]) -> None:
        self.registry = registry

    @property
    def choices(self) -> tuple[Any, ...]:  # type: ignore[override]
        return tuple(self.registry)


class Text(Rule):
    """A text; ``nonempty`` refuses ""; ``pattern`` a regular expression it must match whole
    (``what`` then says in words what matches)."""

    def __init__(
        self, nonempty: bool = False, pattern: str | None = None, what: str | None = None
    ) -> None:
        self.nonempty, self.pattern, self.what = nonempty, pattern, what

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, str) or (self.nonempty and not value):
            return False
        return self.pattern is None or re.fullmatch(self.pattern, value) is not None

    def allowed(self) -> str:
        return self.what or ("a non-empty text" if self.nonempty else "a text")


DEVICE = Text(pattern=r"auto|cpu|cuda(:\d+)?", what="'auto', 'cpu' or 'cuda[:N]'")


class Flag(Rule):
    """``true`` or ``false``."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def allowed(self) -> str:
        return "true or false"


class Optional(Rule):
    """``null`` (None), or what ``rule`` accepts."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def accepts(self, value: Any) -> bool:
        return value is None or self.rule.accepts(value)

    def allowed(self) -> str:
        return f"{self.rule.allowed()}, or null"


class AnyOf(Rule):
    """What any of ``rules`` accepts."""

    def __init__(self, *rules: Rule) -> None:
        self.rules = rules

    def accepts(self, value: Any) -> bool:
        return any(rule.accepts(value) for rule in self.rules)

    def allowed(self) -> str:
        return " or ".join(rule.allowed() for rule in self.rules)


class Pair(Rule):
    """Two values ``[low, high]`` that ``item`` accepts, with ``low <= high`` (an n-gram range)."""

    def __init__(self, item: Rule) -> None:
        self.item = item

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            return False
        return all(self.item.accepts(v) for v in value) and value[0] <= value[1]

    def allowed(self) -> str:
        return f"[low, high] (low <= high, each {self.item.allowed()})"


class Items(Rule):
    """A list (or tuple) whose every item ``item`` accepts (any item when None), with at
    least ``min_length`` items."""

    def __init__(self, item: Rule | None = None, min_length: int = 0) -> None:
        self.item, self.min_length = item, min_length

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)) or len(value) < self.min_length:
            return False
        return self.item is None or all(self.item.accepts(v) for v in value)

    def allowed(self) -> str:
        size = f"a list of at least {self.min_length} items" if self.min_length else "a list"
        return size if self.item is None else f"{size}, each {self.item.allowed()}"


class Mapping(Rule):
    """A mapping (``{key: value}``); what it holds is the kind's own check."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, MappingABC)

    def allowed(self) -> str:
        return "a mapping {key: value}"


def check_params(kind: str, rules: dict[str, Rule], values: dict[str, Any]) -> None:
    """Every value of ``values`` that has a rule, checked: the first one refused is a
    ``DocsortError`` naming the kind, the parameter, the value and what is allowed."""
    for name, rule in rules.items():
        if name in values and not rule.accepts(values[name]):
            raise DocsortError(f"{kind} {name} must be {rule.allowed()}, not {shown(values[name])}")


def shown(value: Any) -> str:
    """A value as an error line quotes it: its kind when it is a list or mapping, cut short."""
    text = repr(value) if not isinstance(value, (list, tuple, dict)) else _short_repr(value)
    if len(text) > SHOWN_CHARS:
        text = text[: SHOWN_CHARS - 1] + "…"
    if isinstance(value, dict):
        return f"a mapping {text}"
    if isinstance(value, (list, tuple)):
        return f"a list {text}"
    return text


def _short_repr(value: Any, budget: int = SHOWN_CHARS + 1) -> str:
    """``repr`` of a nested list or mapping, stopping once ``budget`` characters are written
    (a YAML alias bomb shares its items: repr would expand it to gigabytes)."""
    out: list[str] = []
    used = 0

    def put(text: str) -> bool:
        nonlocal used
        out.append(text)
        used += len(text)
        return used < budget

    def walk(item: Any) -> bool:
        if isinstance(item, dict):
            if not put("{"):
                return False
            for k, (key, sub) in enumerate(item.items()):
                if (k and not put(", ")) or not walk(key) or not put(": ") or not walk(sub):
                    return False
            return put("}")
        if isinstance(item, (list, tuple)):
            if not put("["):
                return False
            for k, sub in enumerate(item):
                if (k and not put(", ")) or not walk(sub):
                    return False
            return put("]")
        return put(repr(item)[:budget])

    walk(value)
    return "".join(out)


def _yaml(value: Any) -> str:
    """A choice as it is written in a YAML config: null, true, false, 'text', 3."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)

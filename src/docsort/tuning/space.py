"""The search space of ``docsort tune``: a YAML mapping of parameter name to its range.

```yaml
lr:         {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
lora_r:     {type: int, low: 4, high: 32, log: true}
schedule:   {type: categorical, choices: [linear, cosine]}
```

Every name and bound is checked against the kind's own parameter rules (``param_rules``)
before any trial runs, so a misspelt name or a range the kind refuses costs a second, not a
search. The same space is handed to Optuna (``suggest``), to Ray Tune (``ray_domain``) and to
Population-Based Training (its mutations).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docsort.data.safe_yaml import read_yaml
from docsort.errors import DocsortError
from docsort.models.params import Rule, shown

TYPES = ("float", "int", "categorical")
KEYS = {"float": {"type", "low", "high", "log"}, "int": {"type", "low", "high", "log"}}
KEYS["categorical"] = {"type", "choices"}


@dataclass(frozen=True)
class Param:
    """One tunable parameter: a float or int range (``log``: sampled on a log scale) or a
    list of choices."""

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        if self.type == "categorical":
            return f"{self.name} in {list(self.choices)}"
        scale = ", log" if self.log else ""
        return f"{self.name} {self.type} [{self.low}, {self.high}{scale}]"

    def first(self) -> Any:
        """A value inside the space: the low end, or the first choice."""
        return self.choices[0] if self.type == "categorical" else self.low

    def suggest(self, trial: Any) -> Any:
        """This parameter's value for an Optuna trial."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def ray_domain(self) -> Any:
        """This parameter as a Ray Tune search domain."""
        from ray import tune

        if self.type == "categorical":
            return tune.choice(list(self.choices))
        if self.type == "int":
            if self.log:
                return tune.lograndint(int(self.low), int(self.high) + 1)
            return tune.randint(int(self.low), int(self.high) + 1)
        if self.log:
            return tune.loguniform(float(self.low), float(self.high))
        return tune.uniform(float(self.low), float(self.high))

    def clip(self, value: Any) -> Any:
        """A perturbed value (PBT multiplies by 0.8 or 1.2) brought back inside the range."""
        if self.type == "categorical":
            return value
        value = min(max(value, self.low), self.high)
        return int(round(value)) if self.type == "int" else float(value)


def read_space(path: str | Path) -> list[Param]:
    """The parameters of a space file, each one checked for its form; ``check_space`` then
    checks them against a kind."""
    data = read_yaml(path, "space file")
    where = f"space file {str(path)!r}"
    if not isinstance(data, MappingABC) or not data:
        raise DocsortError(
            f"{where} must map parameter names to ranges, e.g. "
            "`lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}`"
        )
    return [_param(str(name), spec, where) for name, spec in data.items()]


def _param(name: str, spec: Any, where: str) -> Param:
    if not isinstance(spec, MappingABC):
        raise DocsortError(
            f"{where}: {name} must be a mapping such as {{type: float, low: 0.1, high: 10}}, "
            f"not {shown(spec)}"
        )
    kind = spec.get("type")
    if kind not in TYPES:
        raise DocsortError(
            f"{where}: {name} type must be one of {', '.join(TYPES)}, not {shown(kind)}"
        )
    unknown = sorted(set(map(str, spec)) - KEYS[kind])
    if unknown:
        raise DocsortError(
            f"{where}: {name} ({kind}) takes {', '.join(sorted(KEYS[kind]))}, not {unknown[0]!r}"
        )
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise DocsortError(f"{where}: {name} needs a non-empty list of choices")
        if any(isinstance(c, (list, dict)) for c in choices):
            raise DocsortError(f"{where}: {name} choices must be single values, not lists")
        return Param(name, kind, choices=tuple(choices))
    low, high = (_number(spec.get(end), f"{where}: {name} {end}") for end in ("low", "high"))
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise DocsortError(f"{where}: {name} log must be true or false, not {shown(log)}")
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise DocsortError(f"{where}: {name} is an int range: low and high must be whole numbers")
    if not low < high:
        raise DocsortError(f"{where}: {name} needs low < high, not {low} and {high}")
    if log and low <= 0:
        raise DocsortError(f"{where}: {name} on a log scale needs low > 0, not {low}")
    if kind == "int":
        low, high = int(low), int(high)
    return Param(name, kind, low=low, high=high, log=log)


def _number(value: Any, what: str) -> float:
    """A bound: a number, or a text YAML 1.1 leaves unparsed (``1e-5`` without a dot)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DocsortError(f"{what} must be a number, not {shown(value)}")
    return value


def check_space(
    space: list[Param],
    kind: str,
    accepted: list[str],
    rules: dict[str, Rule],
    runtime: set[str],
) -> None:
    """Each parameter of ``space`` is one the kind has (``accepted``), is not a run-time
    setting, and both its bounds (or every choice) pass the kind's rule for it."""
    for param in space:
        if param.name not in accepted:
            raise DocsortError(
                f"space: kind {kind!r} has no parameter {param.name!r}; it accepts: "
                f"{', '.join(p for p in accepted if p not in runtime)}"
            )
        if param.name in runtime:
            raise DocsortError(
                f"space: {param.name} is a run-time setting of {kind}, not a hyperparameter"
            )
        rule = rules.get(param.name)
        if rule is None:
            continue
        values = list(param.choices) if param.type == "categorical" else [param.low, param.high]
        if param.type == "float":
            values = [float(v) for v in values]
        for value in values:
            if not rule.accepts(value):
                whole = param.type == "float" and float(value).is_integer()
                hint = " (use type: int)" if whole and rule.accepts(int(value)) else ""
                raise DocsortError(
                    f"space: {kind} {param.name} must be {rule.allowed()}, not {shown(value)}{hint}"
                )

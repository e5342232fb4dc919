"""The label set: ordered names, optional descriptions, single- or multi-label."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from docsort.errors import DocsortError


@dataclass(frozen=True)
class LabelSet:
    """Ordered label names; the order fixes the columns of every probability matrix.

    ``descriptions`` are natural-language texts for kinds that read them (dual encoders,
    LLM prompts); a label without one falls back to its name.
    """

    names: tuple[str, ...]
    descriptions: dict[str, str] = field(default_factory=dict)
    multi_label: bool = False

    def __post_init__(self) -> None:
        if not self.names:
            raise DocsortError("the label set is empty: the data needs at least one label")
        if len(set(self.names)) != len(self.names):
            raise DocsortError("the label set names a label twice: make each label name unique")
        unknown = set(self.descriptions) - set(self.names)
        if unknown:
            raise DocsortError(f"descriptions for unknown labels: {sorted(unknown)}")
        object.__setattr__(self, "_positions", {name: i for i, name in enumerate(self.names)})

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self._positions[name]
        except KeyError:
            raise DocsortError(
                f"unknown label {name!r}: the model knows {_preview(self.names)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._positions

    def description(self, name: str) -> str:
        return self.descriptions.get(name) or name

    @classmethod
    def from_labels(cls, labels: Iterable[str | Sequence[str]], multi_label: bool) -> LabelSet:
        """Collect the sorted distinct labels seen in data."""
        seen: set[str] = set()
        for value in labels:
            if multi_label:
                seen.update(value)
            else:
                seen.add(value)  # type: ignore[arg-type]
        return cls(names=tuple(sorted(seen)), multi_label=multi_label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "multi_label": self.multi_label,
            "labels": [
                {
                    "name": n,
                    **({"description": self.descriptions[n]} if n in self.descriptions else {}),
                }
                for n in self.names
            ],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "labels") -> LabelSet:
        if not isinstance(data, dict) or not isinstance(data.get("labels"), list):
            raise DocsortError(f"{source}: expected a mapping with a 'labels:' list")
        names: list[str] = []
        descriptions: dict[str, str] = {}
        for item in data["labels"]:
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, dict) and "name" in item:
                name = str(item["name"])
                names.append(name)
                if item.get("description"):
                    descriptions[name] = str(item["description"])
            else:
                raise DocsortError(f"{source}: each label is a name or {{name, description}}")
        return cls(tuple(names), descriptions, bool(data.get("multi_label", False)))


def load_labels_file(path: str | Path) -> LabelSet:
    """Read a ``labels.yaml``: ``multi_label: bool`` and ``labels: [{name, description}]``."""
    path = Path(path)
    if not path.is_file():
        raise DocsortError(f"labels file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DocsortError(f"{path}: not valid YAML ({_first_line(exc)})") from None
    return LabelSet.from_dict(data, source=str(path))


def _preview(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

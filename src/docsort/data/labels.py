"""The label set: ordered names, optional descriptions, single- or multi-label."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docsort.errors import DocsortError

NAME_CHARS = 60  # a label name is shown in messages up to this many characters


@dataclass(frozen=True)
class LabelSet:
    """Ordered label names; the order fixes the columns of every probability matrix.

    ``descriptions`` are natural-language texts for kinds that read them (dual encoders,
    LLM prompts); a label without one falls back to its name. A label may have several
    descriptions (a tuple): a dual encoder averages their vectors, a prompt joins them.
    """

    names: tuple[str, ...]
    descriptions: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    multi_label: bool = False

    def __post_init__(self) -> None:
        if not self.names:
            raise DocsortError("the label set is empty: the data needs at least one label")
        if len(set(self.names)) != len(self.names):
            raise DocsortError("the label set names a label twice: make each label name unique")
        unknown = set(self.descriptions) - set(self.names)
        if unknown:
            raise DocsortError(f"descriptions for unknown labels: {_preview(sorted(unknown))}")
        cleaned = {}
        for name, value in self.descriptions.items():
            texts = _description_texts(value, f"label {_cut(name)}")
            if texts:
                cleaned[name] = texts[0] if len(texts) == 1 else texts
        object.__setattr__(self, "descriptions", cleaned)
        object.__setattr__(self, "_positions", {name: i for i, name in enumerate(self.names)})

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self._positions[name]
        except KeyError:
            raise DocsortError(
                f"unknown label {_cut(name)}: the model knows {_preview(self.names)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._positions

    def description(self, name: str) -> str:
        """One text per label (several descriptions joined), for prompts."""
        return " ".join(self.description_texts(name))

    def description_texts(self, name: str) -> tuple[str, ...]:
        """Every description of ``name``; the name itself when it has none."""
        value = self.descriptions.get(name)
        if not value:
            return (name,)
        return (value,) if isinstance(value, str) else tuple(value)

    def with_descriptions(self, descriptions: dict[str, Any]) -> LabelSet:
        """The same labels with ``descriptions`` added or replaced (unknown labels: an error)."""
        return LabelSet(self.names, {**self.descriptions, **descriptions}, self.multi_label)

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
                    **(
                        {"description": _plain(self.descriptions[n])}
                        if n in self.descriptions
                        else {}
                    ),
                }
                for n in self.names
            ],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "labels") -> LabelSet:
        """Read ``{multi_label, labels: [name | {name, description}]}``, or the short form
        ``{label: description | [descriptions] | null}`` (``multi_label: true`` allowed)."""
        if isinstance(data, dict) and data and not isinstance(data.get("labels"), list):
            return cls._from_mapping(data, source)
        if not isinstance(data, dict) or not isinstance(data.get("labels"), list):
            raise DocsortError(
                f"{source}: expected a 'labels:' list or a mapping of label: description"
            )
        names: list[str] = []
        descriptions: dict[str, str | tuple[str, ...]] = {}
        for item in data["labels"]:
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, dict) and "name" in item:
                name = _label_name(item["name"], source)
                names.append(name)
                value = item.get("description", item.get("descriptions"))
                if value:
                    descriptions[name] = _description_texts(value, f"{source}: label {_cut(name)}")
            else:
                raise DocsortError(f"{source}: each label is a name or {{name, description}}")
        return cls(tuple(names), descriptions, bool(data.get("multi_label", False)))

    @classmethod
    def _from_mapping(cls, data: dict, source: str) -> LabelSet:
        multi = data.get("multi_label", False)
        items = {k: v for k, v in data.items() if not (k == "multi_label" and isinstance(v, bool))}
        if not items:
            raise DocsortError(f"{source}: no labels in it")
        names = [_label_name(name, source) for name in items]
        descriptions = {
            name: _description_texts(value, f"{source}: label {_cut(name)}")
            for name, value in zip(names, items.values(), strict=True)
            if value
        }
        return cls(tuple(names), descriptions, bool(multi))


def load_labels_file(path: str | Path) -> LabelSet:
    """Read a ``labels.yaml``: ``multi_label: bool`` and ``labels: [{name, description}]``, or
    the short form ``{label: description | [descriptions]}``."""
    from docsort.data.safe_yaml import read_yaml

    data = read_yaml(path, "labels file")  # a YAML alias bomb is refused here, in one line
    return LabelSet.from_dict(data, source=str(path))


def _description_texts(value: Any, where: str) -> tuple[str, ...]:
    """A description (text) or several (a list of texts) as a tuple of non-empty texts."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise DocsortError(f"{where}: a description is a text or a list of texts")
    return tuple(v.strip() for v in values if v.strip())


def _plain(value: str | tuple[str, ...]) -> str | list[str]:
    return value if isinstance(value, str) else list(value)


def _preview(names: Sequence[str], limit: int = 10) -> str:
    """The first ``limit`` names, each cut short: an error line, not a dump of the label set."""
    shown = ", ".join(_cut(n) for n in names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def _cut(name: Any, chars: int = NAME_CHARS) -> str:
    """``repr`` of a label name as a message shows it: a long one cut to ``chars``
    characters (a labels file once held a 5.6 GB name, and its error message copied it)."""
    text = name if isinstance(name, str) else str(name)
    if len(text) > chars:
        return repr(text[: chars - 1] + "…") + f" ({len(text):,} characters)"
    return repr(text)


def _label_name(value: Any, source: str) -> str:
    """A label name as a labels file gives it: a text, or a number or truth value as text;
    a list or mapping is a mistake (or a YAML alias bomb), not a name."""
    if value is None:
        raise DocsortError(f"{source}: a label name is empty (null); quote a label named null")
    if isinstance(value, (list, tuple, dict, set)):
        kind = "mapping" if isinstance(value, dict) else "list"
        raise DocsortError(f"{source}: a label name is a text, not a {kind}")
    return str(value)

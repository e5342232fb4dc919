"""A text that still knows the fields it was joined from.

``from_frame`` joins several text columns (``--text title,abstract``) into one text, which is
what every kind reads. A kind that reads the fields apart (the ``encoder`` kind's
``fusion: cross_attention`` or ``text_pair``) needs them at training and at prediction time,
through every path that hands texts around (batches, cascades, evaluation, the REST service).
A ``FieldText`` is that joined ``str``, so every other kind and every path sees a plain text,
with the per-field values riding along in ``.fields`` (column name -> cleaned value). A text
made anew from it (a window of a long document, a redacted copy) is a plain ``str`` again:
a kind that needs the fields then says so in one line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from docsort.errors import DocsortError


class FieldText(str):
    """The joined text (a ``str``) with the value of each field it was joined from."""

    fields: dict[str, str]

    def __new__(cls, text: str, fields: Mapping[str, str]) -> FieldText:
        made = super().__new__(cls, text)
        made.fields = dict(fields)
        return made

    def __reduce__(self) -> tuple:  # pickled for worker processes and Ray with its fields
        return (FieldText, (str(self), self.fields))


def field_values(
    texts: Sequence[str], names: Sequence[str], what: str = "this model"
) -> list[list[str]]:
    """One list per field ``names``, of each text's value of it; a text without those fields
    (read from one column, or cut into windows) is a one-line error saying what to pass."""
    columns: list[list[str]] = [[] for _ in names]
    for row, text in enumerate(texts):
        fields = getattr(text, "fields", None)
        if fields is None or any(name not in fields for name in names):
            have = f"fields {', '.join(fields)}" if fields else "one text, no fields"
            raise DocsortError(
                f"{what} reads the fields {', '.join(names)} apart, but row {row + 1} has "
                f"{have}: read the data with --text {','.join(names)} (no long-document windows)"
            )
        for column, name in zip(columns, names, strict=True):
            column.append(fields[name])
    return columns


def field_names(texts: Sequence[str]) -> list[str]:
    """The fields of the first text that has them (``[]`` when none has)."""
    for text in texts:
        fields = getattr(text, "fields", None)
        if fields:
            return list(fields)
    return []

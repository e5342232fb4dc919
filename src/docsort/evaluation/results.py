"""The rows worth reading first in an evaluation: the surest mistakes and the largest errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from docsort.data.dataset import Dataset

MISTAKE_CHARS = 160  # characters of each text shown in the report's mistakes table


def confident_mistakes(rows: Sequence[dict], texts: Sequence[str], n: int = 10) -> list[dict]:
    """The ``n`` wrong predictions the model was surest of, with the start of each text: often
    label noise or two labels that overlap, the first things to look at."""
    wrong = sorted((r for r in rows if not r["correct"]), key=lambda r: -r["confidence"])
    return [
        {
            "row": r["row"],
            "true": _joined(r["true"]),
            "predicted": _joined(r.get("label", r.get("labels"))),
            "confidence": r["confidence"],
            "text": texts[r["row"]][:MISTAKE_CHARS],
        }
        for r in wrong[:n]
    ]


def largest_errors(data: Dataset, rows: Sequence[dict], n: int = 10) -> list[dict]:
    """The ``n`` pairs scored furthest from the truth, with their texts."""
    worst = sorted(rows, key=lambda r: -abs(r["error"]))[:n]
    out = []
    for r in worst:
        i = r["row"]
        pair = f"{data.texts[i]} → {data.text_pair[i] if data.text_pair else ''}"
        if data.context is not None:
            pair += f" ({data.context[i]})"
        out.append({"row": i, "true": r["true"], "score": r["score"], "pair": pair})
    return out


def _joined(labels: Any) -> str:
    return ", ".join(labels) if isinstance(labels, list | tuple) else str(labels)

"""Cascades and ensembles: each part that can be exported (``exportable``: embed, encoder, dual,
pair, or a composite holding such parts) is exported to ONNX; the others (tfidf, an LLM) are
kept as they are. The composite is rebuilt around the new parts (``with_parts``: same stage
names, thresholds and weights) and saved whole, each part saved again inside it as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docsort.errors import DocsortError
from docsort.models.base import Model


def build_composite(model: Any, directory: Path, threads: int | None) -> tuple[Model, list[dict]]:
    """``model`` with every exportable part exported into ``directory`` (fp32), and per part
    what happened to it (its kind, the exported kind or None, the graph's note)."""
    from docsort.export import onnx as onnx_export

    parts, report = [], []
    for k, part in enumerate(model.parts()):
        capabilities = part.capabilities()
        folder = directory / f"part-{k}"
        if capabilities.exportable:
            exported = onnx_export.build(part, folder)
            exported.threads = threads
            note = exported.__dict__.get("graph_note_", "")
            report.append({"part": k, "kind": part.kind, "exported": exported.kind, "graph": note})
        elif capabilities.composite and hasattr(part, "with_parts"):
            exported, inner = build_composite(part, folder, threads)
            report.append({"part": k, "kind": part.kind, "exported": part.kind, "parts": inner})
        else:
            exported = part
            report.append({"part": k, "kind": part.kind, "exported": None})
        parts.append(exported)
    if not any(entry["exported"] for entry in report):
        kinds = ", ".join(entry["kind"] for entry in report)
        raise DocsortError(f"no part of this {model.kind} can be exported to ONNX ({kinds})")
    return model.with_parts(parts), report


def graph_bytes(directory: Path) -> int:
    """The size of every graph under ``directory``."""
    return sum(path.stat().st_size for path in directory.rglob("model.onnx"))

"""``docsort export``: a trained model as an ONNX graph that predicts without torch.

This package imports torch (it traces the network); the ``onnx`` kind it writes never does.
``export_model`` builds the graph in a working folder, checks it against the source model on the
given rows (``parity.compare``) and writes the model only when the labels agree at least
``min_agreement`` of the time (or ``force``): a refused export leaves nothing at ``out``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docsort.errors import DocsortError
from docsort.io import write_json
from docsort.models.base import Classifier
from docsort.models.kinds.onnx import EXPORT_FILE, MODEL_FILE

__all__ = ["ExportOutcome", "export_model"]


@dataclass
class ExportOutcome:
    """What an export measured (``export.json``) and whether the model was written."""

    report: dict[str, Any]
    written: bool
    out: Path


def export_model(
    model: Classifier,
    out: str | Path,
    texts: Sequence[str],
    *,
    quantization: str = "none",
    min_agreement: float = 0.995,
    force: bool = False,
    source: str = "",
    check: str = "",
    threads: int | None = None,
) -> ExportOutcome:
    """Export ``model`` to ``out`` as an ``onnx`` model, checked on ``texts``."""
    from docsort.export import onnx as onnx_export
    from docsort.export.parity import compare

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="docsort-export-") as work:
        exported = onnx_export.build(model, Path(work), quantization)
        exported.threads = threads
        seconds = time.perf_counter() - started
        measured = compare(model, exported, texts)
        agreement = measured["label_agreement"]
        passed = agreement is not None and agreement >= min_agreement
        report = {
            "format": "onnx",
            "source": source,
            "source_kind": model.kind,
            "graph": exported.__dict__.get("graph_note_", ""),
            "quantization": _quantization_text(quantization),
            "check": {"data": check, **measured},
            "min_agreement": min_agreement,
            "passed": passed,
            "forced": bool(force and not passed),
            "graph_mb": round(os.path.getsize(Path(work) / MODEL_FILE) / 1e6, 1),
            "export_seconds": round(seconds, 1),
            "threads": threads,
            **onnx_export.versions(),
        }
        if not passed and not force:
            return ExportOutcome(report, False, Path(out))
        write_json(Path(work) / EXPORT_FILE, report)
        exported.save(out)
    return ExportOutcome(report, True, Path(out))


def _quantization_text(quantization: str) -> str:
    if quantization == "dynamic":
        return "dynamic int8 (weights per channel, MatMul only; embeddings and head fp32)"
    if quantization == "none":
        return "none (fp32)"
    raise DocsortError(f"quantization must be none or dynamic, not {quantization!r}")

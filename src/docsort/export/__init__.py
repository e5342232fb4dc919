"""``docsort export``: a trained model as an ONNX graph that predicts without torch.

This package imports torch (it traces the network); the ``onnx`` kind it writes never does.
``export_model`` builds the graph in a working folder, checks it against the source model on the
given rows (``parity.compare``) and writes the model only when the labels agree at least
``min_agreement`` of the time (or ``force``): a refused export leaves nothing at ``out``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docsort.data.dataset import Dataset
from docsort.errors import DocsortError
from docsort.export.composite import build_composite, graph_bytes
from docsort.export.quantize import Scheme
from docsort.io import write_json
from docsort.models.base import Classifier
from docsort.models.kinds.onnx import EXPORT_FILE

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
    scheme: Scheme | None = None,
    keep_fp32: Sequence[str] = (),
    calibration: Sequence[str] = (),
    calibration_source: str = "",
    rows: Dataset | None = None,
    min_pearson: float = 0.995,
) -> ExportOutcome:
    """Export ``model`` to ``out`` as an ``onnx`` model, checked on ``texts``.

    ``quantization`` ``dynamic`` / ``static`` makes an int8 graph by ``scheme`` (default: per
    channel, 8-bit), with the head and the ``keep_fp32`` groups in fp32 (``["auto"]``: the
    fewest groups that keep ``min_agreement`` on the ``calibration`` rows, which static
    quantization also calibrates on); export.json's ``precision`` says which nodes stayed fp32.

    A pair scorer is checked on ``rows`` (its anchor/target/context rows) instead of
    ``texts``: it is written when the Pearson r between its scores and the source's is at least
    ``min_pearson``."""
    from docsort.export import onnx as onnx_export
    from docsort.export.parity import compare, compare_scores

    scores = model.capabilities().scores
    if scores and rows is None:
        raise DocsortError("a pair model is checked on pair rows: pass rows=")

    started = time.perf_counter()
    composite = model.capabilities().composite
    if composite and quantization != "none":
        raise DocsortError(f"a {model.kind} is exported in fp32 only so far: --quantize none")
    with tempfile.TemporaryDirectory(prefix="docsort-export-") as work:
        parts = None
        if composite:
            exported, parts = build_composite(model, Path(work), threads)
            exported.__dict__["precision_"] = None
        else:
            exported = onnx_export.build(
                model, Path(work), quantization, scheme=scheme, keep_fp32=keep_fp32,
                calibration=calibration, min_agreement=min_agreement,
            )  # fmt: skip
        exported.threads = threads
        seconds = time.perf_counter() - started
        if scores:
            measured = compare_scores(model, exported, rows)
            measure, bound = measured["pearson_r"], min_pearson
        else:
            measured = compare(model, exported, texts)
            measure, bound = measured["label_agreement"], min_agreement
        passed = measure is not None and measure >= bound
        if measured.get("stage_agreement") is not None:  # a cascade must route as its source
            passed = passed and measured["stage_agreement"] >= min_agreement
        report = {
            "format": "onnx",
            "source": source,
            "source_kind": model.kind,
            "graph": exported.__dict__.get("graph_note_", ""),
            "quantization": _quantization_text(quantization, exported.__dict__["precision_"]),
            "precision": _precision(exported.__dict__["precision_"], calibration_source),
            "check": {"data": check, **measured},
            **({"min_pearson": min_pearson} if scores else {"min_agreement": min_agreement}),
            "passed": passed,
            "forced": bool(force and not passed),
            **({"parts": parts} if parts is not None else {}),
            "graph_mb": round(graph_bytes(Path(work)) / 1e6, 1),
            "export_seconds": round(seconds, 1),
            "threads": threads,
            **onnx_export.versions(),
        }
        if not passed and not force:
            return ExportOutcome(report, False, Path(out))
        write_json(Path(work) / EXPORT_FILE, report)
        exported.save(out)
    return ExportOutcome(report, True, Path(out))


def _quantization_text(quantization: str, precision: dict[str, Any] | None) -> str:
    if quantization == "none":
        return "none (fp32)"
    if precision is None:
        raise DocsortError(f"quantization must be none, dynamic or static, not {quantization!r}")
    kept = precision["fp32_groups"]
    return f"{precision['description']}; fp32: the head" + "".join(f", {g}" for g in kept)


def _precision(precision: dict[str, Any] | None, calibration: str) -> dict[str, Any] | None:
    if precision is None:
        return None
    return {**precision, "calibration_data": calibration or None}

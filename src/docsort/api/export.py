"""Export: a trained model as an ONNX Runtime model that predicts without torch.

``ExportRequest`` holds what ``docsort export`` takes; ``run_export`` checks it, reads the check
rows as the model was trained to read them, and calls ``docsort.export`` (imported here only:
it imports torch). The check rows are required: an export is never written unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docsort.api.common import open_model
from docsort.api.rows import Columns, Source, read_rows
from docsort.data.dataset import Dataset
from docsort.errors import DocsortError
from docsort.io import check_replaceable
from docsort.models.base import Runtime, is_model_dir, is_number

QUANTIZATIONS = ("none", "dynamic", "static")
CALIBRATIONS = ("minmax", "percentile", "entropy")
MAX_CALIBRATION_ROWS = 500  # ranges settle within a few hundred rows; each row is one run
MIN_CHECK_ROWS = 50  # fewer rows cannot show an agreement of 99.5 % (one row is 2 %)
MAX_CHECK_ROWS = 2000  # the check runs the source model too: more rows only cost time


@dataclass
class ExportRequest:
    """Export the model saved at ``model`` to ``out``, checked on the rows of ``check``."""

    model: str | Path
    out: str | Path
    check: Source | None = None
    quantize: str = "none"
    min_agreement: float = 0.995
    # pair models: the least Pearson r between the exported and the source scores on --check
    min_pearson: float = 0.995
    force: bool = False
    columns: Columns = field(default_factory=Columns)
    max_rows: int = MAX_CHECK_ROWS
    runtime: Runtime | None = None
    # int8 (--quantize dynamic|static): calibration rows (static needs them; the fp32 search
    # reads them), the groups kept in fp32 (None: auto with calibration rows, else the head only)
    calibration: Source | None = None
    keep_fp32: str | list[str] | None = None
    per_channel: bool = True
    reduce_range: bool = False
    calibrate: str = "minmax"
    calibration_rows: int = MAX_CALIBRATION_ROWS


@dataclass
class ExportResult:
    report: dict[str, Any]  # what export.json holds
    written: bool  # False: refused (agreement below min_agreement, no --force)
    out: Path


def run_export(request: ExportRequest) -> ExportResult:
    """Check the request, open the model, read the check rows, export and compare."""
    if request.quantize not in QUANTIZATIONS:
        raise DocsortError(
            f"--quantize must be one of {', '.join(QUANTIZATIONS)}, not {request.quantize!r}"
        )
    if request.calibrate not in CALIBRATIONS:
        raise DocsortError(
            f"--calibrate must be one of {', '.join(CALIBRATIONS)}, not {request.calibrate!r}"
        )
    if not isinstance(request.calibration_rows, int) or request.calibration_rows < MIN_CHECK_ROWS:
        raise DocsortError(f"calibration_rows must be a whole number >= {MIN_CHECK_ROWS}")
    if not is_number(request.min_agreement) or request.min_agreement < 0:
        raise DocsortError(f"--min-agreement must be a number >= 0, not {request.min_agreement!r}")
    if request.check is None:
        raise DocsortError(
            "export needs --check DATA: rows (a few hundred, e.g. a validation split) on which "
            "the exported model's answers are compared with the source model's"
        )
    if not isinstance(request.max_rows, int) or request.max_rows < MIN_CHECK_ROWS:
        raise DocsortError(f"max_rows must be a whole number >= {MIN_CHECK_ROWS}")
    if Path(request.out).resolve() == Path(request.model).resolve():
        raise DocsortError("--out is the model being exported: give another folder")
    check_replaceable(request.out, is_model_dir, "a docsort model")
    model = open_model(request.model, request.runtime)
    capabilities = model.capabilities()
    if not (capabilities.exportable or capabilities.composite):
        raise DocsortError(
            "docsort export supports embed, encoder, dual and pair models, and cascades and "
            f"ensembles holding them, not {model.kind!r}"
        )
    if capabilities.scores:
        if not is_number(request.min_pearson) or not -1 <= request.min_pearson <= 1:
            raise DocsortError(f"--min-pearson must be in [-1, 1], not {request.min_pearson!r}")
        # int8 choices are searched and calibrated on texts; a pair model reads pair rows
        from docsort.export.quantize import parse_keep

        auto = parse_keep(request.keep_fp32) == ["auto"]
        if request.quantize == "static" or request.calibration is not None or auto:
            raise DocsortError(
                "pair models are quantized dynamically only, without --calibration or "
                "--keep-fp32 auto: --quantize dynamic (or none)"
            )
    columns = request.columns.or_trained(model.input_spec_)
    data = _check_rows(request.check, columns, capabilities.scores)
    data = data.subset(range(min(len(data), request.max_rows)))
    texts = list(data.texts)
    if len(texts) < MIN_CHECK_ROWS:
        raise DocsortError(
            f"--check has {len(texts)} rows with text: give at least {MIN_CHECK_ROWS} (a few "
            "hundred show an agreement of 99.5 % within a row or two)"
        )
    calibration: list[str] = []
    if request.calibration is not None:
        if request.quantize == "none":
            raise DocsortError("--calibration is for --quantize static or dynamic, not none")
        rows = read_rows(
            request.calibration, request.columns.or_trained(model.input_spec_), labelled=False
        )
        calibration = list(rows.texts[: request.calibration_rows])
        if len(calibration) < MIN_CHECK_ROWS:
            raise DocsortError(
                f"--calibration has {len(calibration)} rows with text: give at least "
                f"{MIN_CHECK_ROWS} (a few hundred from the training set)"
            )
    elif request.quantize == "static":
        raise DocsortError(
            "--quantize static needs --calibration DATA: rows (a few hundred, e.g. from the "
            "training set) on which the activation ranges are measured"
        )
    from docsort.export import export_model
    from docsort.export.quantize import Scheme, parse_keep

    keep = parse_keep(request.keep_fp32)
    if not keep:
        keep = ["auto"] if calibration else ["none"]
    if keep == ["auto"] and request.quantize != "none" and not calibration:
        raise DocsortError("--keep-fp32 auto needs --calibration DATA to search on")
    scheme = None
    if request.quantize != "none":
        scheme = Scheme(
            method=request.quantize,
            per_channel=bool(request.per_channel),
            reduce_range=bool(request.reduce_range),
            calibrate=request.calibrate,
        )
    threads = request.runtime.threads if request.runtime else None
    outcome = export_model(
        model,
        request.out,
        texts,
        quantization=request.quantize,
        min_agreement=float(request.min_agreement),
        force=request.force,
        source=str(request.model),
        check=_name(request.check) or data.name or "rows",
        threads=threads,
        scheme=scheme,
        keep_fp32=keep if request.quantize != "none" else (),
        calibration=calibration,
        calibration_source=_name(request.calibration),
        rows=data if capabilities.scores else None,
        min_pearson=float(request.min_pearson),
    )
    return ExportResult(outcome.report, outcome.written, outcome.out)


def _check_rows(source: Source, columns: Columns, scores: bool) -> Dataset:
    """The check rows; a pair model's with their scores when the rows have them (the task
    Pearson r of both models is then reported too)."""
    if scores:
        try:
            return read_rows(source, columns, labelled=True)
        except DocsortError:  # no score column: the two models' scores are still compared
            pass
    return read_rows(source, columns, labelled=False)


def _name(source: Source | None) -> str:
    return str(source) if isinstance(source, (str, Path)) else ""

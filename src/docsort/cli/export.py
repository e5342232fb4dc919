"""``docsort export``: a trained model as an ONNX Runtime model that predicts without torch."""

from __future__ import annotations

import json

import typer

from docsort.api import Columns
from docsort.api.export import MAX_CHECK_ROWS, ExportRequest, run_export
from docsort.cli.app import AS_TRAINED, TEMPLATE_HELP, TEXT_HELP, err_console, out_console
from docsort.errors import DocsortError
from docsort.progress import status


def export(
    model_dir: str = typer.Argument(..., help="A saved embed, encoder, dual or pair model."),
    out: str = typer.Option(..., "--out", help="Where the exported (onnx) model goes."),
    quantize: str = typer.Option(
        "none",
        "--quantize",
        help="none (fp32), dynamic (int8 weights per channel, activations per batch) or "
        "static (int8 QDQ, activation ranges from --calibration rows).",
    ),
    calibration: str | None = typer.Option(
        None,
        "--calibration",
        help="Rows (a few hundred from the training set, not --check's) for int8: static "
        "quantization measures activation ranges on them, and the fp32 search reads them.",
    ),
    keep_fp32: str | None = typer.Option(
        None,
        "--keep-fp32",
        help="Node groups left in fp32 besides the head, comma-separated: auto (the fewest that "
        "keep --min-agreement on the calibration rows; the default with --calibration), none, "
        "first, last, qkv, attention-output, ffn-input, ffn-output, layer.N, layer.N.ROLE.",
    ),
    per_channel: bool = typer.Option(
        True, "--per-channel/--per-tensor", help="int8 weight scales per output channel."
    ),
    reduce_range: bool = typer.Option(
        False,
        "--reduce-range/--full-range",
        help="7-bit int8 weights (avoids overflow in CPUs without VNNI; less precise).",
    ),
    calibrate: str = typer.Option(
        "minmax", "--calibrate", help="Static ranges: minmax, percentile or entropy."
    ),
    check: str | None = typer.Option(
        None,
        "--check",
        help="Rows (a few hundred, e.g. the validation split) on which the exported model's "
        "labels (a pair model's scores) are compared with the source's; required.",
    ),
    text: str | None = typer.Option(None, "--text", help=TEXT_HELP + AS_TRAINED),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    min_agreement: float = typer.Option(
        0.995,
        "--min-agreement",
        help="Refuse to write the model when fewer check rows get the source's labels.",
    ),
    min_pearson: float = typer.Option(
        0.995,
        "--min-pearson",
        help="Pair models: refuse to write the model when the Pearson r between its scores "
        "and the source's on the check rows is lower.",
    ),
    force: bool = typer.Option(
        False, "--force", help="Write the model even below --min-agreement (--min-pearson)."
    ),
    max_rows: int = typer.Option(
        MAX_CHECK_ROWS, "--max-rows", help="Compare on at most this many check rows."
    ),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for both models while checking (never saved)."
    ),
) -> None:
    """Export a model to ONNX (graph + tokenizer; predicts without torch), checked against it."""
    from docsort.api import Runtime

    request = ExportRequest(
        model=model_dir,
        out=out,
        check=check,
        quantize=quantize,
        min_agreement=min_agreement,
        min_pearson=min_pearson,
        force=force,
        columns=Columns.parse(text, template=template),
        max_rows=max_rows,
        runtime=Runtime(threads=threads) if threads else None,
        calibration=calibration,
        keep_fp32=keep_fp32,
        per_channel=per_channel,
        reduce_range=reduce_range,
        calibrate=calibrate,
    )
    with status(f"exporting {model_dir}"):
        result = run_export(request)
    report = result.report
    checked = report["check"]
    rates = checked["docs_per_s"]
    if "min_pearson" in report:
        _scores_line(result.written, report, str(result.out))
        return
    out_console.print(
        f"labels agree on {checked['label_agreement']:.2%} of {checked['rows']} rows, "
        f"max |Δp| {checked['max_abs_dp']:.2g}, mean {checked['mean_abs_dp']:.2g}; "
        f"{rates['source']} docs/s ({report['source_kind']}) → {rates['onnx']} docs/s (onnx)",
        highlight=False,
    )
    if not result.written:
        raise DocsortError(
            f"not written: the labels agree on {checked['label_agreement']:.2%} of the check rows, "
            f"below --min-agreement {report['min_agreement']}; --force writes it anyway. "
            f"Measured: {json.dumps(checked, separators=(',', ':'))}"
        )
    precision = report.get("precision")
    if precision:
        kept = ", ".join(["head", *precision["fp32_groups"]])
        err_console.print(f"int8: {precision['quantized_matmuls']} MatMuls; fp32: {kept}")
    err_console.print(f"wrote {result.out} ({report['graph_mb']} MB graph, export.json beside it)")


def _scores_line(written: bool, report: dict, out: str) -> None:
    """A pair model's check: the Pearson r of the two models' scores, and the task's."""
    checked = report["check"]
    rates = checked["docs_per_s"]
    r = checked["pearson_r"]
    task = checked.get("task_pearson") or {}
    task_text = ""
    if task.get("source") is not None and task.get("onnx") is not None:
        task_text = f"; task Pearson {task['source']:.4f} (source) vs {task['onnx']:.4f} (onnx)"
    shown = "undefined" if r is None else f"{r:.6f}"
    out_console.print(
        f"scores: Pearson r {shown} with the source on {checked['rows']} rows, max |Δ| "
        f"{checked['max_abs_dscore']:.2g}{task_text}; {rates['source']} rows/s "
        f"({report['source_kind']}) → {rates['onnx']} rows/s (onnx)",
        highlight=False,
    )
    if not written:
        raise DocsortError(
            f"not written: the scores' Pearson r with the source is {shown}, below "
            f"--min-pearson {report['min_pearson']}; --force writes it anyway. "
            f"Measured: {json.dumps(checked, separators=(',', ':'))}"
        )
    err_console.print(f"wrote {out} ({report['graph_mb']} MB graph, export.json beside it)")

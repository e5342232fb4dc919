"""Evaluation reports: metrics.json, a Markdown summary and PNG plots, each written atomically.

The plots are drawn by ``figures``.

Multi-label reports draw ``support_vs_f1.png`` instead of ``confusion_matrix.png``: one
2x2 matrix per label does not fit one image, and whether rare labels are the weak ones is
the question a multi-label reader asks next. The 2x2 matrices stay in ``metrics.json``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from docsort.errors import DocsortError
from docsort.evaluation import figures
from docsort.evaluation.figures import pareto_frontier  # noqa: F401  (re-exported)
from docsort.io import write_json, write_text

_NUMERIC = re.compile(r"^[-+$]*[\d,]*\.?\d+(e[-+]?\d+)?%?$")


# --- Markdown ---------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; numeric columns are right-aligned.

    Floats are shown with 4 decimals and ``None`` as an en dash; pre-formatted strings are
    kept as they are, with ``|`` escaped so label names cannot break the table.
    """
    rows = [list(row) for row in rows]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells but there are {len(headers)} headers")
    cells = [[_cell(value) for value in row] for row in rows]
    align = [
        "---:" if rows and all(_is_numeric(row[i]) for row in rows) else "---"
        for i in range(len(headers))
    ]
    lines = [_row([_escape(h) for h in headers]), _row(align)]
    lines += [_row(row) for row in cells]
    return "\n".join(lines) + "\n"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    if isinstance(value, (dict, list, tuple)):
        return _escape(json.dumps(value, ensure_ascii=False, default=str))
    return _escape(str(value))


def _is_numeric(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    return isinstance(value, str) and (value == "–" or bool(_NUMERIC.match(value)))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _fmt_rate(docs_per_second: float | None) -> str:
    if docs_per_second is None:
        return "–"
    return f"{docs_per_second:,.1f}" if docs_per_second >= 1 else f"{docs_per_second:.3g}"


def _fmt_usd(usd: float | None) -> str:
    """Two significant digits below a dollar, so $0.000028 does not print as $0.0000."""
    if usd is None:
        return "–"
    if usd == 0:
        return "$0"
    if usd >= 1:
        return f"${usd:,.2f}"
    digits = min(10, max(2, -math.floor(math.log10(usd)) + 1))
    return f"${usd:.{digits}f}"


def _fmt_seconds(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:,.2f}"


# --- Single-model report ----------------------------------------------------------------


def write_report(
    metrics: dict[str, Any],
    out_dir: str | Path,
    *,
    title: str = "docsort evaluation",
    model_info: dict[str, Any] | None = None,
    mistakes: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Path]:
    """Write metrics.json, report.md and the plots into ``out_dir``; return the paths by name.
    ``mistakes`` (wrong predictions, surest first) get a table in the report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out / "metrics.json"}
    sweep = metrics.get("sweep")
    write_json(paths["metrics"], {k: v for k, v in metrics.items() if k != "sweep"})
    if sweep:
        paths["sweep_csv"] = out / "threshold_sweep.csv"
        write_text(paths["sweep_csv"], _sweep_csv(sweep))
        paths["threshold_sweep"] = figures.save_png(
            figures.sweep_figure(metrics), out / "threshold_sweep.png"
        )
    if metrics.get("multi_label"):
        paths["support_vs_f1"] = figures.save_png(
            figures.support_f1_figure(metrics), out / "support_vs_f1.png"
        )
    else:
        paths["confusion_matrix"] = figures.save_png(
            figures.confusion_figure(metrics), out / "confusion_matrix.png"
        )
    paths["reliability"] = figures.save_png(
        figures.reliability_figure(metrics), out / "reliability.png"
    )
    paths["per_class_f1"] = figures.save_png(
        figures.per_class_figure(metrics), out / "per_class_f1.png"
    )
    paths["report"] = out / "report.md"
    plots = [name for name in paths if name not in ("metrics", "report", "sweep_csv")]
    markdown = _report_markdown(metrics, title, model_info, paths, plots)
    if mistakes:
        markdown += "\n" + _mistakes_section(mistakes, "Most confident mistakes")
    write_text(paths["report"], markdown)
    return paths


def _mistakes_section(mistakes: Sequence[dict[str, Any]], heading: str) -> str:
    """A table of the worst rows (each a dict: its keys are the columns)."""
    return "\n".join(
        [
            f"## {heading}\n",
            "Every row's prediction is in `predictions.jsonl` (`row` is its position in the "
            "evaluated data).\n",
            markdown_table(list(mistakes[0]), [list(m.values()) for m in mistakes]),
        ]
    )


def _report_markdown(
    metrics: dict[str, Any],
    title: str,
    model_info: dict[str, Any] | None,
    paths: dict[str, Path],
    plots: list[str],
) -> str:
    parts = [f"# {title}\n"]
    if model_info:
        parts += ["## Model\n", markdown_table(["field", "value"], list(model_info.items()))]
    parts += ["## Headline\n", markdown_table(["metric", "value"], _headline_rows(metrics))]
    parts += [
        "## Per-class results (weakest F1 first)\n",
        markdown_table(["label", "precision", "recall", "F1", "support"], _per_class_rows(metrics)),
    ]
    if metrics.get("stages"):
        parts += _cascade_section(metrics, "sweep_csv" in paths)
    parts += _calibration_section(metrics)
    parts.append("## Plots\n")
    parts += [f"![{name.replace('_', ' ')}]({paths[name].name})\n" for name in plots]
    return "\n".join(parts)


def _headline_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    multi = bool(metrics.get("multi_label"))
    rows: list[list[Any]] = [
        ["accuracy (subset)" if multi else "accuracy", metrics["accuracy"]],
        ["macro-F1", metrics["macro_f1"]],
        ["micro-F1", metrics["micro_f1"]],
        ["weighted-F1", metrics["weighted_f1"]],
    ]
    if multi:
        rows += [["samples-F1", metrics["samples_f1"]], ["Hamming loss", metrics["hamming_loss"]]]
    rows += [
        ["ECE", metrics["ece"]],
    ]
    if metrics.get("temperature") is not None:
        rows += [
            ["ECE before temperature scaling", metrics.get("ece_uncalibrated")],
            ["temperature", metrics["temperature"]],
        ]
    if metrics.get("stages"):
        rows.append(["sent to the last stage", f"{metrics['escalated_to_last']:.1%}"])
    rows += [
        ["n (docs)", metrics["n"]],
        ["seconds", _fmt_seconds(metrics["seconds"])],
        ["docs per s", _fmt_rate(metrics["docs_per_second"])],
        ["cost per 1k docs", _fmt_usd(metrics["cost_per_1k"])],
    ]
    return rows


def _per_class_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    return [
        [name, s["precision"], s["recall"], s["f1"], s["support"]]
        for name, s in figures.sorted_classes(metrics)
    ]


def _calibration_section(metrics: dict[str, Any]) -> list[str]:
    if metrics.get("multi_label"):
        meaning = (
            "Every (document, label) probability is binned; *observed* is the share of those "
            "cells whose label is true."
        )
        observed = "observed"
    else:
        meaning = (
            "Each document's confidence in its predicted label is binned; *accuracy* is how "
            "often those predictions were right."
        )
        observed = "accuracy"
    rows = [
        [
            f"{b['lower']:.2f}–{b['upper']:.2f}",
            b["count"],
            b["accuracy"],
            b["confidence"],
            abs(b["accuracy"] - b["confidence"]),
        ]
        for b in metrics["reliability"]
        if b["count"]
    ]
    before = ""
    if metrics.get("temperature") is not None and metrics.get("ece_uncalibrated") is not None:
        calibration = metrics.get("calibration") or {}
        fitted_on = (
            f" fitted on {calibration['rows']:,} {calibration['source']}"
            if calibration.get("rows")
            else ""
        )
        before = (
            f" Before temperature scaling (T = {metrics['temperature']:.3f}{fitted_on}) it was "
            f"{metrics['ece_uncalibrated']:.4f}."
        )
    return [
        "## Calibration\n",
        f"ECE = {metrics['ece']:.4f}.{before} {meaning} Empty bins are omitted.\n",
        markdown_table(["bin", "count", observed, "mean confidence", "gap"], rows),
    ]


def _cascade_section(metrics: dict[str, Any], with_sweep: bool) -> list[str]:
    """Which stage answered how much, how well, at what cost; each stage alone beside it."""
    alone = "alone_accuracy" in metrics["stages"][0]
    headers = ["stage", "kind", "threshold", "reached", "answered", "accuracy there", "seconds"]
    headers += ["cost per 1k docs"]
    if alone:
        headers += ["alone: accuracy", "alone: docs per s", "alone: cost per 1k"]
    rows = []
    for s in metrics["stages"]:
        row = [
            s["name"],
            s["kind"],
            s["threshold"],
            f"{s['reached']:.1%}",
            f"{s['share']:.1%}",
            s["accuracy"],
            _fmt_seconds(s["seconds"]),
            _fmt_usd(s["cost_per_1k"]),
        ]
        if alone:
            row += [
                s.get("alone_accuracy"),
                _fmt_rate(s.get("alone_docs_per_second")),
                _fmt_usd(s["alone_cost_per_1k"]) if "alone_cost_per_1k" in s else None,
            ]
        rows.append(row)
    selection = metrics.get("selection") or {}
    lines = [
        "## Cascade stages\n",
        f"Confidence: {metrics.get('confidence', 'max')} probability; a stage answers the "
        "documents whose confidence reaches its threshold and passes the rest on. *reached*: "
        "share of documents the stage read; *answered*: share it decided; cost per 1k is the "
        "stage's part of the cascade's cost. *alone*: the stage on every row (run after the "
        "timed pass).\n",
        markdown_table(headers, rows),
    ]
    if selection:
        target = f"{selection.get('criterion')} = {selection.get('value')}"
        met = "met" if selection.get("target_met") else "NOT met (closest setting chosen)"
        lines.append(
            f"Thresholds chosen on {selection.get('validation_rows', '?')} rows "
            f"({selection.get('validation_source', 'validation')}) for {target}: target {met}; "
            f"validation accuracy {selection.get('accuracy', float('nan')):.4f}, "
            f"{selection.get('escalated_to_last', float('nan')):.1%} sent to the last stage.\n"
        )
    if selection.get("certified"):
        lines.append(_certified_lines(selection["certified"], metrics["stages"]))
    if "review_share" in metrics:
        lines.append(_review_line(metrics))
    if with_sweep:
        lines.append(
            "Threshold sweep (each stage's threshold varied, the others as chosen): "
            "`threshold_sweep.csv`, plotted in `threshold_sweep.png`.\n"
        )
    return lines


def _certified_lines(certified: dict[str, Any], stages: list[dict[str, Any]]) -> str:
    """The certified bound beside the error observed on the evaluated rows, per early stage."""
    alpha, delta = certified["max_auto_error"], certified["delta"]
    parts = []
    for cert, stage in zip(certified["stages"], stages, strict=False):
        seen = (
            "answered none of these rows"
            if stage["accuracy"] is None
            else f"{1 - stage['accuracy']:.2%} wrong of the {stage['n_answered']:,} it answered"
        )
        bound = "no rows" if cert["error_bound"] is None else f"at most {cert['error_bound']:.2%}"
        parts.append(f"{stage['name']}: bound {bound} wrong; {seen}")
    return (
        f"Certified (Learn then Test): with probability at least {1 - delta:.0%}, each early "
        f"stage is wrong on at most {alpha:.1%} of the documents it answers alone; "
        f"coverage on the selection rows {certified['coverage']:.1%}. " + "; ".join(parts) + ".\n"
    )


def _review_line(metrics: dict[str, Any]) -> str:
    """A cascade ending in people: what the models answered alone and what went to review."""
    human = metrics["stages"][-1]
    suggestion = human.get("suggestion_accuracy")
    guess = (
        ""
        if suggestion is None
        else f"; the last model stage's suggestion was right for {suggestion:.1%} of them"
    )
    auto = metrics.get("auto_accuracy")
    auto_text = "none" if auto is None else f"{auto:.4f} accurate"
    return (
        f"Review queue ({human['name']}): the models answered {metrics['coverage']:.1%} of the "
        f"documents alone ({auto_text}); {metrics['review_share']:.1%} "
        f"({human['n_answered']:,}) went to people{guess}.\n"
    )


SWEEP_COLUMNS = (
    "stage",
    "threshold",
    "accuracy",
    "escalated",
    "escalated_to_last",
    "cost_per_1k",
    "chosen",
)


def _sweep_csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SWEEP_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# --- Plots ------------------------------------------------------------------------------


# --- Comparison across models -----------------------------------------------------------


def write_comparison(rows: list[dict[str, Any]], out_dir: str | Path) -> dict[str, Path]:
    """Write comparison.json, comparison.md and accuracy_vs_throughput.png for many models.

    ``rows`` are ``{"model": name, "kind": kind, **metrics}``; the table keeps their order.
    """
    if not rows:
        raise DocsortError("nothing to compare: no evaluated models were given")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "comparison": out / "comparison.json",
        "markdown": out / "comparison.md",
        "accuracy_vs_throughput": out / "accuracy_vs_throughput.png",
        "accuracy_vs_cost": out / "accuracy_vs_cost.png",
    }
    write_json(paths["comparison"], [{k: v for k, v in r.items() if k != "sweep"} for r in rows])
    figures.save_png(figures.throughput_figure(rows), paths["accuracy_vs_throughput"])
    figures.save_png(figures.cost_figure(rows), paths["accuracy_vs_cost"])
    write_text(paths["markdown"], _comparison_markdown(rows, paths))
    return paths


def _comparison_markdown(rows: list[dict[str, Any]], paths: dict[str, Path]) -> str:
    headers = [
        "model",
        "kind",
        "accuracy",
        "macro-F1",
        "micro-F1",
        "ECE",
        "docs/s",
        "cost per 1k",
        "seconds",
        "to last stage",
    ]
    table = [
        [
            row.get("model"),
            row.get("kind"),
            row.get("accuracy"),
            row.get("macro_f1"),
            row.get("micro_f1"),
            row.get("ece"),
            _fmt_rate(row.get("docs_per_second")),
            _fmt_usd(row.get("cost_per_1k")),
            _fmt_seconds(row.get("seconds")),
            None if row.get("stages") is None else f"{row['escalated_to_last']:.1%}",
        ]
        for row in rows
    ]
    name = paths["accuracy_vs_throughput"].name
    return "\n".join(
        [
            "# Model comparison\n",
            markdown_table(headers, table),
            "*to last stage*: for a cascade, the share of documents its last stage read.\n",
            f"![accuracy vs throughput]({name})\n",
            f"![accuracy vs cost]({paths['accuracy_vs_cost'].name})\n",
        ]
    )


# --- Scoring models (the pair kind) -----------------------------------------------------


def write_score_report(
    metrics: dict[str, Any],
    out_dir: str | Path,
    *,
    title: str = "docsort evaluation",
    model_info: dict[str, Any] | None = None,
    y_true: np.ndarray | None = None,
    y_pred: np.ndarray | None = None,
    mistakes: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Path]:
    """metrics.json, report.md and, given the scores, ``scores.png``: the predicted scores of
    each true level (a box each), or true against predicted for continuous truth; ``mistakes``
    (the largest errors) get a table."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out / "metrics.json", "report": out / "report.md"}
    write_json(paths["metrics"], metrics)
    if y_true is not None and y_pred is not None and len(y_true):
        paths["scores"] = figures.save_png(
            figures.scores_figure(y_true, y_pred, metrics), out / "scores.png"
        )
    parts = [f"# {title}\n"]
    if model_info:
        parts += ["## Model\n", markdown_table(["field", "value"], list(model_info.items()))]
    headline = [
        ["Pearson r", metrics["pearson"]],
        ["Spearman rho", metrics["spearman"]],
        ["MSE", metrics["mse"]],
        ["MAE", metrics["mae"]],
        ["n (pairs)", metrics["n"]],
        ["seconds", _fmt_seconds(metrics["seconds"])],
        ["pairs per s", _fmt_rate(metrics["docs_per_second"])],
        ["cost per 1k pairs", _fmt_usd(metrics["cost_per_1k"])],
    ]
    parts += ["## Headline\n", markdown_table(["metric", "value"], headline)]
    if metrics.get("per_level"):
        rows = [
            [level, s["count"], s["predicted_mean"], s["predicted_std"]]
            for level, s in metrics["per_level"].items()
        ]
        parts += [
            "## Predicted score per true level\n",
            markdown_table(["true score", "count", "mean predicted", "std predicted"], rows),
        ]
    if "scores" in paths:
        parts += ["## Plots\n", f"![scores]({paths['scores'].name})\n"]
    if mistakes:
        parts.append(_mistakes_section(mistakes, "Largest errors"))
    write_text(paths["report"], "\n".join(parts))
    return paths

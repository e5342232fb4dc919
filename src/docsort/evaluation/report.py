"""Evaluation reports: metrics.json, a Markdown summary and PNG plots, each written atomically.

Plots use matplotlib's object API with an explicit Agg canvas (``Figure`` +
``FigureCanvasAgg``) rather than pyplot, so importing docsort never switches the global
backend (a notebook keeps its own) and no figure is left open in pyplot's registry; a figure
is freed with its last reference.

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
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from docsort.errors import DocsortError
from docsort.io import atomic_path, write_json, write_text

MAX_TICK_LABELS = 30  # beyond this many labels the confusion matrix hides its tick labels
MAX_ANNOTATED_CELLS = 12  # write the share into each cell up to this many labels
MAX_F1_BARS = 60  # the per-class plot shows at most this many (weakest) labels
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
        paths["threshold_sweep"] = _save(_sweep_figure(metrics), out / "threshold_sweep.png")
    if metrics.get("multi_label"):
        paths["support_vs_f1"] = _save(_support_f1_figure(metrics), out / "support_vs_f1.png")
    else:
        paths["confusion_matrix"] = _save(_confusion_figure(metrics), out / "confusion_matrix.png")
    paths["reliability"] = _save(_reliability_figure(metrics), out / "reliability.png")
    paths["per_class_f1"] = _save(_per_class_figure(metrics), out / "per_class_f1.png")
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


def _sorted_classes(metrics: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Weakest F1 first; among equal F1 the label with more support (bigger impact) first."""
    return sorted(metrics["per_class"].items(), key=lambda kv: (kv[1]["f1"], -kv[1]["support"]))


def _per_class_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    return [
        [name, s["precision"], s["recall"], s["f1"], s["support"]]
        for name, s in _sorted_classes(metrics)
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
                s["alone_accuracy"],
                _fmt_rate(s["alone_docs_per_second"]),
                _fmt_usd(s["alone_cost_per_1k"]),
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
    if with_sweep:
        lines.append(
            "Threshold sweep (each stage's threshold varied, the others as chosen): "
            "`threshold_sweep.csv`, plotted in `threshold_sweep.png`.\n"
        )
    return lines


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


def _sweep_figure(metrics: dict[str, Any]) -> Figure:
    """Accuracy against the share escalated (left) and the cost per 1k docs (right), one line
    per swept stage; the chosen setting starred, each stage alone dashed."""
    rows = metrics["sweep"]
    fig = _new_figure(11.0, 4.6)
    left, right = fig.subplots(1, 2, sharey=True)
    for stage in dict.fromkeys(r["stage"] for r in rows):
        mine = sorted((r for r in rows if r["stage"] == stage), key=lambda r: r["threshold"])
        for ax, key in ((left, "escalated"), (right, "cost_per_1k")):
            ax.plot([r[key] for r in mine], [r["accuracy"] for r in mine], ".-", markersize=3,
                    label=f"{stage} threshold varied")  # fmt: skip
    chosen = next((r for r in rows if r["chosen"]), None)
    if chosen is not None:
        left.plot(chosen["escalated"], chosen["accuracy"], "*", color="black", markersize=12,
                  label="chosen")  # fmt: skip
        right.plot(chosen["cost_per_1k"], chosen["accuracy"], "*", color="black", markersize=12)
    for i, s in enumerate(metrics["stages"]):
        if s.get("alone_accuracy") is not None:
            for ax in (left, right):
                ax.axhline(s["alone_accuracy"], ls="--", lw=0.8, color=f"C{i + 3}",
                           label=f"{s['name']} alone" if ax is left else None)  # fmt: skip
    left.set_xlabel("share of documents escalated past the first stage")
    left.set_ylabel("accuracy")
    right.set_xlabel("cost per 1,000 documents (USD)")
    right.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    right.xaxis.set_major_locator(MaxNLocator(5))
    left.legend(fontsize=8, loc="lower right")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    fig.suptitle("Cascade threshold sweep")
    return fig


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    fig.clear()
    return path


def _short(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _confusion_figure(metrics: dict[str, Any]) -> Figure:
    """Row-normalised confusion matrix: each row shows where a true label's docs went."""
    labels = metrics["confusion_matrix"]["labels"]
    counts = np.asarray(metrics["confusion_matrix"]["matrix"], dtype=float)
    row_sums = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
    k = len(labels)
    side = min(16.0, max(4.5, 0.38 * k + 2.5))
    fig = _new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true label's documents")
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    if k <= MAX_TICK_LABELS:
        size = 9 if k <= 12 else 7
        names = [_short(n) for n in labels]
        ax.set_xticks(range(k), names, rotation=60, ha="right", rotation_mode="anchor", size=size)
        ax.set_yticks(range(k), names, size=size)
    else:
        step = max(1, round(k / 10))
        ax.set_xticks(range(0, k, step), [str(i) for i in range(0, k, step)], size=7)
        ax.set_yticks(range(0, k, step), [str(i) for i in range(0, k, step)], size=7)
        ax.set_xlabel(
            f"predicted label (index in the label set; {k} labels, names in metrics.json)"
        )
        ax.set_ylabel("true label (index in the label set)")
    if k <= MAX_ANNOTATED_CELLS:
        _annotate_cells(ax, shares)
    ax.set_title("Confusion matrix (row-normalised)")
    return fig


def _annotate_cells(ax: Any, shares: np.ndarray) -> None:
    for (row, col), share in np.ndenumerate(shares):
        if share > 0:
            color = "white" if share > 0.6 else "black"
            ax.text(col, row, f"{share:.2f}", ha="center", va="center", size=8, color=color)


def _reliability_figure(metrics: dict[str, Any]) -> Figure:
    """Accuracy per confidence bin against the diagonal, bin counts underneath."""
    bins = [b for b in metrics["reliability"] if b["count"]]
    multi = bool(metrics.get("multi_label"))
    fig = _new_figure(5.5, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    centers = [(b["lower"] + b["upper"]) / 2 for b in bins]
    widths = [b["upper"] - b["lower"] for b in bins]
    top.bar(
        centers,
        [b["accuracy"] for b in bins],
        width=widths,
        color="tab:blue",
        edgecolor="black",
        alpha=0.75,
        label="observed" if multi else "accuracy",
    )
    top.plot(
        [b["confidence"] for b in bins],
        [b["accuracy"] for b in bins],
        "o",
        color="black",
        markersize=3,
        label="at mean confidence",
    )
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("fraction positive" if multi else "accuracy")
    top.set_title(f"Reliability diagram (ECE = {metrics['ece']:.3f})")
    top.legend(loc="upper left", fontsize=8)
    counts = [b["count"] for b in bins]
    bottom.bar(centers, counts, width=widths, color="gray", edgecolor="black")
    if counts and max(counts) > 100 * min(counts):
        bottom.set_yscale("log")
    bottom.set_ylabel("(doc, label) cells" if multi else "documents")
    bottom.set_xlabel("predicted probability" if multi else "confidence")
    return fig


def _per_class_figure(metrics: dict[str, Any]) -> Figure:
    """Horizontal F1 bars, weakest at the top; very long label sets show the weakest only."""
    ranked = _sorted_classes(metrics)
    shown = ranked[:MAX_F1_BARS]
    k = len(shown)
    fig = _new_figure(7.0, min(22.0, max(2.5, 0.26 * k + 1.3)))
    ax = fig.add_subplot()
    scores = [s["f1"] for _, s in shown]
    positions = np.arange(k)[::-1]
    ax.barh(positions, scores, color="tab:blue")
    size = 9 if k <= 25 else 7
    ax.set_yticks(positions, [_short(name, 32) for name, _ in shown], size=size)
    for y, score in zip(positions, scores, strict=True):
        ax.text(min(score, 1.0) + 0.01, y, f"{score:.2f}", va="center", size=size - 1)
    ax.set_xlim(0, 1.1)
    ax.set_ylim(-0.6, k - 0.4)
    ax.set_xlabel("F1")
    extra = f" — the {k} weakest of {len(ranked)}" if len(ranked) > k else ""
    ax.set_title(f"Per-class F1 (weakest first){extra}")
    return fig


def _support_f1_figure(metrics: dict[str, Any]) -> Figure:
    """Multi-label: does F1 fall with support? Rare labels are usually the weak ones."""
    names = list(metrics["per_class"])
    support = np.array([metrics["per_class"][n]["support"] for n in names], dtype=float)
    f1 = np.array([metrics["per_class"][n]["f1"] for n in names])
    fig = _new_figure(6.5, 4.5)
    ax = fig.add_subplot()
    ax.scatter(support, f1, color="tab:blue", alpha=0.8)
    if support.max(initial=0) > 50:
        ax.set_xscale("symlog", linthresh=1)
    if len(names) <= 20:
        for name, x, y in zip(names, support, f1, strict=True):
            ax.annotate(_short(name, 18), (x, y), xytext=(4, 3), textcoords="offset points", size=7)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("support (documents with the label)")
    ax.set_ylabel("F1")
    ax.set_title("Per-label support vs F1")
    return fig


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
    _save(_throughput_figure(rows), paths["accuracy_vs_throughput"])
    _save(_cost_figure(rows), paths["accuracy_vs_cost"])
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


def _throughput_figure(rows: list[dict[str, Any]]) -> Figure:
    """Accuracy against docs/s on a log axis; models without a throughput are left out."""
    points = [
        (float(r["docs_per_second"]), float(r["accuracy"]), str(r.get("model", "?")))
        for r in rows
        if r.get("docs_per_second") and r.get("accuracy") is not None
    ]
    fig = _new_figure(7.0, 4.8)
    ax = fig.add_subplot()
    if points:
        xs, ys, _ = zip(*points, strict=True)
        ax.scatter(xs, ys, color="tab:blue", zorder=3)
        for x, y, name in points:
            ax.annotate(_short(name, 28), (x, y), xytext=(5, 4), textcoords="offset points", size=8)
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 2, max(xs) * 3)
    else:
        ax.text(0.5, 0.5, "no model reported a throughput", ha="center", transform=ax.transAxes)
    ax.set_ylim(max(0.0, min((p[1] for p in points), default=0.0) - 0.1), 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_xlabel("documents per second (log scale)")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy vs throughput")
    return fig


def pareto_frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and accuracy (higher),
    cheapest first."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    frontier: list[int] = []
    for i in order:
        if not frontier or points[i][1] > points[frontier[-1]][1]:
            frontier.append(i)
    return frontier


def _cost_figure(rows: list[dict[str, Any]]) -> Figure:
    """Accuracy against cost per 1k documents (log axis): single models as dots, cascades as
    diamonds with their threshold sweep as a thin line, the efficient frontier as a step line."""
    points = [
        (float(r["cost_per_1k"]), float(r["accuracy"]), str(r.get("model", "?")), r.get("kind"))
        for r in rows
        if r.get("cost_per_1k") and r.get("accuracy") is not None
    ]
    fig = _new_figure(7.5, 5.0)
    ax = fig.add_subplot()
    if not points:
        ax.text(0.5, 0.5, "no model reported a cost", ha="center", transform=ax.transAxes)
        return fig
    for r in rows:
        sweep = [s for s in r.get("sweep") or [] if s["stage"] == r["stages"][0]["name"]]
        if sweep:
            sweep.sort(key=lambda s: s["threshold"])
            ax.plot([s["cost_per_1k"] for s in sweep if s["cost_per_1k"] > 0],
                    [s["accuracy"] for s in sweep if s["cost_per_1k"] > 0],
                    "-", lw=0.8, alpha=0.5, color="tab:orange")  # fmt: skip
    for cost, accuracy, name, kind in points:
        cascade = kind == "cascade"
        ax.scatter(cost, accuracy, marker="D" if cascade else "o", zorder=3,
                   color="tab:orange" if cascade else "tab:blue")  # fmt: skip
        ax.annotate(_short(name, 28), (cost, accuracy), xytext=(5, 4), textcoords="offset points",
                    size=8)  # fmt: skip
    frontier = [points[i] for i in pareto_frontier([(p[0], p[1]) for p in points])]
    ax.step([p[0] for p in frontier], [p[1] for p in frontier], where="post", color="gray",
            ls="--", lw=1, label="frontier (nothing cheaper is as accurate)")  # fmt: skip
    xs = [p[0] for p in points]
    ax.set_xscale("log")
    ax.set_xlim(min(xs) / 2, max(xs) * 3)
    ax.set_ylim(max(0.0, min(p[1] for p in points) - 0.1), 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.scatter([], [], marker="D", color="tab:orange", label="cascade (line: its threshold sweep)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("cost per 1,000 documents, USD (log scale)")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy vs cost")
    return fig


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
        paths["scores"] = _save(_scores_figure(y_true, y_pred, metrics), out / "scores.png")
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


def _scores_figure(y_true: np.ndarray, y_pred: np.ndarray, metrics: dict[str, Any]) -> Figure:
    fig = _new_figure(5.5, 4.0)
    ax = fig.add_subplot()
    levels = np.unique(y_true)
    if metrics.get("per_level"):
        ax.boxplot([y_pred[y_true == level] for level in levels], showfliers=False)
        ax.set_xticks(range(1, len(levels) + 1), [f"{level:g}" for level in levels])
        ax.set_xlabel("true score")
    else:
        ax.scatter(y_true, y_pred, s=4, alpha=0.4)
        ax.set_xlabel("true score")
    ax.set_ylabel("predicted score")
    ax.set_title(f"Pearson r {metrics['pearson']:.3f}, Spearman {metrics['spearman']:.3f}")
    return fig

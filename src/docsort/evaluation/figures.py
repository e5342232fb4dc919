"""The plots of an evaluation report, apart from its text: only writing a report imports
matplotlib, never loading or running a model.

matplotlib's object API with an explicit Agg canvas (``Figure`` + ``FigureCanvasAgg``) rather
than pyplot, so importing docsort never switches the global backend (a notebook keeps its own)
and no figure is left open in pyplot's registry; a figure is freed with its last reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from docsort.io import atomic_path

MAX_TICK_LABELS = 30  # beyond this many labels the confusion matrix hides its tick labels
MAX_ANNOTATED_CELLS = 12  # write the share into each cell up to this many labels
MAX_F1_BARS = 60  # the per-class plot shows at most this many (weakest) labels


def sorted_classes(metrics: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Weakest F1 first; among equal F1 the label with more support (bigger impact) first."""
    return sorted(metrics["per_class"].items(), key=lambda kv: (kv[1]["f1"], -kv[1]["support"]))


def sweep_figure(metrics: dict[str, Any]) -> Figure:
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


def save_png(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    fig.clear()
    return path


def _short(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def confusion_figure(metrics: dict[str, Any]) -> Figure:
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


def reliability_figure(metrics: dict[str, Any]) -> Figure:
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


def per_class_figure(metrics: dict[str, Any]) -> Figure:
    """Horizontal F1 bars, weakest at the top; very long label sets show the weakest only."""
    ranked = sorted_classes(metrics)
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


def support_f1_figure(metrics: dict[str, Any]) -> Figure:
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


def throughput_figure(rows: list[dict[str, Any]]) -> Figure:
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


def cost_figure(rows: list[dict[str, Any]]) -> Figure:
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


def scores_figure(y_true: np.ndarray, y_pred: np.ndarray, metrics: dict[str, Any]) -> Figure:
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

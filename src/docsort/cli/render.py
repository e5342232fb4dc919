"""Tables and lines the commands print: results in, rich output out, no logic of their own."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from docsort.cli.app import out_console


def rate(per_second: float | None) -> str:
    """Documents per second: whole numbers from 10 up, two significant digits below (an LLM
    on a busy machine reads 0.3 a second, which must not print as 0)."""
    if per_second is None:
        return "–"
    if per_second >= 10:
        return f"{per_second:,.0f}"
    return f"{per_second:.2g}"


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def metrics_table(rows: list[dict[str, Any]]) -> None:
    table = Table(
        "model", "accuracy", "macro-F1", "micro-F1", "ECE", "docs/s", "cost / 1k docs", "n"
    )
    for row in rows:
        table.add_row(
            str(row["model"]),
            f"{row['accuracy']:.4f}",
            f"{row['macro_f1']:.4f}",
            f"{row['micro_f1']:.4f}",
            f"{row['ece']:.4f}",
            rate(row["docs_per_second"]),
            f"${row['cost_per_1k']:.6f}",
            f"{row['n']:,}",
        )
    out_console.print(table)


def score_metrics_table(name: str, metrics: dict[str, Any]) -> None:
    table = Table("model", "Pearson r", "Spearman", "MSE", "pairs/s", "cost / 1k pairs", "n")
    table.add_row(
        name,
        f"{metrics['pearson']:.4f}",
        f"{metrics['spearman']:.4f}",
        f"{metrics['mse']:.4f}",
        rate(metrics["docs_per_second"] or 0),
        f"${metrics['cost_per_1k']:.6f}",
        f"{metrics['n']:,}",
    )
    out_console.print(table)


def stages_table(stages: list[dict[str, Any]]) -> None:
    """A cascade's evaluation: what each stage answered, how well, at what cost."""
    alone = "alone_accuracy" in stages[0]
    columns = ["stage", "threshold", "answered", "accuracy there", "seconds", "cost / 1k docs"]
    table = Table(*columns, *(["alone: accuracy", "alone: docs/s"] if alone else []))
    for s in stages:
        cells = [
            s["name"],
            "–" if s["threshold"] is None else f"{s['threshold']:.4f}",
            f"{s['share']:.1%}",
            "–" if s["accuracy"] is None else f"{s['accuracy']:.4f}",
            f"{s['seconds']:.2f}",
            f"${s['cost_per_1k']:.6f}",
        ]
        if alone and "alone_accuracy" in s:
            cells += [f"{s['alone_accuracy']:.4f}", rate(s["alone_docs_per_second"])]
        elif alone:  # the human stage: people were not run
            cells += ["–", "–"]
        table.add_row(*cells)
    out_console.print(table)


def selection(s: dict[str, Any]) -> None:
    """How validation rows chose a cascade's thresholds, and what that promises."""
    table = Table("stage", "threshold", "validation accuracy alone", "answered (validation)")
    for stage in s["stages"]:
        threshold = stage["threshold"]
        table.add_row(
            stage["name"],
            "–" if threshold is None else f"{threshold:.4f}",
            "–" if stage["alone_accuracy"] is None else f"{stage['alone_accuracy']:.4f}",
            f"{stage['share_answered']:.1%}",
        )
    out_console.print(table)
    met = "met" if s["target_met"] else "[yellow]not met: the closest setting was chosen[/yellow]"
    out_console.print(
        f"thresholds for {s['criterion']} = {s['value']} ({met}) on {s['validation_rows']:,} "
        f"rows ({s['validation_source']}): accuracy {s['accuracy']:.4f}, "
        f"{s['escalated_to_last']:.1%} sent to the last stage, ${s['cost_per_1k']:.6f} per 1k"
    )
    if "bound" in s:
        b = s["bound"]
        out_console.print(
            f"on new rows, with {b['confidence']:.0%} confidence: at most "
            f"{b['escalated_to_last']:.1%} sent to the last stage, ${b['cost_per_1k']:.6f} per 1k"
        )
    if "certified" in s:
        out_console.print(certified_line(s["certified"], s["stages"]))


def certified_line(c: dict[str, Any], stages: list[dict[str, Any]]) -> str:
    """What a certified cascade promises, per early stage, in one line."""
    parts = []
    for stage, cert in zip(stages, c["stages"], strict=False):
        bound = "no rows" if cert["error_bound"] is None else f"≤ {cert['error_bound']:.2%}"
        parts.append(f"{stage['name']} answers {cert['answered']:,} ({bound} wrong)")
    return (
        f"certified with {1 - c['delta']:.0%} confidence: each early stage's error on what it "
        f"answers alone is at most {c['max_auto_error']:.1%}; {'; '.join(parts)}; coverage "
        f"{c['coverage']:.1%}"
    )

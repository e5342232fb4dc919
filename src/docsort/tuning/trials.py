"""What a search hands its backends and what they hand back: the objective's contract, one
record per trial, and the search's files (trials.csv, summary.json, search.png).

A backend (Optuna, Ray Tune) samples parameters and calls ``objective(params, reporter)``;
the objective trains and scores one configuration, telling ``reporter.epoch`` each epoch's
validation score as it goes (a pruner or scheduler may stop it there by raising), and returns
a ``Outcome``. The backends never see rows or kinds: the caller (``docsort.api.tuning``)
builds the objective, so this package imports no entry point.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from docsort.io import write_text

STATES = ("complete", "pruned", "stopped", "failed", "killed", "running")


class Reporter(Protocol):
    """What a trial tells its backend, and where it keeps and finds its loop checkpoint."""

    checkpoint_dir: Path | None  # the kind's loop checkpoint of this trial (PBT), else None
    resume: bool  # continue from the checkpoint in checkpoint_dir
    adopt: bool  # ... written by another trial, with this trial's hyperparameters

    def epoch(self, epoch: int, score: float) -> None:
        """One epoch's validation score; may raise to stop the trial (pruned)."""


@dataclass
class Outcome:
    """A trained trial: its value (the search's metric on the validation rows), its epochs'
    validation scores and the fitted model (to be saved if it is the best)."""

    value: float
    model: Any
    epochs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


Objective = Callable[[dict[str, Any], Reporter], Outcome]


@dataclass
class TrialRecord:
    """One trial as the results table shows it. ``exploits``: PBT steps into this trial, each
    ``{"epoch", "from", "before", "after"}`` (the donor trial, the parameters before and
    after the explore step); ``scores``: its per-epoch validation scores."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None = None
    seconds: float | None = None
    started: float | None = None  # seconds after the search started
    epochs: int = 0
    scores: list[float] = field(default_factory=list)
    trial_id: str = ""
    error: str = ""
    exploits: list[dict[str, Any]] = field(default_factory=list)


def best_of(records: list[TrialRecord]) -> TrialRecord | None:
    done = [r for r in records if r.state == "complete" and _finite(r.value)]
    return max(done, key=lambda r: (r.value, -r.number)) if done else None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def exploit_text(step: dict[str, Any]) -> str:
    """``epoch 2 from trial 1 (lr 0.0001 -> 0.00012)``."""
    changed = [
        f"{name} {_short(step['before'].get(name))} -> {_short(value)}"
        for name, value in step["after"].items()
        if step["before"].get(name) != value
    ]
    detail = f" ({', '.join(changed)})" if changed else ""
    return f"epoch {step['epoch']} from trial {step['from']}{detail}"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def trials_csv(records: list[TrialRecord], names: list[str]) -> str:
    """Every trial: number, state, metric value, seconds, epochs, its parameters, its PBT
    exploit steps and its error, if any."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    head = ["trial", "state", "value", "seconds", "started", "epochs", *names, "exploits"]
    writer.writerow([*head, "trial_id", "error"])
    for r in sorted(records, key=lambda r: r.number):
        row = [
            r.number,
            r.state,
            "" if r.value is None else f"{r.value:.6f}",
            "" if r.seconds is None else f"{r.seconds:.2f}",
            "" if r.started is None else f"{r.started:.2f}",
            r.epochs,
            *[r.params.get(n, "") for n in names],
            "; ".join(exploit_text(step) for step in r.exploits),
            r.trial_id,
            r.error,
        ]
        writer.writerow(row)
    return out.getvalue()


def write_outputs(
    out: Path, records: list[TrialRecord], names: list[str], summary: dict[str, Any]
) -> None:
    """trials.csv, summary.json and search.png in ``out`` (each written atomically)."""
    from docsort.io import write_json

    write_text(out / "trials.csv", trials_csv(records, names))
    write_json(out / "summary.json", summary)
    search_figure(records, summary.get("metric", "value"), out / "search.png")


def search_figure(records: list[TrialRecord], metric: str, path: Path) -> Path:
    """The search at a glance: the metric of each trial by trial number and by the time it
    started (with the best so far), and each trial's validation score per epoch with its PBT
    exploit steps drawn as jumps from the donor's curve."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from docsort.io import atomic_path

    lineage = any(r.scores for r in records)
    fig = Figure(figsize=(15 if lineage else 10, 4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3 if lineage else 2)
    ordered = sorted(records, key=lambda r: r.number)
    colours = {"complete": "tab:blue", "pruned": "tab:orange", "stopped": "tab:orange"}
    for ax, x_of, label in (
        (axes[0], lambda r: r.number, "trial"),
        (axes[1], lambda r: (r.started or 0.0) + (r.seconds or 0.0), "seconds since the start"),
    ):
        shown = [r for r in ordered if _finite(r.value) or r.scores]
        for state in sorted({r.state for r in shown}):
            points = [r for r in shown if r.state == state]
            ys = [r.value if _finite(r.value) else r.scores[-1] for r in points]
            ax.scatter([x_of(r) for r in points], ys, label=state, s=22,
                       color=colours.get(state, "tab:red"))  # fmt: skip
        done = sorted((r for r in shown if r.state == "complete" and _finite(r.value)), key=x_of)
        best, xs, ys = -math.inf, [], []
        for r in done:
            best = max(best, r.value)
            xs.append(x_of(r))
            ys.append(best)
        if xs:
            ax.step(xs, ys, where="post", color="black", linewidth=1, label="best so far")
        ax.set_xlabel(label)
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    from matplotlib.ticker import MaxNLocator

    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_title(f"{metric} per trial (pruned, stopped: last epoch)")
    axes[1].set_title("the same against wall time")
    if lineage:
        ax = axes[2]
        by_id = {r.trial_id: r for r in ordered}
        for r in ordered:
            if r.scores:
                ax.plot(range(1, len(r.scores) + 1), r.scores, marker=".", linewidth=1,
                        label=f"trial {r.number}")  # fmt: skip
            for step in r.exploits:
                donor = by_id.get(step.get("from_id", ""))
                at = int(step["epoch"])
                if donor is not None and len(donor.scores) >= at and len(r.scores) > at:
                    ax.annotate("", xy=(at + 1, r.scores[at]), xytext=(at, donor.scores[at - 1]),
                                arrowprops={"arrowstyle": "->", "color": "red"})  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation score")
        ax.set_title("per-epoch validation score; red: PBT exploit")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    fig.clear()
    return path

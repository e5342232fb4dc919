"""Label-error audit: confident learning (cleanlab) on out-of-fold probabilities, the ranked
suspects, the report and a cleaned copy of the input.

The probabilities come from the caller (``docsort.api.audit`` trains any kind on k−1 folds);
this module only asks cleanlab which given labels the model, trained without the row, finds
implausible, and writes what it found: ``suspects.csv``, ``report.md`` and ``audit.json``.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from docsort.data.loaders import write_table
from docsort.errors import DocsortError
from docsort.io import write_json, write_text

SUSPECTS = "suspects.csv"
REPORT = "report.md"
SUMMARY = "audit.json"
# cleanlab.filter.find_label_issues' filter_by values that flag rows from the confident joint
# or from scores (its baselines, e.g. predicted_neq_given, are left out on purpose)
FILTERS = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "low_normalized_margin",
    "low_self_confidence",
)
# cleanlab.rank.get_label_quality_scores' methods: the score a suspect is ranked by
RANKINGS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
PREVIEW = 160  # characters of text shown per suspect
FIXES = ("drop", "relabel")


@dataclass
class Suspect:
    rank: int
    row: int  # 0-based position in the input
    given: str
    suggested: str
    score: float  # cleanlab's label quality score: lower is more likely wrong
    p_given: float
    p_suggested: float
    text: str

    def record(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "row": self.row,
            "given_label": self.given,
            "suggested_label": self.suggested,
            "score": round(self.score, 6),
            "p_given": round(self.p_given, 6),
            "p_suggested": round(self.p_suggested, 6),
            "text": preview(self.text),
        }


@dataclass
class Findings:
    suspects: list[Suspect]
    quality: np.ndarray  # every row's label quality score, in data order
    oof_accuracy: float
    settings: dict[str, Any] = field(default_factory=dict)


def cleanlab_version() -> str:
    import cleanlab

    return cleanlab.__version__


def find_suspects(
    given: np.ndarray,
    proba: np.ndarray,
    names: Sequence[str],
    texts: Sequence[str],
    positions: Sequence[int],
    *,
    filter_by: str = "prune_by_noise_rate",
    rank_by: str = "self_confidence",
) -> Findings:
    """The rows whose ``given`` label index cleanlab flags from out-of-fold ``proba``
    (``[n, k]``, rows summing to 1), most suspect first. Each suspect's suggestion is the most
    probable label other than the given one."""
    try:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError:  # pragma: no cover - the quality extra is installed by setup.sh
        raise DocsortError("docsort audit needs cleanlab: pip install 'docsort[quality]'") from None
    if filter_by not in FILTERS:
        raise DocsortError(f"filter_by must be one of {', '.join(FILTERS)}, not {filter_by!r}")
    if rank_by not in RANKINGS:
        raise DocsortError(f"rank_by must be one of {', '.join(RANKINGS)}, not {rank_by!r}")
    given = np.asarray(given, dtype=np.int64)
    proba = np.clip(np.asarray(proba, dtype=np.float64), 0.0, None)
    totals = proba.sum(axis=1, keepdims=True)
    proba = np.where(totals > 0, proba / np.where(totals > 0, totals, 1), 1.0 / proba.shape[1])
    with warnings.catch_warnings():
        # cleanlab warns about classes it finds few issues for; the report says what it found
        warnings.simplefilter("ignore")
        ranked = find_label_issues(
            labels=given,
            pred_probs=proba,
            filter_by=filter_by,
            return_indices_ranked_by=rank_by,
            n_jobs=1,  # no worker processes: a shared machine, and callers inside a service
        )
        quality = get_label_quality_scores(given, proba, method=rank_by)
    others = proba.copy()
    others[np.arange(len(given)), given] = -1.0
    suggested = others.argmax(axis=1)
    suspects = [
        Suspect(
            rank=rank,
            row=int(positions[i]),
            given=names[given[i]],
            suggested=names[suggested[i]],
            score=float(quality[i]),
            p_given=float(proba[i, given[i]]),
            p_suggested=float(proba[i, suggested[i]]),
            text=texts[i],
        )
        for rank, i in enumerate(ranked, start=1)
    ]
    accuracy = float((proba.argmax(axis=1) == given).mean()) if len(given) else math.nan
    settings = {"filter_by": filter_by, "rank_by": rank_by, "cleanlab": cleanlab_version()}
    return Findings(suspects, quality, accuracy, settings)


def preview(text: str, size: int = PREVIEW) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= size else flat[: size - 1].rstrip() + "…"


def cleaned_frame(
    frame: pd.DataFrame, suspects: Sequence[Suspect], label_column: str, fix: str
) -> pd.DataFrame:
    """``frame`` (the input as read) without the suspects' rows (``drop``) or with their
    labels replaced by the suggestions (``relabel``); every other row and column as it was."""
    if fix not in FIXES:
        raise DocsortError(f"fix must be drop or relabel, not {fix!r}")
    if fix == "drop":
        return frame.drop(index=frame.index[[s.row for s in suspects]]).reset_index(drop=True)
    fixed = frame.copy()
    column = fixed[label_column].astype(object)
    for s in suspects:
        column.iat[s.row] = _like(column.iat[s.row], s.suggested)
    fixed[label_column] = column
    return fixed


def _like(original: Any, name: str) -> Any:
    """A suggested label name written in the type the column holds (labels read from 0/1
    integers are compared as "0"/"1" but stay integers in the cleaned file)."""
    try:
        if isinstance(original, bool | np.bool_):
            return name
        if isinstance(original, int | np.integer):
            return int(name)
        if isinstance(original, float | np.floating):
            return float(name)
    except ValueError:
        pass
    return name


def write_audit(
    folder: Path,
    findings: Findings,
    summary: dict[str, Any],
    *,
    title: str,
    top: int = 20,
    cleaned: tuple[str, pd.DataFrame] | None = None,
) -> None:
    """suspects.csv, report.md, audit.json and the cleaned file (``(name, frame)``)."""
    records = [s.record() for s in findings.suspects]
    columns = list(Suspect(0, 0, "", "", 0, 0, 0, "").record())
    pd.DataFrame.from_records(records, columns=columns).to_csv(folder / SUSPECTS, index=False)
    if cleaned is not None:
        write_table(cleaned[1], folder / cleaned[0])
    write_json(folder / SUMMARY, summary)
    write_text(folder / REPORT, report_text(findings, summary, title=title, top=top))


def summarise(
    findings: Findings, names: Sequence[str], given: np.ndarray, extra: dict[str, Any]
) -> dict[str, Any]:
    """audit.json: what was audited, how, and what was found (counts per label and pair)."""
    n = len(given)
    per_label = Counter(s.given for s in findings.suspects)
    rows_per_label = Counter(names[i] for i in given)
    pairs = Counter((s.given, s.suggested) for s in findings.suspects)
    return {
        **extra,
        **findings.settings,
        "rows": n,
        "labels": len(names),
        "oof_accuracy": round(findings.oof_accuracy, 6),
        "suspects": len(findings.suspects),
        "suspect_share": round(len(findings.suspects) / n, 6) if n else 0.0,
        "per_label": {
            name: {"rows": rows_per_label[name], "suspects": per_label[name]} for name in names
        },
        "pairs": [{"given": g, "suggested": s, "rows": c} for (g, s), c in pairs.most_common()],
    }


def report_text(findings: Findings, summary: dict[str, Any], *, title: str, top: int) -> str:
    s = summary
    lines = [
        f"# Label audit: {title}",
        "",
        f"Out-of-fold probabilities from `{s['kind']}` trained on {s['folds'] - 1} of "
        f"{s['folds']} stratified folds (seed {s['seed']}): every row is scored by a model "
        "that never saw it. Confident learning by cleanlab "
        f"{s['cleanlab']} (`filter_by={s['filter_by']}`), suspects ranked by "
        f"`{s['rank_by']}` (lower score: more likely mislabelled).",
        "",
        "| rows | labels | out-of-fold accuracy | suspects | share of rows |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {s['rows']:,} | {s['labels']} | {s['oof_accuracy']:.1%} | {s['suspects']:,} | "
        f"{s['suspect_share']:.1%} |",
        "",
    ]
    if s.get("skipped"):
        lines += [f"{s['skipped']:,} input row(s) were skipped (empty text or no label).", ""]
    if s.get("fix"):
        what = "without the suspects" if s["fix"] == "drop" else "with the suggested labels"
        lines += [f"Cleaned copy ({s['fix']}): `{s['cleaned_file']}`, the input {what}.", ""]
    if not findings.suspects:
        lines += ["No row's given label is implausible to the out-of-fold model.", ""]
        return "\n".join(lines)
    lines += ["## Suspects per given label", "", "| given label | rows | suspects |"]
    lines += ["| --- | ---: | ---: |"]
    for name, counts in sorted(s["per_label"].items(), key=lambda kv: -kv[1]["suspects"]):
        if counts["suspects"]:
            lines.append(f"| {_cell(name)} | {counts['rows']:,} | {counts['suspects']:,} |")
    lines += ["", "## Most frequent given → suggested", "", "| given | suggested | rows |"]
    lines += ["| --- | --- | ---: |"]
    for pair in s["pairs"][:10]:
        lines.append(f"| {_cell(pair['given'])} | {_cell(pair['suggested'])} | {pair['rows']} |")
    shown = findings.suspects[:top]
    lines += [
        "",
        f"## Top {len(shown)} suspects",
        "",
        "The evidence: the out-of-fold probability of the given label against that of the "
        "suggested one. `row` is the 0-based position in the input; all suspects are in "
        f"`{SUSPECTS}`.",
        "",
        "| rank | row | given (p) | suggested (p) | score | text |",
        "| ---: | ---: | --- | --- | ---: | --- |",
    ]
    for x in shown:
        lines.append(
            f"| {x.rank} | {x.row} | {_cell(x.given)} ({x.p_given:.2f}) | "
            f"{_cell(x.suggested)} ({x.p_suggested:.2f}) | {x.score:.3f} | "
            f"{_cell(preview(x.text, 120))} |"
        )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")

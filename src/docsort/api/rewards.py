"""Reward tuning from feedback (``docsort retrain NAME --method grpo --store URL``): the feedback
rows of the service's store as rewards (the rating of the answer served, and the correction
when one was sent), and the champion tuned on them by GRPO (``models/nn/grpo.py``). The
registration and the gate are supervised retraining's (``api/retrain.py``).

A feedback row is usable when its text was kept (sent with the feedback, or the prediction's
under ``--log-text full``) and it carries a correction, or a rating of an answer the service
logged. Unlike supervised retraining, a low rating without a correction counts too: it says
which answer not to give again. The latest feedback on a prediction wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from docsort.api.feedback import check_min_rating, open_store
from docsort.api.redaction import redact_like_training
from docsort.api.rows import Columns, read_rows
from docsort.data.dataset import Dataset
from docsort.errors import DocsortError
from docsort.models.base import Model
from docsort.models.nn.grpo import GrpoArgs, RewardRow, mean_kl

GRPO_SETTINGS_HELP = "Settings (default): " + ", ".join(
    f"{k} ({v})" for k, v in GrpoArgs().to_dict().items()
)


def grpo_settings(pairs: list[str] | dict[str, Any]) -> GrpoArgs:
    """GRPO's settings from ``KEY=VALUE`` strings or a mapping, checked (one-line errors)."""
    return GrpoArgs.from_pairs(pairs)


@dataclass
class RewardRows:
    rows: list[RewardRow]
    skipped: dict[str, list[int]] = field(default_factory=dict)

    @property
    def corrections(self) -> int:
        return sum(r.correction is not None for r in self.rows)

    @property
    def rated(self) -> int:
        return sum(r.rating is not None and r.served is not None for r in self.rows)

    def skipped_summary(self) -> str:
        if not self.skipped:
            return "skipped none"
        parts = [f"{len(ids)} {reason}" for reason, ids in self.skipped.items()]
        return f"skipped {sum(len(i) for i in self.skipped.values())}: " + "; ".join(parts)


@dataclass
class RewardTuning:
    """What GRPO did: the rows it learnt from, its settings, the mean reward of its first and
    last steps, the KL from the champion on the feedback rows, and how long it took."""

    rows: int
    corrections: int
    rated: int
    args: GrpoArgs
    summary: dict[str, float]
    kl: float

    def line(self) -> str:
        s = self.summary
        return (
            f"GRPO on {self.rows} feedback rows ({self.corrections} corrected, {self.rated} "
            f"rated answers): {int(s['steps'])} steps of {self.args.batch_size} documents x "
            f"{self.args.group_size} samples, mean reward {s['reward_first']:+.3f} -> "
            f"{s['reward_last']:+.3f}, KL from the champion {self.kl:.4f}, {s['seconds']:.1f} s"
        )


def reward_rows(
    store: str, champion: Model, columns: Columns, min_rating: int | None
) -> RewardRows:
    """The usable feedback of ``store`` as reward rows, texts read with the champion's
    columns and redacted as its training rows were."""
    check_min_rating(min_rating)
    opened = open_store(store)
    try:
        feedback = list(opened.feedback_rows())
    finally:
        opened.engine.dispose()
    labels = champion.labels_
    kept: dict[Any, tuple[int, dict[str, Any], RewardRow]] = {}
    skipped: dict[str, list[int]] = {}
    superseded: list[int] = []
    for f in feedback:
        served = _served(f)
        correction = tuple(f["labels"]) if f["labels"] else None
        rating = f["rating"] if served is not None else None
        reason = None
        if min_rating is not None and (f["rating"] is None or f["rating"] < min_rating):
            reason = f"unrated or rated below --min-rating {min_rating}"
        elif correction is None and rating is None:
            reason = "with neither a correction nor a rating of a logged answer"
        elif f["text"] is None and f["prediction_text"] is None:
            reason = "whose text was not stored (--log-text hash or off)"
        elif correction is not None and len(correction) > 1 and not labels.multi_label:
            reason = "with several labels (the champion gives one)"
        elif any(n not in labels for n in (*(correction or ()), *(served or ()))):
            reason = "naming a label the champion does not know (retrain with --method supervised)"
        if reason is not None:
            skipped.setdefault(reason, []).append(f["id"])
            continue
        key = f["prediction_id"] or ("feedback", f["id"])
        if key in kept:
            superseded.append(kept[key][0])
        record = _record(f)
        kept[key] = (f["id"], record, RewardRow("", served, rating, correction))
    if superseded:
        skipped["replaced by later feedback on the same prediction"] = sorted(superseded)
    ordered = sorted(kept.values(), key=lambda item: item[0])
    if not ordered:
        return RewardRows([], skipped)
    texts = _texts([record for _, record, _ in ordered], columns, champion)
    rows = [
        RewardRow(text, row.served, row.rating, row.correction)
        for text, (_, _, row) in zip(texts, ordered, strict=True)
    ]
    return RewardRows(rows, skipped)


def reward_tuned(champion: Model, data: RewardRows, args: GrpoArgs) -> tuple[Model, RewardTuning]:
    """The champion tuned by GRPO on ``data`` (the champion itself is left as it is)."""
    if not champion.capabilities().reward_tunes:
        raise DocsortError(
            f"a {champion.kind} model cannot be tuned from rewards (--method grpo): retrain it "
            "with --method supervised"
        )
    args.check()
    challenger = champion.reward_tune(data.rows, args)
    texts = [r.text for r in data.rows]
    kl = mean_kl(challenger.logits(texts), champion.logits(texts), champion.labels_.multi_label)
    tuning = RewardTuning(
        rows=len(data.rows),
        corrections=data.corrections,
        rated=data.rated,
        args=args,
        summary=challenger.reward_summary_,
        kl=kl,
    )
    return challenger, tuning


def corrected_dataset(data: RewardRows, champion: Model) -> Dataset | None:
    """The corrected rows as a labelled Dataset (texts as the model reads them), for counting
    how many each version gets right; None without a correction."""
    rows = [r for r in data.rows if r.correction is not None]
    if not rows:
        return None
    multi = champion.labels_.multi_label
    labels = [r.correction if multi else r.correction[0] for r in rows]
    return Dataset([r.text for r in rows], labels, champion.labels_, name="corrected rows")


def _served(f: dict[str, Any]) -> tuple[str, ...] | None:
    if f["predicted_labels"] is not None:
        return tuple(f["predicted_labels"])
    return (f["predicted_label"],) if f["predicted_label"] is not None else None


def _record(f: dict[str, Any]) -> dict[str, Any]:
    if f["text"] is None and f["is_record"]:
        return dict(json.loads(f["prediction_text"]))
    return {"text": f["text"] if f["text"] is not None else f["prediction_text"]}


def _texts(records: list[dict[str, Any]], columns: Columns, champion: Model) -> list[str]:
    """The texts the champion reads from ``records`` (a text sent to a model that reads one
    column is that column), redacted as its training rows were."""
    text_columns = list(columns.text or ("text",))
    shaped = []
    for record in records:
        record = dict(record)
        if "text" in record and len(text_columns) == 1 and text_columns[0] != "text":
            record[text_columns[0]] = record.pop("text")
        shaped.append(record)
    data = read_rows(shaped, columns, labelled=False)
    data, _ = redact_like_training(champion, data)
    return list(data.texts)


__all__ = [
    "GRPO_SETTINGS_HELP",
    "RewardRows",
    "RewardTuning",
    "corrected_dataset",
    "grpo_settings",
    "reward_rows",
    "reward_tuned",
]

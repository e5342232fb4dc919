"""Group-relative policy optimisation (GRPO) of a classifier from people's feedback.

A classifier is a policy over label sets: single-label, a categorical over the labels
(``softmax`` of its logits); multi-label, an independent Bernoulli per label (``sigmoid``). For
each document of a batch, ``group_size`` label sets are sampled from the policy as it is before
the update; each gets a reward from the feedback on that document (``rewards``); the rewards of
a document's group are normalised to advantages (minus their mean, over their standard
deviation: a group whose samples all got the same reward teaches nothing); the update maximises
the PPO-style clipped surrogate ``min(ρ·A, clip(ρ, 1-ε, 1+ε)·A)`` of the probability ratio
``ρ = π(y|x) / π_old(y|x)`` minus ``kl_beta`` times the KL divergence from the reference (the
model before tuning). The KL is exact here, not a sampled estimate: the whole output
distribution of a classifier is at hand (a sum of Bernoulli KLs for multi-label).

This module knows nothing of any kind: a kind gives a function from row indices to logits
(with gradient) and the parameters to train (``train``); the reference logits are computed once,
before tuning, since the reference never changes.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from docsort.data.labels import LabelSet
from docsort.errors import DocsortError

if TYPE_CHECKING:
    import torch

MAX_RATING = 5


@dataclass
class GrpoArgs:
    """GRPO's settings, apart from the model's own parameters."""

    group_size: int = 8  # label sets sampled per document (G)
    steps: int = 40  # sampled batches
    batch_size: int = 8  # documents per sampled batch
    updates: int = 2  # gradient steps on each sampled batch (the ratio moves off 1 after one)
    lr: float = 3e-4  # of the LoRA adapters
    clip_eps: float = 0.2  # ε of the clipped ratio
    kl_beta: float = 0.05  # weight of KL(policy ‖ reference)
    lora_r: int = 8  # rank of the fresh adapters
    lora_alpha: int = 16
    correction_weight: float = 1.0  # reward weight of agreeing with a correction
    rating_weight: float = 1.0  # reward weight of the rating of the served answer
    max_grad_norm: float = 1.0
    seed: int = 0

    _RANGES = {  # name: (minimum, maximum, whole number)
        "group_size": (2, 256, True),
        "steps": (1, 100_000, True),
        "batch_size": (1, 4096, True),
        "updates": (1, 64, True),
        "lr": (1e-8, 1.0, False),
        "clip_eps": (1e-4, 1.0, False),
        "kl_beta": (0.0, 100.0, False),
        "lora_r": (1, 256, True),
        "lora_alpha": (1, 4096, True),
        "correction_weight": (0.0, 100.0, False),
        "rating_weight": (0.0, 100.0, False),
        "max_grad_norm": (1e-6, 1e6, False),
        "seed": (0, 2**32 - 1, True),
    }

    def check(self) -> GrpoArgs:
        for name, (low, high, whole) in self._RANGES.items():
            value = getattr(self, name)
            ok = isinstance(value, int) if whole else isinstance(value, int | float)
            if isinstance(value, bool) or not ok or not low <= value <= high:
                kind = "a whole number" if whole else "a number"
                raise DocsortError(f"GRPO {name} must be {kind} in [{low}, {high}], not {value!r}")
        if self.correction_weight + self.rating_weight == 0:
            raise DocsortError("GRPO correction_weight and rating_weight must not both be 0")
        return self

    @classmethod
    def from_pairs(cls, pairs: Sequence[str] | Mapping[str, Any]) -> GrpoArgs:
        """From ``KEY=VALUE`` strings (the CLI's ``--grpo-param``) or a mapping; checked."""
        names = [f.name for f in dataclasses.fields(cls)]
        values: dict[str, Any] = {}
        items = pairs.items() if isinstance(pairs, Mapping) else [_split(p) for p in pairs]
        for key, value in items:
            if key not in names:
                raise DocsortError(
                    f"unknown GRPO setting {key!r}: the settings are {', '.join(names)}"
                )
            whole = cls._RANGES[key][2]
            values[key] = _number(key, value, whole) if isinstance(value, str) else value
        return cls(**values).check()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _split(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        raise DocsortError(f"--grpo-param takes KEY=VALUE (e.g. steps=60), not {pair!r}")
    return key.strip(), value.strip()


def _number(key: str, text: str, whole: bool) -> int | float:
    try:
        return int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise DocsortError(f"GRPO {key} must be {kind}, not {text!r}") from None


@dataclass(frozen=True)
class RewardRow:
    """One document with the feedback people gave on the answer it was served."""

    text: str
    served: tuple[str, ...] | None = None  # the label(s) the service answered, if known
    rating: int | None = None  # 1-5, of the served answer
    correction: tuple[str, ...] | None = None  # the label(s) people say are right


@dataclass
class RewardTargets:
    """The feedback of ``RewardRow`` s as arrays over a label set (rows × labels)."""

    served: np.ndarray  # 0/1, rows × labels
    has_served: np.ndarray  # bool, rows
    rating: np.ndarray  # the rating mapped to [-1, 1] ((r - 3) / 2); nan if unrated
    correction: np.ndarray  # 0/1, rows × labels
    has_correction: np.ndarray  # bool, rows

    def take(self, rows: np.ndarray) -> RewardTargets:
        return RewardTargets(*(getattr(self, f.name)[rows] for f in dataclasses.fields(self)))


def reward_targets(rows: Sequence[RewardRow], labels: LabelSet) -> RewardTargets:
    """``rows`` over ``labels``; a label outside them is a user error (the caller filters)."""
    n, k = len(rows), len(labels)
    served = np.zeros((n, k), dtype=np.float32)
    correction = np.zeros((n, k), dtype=np.float32)
    has_served = np.zeros(n, dtype=bool)
    has_correction = np.zeros(n, dtype=bool)
    rating = np.full(n, np.nan)
    for i, row in enumerate(rows):
        for names, hot, has in ((row.served, served, has_served),
                                (row.correction, correction, has_correction)):  # fmt: skip
            if names is None:
                continue
            for name in names:
                if name not in labels:
                    raise DocsortError(f"feedback names {name!r}, which the model does not know")
                hot[i, labels.index(name)] = 1.0
            has[i] = True
        if row.rating is not None:
            if not 1 <= row.rating <= MAX_RATING:
                raise DocsortError(f"a rating must be 1-{MAX_RATING}, not {row.rating}")
            if row.served is not None:  # a rating of an unknown answer rewards nothing
                rating[i] = (row.rating - 3) / 2
    return RewardTargets(served, has_served, rating, correction, has_correction)


def agreement(samples: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``2·Jaccard − 1`` of each sampled label set with the target set: +1 the same set, −1
    disjoint (single-label: +1 the same label, else −1). samples: rows × G × labels."""
    y = samples > 0.5
    t = (target > 0.5)[:, None, :]
    inter = (y & t).sum(-1)
    union = (y | t).sum(-1)
    jaccard = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    return 2.0 * jaccard - 1.0


def rewards(samples: np.ndarray, targets: RewardTargets, args: GrpoArgs) -> np.ndarray:
    """The reward of each sampled label set (rows × G):

    - a correction: ``correction_weight`` × the set's agreement with it (+1 the corrected
      label(s), −1 a disjoint set);
    - a rating ``r`` of the served answer, mapped to ``m = (r − 3) / 2`` in [−1, 1]:
      ``rating_weight`` × ``m`` × the set's agreement with the served answer when ``m ≥ 0`` (a
      good rating rewards agreeing with the answer), and ``m`` for the served set itself only
      when ``m < 0`` (a bad rating penalises giving that answer again; it says nothing of
      the others).
    The two add up: a 1-rated answer with a correction scores the correction over any other
    label over the served answer."""
    total = np.zeros(samples.shape[:2])
    corrected = targets.has_correction
    if corrected.any():
        total[corrected] += args.correction_weight * agreement(
            samples[corrected], targets.correction[corrected]
        )
    rated = ~np.isnan(targets.rating)
    if rated.any():
        m = targets.rating[rated][:, None]
        agree = agreement(samples[rated], targets.served[rated])
        same = agree >= 1.0
        total[rated] += args.rating_weight * np.where(m >= 0, m * agree, m * same)
    return total


def advantages(reward: np.ndarray) -> np.ndarray:
    """Each group's rewards minus their mean over their standard deviation (0 where equal)."""
    centred = reward - reward.mean(axis=1, keepdims=True)
    spread = reward.std(axis=1, keepdims=True)
    return np.where(spread > 1e-8, centred / np.maximum(spread, 1e-8), 0.0)


def sample(logits: torch.Tensor, group: int, multi: bool, generator: Any) -> torch.Tensor:
    """``group`` label sets per row as 0/1 (rows × group × labels): one label drawn from the
    categorical (single-label), or each label from its Bernoulli (multi-label)."""
    import torch

    if multi:
        p = torch.sigmoid(logits)[:, None, :].expand(-1, group, -1)
        return torch.bernoulli(p, generator=generator)
    p = torch.softmax(logits, dim=-1)
    drawn = torch.multinomial(p, group, replacement=True, generator=generator)
    return torch.nn.functional.one_hot(drawn, logits.shape[-1]).to(logits.dtype)


def log_prob(logits: torch.Tensor, samples: torch.Tensor, multi: bool) -> torch.Tensor:
    """log π(y|x) of each sampled set (rows × group)."""
    import torch
    from torch.nn import functional as F

    z = logits[:, None, :]
    if multi:
        return (samples * F.logsigmoid(z) + (1 - samples) * F.logsigmoid(-z)).sum(-1)
    return (samples * torch.log_softmax(z, dim=-1)).sum(-1)


def kl(logits: torch.Tensor, reference: torch.Tensor, multi: bool) -> torch.Tensor:
    """KL(policy ‖ reference) per row, exact: over the labels (single-label) or summed over
    each label's Bernoulli (multi-label)."""
    import torch
    from torch.nn import functional as F

    if multi:
        p = torch.sigmoid(logits)
        log_p, log_q = F.logsigmoid(logits), F.logsigmoid(reference)
        log_1p, log_1q = F.logsigmoid(-logits), F.logsigmoid(-reference)
        return (p * (log_p - log_q) + (1 - p) * (log_1p - log_1q)).sum(-1)
    log_p, log_q = torch.log_softmax(logits, -1), torch.log_softmax(reference, -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def mean_kl(logits: np.ndarray, reference: np.ndarray, multi: bool) -> float:
    """The mean KL(policy ‖ reference) of logits computed without gradient (e.g. on held-out
    rows), for reports."""
    import torch

    if len(logits) == 0:
        return 0.0
    return float(kl(torch.as_tensor(logits), torch.as_tensor(reference), multi).mean())


@dataclass
class GrpoResult:
    history: list[dict[str, float]]  # one row per step: reward, kl, clipped share, loss
    seconds: float

    def summary(self) -> dict[str, float]:
        """Mean reward of the first and last tenth of the steps, the last KL, the time."""
        h = self.history
        tenth = max(1, len(h) // 10)
        return {
            "steps": len(h),
            "reward_first": float(np.mean([r["reward"] for r in h[:tenth]])),
            "reward_last": float(np.mean([r["reward"] for r in h[-tenth:]])),
            "kl_last": float(h[-1]["kl"]) if h else 0.0,
            "seconds": round(self.seconds, 2),
        }


def train(
    logits_of: Callable[[np.ndarray], torch.Tensor],
    parameters: Sequence[torch.nn.Parameter],
    reference: np.ndarray,
    targets: RewardTargets,
    multi: bool,
    args: GrpoArgs,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> GrpoResult:
    """Tune ``parameters`` so that ``logits_of(rows)`` earns more reward on the feedback rows.

    ``reference`` holds the frozen model's logits of every row (rows × labels). Rows are taken
    in a shuffled order, a new one each pass; each step samples, scores and updates
    ``updates`` times on the same samples."""
    import torch

    args.check()
    started = time.perf_counter()
    n = len(reference)
    if n == 0:
        raise DocsortError("GRPO needs at least one document with feedback")
    rng = np.random.default_rng(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.AdamW(list(parameters), lr=args.lr, weight_decay=0.0)
    reference_t = torch.as_tensor(reference, dtype=torch.float32)
    order: list[int] = []
    history: list[dict[str, float]] = []
    for step in range(args.steps):
        while len(order) < min(args.batch_size, n):
            order.extend(rng.permutation(n).tolist())
        rows = np.array(order[: min(args.batch_size, n)])
        del order[: len(rows)]
        with torch.no_grad():
            old = logits_of(rows).float().cpu()
        drawn = sample(old, args.group_size, multi, generator)
        old_logp = log_prob(old, drawn, multi)
        reward = rewards(drawn.numpy(), targets.take(rows), args)
        advantage = torch.as_tensor(advantages(reward), dtype=torch.float32)
        ref = reference_t[rows]
        for _ in range(args.updates):
            logits = logits_of(rows).float().cpu()
            ratio = torch.exp(log_prob(logits, drawn, multi) - old_logp)
            clipped = torch.clamp(ratio, 1 - args.clip_eps, 1 + args.clip_eps)
            surrogate = torch.minimum(ratio * advantage, clipped * advantage).mean()
            divergence = kl(logits, ref, multi).mean()
            loss = -surrogate + args.kl_beta * divergence
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(parameters), args.max_grad_norm)
            optimizer.step()
        record = {
            "step": step + 1,
            "reward": float(reward.mean()),
            "kl": float(divergence.detach()),
            "clipped": float(((ratio - 1).abs() > args.clip_eps).float().mean()),
            "loss": float(loss.detach()),
        }
        if not all(math.isfinite(v) for v in record.values()):
            raise DocsortError(
                f"GRPO diverged at step {step + 1} (loss {record['loss']}): lower lr"
            )
        history.append(record)
        if progress is not None:
            progress(step + 1, record)
    return GrpoResult(history, time.perf_counter() - started)


__all__ = [
    "GrpoArgs",
    "GrpoResult",
    "RewardRow",
    "RewardTargets",
    "advantages",
    "agreement",
    "kl",
    "log_prob",
    "mean_kl",
    "reward_targets",
    "rewards",
    "sample",
    "train",
]

"""The PyTorch side of the ``pair`` kind: the scoring network, its inputs and its losses.

Kept apart from ``pair.py`` (as ``training.py`` is from ``encoder.py``) so that importing the
model kinds does not import torch. The training loop, optimizer, LoRA and batching are those of
``training.py``; only what differs for scoring pairs lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from docsort.models.nn.training import EncoderNet, Tokenized, pooled

CONTEXT_KEY = "context_levels"  # a batch's context levels, beside the tokenizer's tensors


class PairNet(EncoderNet):
    """One encoder scoring pairs, as a cross-encoder or a bi-encoder, with a score head.

    Both variants reduce a pair to one logit ``z``: the cross-encoder reads the joined pair and
    maps its pooled vector through the linear head; the bi-encoder embeds each side and maps
    their cosine through a learnt scale and shift. ``unit_score`` turns ``z`` into a score on
    [0, 1]: a sigmoid (regression losses) or, for the ordinal loss, the expected level of a
    rank-consistent cumulative model (CORAL: one ``z``, one learnt cut per level boundary).
    """

    def __init__(
        self,
        encoder: nn.Module,
        hidden: int,
        pooling: str,
        dropout: float,
        variant: str,
        gaps: Sequence[float] = (),
        context_levels: int = 0,
        context_dim: int = 64,
        context_fusion: str = "tokens",
    ) -> None:
        super().__init__(encoder, hidden, 1, pooling, dropout)
        self.variant = variant
        self.context_fusion = context_fusion
        if context_levels:
            # row 0 is "no level": zero and never learnt, so an unknown code adds nothing
            self.context_table = nn.Embedding(context_levels + 1, context_dim, padding_idx=0)
            self.context_projection = nn.Linear(context_dim, hidden, bias=False)
            nn.init.zeros_(self.context_projection.weight)  # start as the model without context
        # cosine of two sentence vectors: related phrases sit around 0.5-0.9; start near there
        self.cos_scale = nn.Parameter(torch.tensor(5.0))
        self.cos_shift = nn.Parameter(torch.tensor(-3.0))
        # ordinal: one cut per boundary between consecutive levels, and the (unit) gap it spans
        self.cuts = nn.Parameter(torch.zeros(len(gaps)))
        self.register_buffer("gaps", torch.tensor(list(gaps), dtype=torch.float32))
        unused = [self.cos_scale, self.cos_shift] if variant == "cross" else self.head.parameters()
        for p in unused:
            p.requires_grad_(False)
        if not len(gaps):
            self.cuts.requires_grad_(False)

    @property
    def ordinal(self) -> bool:
        return len(self.gaps) > 0

    def score_parameters(self) -> list[nn.Parameter]:
        """What is learnt beside the encoder: the head (or cosine scale) and the cuts."""
        return [
            p
            for name, p in self.named_parameters()
            if not name.startswith(("encoder.", "context_"))
        ]

    def context_parameters(self) -> list[nn.Parameter]:
        """The context table and projection: they move every token embedding, so they learn at
        their own (encoder-like) rate, not the head's."""
        return [p for name, p in self.named_parameters() if name.startswith("context_")]

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """The pooled vector; with context levels in the batch, their projected vector is
        added to every token embedding (or to the pooled vector)."""
        if CONTEXT_KEY not in batch:
            return super().embed(batch)
        tokens = {key: value for key, value in batch.items() if key != CONTEXT_KEY}
        offset = self.context_offset(batch[CONTEXT_KEY])
        if self.context_fusion == "pooled":
            return pooled(self.encoder, tokens, self.pooling) + offset
        words = self.encoder.get_input_embeddings()(tokens.pop("input_ids"))
        tokens["inputs_embeds"] = words + offset.unsqueeze(1).to(words.dtype)
        return pooled(self.encoder, tokens, self.pooling)

    def context_offset(self, levels: Tensor) -> Tensor:
        """Each row's levels summed, L2-normalised and projected to the encoder's width."""
        summed = self.context_table(levels).sum(dim=1)
        return self.context_projection(F.normalize(summed, dim=-1))

    def cross_logit(self, batch: dict[str, Tensor]) -> Tensor:
        return self.forward(batch).squeeze(-1)

    def from_cosine(self, first: Tensor, second: Tensor) -> Tensor:
        return self.cos_scale * F.cosine_similarity(first, second, dim=-1) + self.cos_shift

    def unit_score(self, z: Tensor) -> Tensor:
        if not self.ordinal:
            return torch.sigmoid(z)
        return (torch.sigmoid(z.unsqueeze(-1) + self.cuts) * self.gaps).sum(dim=-1)

    def start_from(self, unit_targets: np.ndarray, level_index: np.ndarray) -> None:
        """Start the outputs at the training data's base rates: the head's bias at the mean
        score, each cut at the share of rows above its boundary."""
        with torch.no_grad():
            if self.ordinal:
                above = [(level_index > k).mean() for k in range(len(self.gaps))]
                self.cuts.copy_(torch.tensor([_logit(p) for p in above]))
                self.head.bias.zero_()
            else:
                self.head.bias.fill_(_logit(float(unit_targets.mean())))


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return float(np.log(p / (1 - p)))


class PairTokens(Tokenized):
    """Each row as the tokenizer's text pair (e.g. context title, phrase); ``longest_first``
    trims the longer segment, so a long title gives way before a short phrase does."""

    def __init__(
        self, tokenizer: Any, first: Sequence[str], second: Sequence[str], max_length: int
    ) -> None:
        self.tokenizer = tokenizer
        encoding = tokenizer(
            list(first), list(second), truncation="longest_first", max_length=max_length
        )
        self.encoding = dict(encoding)
        self.lengths = np.array([len(ids) for ids in self.encoding["input_ids"]], dtype=np.int64)


class ContextTokens(Tokenized):
    """Tokenized rows with each row's context levels (rows of the model's table, 0 pads),
    which every batch carries under ``CONTEXT_KEY``."""

    def __init__(self, tokens: Tokenized, levels: np.ndarray) -> None:
        self.tokenizer, self.encoding, self.lengths = (
            tokens.tokenizer,
            tokens.encoding,
            tokens.lengths,
        )
        self.levels = levels

    def batch(self, rows: np.ndarray, device: torch.device) -> dict[str, Tensor]:
        batch = super().batch(rows, device)
        batch[CONTEXT_KEY] = torch.from_numpy(self.levels[rows]).to(device)
        return batch


# -- losses -------------------------------------------------------------------------------
def pearson_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """1 − Pearson r over the batch: what the task is judged by, blind to scale and offset."""
    p = predicted - predicted.mean()
    t = target - target.mean()
    r = (p * t).sum() / (p.norm() * t.norm() + 1e-8)
    return 1.0 - r


def ordinal_loss(z: Tensor, cuts: Tensor, level_index: Tensor) -> Tensor:
    """Binary cross-entropy of each "score above boundary k" question (CORAL)."""
    above = (level_index.unsqueeze(-1) > torch.arange(len(cuts), device=z.device)).float()
    return F.binary_cross_entropy_with_logits(z.unsqueeze(-1) + cuts, above)


def nt_xent(
    first: Tensor, second: Tensor, positive: Tensor, group: Tensor, temperature: float
) -> Tensor:
    """In-batch NT-Xent over the positive rows, both directions: each positive pair's sides
    should be closer to each other than to the other side of every other row in the batch.
    Rows sharing a group (the same anchor) are not used as negatives of one another: another
    target of the same anchor may match it just as well."""
    rows = torch.nonzero(positive, as_tuple=False).squeeze(-1)
    if len(rows) == 0:
        return first.sum() * 0.0
    a = F.normalize(first, dim=-1)
    b = F.normalize(second, dim=-1)
    same = group.unsqueeze(0) == group.unsqueeze(1)
    not_self = ~torch.eye(len(group), dtype=torch.bool, device=group.device)
    hidden = (same & not_self)[rows]
    losses = []
    for similarity in (a @ b.T, b @ a.T):
        logits = (similarity[rows] / temperature).masked_fill(hidden, float("-inf"))
        losses.append(F.cross_entropy(logits, rows))
    return (losses[0] + losses[1]) / 2

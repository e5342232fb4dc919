"""The PyTorch predict path of the transformer kinds, with as little around the matmuls as can be.

Texts are tokenized once, in one batch call of the fast tokenizer, without padding; sorted
longest first; cut into batches of at most ``max_rows`` rows and ``TOKEN_BUDGET`` tokens (rows ×
the batch's padded width), so a batch of long texts holds fewer rows and a batch of short ones
more; each batch is padded to its own longest row with numpy (not ``tokenizer.pad``, whose
Python loop over rows cost more than a short query's forward pass) and run under
``torch.inference_mode``. Intra-op threads are torch's, set by ``docsort.load(runtime=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from docsort.models.nn.training import autocast, split_pairs

# tokens per forward pass (rows × padded width): 32 rows of 128 tokens; 8 rows of 512
TOKEN_BUDGET = 4096


class Encoded:
    """Texts tokenized once by a Hugging Face fast tokenizer, unpadded, as numpy-ready lists."""

    def __init__(
        self,
        tokenizer: Any,
        texts: Sequence[str],
        max_length: int,
        pair_separator: str | None = None,
    ) -> None:
        if pair_separator:
            first, second = split_pairs(texts, pair_separator)
            encoding = tokenizer(first, second, truncation="longest_first", max_length=max_length)
        else:
            encoding = tokenizer(list(texts), truncation="longest_first", max_length=max_length)
        self.names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in encoding]
        self.columns = {name: encoding[name] for name in self.names}
        self.lengths = np.array([len(ids) for ids in encoding["input_ids"]], dtype=np.int64)
        self.pad_id = int(tokenizer.pad_token_id or 0)

    def __len__(self) -> int:
        return len(self.lengths)

    def tensors(self, rows: np.ndarray, device: torch.device) -> dict[str, Tensor]:
        """The rows as int64 tensors padded to their longest row (right padding)."""
        width = int(self.lengths[rows].max())
        out = {}
        for name in self.names:
            fill = self.pad_id if name == "input_ids" else 0
            array = np.full((len(rows), width), fill, dtype=np.int64)
            values = self.columns[name]
            for k, row in enumerate(rows):
                sequence = values[row]
                array[k, : len(sequence)] = sequence
            out[name] = torch.from_numpy(array).to(device)
        return out


def token_batches(
    lengths: np.ndarray, max_rows: int, budget: int = TOKEN_BUDGET
) -> list[np.ndarray]:
    """Row indices longest first, in batches of at most ``max_rows`` rows whose padded size
    (rows × the first, longest row's length) stays within ``budget`` tokens (one row at least)."""
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        width = max(int(lengths[order[start]]), 1)
        rows = max(1, min(max_rows, budget // width))
        batches.append(order[start : start + rows])
        start += rows
    return batches


@torch.inference_mode()
def run(
    forward: Callable[[dict[str, Tensor]], Tensor],
    encoded: Encoded,
    max_rows: int,
    device: torch.device,
    width: int,
    budget: int = TOKEN_BUDGET,
) -> np.ndarray:
    """``forward`` over every row (``width`` output columns), in the rows' order."""
    out = np.zeros((len(encoded), width), dtype=np.float32)
    for rows in token_batches(encoded.lengths, max_rows, budget):
        with autocast(device):
            out[rows] = forward(encoded.tensors(rows, device)).float().cpu().numpy()
    return out


def sentence_parts(st: Any) -> tuple[Any, str] | None:
    """The Hugging Face encoder and the pooling (``mean`` or ``cls``) of a sentence-transformers
    model made of Transformer + Pooling (+ Normalize), as ``minilm`` and ``mpnet`` are; None
    for any other make-up (the caller then uses ``encode``)."""
    modules = list(st)
    names = [type(m).__name__ for m in modules]
    if len(modules) < 2 or names[:2] != ["Transformer", "Pooling"]:
        return None
    if any(name != "Normalize" for name in names[2:]):
        return None
    mode = modules[1].pooling_mode
    mode = mode[0] if isinstance(mode, (list, tuple)) and len(mode) == 1 else mode
    tokenizer = getattr(modules[0], "tokenizer", None)
    if mode not in ("mean", "cls") or not getattr(tokenizer, "is_fast", False):
        return None
    if getattr(tokenizer, "padding_side", "right") != "right":
        return None
    return modules[0], mode


def sentence_vectors(st: Any, texts: Sequence[str], max_rows: int) -> np.ndarray | None:
    """L2-normalised sentence vectors of ``texts`` (what ``st.encode(normalize_embeddings=True)``
    gives) by this module's path; None when ``st`` is not a plain Transformer + Pooling model."""
    from docsort.models.nn.training import pooled

    parts = sentence_parts(st)
    if parts is None:
        return None
    transformer, mode = parts
    encoder = transformer.auto_model
    encoded = Encoded(transformer.tokenizer, texts, int(st.max_seq_length))

    def forward(batch: dict[str, Tensor]) -> Tensor:
        return torch.nn.functional.normalize(pooled(encoder, batch, mode), p=2, dim=1)

    was_training = encoder.training
    encoder.eval()
    try:
        width = int(encoder.config.hidden_size)
        return run(forward, encoded, max_rows, next(encoder.parameters()).device, width)
    finally:
        encoder.train(was_training)

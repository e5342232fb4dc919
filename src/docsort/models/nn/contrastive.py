"""Few-shot body tuning, SetFit's recipe: pairs of labelled rows (same label: similar, another
label: dissimilar) tune a sentence-transformers encoder with a cosine-similarity loss, before a
linear head is fitted on the tuned vectors (``embed`` kind, ``finetune: contrastive``).

The pairs are drawn per row, as SetFit's ``num_iterations`` does: every row gets
``num_iterations`` partners of its own label and as many of other labels, so an epoch holds
``2 × rows × num_iterations`` pairs whatever the number of classes (SetFit's own
``ContrastiveDataset`` first lists all ``n²/2`` combinations of the rows: 11.8 million at
banking77 64-shot). The loss is sentence-transformers' ``CosineSimilarityLoss`` (the squared
error between the pair's cosine and its 1 / 0 target), the optimiser AdamW with a linear
schedule after a 10 % warm-up, as SetFit's body training uses.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from docsort.models.nn.distributed import stepper
from docsort.models.nn.training import seed_everything
from docsort.progress import progress_bar

WARMUP = 0.1  # share of the steps the learning rate rises over (SetFit's warmup_proportion)
MAX_GRAD_NORM = 1.0


def sample_pairs(
    targets: np.ndarray, num_iterations: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(first, second, similar)`` row indices and 1.0 / 0.0 targets: for each row
    ``num_iterations`` partners of the same label (another row when the label has one) and
    ``num_iterations`` of other labels, positives and negatives interleaved, then shuffled.
    Vectorised over the rows: a draw costs ``O(rows × num_iterations)``, not ``O(rows²)``."""
    targets = np.asarray(targets)
    n = len(targets)
    order = np.argsort(targets, kind="stable")  # rows grouped by label, one block per label
    _, start, count = np.unique(targets[order], return_index=True, return_counts=True)
    block = np.searchsorted(np.unique(targets), targets)  # each row's label block
    place = np.empty(n, dtype=np.int64)
    place[order] = np.arange(n)  # each row's position in the sorted order
    first = np.repeat(np.arange(n), num_iterations)
    lo, size, own = start[block][first], count[block][first], place[first]
    # positives: a position in the row's own block other than its own (itself if alone)
    pick = rng.integers(0, np.maximum(size - 1, 1))
    pick = lo + pick + ((lo + pick >= own) & (size > 1))
    positive = order[pick]
    # negatives: a position outside the row's block (a label with every row has none)
    outside = n - size
    if np.any(outside == 0):
        negative = None
    else:
        pick = rng.integers(0, outside)
        negative = order[np.where(pick < lo, pick, pick + size)]
    if negative is None:
        pairs = np.stack([first, positive], axis=1)
        similar = np.ones(len(first), dtype=np.float32)
    else:
        pairs = np.stack([first, positive, first, negative], axis=1).reshape(-1, 2)
        similar = np.tile(np.array([1.0, 0.0], dtype=np.float32), len(first))
    shuffle = rng.permutation(len(pairs))
    return pairs[shuffle, 0], pairs[shuffle, 1], similar[shuffle]


def tune_encoder(
    encoder: Any,
    texts: Sequence[str],
    targets: np.ndarray,
    *,
    num_iterations: int,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Fine-tune the ``SentenceTransformer`` ``encoder`` in place on pairs of ``texts``; fresh
    pairs every epoch, all drawn from ``seed``. Returns one history row per epoch."""
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
    from transformers import get_linear_schedule_with_warmup

    seed_everything(seed)
    rng = np.random.default_rng(seed)
    texts = list(texts)
    loss_fn = CosineSimilarityLoss(encoder)
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    per_epoch = -(-2 * len(texts) * num_iterations // batch_size)
    total = epochs * per_epoch
    scheduler = get_linear_schedule_with_warmup(optimizer, int(WARMUP * total), total)
    device = next(encoder.parameters()).device
    history: list[dict[str, Any]] = []

    def features(rows: np.ndarray) -> dict[str, torch.Tensor]:
        prepare = getattr(encoder, "preprocess", None) or encoder.tokenize  # 6.x renamed it
        batch = prepare([texts[i] for i in rows])  # tensors, and a "modality" string in 6.x
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    first = second = similar = np.zeros(0, dtype=np.int64)  # this epoch's pairs

    def loss_of(rows: np.ndarray) -> torch.Tensor:
        labels = torch.from_numpy(similar[rows]).to(device)
        return loss_fn([features(first[rows]), features(second[rows])], labels)

    step = stepper(loss_fn, loss_of)  # loss_of itself, or this worker's share in DDP
    encoder.train()
    try:
        with progress_bar("tuning the encoder", total=total) as advance:
            for epoch in range(epochs):
                started = time.perf_counter()
                first, second, similar = sample_pairs(targets, num_iterations, rng)
                loss_sum = 0.0
                for b in range(0, len(first), batch_size):
                    loss = step(epoch, np.arange(b, min(b + batch_size, len(first))))
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    loss_sum += loss.item()
                    advance(1, f"tuning the encoder: epoch {epoch + 1}/{epochs}")
                history.append(
                    {
                        "epoch": epoch + 1,
                        "pairs": len(first),
                        "train_loss": loss_sum / max(-(-len(first) // batch_size), 1),
                        "seconds": round(time.perf_counter() - started, 2),
                    }
                )
    finally:
        encoder.eval()
    return history

"""The fine-tuning loop on several workers at once: DDP over the kinds' own batches.

A kind's loop (``training.train_loop``, the contrastive tuning of ``embed``) plans its batches
as arrays of row indices and computes a batch's loss in a closure (``loss_of(rows)``). With
``hooks.Workers`` set around ``fit``, ``stepper`` makes that closure the ``forward`` of a small
module holding the network, wrapped by the caller's DDP (Ray Train's ``prepare_model``): the
backward pass then all-reduces the gradients, and every worker takes the same optimiser step.

Each worker trains on its own share of every batch: rows ``rank, rank + size, ...`` (the
interleaving ``DistributedSampler`` uses; batches are grouped by length, so every share costs
about the same). The shares of a batch are disjoint and together the whole batch, so the steps,
the learning-rate schedule and the batch size the optimiser sees are those of one process;
each worker's loss is weighted by its share of the rows, which makes the averaged gradient the
gradient of the whole batch's mean loss. A batch with fewer rows than workers gives the
workers without a row a zero-weighted step on its first row (DDP needs every worker in every
step). Losses that compare the rows of a batch with each other (in-batch negatives, the pair
kind's contrastive term) see each worker's share only.

Validation runs on every worker (it updates state the next epoch reads, the dual kind's label
cache) and rank 0's score is the one every worker acts on, so early stopping ends all of them
at the same epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from torch import Tensor, nn

from docsort.models.nn.hooks import Workers, current_workers

Step = Callable[[int, np.ndarray], Tensor]  # (epoch, rows of the batch) -> the loss to backprop


class _Loss(nn.Module):
    """``loss_of(rows)`` as the forward of a module owning the network, so DDP sees the step
    (its hooks fire only for a forward called through the wrapper)."""

    def __init__(self, net: nn.Module, loss_of: Callable[[np.ndarray], Tensor]) -> None:
        super().__init__()
        self.net = net
        self.loss_of = loss_of

    def forward(self, rows: np.ndarray, weight: float) -> Tensor:
        return self.loss_of(rows) * weight


def share(rows: np.ndarray, rank: int, size: int) -> np.ndarray:
    """This worker's rows of a batch: every ``size``-th, from ``rank``."""
    return np.asarray(rows)[rank::size]


def stepper(net: nn.Module, loss_of: Callable[[np.ndarray], Tensor]) -> Step:
    """The loop's step: ``loss_of`` itself in one process; on workers, this worker's share of
    the batch through the DDP-wrapped module, weighted (see the module's docstring)."""
    workers = current_workers()
    if workers is None:
        return lambda epoch, rows: loss_of(rows)
    wrapped = workers.wrap(_Loss(net, loss_of))

    def step(epoch: int, rows: np.ndarray) -> Tensor:
        mine = share(rows, workers.rank, workers.size)
        workers.seen.setdefault(epoch, []).append(mine)
        if len(mine) == 0:  # a short last batch: no row for this worker, a zero-weighted step
            return wrapped(np.asarray(rows)[:1], 0.0)
        return wrapped(mine, len(mine) * workers.size / len(rows))

    return step


def agree(score: float | None) -> float | None:
    """On workers, rank 0's validation score (every worker then stops at the same epoch)."""
    workers = current_workers()
    if workers is None or workers.size == 1 or score is None:
        return score
    import torch.distributed as dist

    shared = [float(score)]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]


def summary(workers: Workers) -> dict[str, Any]:
    """What the workers trained on, gathered from all of them (call it on every worker):
    rows per worker in the first epoch, and over every epoch the most rows two workers both
    had (0: the shares were disjoint) and the fewest distinct rows an epoch covered."""
    seen = {
        epoch: np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        for epoch, parts in workers.seen.items()
    }
    if workers.size > 1:
        import torch.distributed as dist

        everyone: list[Any] = [None] * workers.size
        dist.all_gather_object(everyone, {e: v.tolist() for e, v in seen.items()})
    else:
        everyone = [{e: v.tolist() for e, v in seen.items()}]
    epochs = sorted(seen)
    shared, covered = 0, None
    for epoch in epochs:
        sets = [set(rows.get(epoch, [])) for rows in everyone]
        union = set().union(*sets)
        shared = max(shared, sum(len(s) for s in sets) - len(union))
        covered = len(union) if covered is None else min(covered, len(union))
    first = epochs[0] if epochs else None
    return {
        "workers": workers.size,
        "epochs": len(epochs),
        "rows_per_worker": [len(rows.get(first, [])) for rows in everyone],
        "shared_rows": shared,
        "distinct_rows": covered or 0,
    }

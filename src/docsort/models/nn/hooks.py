"""A caller's hook into the fine-tuning loop, set around ``fit`` without changing its signature.

A hyperparameter search needs two things of ``training.train_loop`` that a plain ``fit`` does
not: each epoch's validation score as it happens (to report it, and to stop a trial that a
pruner or scheduler gives up on: the callback may raise), and, for Population-Based Training,
to continue from another trial's checkpoint with this trial's hyperparameters (``adopt``).
The hook lives in a context variable, so ``fit`` and every kind stay as they are and a loop
with no hook set behaves exactly as before. Kept free of torch: setting a hook around a tfidf
fit (which has no loop, so it is never called) imports nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ``on_epoch(record, metric, checkpoint_dir)``: ``record`` is the history row just written
# (epoch, step, train_loss, valid_score, seconds), ``metric`` the loop's name for valid_score
# ("macro-F1", "micro-F1"; "epochs" when there are no validation rows), ``checkpoint_dir`` the
# folder whose last.pt / best.pt now hold this epoch (None when the kind does not checkpoint)
EpochCallback = Callable[[dict[str, Any], str, Path | None], None]


@dataclass(frozen=True)
class EpochHook:
    """What the loop does for a caller: call ``on_epoch`` after each epoch's checkpoint is
    written; with ``adopt``, resume from a checkpoint in ``checkpoint_dir`` written by another
    run (other hyperparameters): its weights, optimiser moments, step and history are taken,
    this run's learning rate, weight decay and schedule are kept, and a LoRA adapter of
    another rank is resized to this run's."""

    on_epoch: EpochCallback | None = None
    adopt: bool = False


_HOOK: ContextVar[EpochHook | None] = ContextVar("docsort_epoch_hook", default=None)


@contextlib.contextmanager
def epoch_hook(hook: EpochHook) -> Iterator[None]:
    """``with epoch_hook(EpochHook(on_epoch=...)): model.fit(...)``."""
    token = _HOOK.set(hook)
    try:
        yield
    finally:
        _HOOK.reset(token)


def current_hook() -> EpochHook | None:
    """The hook set around the running fit, or None."""
    return _HOOK.get()


@dataclass
class Workers:
    """A fit run by ``size`` processes at once, this one being ``rank`` (distributed data
    parallel: ``docsort train --workers N``, the processes started by Ray Train with their
    ``torch.distributed`` group up). The kinds' one loop stays one loop: with this set, it
    passes each step through ``wrap`` (a module to its DDP wrapper: Ray Train's
    ``prepare_model``), trains each worker on its own share of every batch and takes rank 0's
    validation score, so that every worker stops at the same epoch. ``seen`` records the rows
    this worker trained on, per epoch (``models/nn/distributed.py``)."""

    rank: int
    size: int
    wrap: Callable[[Any], Any]
    seen: dict[int, list[Any]] = field(default_factory=dict)


_WORKERS: ContextVar[Workers | None] = ContextVar("docsort_workers", default=None)


@contextlib.contextmanager
def on_workers(workers: Workers) -> Iterator[None]:
    """``with on_workers(Workers(rank, size, wrap)): model.fit(...)`` in each worker."""
    token = _WORKERS.set(workers)
    try:
        yield
    finally:
        _WORKERS.reset(token)


def current_workers() -> Workers | None:
    """The workers of the running fit, or None (one process)."""
    return _WORKERS.get()

"""Parameters the fine-tuned encoder kinds (``encoder``, ``dual``, ``pair``) share.

Kept free of torch so that creating or checking a model stays cheap: the kinds import torch only
when they train or predict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from docsort.errors import DocsortError

POOLINGS = ("mean", "cls")
SCHEDULES = ("linear", "cosine", "constant_with_warmup")


def requirement(kind: str) -> Callable[[bool, str], None]:
    """``need(ok, message)``: a one-line error naming the kind when a parameter is wrong."""

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise DocsortError(f"{kind} {message}")

    return need


def check_finetune_params(model: Any, kind: str) -> Callable[[bool, str], None]:
    """The checks the ``encoder``, ``dual`` and ``pair`` kinds share (pooling, schedule,
    device, warm-up, epochs, LoRA rank); returns ``need`` for the kind's own checks."""
    need = requirement(kind)
    need(model.pooling in POOLINGS, f"pooling must be one of {POOLINGS}, not {model.pooling!r}")
    need(
        model.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, not {model.schedule!r}"
    )
    need(
        model.device in ("auto", "cpu") or str(model.device).startswith("cuda"),
        f"device must be 'auto', 'cpu' or 'cuda', not {model.device!r}",
    )
    need(0 <= model.warmup_ratio < 1, "warmup_ratio must be in [0, 1)")
    need(model.epochs >= 1 and model.patience >= 1, "epochs and patience must be at least 1")
    need(model.max_length >= 8, f"max_length must be at least 8, got {model.max_length}")
    if model.lora:
        need(model.lora_r >= 1, "lora_r must be at least 1")
    return need


def default_lr(lr: float | None, lora: bool, full: float = 5e-5) -> float:
    """LoRA's few weights need a larger step than a full fine-tune of every weight."""
    if lr is not None:
        return lr
    return 5e-4 if lora else full

"""The fine-tuning arguments the encoder kinds (``encoder``, ``dual``, ``pair``) share.

Declared once, as a dataclass (SetFit keeps its ``TrainingArguments`` apart from the model the
same way); each kind's own arguments subclass it, adding fields and changing a default where the
kind needs another. Kept free of torch so that creating or checking a model stays cheap: the
kinds import torch only when they train or predict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from docsort.errors import DocsortError

POOLINGS = ("mean", "cls")
SCHEDULES = ("linear", "cosine", "constant_with_warmup")


@dataclass
class FineTuneArgs:
    """What every fine-tuned encoder kind takes: the base model, how it reads and pools,
    LoRA, the optimiser and its schedule, the batch sizes, the device and the seed."""

    base: str = "minilm"
    pooling: str = "mean"
    max_length: int = 128
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_target_modules: tuple[str, ...] | None = None
    lr: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: str = "linear"
    batch_size: int = 32
    epochs: int = 10
    patience: int = 2
    max_grad_norm: float | None = 1.0
    eval_batch_size: int = 64
    device: str = "auto"
    seed: int = 0


class ArgumentsInit:
    """A kind whose parameters are an arguments dataclass (``Args``). ``Kind(**params)`` sets
    every field as an attribute of the same name (scikit-learn's contract: the parameters are
    the attributes), and the parameter names are the dataclass's fields."""

    Args: ClassVar[type[FineTuneArgs]] = FineTuneArgs

    def __init__(self, **params: Any) -> None:
        try:
            args = self.Args(**params)
        except TypeError as exc:  # create() names unknown parameters first; this is a backstop
            raise DocsortError(f"{type(self).__name__}: {exc}") from None
        for field in fields(args):
            setattr(self, field.name, getattr(args, field.name))

    @classmethod
    def param_names(cls) -> list[str]:
        return [field.name for field in fields(cls.Args)]


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

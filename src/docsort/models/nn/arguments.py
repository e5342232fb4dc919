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
from docsort.models.params import (
    DEVICE,
    SEED,
    Choice,
    Flag,
    Integer,
    Items,
    Number,
    Optional,
    Rule,
    Text,
)

POOLINGS = ("mean", "cls")
SCHEDULES = ("linear", "cosine", "constant_with_warmup")
POSITIVE = Number(min=0, exclusive=True)
SHARE = Number(min=0, max=1, exclusive="max")  # in [0, 1): a dropout, a warm-up share
# the checkpoint parameters of the kinds that checkpoint (encoder, pair)
CHECKPOINTS: dict[str, Rule] = {
    "checkpoint_dir": Optional(Text(nonempty=True)),
    "checkpoint_every": Integer(min=0),
    "resume": Flag(),
}


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

    # what each field may be (docsort.models.params), checked by ``Classifier.check``; a
    # subclass adds the rules of its own fields: ``{**FineTuneArgs.param_rules, ...}``
    param_rules: ClassVar[dict[str, Rule]] = {
        "base": Text(nonempty=True),
        "pooling": Choice(*POOLINGS),
        "max_length": Integer(min=8),
        "lora": Flag(),
        "lora_r": Integer(min=1),
        "lora_alpha": POSITIVE,
        "lora_dropout": SHARE,
        "lora_target_modules": Optional(Items(Text(nonempty=True), min_length=1)),
        "lr": Optional(POSITIVE),
        "weight_decay": Number(min=0),
        "warmup_ratio": SHARE,
        "schedule": Choice(*SCHEDULES),
        "batch_size": Integer(min=1),
        "epochs": Integer(min=1),
        "patience": Integer(min=1),
        "max_grad_norm": Optional(POSITIVE),
        "eval_batch_size": Integer(min=1),
        "device": DEVICE,
        "seed": SEED,
    }


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

    @classmethod
    def rules(cls) -> dict[str, Rule]:
        """The parameter rules the arguments dataclass declares beside its fields."""
        return cls.Args.param_rules


def requirement(kind: str) -> Callable[[bool, str], None]:
    """``need(ok, message)``: a one-line error naming the kind when a parameter is wrong."""

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise DocsortError(f"{kind} {message}")

    return need


def check_finetune_params(model: Any, kind: str) -> Callable[[bool, str], None]:
    """The checks of values that depend on each other, shared by the ``encoder``, ``dual`` and
    ``pair`` kinds (each value alone is checked by ``FineTuneArgs.param_rules``); returns
    ``need`` for the kind's own checks."""
    need = requirement(kind)
    if "checkpoint_dir" in model.param_names():
        need(not model.resume or model.checkpoint_dir, "resume=True needs a checkpoint_dir")
    return need


def default_lr(lr: float | None, lora: bool, full: float = 5e-5) -> float:
    """LoRA's few weights need a larger step than a full fine-tune of every weight."""
    if lr is not None:
        return lr
    return 5e-4 if lora else full

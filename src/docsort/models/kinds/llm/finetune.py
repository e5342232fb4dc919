"""Instruction tuning of a local causal LM as a classifier: "classification as next-token
prediction" (seed 001), with LoRA adapters.

Each training row becomes the very prompt the ``llm`` kind scores at predict time, followed by
its label's answer (the name or the letter, tokenised as it follows the prompt); the loss is
the causal-LM cross-entropy on the answer tokens only. So nothing about prediction changes: the
tuned model still scores every label's answer by log-likelihood, giving the same probabilities,
calibration and cascade routing as zero-shot. Batches hold prompts of similar length, padded on
the left so every answer ends the sequence and only the last few positions need the vocabulary
projection (a fifth of a small LM's compute per token). The loop, early stopping on validation
accuracy and the optimiser are the encoder kinds' (``nn.training``).

On CUDA (``device: auto``) the same loop trains there in fp32. QLoRA (a 4-bit base through
bitsandbytes) is not implemented: this project has no GPU to check it on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from docsort.errors import DocsortError
from docsort.io import atomic_path, write_json

if TYPE_CHECKING:
    import torch
    from torch import nn

    from docsort.models.kinds.llm.hf_backend import TransformersBackend

ADAPTER_WEIGHTS = "adapter.safetensors"
ADAPTER_CONFIG = "adapter.json"
MAX_GRAD_NORM = 1.0  # gradient clipping, as the encoder kinds do by default


@dataclass
class TuneArgs:
    """How the ``llm`` kind's ``finetune: lora`` trains (the kind's parameters of these names)."""

    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: tuple[str, ...] | None = None  # default: every linear layer in blocks
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    epochs: int = 2
    batch_size: int = 4
    patience: int = 1
    gradient_checkpointing: bool = False
    seed: int = 0


@dataclass
class Example:
    """One training row: the prompt's tokens and its label's answer tokens after them."""

    prompt: list[int]
    answer: list[int]


@dataclass
class Adapter:
    """A trained LoRA adapter: its settings and weights, saved in the model directory (so a
    model is the base's alias plus a few MB) and merged into the base weights on load."""

    r: int
    alpha: int
    dropout: float
    target_modules: list[str]
    weights: dict[str, torch.Tensor]

    def wrap(self, model: nn.Module, base: str) -> nn.Module:
        """``model`` with fresh (or, once loaded, these) LoRA adapters on its targets."""
        from docsort.models.nn.training import add_lora

        return add_lora(
            model,
            r=self.r,
            alpha=self.alpha,
            dropout=self.dropout,
            targets=self.target_modules,
            what="llm lora_target_modules",
            base=base,
            task="CAUSAL_LM",
        )

    def merged_into(self, model: nn.Module) -> nn.Module:
        """``model`` with this adapter's low-rank updates added to its weights."""
        from peft import set_peft_model_state_dict

        wrapped = self.wrap(model, "llm adapter")
        result = set_peft_model_state_dict(wrapped, self.weights)
        if getattr(result, "unexpected_keys", None):
            raise DocsortError(
                f"the saved LoRA adapter does not fit this base model "
                f"(e.g. {result.unexpected_keys[0]!r}); train it again on this base"
            )
        return wrapped.merge_and_unload()

    def plus(self, other: Adapter) -> Adapter:
        """One adapter equal to this one and ``other`` applied together (``other`` trained on
        this one merged in): ``s1*B1@A1 + s2*B2@A2 = [s1*B1, s2*B2] @ [A1; A2]``, of rank
        r1 + r2 at scaling 1 (``nn/lora_stack.py`` does the same for peft modules)."""
        if sorted(self.target_modules) != sorted(other.target_modules):
            raise DocsortError("the two LoRA adapters target different modules")
        import torch

        weights = {}
        for key, a1 in self.weights.items():
            if ".lora_A." not in key:
                continue
            b_key = key.replace(".lora_A.", ".lora_B.")
            a2, b1, b2 = other.weights[key], self.weights[b_key], other.weights[b_key]
            weights[key] = torch.cat([a1, a2], dim=0)
            weights[b_key] = torch.cat([self.scaling * b1, other.scaling * b2], dim=1)
        rank = self.r + other.r
        return Adapter(rank, rank, self.dropout, list(self.target_modules), weights)

    @property
    def scaling(self) -> float:
        return self.alpha / self.r

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        with atomic_path(directory / ADAPTER_WEIGHTS) as tmp:
            save_file({k: v.contiguous() for k, v in self.weights.items()}, str(tmp))
        settings = {k: v for k, v in asdict(self).items() if k != "weights"}
        write_json(directory / ADAPTER_CONFIG, settings)

    @classmethod
    def load(cls, directory: Path) -> Adapter | None:
        """The adapter saved in ``directory``, or None (a zero-shot model)."""
        import json

        config = directory / ADAPTER_CONFIG
        if not config.is_file():
            return None
        weights = directory / ADAPTER_WEIGHTS
        if not weights.is_file():
            raise DocsortError(f"{directory}: {ADAPTER_WEIGHTS} is missing; save the model again")
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(weights))
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise DocsortError(f"{weights}: not a readable adapter ({exc})") from None
        return cls(**json.loads(config.read_text(encoding="utf-8")), weights=tensors)


def finetune(
    backend: TransformersBackend,
    base: str,
    examples: Sequence[Example],
    args: TuneArgs,
    evaluate: Callable[[], float] | None,
) -> tuple[Adapter, dict[str, Any]]:
    """Train LoRA adapters on ``examples``; the backend's model ends with the best epoch's
    adapter merged in. Returns the adapter (to save) and the training history."""
    import torch

    from docsort.models.nn import training

    if not examples:
        raise DocsortError("llm finetune needs training rows")
    training.seed_everything(args.seed)
    model = backend.model
    targets = list(args.lora_target_modules or training.lora_targets(model))
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()  # the frozen embeddings must pass gradients on
    adapter = Adapter(args.lora_r, args.lora_alpha, args.lora_dropout, targets, weights={})
    net = adapter.wrap(model, base)
    optimizer, scheduler = training.adamw_with_warmup(
        net,
        [],
        lr=args.lr,
        head_lr=args.lr,
        weight_decay=args.weight_decay,
        schedule="linear",
        warmup_ratio=args.warmup_ratio,
        steps=args.epochs * -(-len(examples) // args.batch_size),
    )
    lengths = np.array([len(e.prompt) + len(e.answer) for e in examples])
    pad = backend.tokenizer.pad_token_id
    pad = pad if pad is not None else backend.tokenizer.eos_token_id

    def batches(epoch: int) -> list[np.ndarray]:
        return training.epoch_batches(lengths, args.batch_size, args.seed, epoch, True)

    def loss_of(rows: np.ndarray) -> torch.Tensor:
        return answer_loss(net, [examples[i] for i in rows], pad, backend.device)

    def scored() -> float:
        net.eval()
        backend.forget_prompts()  # the cached prefix was computed with older weights
        return evaluate() if evaluate is not None else 0.0

    settings = training.LoopSettings(
        epochs=args.epochs,
        patience=args.patience,
        max_grad_norm=MAX_GRAD_NORM,
        checkpoint_dir=None,
        checkpoint_every=0,
        resume=False,
        run_id="",
        metric="accuracy",
    )
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    result = training.train_loop(
        net, optimizer, scheduler, batches, loss_of, scored if evaluate else None, settings, scaler
    )
    from peft import get_peft_model_state_dict

    adapter.weights = {
        k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(net).items()
    }
    if args.gradient_checkpointing:
        model.gradient_checkpointing_disable()
    backend.model = net.merge_and_unload().eval()
    backend.forget_prompts()
    history = {"epochs": result.history, "best_epoch": result.best_epoch, "steps": result.steps}
    return adapter, history


def answer_loss(
    model: nn.Module, rows: Sequence[Example], pad: int, device: torch.device
) -> torch.Tensor:
    """Mean cross-entropy of the answer tokens given their prompts, one padded batch.

    Left padding puts every answer at the end, so the logits of the last ``keep`` positions
    are all that is needed; position ids skip the padding, so a padded row reads exactly as it
    does alone at predict time."""
    import torch
    import torch.nn.functional as F

    width = max(len(r.prompt) + len(r.answer) for r in rows)
    keep = max(len(r.answer) for r in rows) + 1
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.full((len(rows), keep), -100, dtype=torch.long)
    for b, row in enumerate(rows):
        sequence = row.prompt + row.answer
        ids[b, width - len(sequence) :] = torch.tensor(sequence)
        mask[b, width - len(sequence) :] = 1
        # the logit at position p predicts token p + 1: the answer's tokens are predicted by
        # the kept positions keep-1-len(answer) .. keep-2
        targets[b, keep - 1 - len(row.answer) : keep - 1] = torch.tensor(row.answer)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        logits_to_keep=keep,
        use_cache=False,
    )
    logits = out.logits.float()
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.to(device).reshape(-1), ignore_index=-100
    )

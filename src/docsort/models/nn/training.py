"""The PyTorch side of the ``encoder`` kind: the network, batching, one training loop, checkpoints.

Kept apart from ``encoder.py`` so that ``import docsort.models`` does not import torch: the
tfidf user and the CLI's start-up should not pay for it.
"""

from __future__ import annotations

import contextlib
import random
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from docsort.errors import DocsortError
from docsort.io import atomic_path
from docsort.models.nn import distributed
from docsort.models.nn.hooks import current_hook
from docsort.progress import progress_bar

LAST = "last.pt"  # the latest state: weights, optimizer, scheduler, RNG, counters
BEST = "best.pt"  # the trainable weights of the best validation epoch so far


def resolve_device(device: str) -> torch.device:
    """``auto``: the GPU when torch sees one, else the CPU; a CUDA device asked for must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise DocsortError(f"device {device!r} asked for, but torch sees no CUDA GPU")
    return torch.device(device)


# -- the network --------------------------------------------------------------------------
class EncoderNet(nn.Module):
    """Encoder → pooling over the last hidden state → dropout → linear head."""

    def __init__(
        self, encoder: nn.Module, hidden: int, n_labels: int, pooling: str, dropout: float
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_labels)

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        return pooled(self.encoder, batch, self.pooling)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.head(self.dropout(self.embed(batch)))


def pooled(encoder: nn.Module, batch: dict[str, Tensor], pooling: str) -> Tensor:
    """One vector per row: the CLS token, or the mean of the real (unpadded) tokens."""
    hidden = encoder(**batch).last_hidden_state
    if pooling == "cls":
        return hidden[:, 0]
    # sentence models (minilm, mpnet) were trained on the mean of the real tokens
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' load reports, weight-loading bars (e.g. the unused pooler) and the
    deprecation warning peft 0.21 triggers in transformers 5: noise for a docsort user."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_encoder(path: str) -> nn.Module:
    """The bare encoder in float32, without the pooler that mean pooling never uses."""
    from transformers import AutoModel

    with quiet_transformers():
        try:
            return AutoModel.from_pretrained(path, add_pooling_layer=False, dtype=torch.float32)
        except TypeError:  # an architecture without a pooler option
            return AutoModel.from_pretrained(path, dtype=torch.float32)


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks, found by its length (works through a peft wrapper)."""
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    raise DocsortError(f"cannot find the {n_layers} transformer layers of this encoder to freeze")


def lora_targets(model: nn.Module) -> list[str]:
    """Names of the linear layers inside the transformer blocks, for LoRA when none are given:
    ``query/key/value/dense`` in BERT-like models (minilm), ``q/k/v/o/dense`` in MPNet."""
    names = {
        name.split(".")[-1]
        for name, module in transformer_layers(model).named_modules()
        if isinstance(module, nn.Linear)
    }
    return sorted(names)


def add_lora(
    encoder: nn.Module,
    *,
    r: int,
    alpha: int,
    dropout: float,
    targets: Sequence[str] | None,
    what: str,
    base: str,
    task: str = "FEATURE_EXTRACTION",
) -> nn.Module:
    """The encoder wrapped with LoRA adapters on ``targets`` (default: every linear layer of
    the transformer blocks); a target the encoder lacks is a user error naming its layers.
    ``what`` names the setting in that message (e.g. "encoder lora_target_modules"); ``task``
    is peft's (``CAUSAL_LM`` for a generative LM, whose forward takes ``logits_to_keep``)."""
    from peft import LoraConfig, TaskType, get_peft_model

    chosen = list(targets or lora_targets(encoder))
    names = [name for name, _ in encoder.named_modules()]
    absent = [t for t in chosen if not any(n == t or n.endswith("." + t) for n in names)]
    if absent:
        linear = sorted(
            {n.split(".")[-1] for n, m in encoder.named_modules() if isinstance(m, nn.Linear)}
        )
        raise DocsortError(
            f"{what}: {absent[0]!r} is not a module of {base!r}; "
            f"its linear layers are named {', '.join(linear)}"
        )
    config = LoraConfig(
        task_type=TaskType[task],
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=chosen,
    )
    with quiet_transformers():
        return get_peft_model(encoder, config)


def adamw_with_warmup(
    encoder: nn.Module,
    head: Sequence[nn.Parameter],
    *,
    lr: float,
    head_lr: float,
    weight_decay: float,
    schedule: str,
    warmup_ratio: float,
    steps: int,
    extra: Sequence[tuple[Sequence[nn.Parameter], float]] = (),
) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW in three groups: the encoder with and without weight decay, the head with its
    own, larger learning rate; warm-up then linear or cosine decay over all ``steps``.
    ``extra``: more (parameters, learning rate) groups, without weight decay."""
    from transformers import get_scheduler

    decay, no_decay = [], []
    for p in encoder.parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)  # biases and LayerNorms
    groups = [
        {"params": decay, "lr": lr, "weight_decay": weight_decay},
        {"params": no_decay, "lr": lr, "weight_decay": 0.0},
        {"params": [p for p in head if p.requires_grad], "lr": head_lr, "weight_decay": 0.0},
        *({"params": [p for p in ps if p.requires_grad], "lr": r, "weight_decay": 0.0}
          for ps, r in extra),
    ]  # fmt: skip
    groups = [g for g in groups if g["params"]]
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, fused=_can_fuse(params))
    scheduler = get_scheduler(
        schedule,
        optimizer,
        num_warmup_steps=int(warmup_ratio * steps),
        num_training_steps=steps,
    )
    return optimizer, scheduler


def _can_fuse(params: Sequence[torch.Tensor]) -> bool:
    """The fused AdamW kernel: the same update as the default per-tensor loop, which on CPU
    took a large share of each step (an `mpnet` pair step, 2 cores: 19 % less time fused).
    It needs every parameter on one CPU or CUDA device in a floating-point type."""
    devices = {p.device.type for p in params}
    return (
        len(devices) == 1
        and devices <= {"cpu", "cuda"}
        and all(p.is_floating_point() for p in params)
    )


def embeddings_module(model: nn.Module) -> nn.Module:
    for name, module in model.named_modules():
        if name.split(".")[-1] == "embeddings":
            return module
    return model.get_input_embeddings()


# -- batching -----------------------------------------------------------------------------
class Tokenized:
    """Texts tokenized once, unpadded; each batch is padded to its own longest row."""

    def __init__(
        self,
        tokenizer: Any,
        texts: Sequence[str],
        max_length: int,
        pair_separator: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        if pair_separator:
            first, second = split_pairs(texts, pair_separator)
            # longest_first trims the longer segment: a title survives a long abstract
            encoding = tokenizer(first, second, truncation="longest_first", max_length=max_length)
        else:
            encoding = tokenizer(list(texts), truncation=True, max_length=max_length)
        self.encoding = dict(encoding)
        self.lengths = np.array([len(ids) for ids in self.encoding["input_ids"]], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, rows: np.ndarray, device: torch.device) -> dict[str, Tensor]:
        features = {key: [values[i] for i in rows] for key, values in self.encoding.items()}
        padded = self.tokenizer.pad(features, return_tensors="pt")
        return {key: value.to(device) for key, value in padded.items()}


def split_pairs(texts: Sequence[str], separator: str) -> tuple[list[str], list[str]]:
    """Each text cut at the first ``separator`` into the tokenizer's two segments (e.g. title
    and abstract joined one per line); a text without it has an empty second segment."""
    first, second = [], []
    for text in texts:
        head, _, tail = text.partition(separator)
        first.append(head.strip() or tail.strip())
        second.append(tail.strip() if head.strip() else "")
    return first, second


def epoch_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, group_by_length: bool
) -> list[np.ndarray]:
    """The batches of one epoch, a function of (seed, epoch) only, so a resumed run can skip
    the batches it already did. Grouping similar lengths (within shuffled chunks of 50 batches)
    cuts the padding that dominates CPU time on short texts."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if group_by_length:
        chunk = 50 * batch_size
        order = np.concatenate(
            [
                part[np.argsort(-lengths[part], kind="stable")]
                for part in (order[i : i + chunk] for i in range(0, len(order), chunk))
            ]
        )
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))] if group_by_length else batches


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA only: CPU autocast is slower than fp32 for these models."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


@torch.inference_mode()
def predict_logits(
    net: EncoderNet,
    data: Tokenized,
    batch_size: int,
    device: torch.device,
    description: str = "",
    embed: bool = False,
) -> np.ndarray:
    """Logits (or pooled embeddings) in the rows' order, computed longest-first so that each
    batch carries little padding: twice the speed of unsorted batches on a CPU."""
    net.eval()
    run = net.embed if embed else net
    out: np.ndarray | None = None
    order = np.argsort(-data.lengths, kind="stable")
    with progress_bar(description or "predicting", total=len(data) if description else 0) as bar:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            with autocast(device):
                values = run(data.batch(rows, device)).float().cpu().numpy()
            if out is None:
                out = np.zeros((len(data), values.shape[1]), dtype=np.float32)
            out[rows] = values
            bar(len(rows))
    return out if out is not None else np.zeros((0, net.head.out_features), dtype=np.float32)


# -- reproducibility and checkpoints -----------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [name, keys.tolist(), pos, has_gauss, gauss],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate(_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value: Any) -> Any:
    """``random.setstate`` wants the tuples that a checkpoint may hand back as lists."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def trainable_state(net: nn.Module) -> dict[str, Tensor]:
    """Only what training changes: the whole model for full fine-tuning, adapter + head for
    LoRA. Frozen weights come from the base again, which keeps LoRA checkpoints small."""
    return {name: p.detach().cpu().clone() for name, p in net.named_parameters() if p.requires_grad}


def _save(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise DocsortError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}); "
            "delete it or train with resume=False"
        ) from None


def checkpoint_step(directory: str | Path) -> int | None:
    """The optimizer step of the last checkpoint in ``directory`` (None when there is none)."""
    path = Path(directory) / LAST
    return int(_load(path)["step"]) if path.is_file() else None


# -- the training loop --------------------------------------------------------------------
@dataclass
class LoopSettings:
    epochs: int
    patience: int
    max_grad_norm: float | None
    checkpoint_dir: Path | None
    checkpoint_every: int
    resume: bool
    run_id: str  # what was trained on what: a checkpoint of another run is refused
    metric: str = "macro-F1"


@dataclass
class LoopResult:
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    resumed_from_step: int | None = None
    best_score: float = float("-inf")
    best_epoch: int = 0


def train_loop(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batches: Callable[[int], list[np.ndarray]],
    loss_of: Callable[[np.ndarray], Tensor],
    evaluate: Callable[[], float] | None,
    settings: LoopSettings,
    scaler: torch.amp.GradScaler,
) -> LoopResult:
    """Epochs of AdamW steps with clipping; validate after each epoch; stop after ``patience``
    epochs without a better score; end with the best epoch's weights loaded into ``net``.
    Without ``evaluate`` (no validation rows) every epoch runs and the last one is kept.

    With a ``checkpoint_dir`` the state is written atomically every ``checkpoint_every`` steps
    and at each epoch end, so a killed run loses at most those steps when resumed.
    """
    result = LoopResult()
    params = [p for p in net.parameters() if p.requires_grad]
    epoch, skip, bad_epochs, loss_sum, loss_count, done = 0, 0, 0, 0.0, 0, False
    best_weights: dict[str, Tensor] | None = None
    folder = settings.checkpoint_dir
    # seconds already spent in the current epoch by an earlier, interrupted process: history
    # then reports an epoch's full training time even when it spanned a resume
    carried_seconds = 0.0
    started = time.perf_counter()

    def save(next_epoch: int, next_batch: int, finished: bool) -> None:
        if folder is None:
            return
        state = {
            "run_id": settings.run_id,
            "epoch": next_epoch,
            "batch": next_batch,
            "step": result.steps,
            "done": finished,
            "weights": trainable_state(net),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": _rng_state(),
            "history": result.history,
            "best_score": result.best_score,
            "best_epoch": result.best_epoch,
            "bad_epochs": bad_epochs,
            "loss_sum": loss_sum,
            "loss_count": loss_count,
            "epoch_seconds": 0.0 if next_batch == 0 else time.perf_counter() - started,
        }
        _save(folder / LAST, state)

    hook = current_hook()
    if folder is not None and settings.resume and (folder / LAST).is_file():
        state = _load(folder / LAST)
        adopting = hook is not None and hook.adopt and state["run_id"] != settings.run_id
        if state["run_id"] != settings.run_id and not adopting:
            raise DocsortError(
                f"the checkpoint in {folder} belongs to another run (other parameters or "
                "data); use another checkpoint_dir or resume=False"
            )
        if adopting:
            _adopt(net, optimizer, scheduler, state)
        else:
            _load_weights(net, state["weights"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        epoch, skip, done = state["epoch"], state["batch"], state["done"]
        result.steps = result.resumed_from_step = state["step"]
        result.history = list(state["history"])
        result.best_score, result.best_epoch = state["best_score"], state["best_epoch"]
        bad_epochs, loss_sum, loss_count = (
            state["bad_epochs"],
            state["loss_sum"],
            state["loss_count"],
        )
        carried_seconds = state.get("epoch_seconds", 0.0)
        if (folder / BEST).is_file():
            best = _load(folder / BEST)
            best_weights, result.best_score = best["weights"], best["score"]
            result.best_epoch = best["epoch"]
            # best.pt may still be a donor's (a PBT exploit that has not improved on it yet)
            # with another LoRA rank: resized to this net; unchanged whenever the shapes fit
            best_weights = _fitted_weights(net, best_weights)

    per_epoch = len(batches(0))
    step = distributed.stepper(net, loss_of)  # loss_of itself, or this worker's share in DDP
    last = result.history[-1]["valid_score"] if result.history else None
    shown = f" {settings.metric} {last:.3f}" if last is not None else ""
    total = settings.epochs * per_epoch
    with progress_bar("training", total=total, completed=result.steps) as advance:
        while not done and epoch < settings.epochs:
            started = time.perf_counter() - carried_seconds
            carried_seconds = 0.0
            net.train()
            plan = batches(epoch)
            for b in range(skip, len(plan)):
                loss = step(epoch, plan[b])
                scaler.scale(loss).backward()
                if settings.max_grad_norm:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                result.steps += 1
                loss_sum += loss.item()
                loss_count += 1
                label = f"epoch {epoch + 1}/{settings.epochs} loss {loss_sum / loss_count:.3f}"
                advance(1, label + shown)
                every = settings.checkpoint_every
                if every and result.steps % every == 0 and b + 1 < len(plan):
                    save(epoch, b + 1, finished=False)
            skip = 0
            score = distributed.agree(evaluate() if evaluate is not None else None)
            shown = f" {settings.metric} {score:.3f}" if score is not None else ""
            result.history.append(
                {
                    "epoch": epoch + 1,
                    "step": result.steps,
                    "train_loss": loss_sum / max(loss_count, 1),
                    "valid_score": score,
                    "seconds": time.perf_counter() - started,
                }
            )
            loss_sum, loss_count = 0.0, 0
            if score is None:  # nothing to choose by: the latest epoch is the model
                result.best_epoch = epoch + 1
            elif score > result.best_score:
                result.best_score, result.best_epoch, bad_epochs = score, epoch + 1, 0
                best_weights = trainable_state(net)
                if folder is not None:
                    _save(
                        folder / BEST, {"weights": best_weights, "score": score, "epoch": epoch + 1}
                    )
            else:
                bad_epochs += 1
            epoch += 1
            done = bad_epochs >= settings.patience or epoch >= settings.epochs
            save(epoch, 0, finished=done)
            if hook is not None and hook.on_epoch is not None:  # may raise: a pruned trial
                hook.on_epoch(dict(result.history[-1]), settings.metric, folder)
    if best_weights is not None:
        _load_weights(net, best_weights)
    return result


def _adopt(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: dict[str, Any],
) -> None:
    """Continue from another run's checkpoint (a PBT exploit): its weights (a LoRA adapter of
    another rank resized, ``_fitted_weights``), its optimiser moments when every shape matches,
    its step in the schedule; this run's own learning rates, weight decay and warm-up, which
    the freshly built optimiser and scheduler hold, are put back over the loaded ones."""
    own = [dict(group) for group in optimizer.param_groups]
    own_base = list(getattr(scheduler, "base_lrs", []))
    weights = _fitted_weights(net, state["weights"])
    resized = any(weights[k] is not state["weights"][k] for k in weights)
    _load_weights(net, weights)
    if not resized and len(state["optimizer"]["param_groups"]) == len(own):
        optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    for group, mine in zip(optimizer.param_groups, own, strict=True):
        for key in ("initial_lr", "weight_decay", "betas", "eps"):
            if key in mine:
                group[key] = mine[key]
    if own_base:
        scheduler.base_lrs = own_base
    lambdas = getattr(scheduler, "lr_lambdas", None)
    for k, group in enumerate(optimizer.param_groups):
        base = own_base[k] if own_base else group.get("initial_lr", group["lr"])
        group["lr"] = base * lambdas[k](scheduler.last_epoch) if lambdas else base
    if hasattr(scheduler, "_last_lr"):
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def _fitted_weights(net: nn.Module, weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """``weights`` with each LoRA pair whose rank differs from ``net``'s resized to it, keeping
    the adapter's update ``B @ A`` (times the rank ratio, as peft scales by alpha / r): a
    smaller rank keeps the largest singular directions; a larger one keeps the update exactly
    and adds directions from this run's own initialisation (A random, B zero, as LoRA starts),
    so they can learn. Every other tensor is passed through as it is."""
    params = dict(net.named_parameters())
    out = dict(weights)
    for name, a in weights.items():
        if ".lora_A." not in name or name not in params or params[name].shape == a.shape:
            continue
        b_name = name.replace(".lora_A.", ".lora_B.")
        if b_name not in weights or b_name not in params:
            continue
        b = weights[b_name]
        old_r, new_r = a.shape[0], params[name].shape[0]
        update = (b.double() @ a.double()) * (new_r / old_r)
        u, s, vh = torch.linalg.svd(update, full_matrices=False)
        keep = min(new_r, old_r, len(s))
        root = s[:keep].sqrt()
        new_a = params[name].detach().cpu().clone()
        new_b = torch.zeros_like(params[b_name].detach().cpu())
        new_a[:keep] = (root[:, None] * vh[:keep]).to(new_a.dtype)
        new_b[:, :keep] = (u[:, :keep] * root[None, :]).to(new_b.dtype)
        out[name], out[b_name] = new_a, new_b
    return out


def _load_weights(net: nn.Module, weights: dict[str, Tensor]) -> None:
    missing = set(weights) - {name for name, _ in net.named_parameters()}
    if missing:
        raise DocsortError(f"checkpoint weights do not fit this model (e.g. {sorted(missing)[0]})")
    net.load_state_dict(weights, strict=False)

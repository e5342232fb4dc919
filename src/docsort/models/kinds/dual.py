"""A dual encoder: documents and label *descriptions* embedded by one shared encoder.

The score of a label is the scaled cosine of the two vectors: ``sigmoid(scale·cos + bias)``
(multi-label) or ``softmax(scale·cos)`` over the labels (single-label). Because labels are text
too, the model works before any training (zero-shot), scores a label added at predict time
without retraining (``with_labels``), and trains on few or many rows: BCE on the scaled cosine
against hard and optional soft targets, a multiple-negatives ranking term (softmax over the
labels), and an optional contrastive margin term; the label vectors are recomputed from their
texts at each step, so the encoder learns from both sides. torch is imported only when needed.

After training, each label's vector can also lean toward its *prototype*, the unit mean of its
training rows as the trained encoder embeds them: ``unit(description + w·prototype)``
(``prototype_weight``; "auto" is 2 in few-shot mode, where a description alone is a weak class
vector, else 0). A label added later is read from its description only.

A ``base`` naming a torch-free embedding backend (``nomic``, ``e5-small-q4``,
``use-multilingual``: ``models/embedders/``) reads documents and label descriptions with the
prompts the backend names for them (``dual_roles``: e5 ``passage:`` / ``query:``, nomic
``classification:`` for both). Such a base is frozen: only ``zero_shot: true``
applies (validation rows still fit scale, bias and thresholds); fine-tuning is refused.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from docsort.data.dataset import Dataset, stratified_split
from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.models.base import (
    Capabilities,
    Classifier,
    check_labels_known,
    corrupt_model,
    register,
)
from docsort.models.embedders import dual_roles, is_embedder, load_embedder
from docsort.models.hub import resolve
from docsort.models.kinds.encoder import EncoderClassifier
from docsort.models.nn.arguments import (
    POSITIVE,
    ArgumentsInit,
    FineTuneArgs,
    check_finetune_params,
    default_lr,
)
from docsort.models.params import (
    AnyOf,
    Choice,
    Flag,
    Integer,
    Mapping,
    Number,
    Optional,
    Rule,
    Text,
)
from docsort.models.thresholds import limit_decisions, tune_thresholds

if TYPE_CHECKING:
    import torch

ENCODER_DIR = "encoder"  # trained in full: the encoder + tokenizer
ADAPTER_DIR = "adapter"  # trained with LoRA: the adapter; the base is resolved again at load
STATE = "dual.json"  # scale, bias, default threshold
VECTORS = "label_vectors.npy"  # the label vectors the saved probabilities were computed with
PROTOTYPES = "prototypes.npy"  # each label's mean training-row vector, kept for with_labels
AUTO_PROTOTYPE_WEIGHT = 2.0  # few-shot default (measured: docs/benchmarks.md, dual encoder)
FEW_SHOT_ROWS = 64  # "auto": at most this many rows per label (median) is few-shot


@dataclass
class DualArgs(FineTuneArgs):
    """The ``dual`` kind's parameters: the shared fine-tuning arguments and its own."""

    max_length: int = 256  # the shared default differs
    label_max_length: int = 64
    descriptions: dict[str, str | list[str]] | None = None
    zero_shot: bool = False
    few_shot: bool | str = "auto"
    prototype_weight: float | str = "auto"
    scale: float = 40.0
    bias: float = -5.0
    learn_scale: bool = True
    refit_scale: bool = True
    bce_weight: float = 1.0
    ranking_weight: float = 1.0
    in_batch_negatives: bool = False
    margin_weight: float = 0.0
    margin: float = 0.3
    soft_column: str = "soft"
    scale_lr: float = 0.01
    epochs: int = 4  # the shared default differs
    step_labels: int = 32
    top_k: int | None = None
    at_least_one: bool = False
    group_by_length: bool = True
    threads: int | None = None

    param_rules: ClassVar[dict[str, Rule]] = {
        **FineTuneArgs.param_rules,
        "label_max_length": Integer(min=8),
        "descriptions": Optional(Mapping()),
        "zero_shot": Flag(),
        "few_shot": Choice(True, False, "auto"),
        "prototype_weight": AnyOf(Choice("auto"), Number(min=0)),
        "scale": POSITIVE,
        "bias": Number(),
        "learn_scale": Flag(),
        "refit_scale": Flag(),
        "bce_weight": Number(min=0),
        "ranking_weight": Number(min=0),
        "in_batch_negatives": Flag(),
        "margin_weight": Number(min=0),
        "margin": Number(min=-1, max=1, exclusive="max"),
        "soft_column": Text(nonempty=True),
        "scale_lr": POSITIVE,
        "step_labels": Integer(min=2),
        "top_k": Optional(Integer(min=1)),
        "at_least_one": Flag(),
        "group_by_length": Flag(),
        "threads": Optional(Integer(min=1)),
    }


@register("dual")
class DualEncoderClassifier(ArgumentsInit, Classifier):
    """Shared encoder over documents and label descriptions; scaled cosine as the score.

    The zero-shot ``scale`` (40) and ``bias`` (-5) were set from a log-loss fit on 200 BBC
    *training* rows with ``minilm`` (softmax scale 47; per-label sigmoid 19.5 / -3.2): cosines
    of a document to its label's description sit near 0.17, to the others near 0.03. Training
    learns both, and validation rows refit them (``refit_scale``)."""

    Args: ClassVar[type[FineTuneArgs]] = DualArgs

    # ``with_labels`` scores labels never trained on; ``adapt`` re-aims labels on the input
    tags: ClassVar[Capabilities] = Capabilities(
        scores_new_labels=True,
        adapts=True,
        trains_without_rows=True,
        exportable=True,
        reward_tunes=True,
    )
    runtime_params: ClassVar[dict[str, str]] = {
        "device": "device",
        "eval_batch_size": "eval_batch_size",
        "threads": "threads",  # a torch-free backend's engine threads (--threads)
    }

    # reused as they are: the device rule and LoRA on every linear layer of the blocks
    _device = EncoderClassifier._device
    _add_lora = EncoderClassifier._add_lora

    def tokens_read(self) -> int | None:
        if self._backend():
            return self.max_length  # the backends cut each text themselves
        return self.max_length - 2  # [CLS] and [SEP] take two of max_length

    def _backend(self) -> bool:
        """Whether ``base`` is a frozen embedding backend rather than a torch encoder."""
        return is_embedder(self.base)

    @property
    def encoder_lr(self) -> float:
        return default_lr(self.lr, self.lora, full=3e-5)

    def _check_params(self) -> None:
        # each value alone: DualArgs.param_rules; here the ones that depend on each other
        need = check_finetune_params(self, "dual")
        need(
            self.bce_weight + self.ranking_weight + self.margin_weight > 0,
            "loss weights (bce_weight, ranking_weight, margin_weight) must not all be 0",
        )
        need(
            not self._backend() or (self.zero_shot and not self.lora),
            f"base {self.base!r} is a frozen embedding backend (no torch): its encoder cannot be "
            "fine-tuned; set zero_shot: true (label descriptions only; validation rows still fit "
            "scale and bias), or train the embed kind on it",
        )

    # -- label texts --------------------------------------------------------------------
    def _label_set(self, labels: LabelSet) -> LabelSet:
        """``labels`` with the ``descriptions`` parameter on top (for the labels it names)."""
        extra = {k: v for k, v in (self.descriptions or {}).items() if k in labels}
        return labels.with_descriptions(extra) if extra else labels

    def _label_texts(self, labels: LabelSet) -> tuple[list[str], np.ndarray]:
        """Every description of every label, flattened, and the label each one belongs to.

        A label without a description is read as its name, with ``_`` and ``-`` as spaces
        (``card_arrival`` → ``card arrival``). (Adding the name as one more text to average
        lowered zero-shot macro-F1 on bbc and arxiv8, so descriptions are read as given.)"""
        texts: list[str] = []
        owner: list[int] = []
        for j, name in enumerate(labels.names):
            readable = name.replace("_", " ").replace("-", " ").strip() or name
            own = [readable if t == name else t for t in labels.description_texts(name)]
            texts.extend(own)
            owner.extend([j] * len(own))
        return texts, np.asarray(owner, dtype=np.int64)

    # -- building blocks ----------------------------------------------------------------
    def _build(self, path: str) -> Any:
        from docsort.models.nn.training import load_encoder

        try:
            encoder = load_encoder(path)
        except (OSError, ValueError) as exc:
            raise DocsortError(
                f"cannot load the encoder {self.base!r} from {path} "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            ) from None
        return _dual_net(encoder, self.pooling, self.scale, self.bias, self.learn_scale)

    def _open(self, path: str) -> None:
        from transformers import AutoTokenizer

        from docsort.models.nn.training import quiet_transformers

        with quiet_transformers():
            self.tokenizer_ = AutoTokenizer.from_pretrained(path)

    def _tokenized(self, texts: Sequence[str], max_length: int) -> Any:
        from docsort.models.nn.training import Tokenized

        return Tokenized(self.tokenizer_, texts, max_length)

    def _embed(
        self, texts: Sequence[str], max_length: int, description: str = "", labels: bool = False
    ) -> np.ndarray:
        """Unit vectors of ``texts`` with the current encoder (inference, longest first);
        ``labels``: they are label texts (an embedding backend reads them in its label role)."""
        if self._backend():
            document_role, label_role = dual_roles(self.base)
            return self._embedder().encode(texts, role=label_role if labels else document_role)
        from docsort.models.nn.training import predict_logits

        if len(texts) == 0:
            return np.zeros((0, self.net_.encoder.config.hidden_size), dtype=np.float32)
        rows = self._tokenized(texts, max_length)
        vectors = predict_logits(
            self.net_, rows, self.eval_batch_size, self.device_, description, embed=True
        )
        return _unit(vectors)

    def _embedder(self) -> Any:
        return load_embedder(self.base, max_length=self.max_length, threads=self.threads)

    def _label_vectors(self, labels: LabelSet) -> np.ndarray:
        texts, owner = self._label_texts(labels)
        vectors = self._embed(texts, self.label_max_length, labels=True)
        return _average_rows(vectors, owner, len(labels))

    def _proba(self, cosine: np.ndarray, multi: bool) -> np.ndarray:
        scale, bias = self.scale_, self.bias_
        logits = scale * cosine.astype(np.float64)
        if multi:
            return 1.0 / (1.0 + np.exp(-(logits + bias)))
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    # -- the contract -------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        """Zero-shot it reads labels only: no loop to run on workers. An embedding backend is
        no torch network: it neither exports nor tunes by reward."""
        backend = self._backend()
        return replace(
            self.tags,
            trains_on_workers=not self.zero_shot and not backend,
            exportable=not backend,
            reward_tunes=not backend,
        )

    def fit(self, train: Dataset, valid: Dataset | None = None) -> DualEncoderClassifier:
        """Train on labelled rows; with ``zero_shot`` (or no rows) only the labels are read."""
        self.check()
        self._remember_training(train)
        self.labels_ = self._label_set(train.label_set)
        started = time.perf_counter()
        self.trained_ = False
        if self._backend():
            return self._fit_frozen(train, valid, started)
        self.device_ = self._device()
        path = resolve(self.base)
        self._open(path)
        self.net_ = self._build(path).to(self.device_)
        self.prototypes_: np.ndarray | None = None
        self.prototype_weight_ = 0.0
        rows = train
        self.history_: list[dict[str, float]] = []
        self.thresholds_ = None
        self.default_threshold_ = 0.5
        self.valid_: Dataset | None = None
        if not self.zero_shot and len(train) > 0:
            rows = self._train(train, valid)
        elif valid is not None and valid.labels is not None and len(valid) > 0:
            # zero-shot with labelled validation rows: the encoder stays as it is, but scale,
            # bias and multi-label thresholds are fitted on them
            check_labels_known(self, list(valid.label_counts()), valid.name or "validation data")
            self.valid_ = valid
        self.net_.eval()
        self.scale_ = float(self.net_.log_scale.detach().exp())
        self.bias_ = float(self.net_.bias.detach())
        self.label_vectors_ = self._label_vectors(self.labels_)
        if self.trained_:
            self._lean_on_prototypes(rows)
        if self.valid_ is not None:
            self._fit_on_valid(self.valid_)
        self.valid_ = None
        self.train_seconds_ = time.perf_counter() - started
        return self

    def _fit_frozen(
        self, train: Dataset, valid: Dataset | None, started: float
    ) -> DualEncoderClassifier:
        """Zero-shot on an embedding backend: the label vectors from their descriptions, the
        scale and bias as given, refitted on labelled validation rows if any."""
        self._embedder()  # load (and assemble) it now, so that a missing package fails here
        self.prototypes_ = None
        self.prototype_weight_ = 0.0
        self.history_ = []
        self.thresholds_ = None
        self.default_threshold_ = 0.5
        self.scale_, self.bias_ = float(self.scale), float(self.bias)
        self.label_vectors_ = self._label_vectors(self.labels_)
        if valid is not None and valid.labels is not None and len(valid) > 0:
            check_labels_known(self, list(valid.label_counts()), valid.name or "validation data")
            self._fit_on_valid(valid)
        self.valid_ = None
        self.train_seconds_ = time.perf_counter() - started
        return self

    def _few_shot(self, train: Dataset) -> bool:
        if self.few_shot != "auto":
            return bool(self.few_shot)
        counts = sorted(train.label_counts().values())
        return counts[len(counts) // 2] <= FEW_SHOT_ROWS

    def _lean_on_prototypes(self, rows: Dataset) -> None:
        """Move each label vector toward the unit mean of its training ``rows``."""
        weight = self.prototype_weight
        if weight == "auto":
            weight = AUTO_PROTOTYPE_WEIGHT if self.few_shot_ else 0.0
        self.prototype_weight_ = float(weight)
        if self.prototype_weight_ == 0:
            return
        description = "embedding training rows" if len(rows) >= 1000 else ""
        vectors = self._embed(rows.texts, self.max_length, description)
        hot = _multi_hot(rows.targets(self.labels_), len(self.labels_))
        self.prototypes_ = _unit(hot.T @ vectors)  # a label without rows keeps a zero row
        self.label_vectors_ = self._leaned(self.label_vectors_, self.prototypes_)

    def _leaned(self, described: np.ndarray, prototypes: np.ndarray | None) -> np.ndarray:
        """Label vectors from their descriptions, moved toward their prototypes if any."""
        if prototypes is None:
            return described
        return _unit(described + self.prototype_weight_ * prototypes)

    def _prototypes_for(self, labels: LabelSet) -> np.ndarray | None:
        """The prototypes re-indexed to ``labels``: zero rows for labels never trained on."""
        if self.prototypes_ is None:
            return None
        out = np.zeros((len(labels), self.prototypes_.shape[1]), dtype=np.float32)
        for j, name in enumerate(labels.names):
            if name in self.labels_:
                out[j] = self.prototypes_[self.labels_.index(name)]
        return out

    def _train(self, train: Dataset, valid: Dataset | None) -> Dataset:
        """Fine-tune the shared encoder (full or LoRA) and the scale/bias on labelled rows;
        returns the rows it trained on (without any split off for early stopping)."""
        import torch

        from docsort.models.nn import training

        few_shot = valid is None and self._few_shot(train)
        if valid is None and not few_shot:
            train, valid = stratified_split(train, 0.1, seed=self.seed)
        if valid is not None:
            check_labels_known(self, list(valid.label_counts()), valid.name or "validation data")
        self.few_shot_ = few_shot
        self.valid_ = valid
        training.seed_everything(self.seed)
        multi, n_labels = self.labels_.multi_label, len(self.labels_)
        net, device = self.net_, self.device_
        if self.lora:
            self._add_lora(net)
        net.to(device)
        hard = _multi_hot(train.targets(self.labels_), n_labels)
        soft, has_soft = self._soft_targets(train, hard)
        hard_t = torch.tensor(hard, dtype=torch.float32)
        soft_t = torch.tensor(soft, dtype=torch.float32)
        has_soft_t = torch.tensor(has_soft, dtype=torch.float32)
        docs = self._tokenized(train.texts, self.max_length)
        label_texts, owner = self._label_texts(self.labels_)
        label_rows = self._tokenized(label_texts, self.label_max_length)
        owner_t = torch.tensor(owner, device=device)
        # every label's vector, refreshed for the labels embedded at each step and at each
        # validation; labels beyond ``step_labels`` in a step are read from here (no gradient)
        cache = torch.tensor(self._label_vectors(self.labels_), device=device)
        rng = np.random.default_rng(self.seed)

        def batches(epoch: int) -> list[np.ndarray]:
            return training.epoch_batches(
                docs.lengths, self.batch_size, self.seed, epoch, self.group_by_length
            )

        def label_matrix(rows: np.ndarray) -> torch.Tensor:
            if n_labels <= self.step_labels:
                chosen = np.arange(n_labels)
            else:
                positives = np.flatnonzero(hard[rows].any(axis=0))
                others = np.setdiff1d(np.arange(n_labels), positives)
                room = max(self.step_labels - len(positives), 0)
                chosen = np.union1d(positives, rng.choice(others, min(room, len(others)), False))
            text_rows = np.flatnonzero(np.isin(owner, chosen))
            vectors = torch.nn.functional.normalize(
                net.embed(label_rows.batch(text_rows, device)), dim=-1
            )
            fresh = _average_torch(vectors, owner_t[text_rows], n_labels)[chosen]
            chosen_t = torch.tensor(chosen, device=device)
            cache[chosen_t] = fresh.detach()
            matrix = cache.clone()
            matrix[chosen_t] = fresh
            return matrix

        def loss_of(rows: np.ndarray) -> torch.Tensor:
            with training.autocast(device):
                doc = torch.nn.functional.normalize(net.embed(docs.batch(rows, device)), dim=-1)
                cosine = doc.float() @ label_matrix(rows).float().T
            target = hard_t[rows].to(device)
            return self._loss(
                net, cosine, target, soft_t[rows].to(device), has_soft_t[rows].to(device)
            )

        valid_rows = None if valid is None else self._tokenized(valid.texts, self.max_length)
        y_valid = None if valid is None else _multi_hot(valid.targets(self.labels_), n_labels)
        epochs_done = [0]

        def evaluate() -> float:
            net.eval()
            vectors = torch.tensor(self._label_vectors(self.labels_), device=device)
            cache.copy_(vectors)
            if valid_rows is None:  # few-shot: no held-out rows, the last epoch is kept
                epochs_done[0] += 1
                return float(epochs_done[0])
            doc = training.predict_logits(net, valid_rows, self.eval_batch_size, device, embed=True)
            cosine = _unit(doc) @ vectors.cpu().numpy().T
            return _score(cosine, y_valid, multi)

        optimizer, scheduler = self._optimizer(net, len(batches(0)) * self.epochs)
        settings = training.LoopSettings(
            epochs=self.epochs,
            patience=self.epochs if few_shot else self.patience,
            max_grad_norm=self.max_grad_norm,
            checkpoint_dir=None,
            checkpoint_every=0,
            resume=False,
            run_id="dual",
            metric="epochs" if few_shot else ("micro-F1" if multi else "macro-F1"),
        )
        scaler = torch.amp.GradScaler("cuda", enabled=False)
        result = training.train_loop(
            net, optimizer, scheduler, batches, loss_of, evaluate, settings, scaler
        )
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.trained_ = True
        self.n_trainable_params_ = sum(p.numel() for p in net.parameters() if p.requires_grad)
        return train

    def _loss(
        self,
        net: Any,
        cosine: torch.Tensor,
        target: torch.Tensor,
        soft: torch.Tensor,
        has_soft: torch.Tensor,
    ) -> torch.Tensor:
        """BCE on ``scale·cos + bias`` (hard targets, averaged with soft ones where a row has
        them) + multiple-negatives ranking (softmax over labels, several positives allowed) +
        the contrastive margin ``pos·(1−cos) + neg·max(0, cos−margin)``, each with its weight."""
        import torch
        from torch.nn import functional as F

        logits = net.log_scale.exp() * cosine + net.bias
        total = cosine.new_zeros(())
        if self.bce_weight:
            hard_loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            soft_loss = F.binary_cross_entropy_with_logits(logits, soft, reduction="none")
            per_row = hard_loss.mean(1) * (1 - has_soft / 2) + soft_loss.mean(1) * has_soft / 2
            total = total + self.bce_weight * per_row.mean()
        if self.ranking_weight:
            scores = logits - net.bias  # the bias cancels in a softmax
            if self.in_batch_negatives:  # negatives: only the labels of the batch's rows
                present = target.amax(dim=0) > 0
                scores = scores.masked_fill(~present, float("-inf"))
            positive = torch.logsumexp(scores.masked_fill(target <= 0, float("-inf")), dim=1)
            total = total + self.ranking_weight * (torch.logsumexp(scores, dim=1) - positive).mean()
        if self.margin_weight:
            pos = (target * (1 - cosine)).sum() / target.sum().clamp(min=1)
            negatives = 1 - target
            neg = (negatives * (cosine - self.margin).clamp(min=0)).sum()
            total = total + self.margin_weight * (pos + neg / negatives.sum().clamp(min=1))
        return total

    def _optimizer(self, net: Any, steps: int) -> tuple[Any, Any]:
        """AdamW: the encoder with and without weight decay, scale and bias at their own rate;
        warm-up then linear or cosine decay."""
        from docsort.models.nn.training import adamw_with_warmup

        return adamw_with_warmup(
            net.encoder,
            [net.log_scale, net.bias],
            lr=self.encoder_lr,
            head_lr=self.scale_lr,
            weight_decay=self.weight_decay,
            schedule=self.schedule,
            warmup_ratio=self.warmup_ratio,
            steps=steps,
        )

    def _soft_targets(self, data: Dataset, hard: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Soft targets from the ``soft_column`` of the rows, where given: a number in [0, 1]
        (the target of the row's own label(s); others 0) or a mapping ``{label: p}``."""
        soft = np.zeros_like(hard, dtype=np.float32)
        has = np.zeros(len(hard), dtype=np.float32)
        values = data.extra.get(self.soft_column)
        if values is None:
            return soft, has
        for i, value in enumerate(values):
            parsed = _parse_soft(value, f"{data.name or 'data'} row {i + 1}")
            if parsed is None:
                continue
            if isinstance(parsed, dict):
                for name, p in parsed.items():
                    if name not in self.labels_:
                        raise DocsortError(
                            f"{data.name or 'data'} row {i + 1}: soft target for unknown "
                            f"label {name!r}"
                        )
                    soft[i, self.labels_.index(name)] = p
            else:
                soft[i] = hard[i] * parsed
            has[i] = 1.0
        return soft, has

    def _fit_on_valid(self, valid: Dataset) -> None:
        """Fit scale and bias on the validation rows (so probabilities are calibrated), then
        the multi-label thresholds: global, refined per label."""
        multi = self.labels_.multi_label
        y = _multi_hot(valid.targets(self.labels_), len(self.labels_))
        cosine = self._embed(valid.texts, self.max_length) @ self.label_vectors_.T
        if self.refit_scale:
            self.scale_, self.bias_ = _fit_scale_bias(cosine, y, multi, self.scale_, self.bias_)
        if multi:
            proba = self._proba(cosine, True)
            self.default_threshold_ = float(tune_thresholds(proba, y, min_support=10**9)[0])
            self.thresholds_ = tune_thresholds(proba, y)

    def _check_fitted(self) -> None:
        if not hasattr(self, "label_vectors_"):
            raise DocsortError("this dual model is not fitted yet: call fit first")

    def _predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        if len(texts) == 0:
            return np.zeros((0, len(self.labels_)), dtype=np.float64)
        description = "predicting" if len(texts) >= 1000 else ""
        cosine = self._embed(texts, self.max_length, description) @ self.label_vectors_.T
        return self._proba(cosine, self.labels_.multi_label)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        decisions = super().decide(proba)
        if not self.labels_.multi_label:
            return decisions
        return limit_decisions(proba, decisions, self.top_k, self.at_least_one)

    # -- open label sets ----------------------------------------------------------------
    def with_labels(self, labels: LabelSet) -> DualEncoderClassifier:
        """A copy that scores ``labels`` (new ones too) without retraining: each label is read
        from its description, else the model's own description of it, else its name. Known
        labels keep their tuned thresholds; new ones get the global threshold."""
        self._check_fitted()
        known = {n: self.labels_.descriptions[n] for n in self.labels_.descriptions}
        inherited = {n: d for n, d in known.items() if n in labels and n not in labels.descriptions}
        label_set = LabelSet(
            labels.names, {**inherited, **labels.descriptions}, self.labels_.multi_label
        )
        model = _copy(self)
        model.labels_ = label_set
        model.prototypes_ = self._prototypes_for(label_set)
        model.label_vectors_ = self._leaned(self._label_vectors(label_set), model.prototypes_)
        if self.thresholds_ is not None:
            thresholds = [
                self.thresholds_[self.labels_.index(n)] if n in self.labels_ else None
                for n in label_set.names
            ]
            model.thresholds_ = np.array(
                [self.default_threshold_ if t is None else t for t in thresholds], dtype=float
            )
        return model

    def adapt(self, texts: Sequence[str], weight: float = 1.0, share: float = 0.5) -> Any:
        """Transductive boost: move each label vector toward the documents it confidently
        claims among ``texts`` (unlabelled, e.g. the rows to be sorted), so that a label read
        from one short description also reflects how such documents are written.

        For each label, the ``share`` of its assigned documents with the highest probability
        form a centroid; the new vector is ``unit(label + weight·centroid)``. Returns a copy."""
        self._check_fitted()
        model = _copy(self)
        model.label_vectors_ = self.adapted_vectors(
            self._embed(texts, self.max_length), weight, share
        )
        return model

    def adapted_vectors(self, vectors: np.ndarray, weight: float, share: float) -> np.ndarray:
        """``adapt`` on document vectors already computed (unit rows)."""
        proba = self._proba(vectors @ self.label_vectors_.T, self.labels_.multi_label)
        assigned = (
            proba >= (self.thresholds_ if self.thresholds_ is not None else 0.5)
            if self.labels_.multi_label
            else np.eye(len(self.labels_), dtype=bool)[proba.argmax(axis=1)]
        )
        updated = self.label_vectors_.copy()
        for j in range(len(self.labels_)):
            rows = np.flatnonzero(assigned[:, j])
            if len(rows) == 0:
                continue
            keep = rows[np.argsort(-proba[rows, j])[: max(1, math.ceil(share * len(rows)))]]
            updated[j] = self.label_vectors_[j] + weight * _unit(vectors[keep].mean(axis=0))
        return _unit(updated)

    # -- reward tuning -------------------------------------------------------------------
    def reward_tune(self, rows: Sequence[Any], args: Any) -> DualEncoderClassifier:
        """A copy tuned by GRPO on feedback ``rows`` with ``args``; this model is the frozen
        reference (``models/kinds/dual_rewards.py``)."""
        from docsort.models.kinds.dual_rewards import reward_tune

        return reward_tune(self, rows, args)

    def _logits(self, cosine: np.ndarray) -> np.ndarray:
        """What ``_proba`` turns into probabilities: ``scale·cos`` (+ bias, multi-label)."""
        logits = self.scale_ * cosine.astype(np.float64)
        return logits + self.bias_ if self.labels_.multi_label else logits

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """The logits of ``texts`` (rows × labels) as ``predict_proba`` reads them, for a KL
        between two versions (``nn/grpo.mean_kl``)."""
        self._check_fitted()
        return self._logits(self._embed(texts, self.max_length) @ self.label_vectors_.T)

    def export_network(self):
        """For ``docsort export``: the shared encoder (a LoRA adapter merged into a copy) with
        its pooling and normalisation, and the label vectors as trained (an ``ExportSpec``,
        ``models/nn/export.py``)."""
        from docsort.models.nn.export import dual_spec

        return dual_spec(self)

    # -- persistence --------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        from docsort.io import write_json
        from docsort.models.nn.training import quiet_transformers

        if self.trained_:
            with quiet_transformers():
                if self.lora:
                    self.net_.encoder.save_pretrained(directory / ADAPTER_DIR)
                else:
                    self.net_.encoder.save_pretrained(directory / ENCODER_DIR)
                    self.tokenizer_.save_pretrained(directory / ENCODER_DIR)
        state = {
            "trained": self.trained_,
            "scale": self.scale_,
            "bias": self.bias_,
            "default_threshold": self.default_threshold_,
            "prototype_weight": self.prototype_weight_,
        }
        write_json(directory / STATE, state)
        np.save(directory / VECTORS, self.label_vectors_)
        if self.prototypes_ is not None:
            np.save(directory / PROTOTYPES, self.prototypes_)

    def _load_weights(self, directory: Path) -> None:
        if not (directory / STATE).is_file() or not (directory / VECTORS).is_file():
            raise DocsortError(f"{directory}: {STATE} or {VECTORS} is missing; save again")
        state = json.loads((directory / STATE).read_text(encoding="utf-8"))
        self.trained_ = bool(state["trained"])
        if self._backend():
            self._embedder()  # the base by alias, as recorded in the manifest
        else:
            self._load_network(directory)
        self.scale_, self.bias_ = float(state["scale"]), float(state["bias"])
        self.default_threshold_ = float(state["default_threshold"])
        self.label_vectors_ = np.load(directory / VECTORS)
        self.prototype_weight_ = float(state.get("prototype_weight", 0.0))
        has_prototypes = (directory / PROTOTYPES).is_file()
        self.prototypes_ = np.load(directory / PROTOTYPES) if has_prototypes else None
        if self.label_vectors_.shape[0] != len(self.labels_):
            raise corrupt_model(
                directory,
                f"its manifest lists {len(self.labels_)} labels, its {VECTORS} "
                f"{self.label_vectors_.shape[0]}",
            )

    def _load_network(self, directory: Path) -> None:
        """The torch encoder: trained in full, a LoRA adapter on ``base``, or ``base`` as is."""
        from peft import PeftModel

        from docsort.models.nn.training import quiet_transformers

        full = self.trained_ and not self.lora
        if self.trained_ and not (directory / (ADAPTER_DIR if self.lora else ENCODER_DIR)).is_dir():
            raise DocsortError(f"{directory}: the trained encoder is missing; save again")
        path = str(directory / ENCODER_DIR) if full else resolve(self.base)
        self._open(path)
        net = self._build(path)
        if self.trained_ and self.lora:
            with quiet_transformers():
                net.encoder = PeftModel.from_pretrained(net.encoder, str(directory / ADAPTER_DIR))
        self.device_ = self._device()
        self.net_ = net.to(self.device_).eval()


def zero_shot(labels: LabelSet, **params: Any) -> DualEncoderClassifier:
    """A dual encoder over ``labels`` (names and descriptions) that has seen no rows."""
    model = DualEncoderClassifier(**{**params, "zero_shot": True})
    model.fit(Dataset([], [], label_set=labels, name="labels"))
    model.input_spec_ = {}
    return model


# -- helpers --------------------------------------------------------------------------------
def _dual_net(encoder: Any, pooling: str, scale: float, bias: float, learn: bool) -> Any:
    """The shared encoder with a learnable log-scale and bias (the only extra parameters)."""
    import torch
    from torch import nn

    from docsort.models.nn.training import pooled

    class DualNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.pooling = pooling
            self.log_scale = nn.Parameter(torch.tensor(math.log(scale)), requires_grad=learn)
            self.bias = nn.Parameter(torch.tensor(float(bias)), requires_grad=learn)

        def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return pooled(self.encoder, batch, self.pooling)

    return DualNet()


def _copy(model: DualEncoderClassifier) -> DualEncoderClassifier:
    """A shallow copy sharing the encoder: a new label set costs only its label vectors."""
    clone = object.__new__(type(model))
    clone.__dict__.update(model.__dict__)
    clone.__dict__.pop("_token_spans", None)
    return clone


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)


def _average_rows(vectors: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """The unit mean of each label's description vectors."""
    out = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    np.add.at(out, owner, vectors)
    return _unit(out)


def _average_torch(vectors: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
    import torch

    out = torch.zeros(n, vectors.shape[1], dtype=vectors.dtype, device=vectors.device)
    out = out.index_add(0, owner, vectors)
    return torch.nn.functional.normalize(out, dim=-1)


def _multi_hot(y: np.ndarray, n_labels: int) -> np.ndarray:
    return y.astype(np.float32) if y.ndim == 2 else np.eye(n_labels, dtype=np.float32)[y]


def _score(cosine: np.ndarray, y: np.ndarray, multi: bool) -> float:
    """Validation macro-F1 (single-label) or micro-F1 at tuned thresholds (multi-label); the
    ranking of cosines decides, so the score does not wait for the scale to settle."""
    from sklearn.metrics import f1_score

    if not multi:
        return float(f1_score(y.argmax(1), cosine.argmax(1), average="macro", zero_division=0))
    proba = 1.0 / (1.0 + np.exp(-(20.0 * cosine - 7.0)))  # a fixed map; thresholds adapt
    decided = proba >= tune_thresholds(proba, y)
    return float(f1_score(y, decided, average="micro", zero_division=0))


def _fit_scale_bias(
    cosine: np.ndarray, y: np.ndarray, multi: bool, scale: float, bias: float
) -> tuple[float, float]:
    """Scale (and bias) minimising the validation log-loss: softmax over labels for
    single-label rows (then the bias by BCE at that scale), per-label sigmoid for multi-label."""
    from scipy.optimize import minimize

    cosine = cosine.astype(np.float64)

    def bce(params: np.ndarray, fixed_scale: float | None = None) -> float:
        s = fixed_scale if fixed_scale is not None else math.exp(params[0])
        z = s * cosine + params[-1]
        return float(np.mean(np.logaddexp(0, z) - y * z))

    if multi:
        found = minimize(bce, [math.log(scale), bias], method="Nelder-Mead")
        return float(math.exp(found.x[0])), float(found.x[1])

    def softmax_nll(params: np.ndarray) -> float:
        z = math.exp(params[0]) * cosine
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-np.mean((log_p * y).sum(axis=1)))

    found = minimize(softmax_nll, [math.log(scale)], method="Nelder-Mead")
    new_scale = float(math.exp(found.x[0]))
    found_bias = minimize(lambda p: bce(p, new_scale), [bias], method="Nelder-Mead")
    return new_scale, float(found_bias.x[0])


def _parse_soft(value: Any, where: str) -> float | dict[str, float] | None:
    """A soft target cell: empty, a probability, or a mapping (JSON text allowed)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise DocsortError(
                f"{where}: soft target {text[:40]!r} is not a number or JSON"
            ) from None
    if isinstance(value, dict):
        parsed = {str(k): float(v) for k, v in value.items()}
        if any(not 0 <= p <= 1 for p in parsed.values()):
            raise DocsortError(f"{where}: soft targets must lie in [0, 1]")
        return parsed
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise DocsortError(f"{where}: soft target {value!r} is not a number") from None
    if not 0 <= p <= 1:
        raise DocsortError(f"{where}: soft target {p} must lie in [0, 1]")
    return p

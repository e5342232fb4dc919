"""A transformer encoder + linear head, fine-tuned fully or with LoRA: the accurate kind.

Built for the sentence models that install offline (``minilm``, ``mpnet``): they were trained
on the *mean* of their token vectors, so the head reads mean pooling by default, starts from a
logistic-regression probe on the frozen embeddings and learns faster than the encoder. (A naive
CLS fine-tune with a fresh head lost to the frozen probe: 0.784 vs 0.897 accuracy.)
torch, transformers and peft are imported only when a model is fitted or loaded.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from docsort.data.dataset import Dataset, stratified_split
from docsort.data.fields import field_names
from docsort.errors import DocsortError
from docsort.models.base import (
    Capabilities,
    Classifier,
    check_labels_known,
    corrupt_model,
    quiet_sklearn_fit,
    register,
)
from docsort.models.hub import resolve
from docsort.models.nn.arguments import (
    CHECKPOINTS,
    POSITIVE,
    SHARE,
    ArgumentsInit,
    FineTuneArgs,
    check_finetune_params,
    default_lr,
)
from docsort.models.params import Choice, Flag, Integer, Optional, Rule, Text
from docsort.models.thresholds import tune_thresholds

if TYPE_CHECKING:
    import torch

    from docsort.models.nn.training import EncoderNet

HEAD_INITS = ("probe", "random")
# how several text fields (--text title,abstract) are read: joined into one text, as the
# tokenizer's text pair, or each encoded apart and fused by cross-attention (models/nn/fusion.py)
FUSIONS = ("none", "text_pair", "cross_attention")
HEAD = "head.safetensors"
FUSION = "fusion.safetensors"  # cross_attention: the fusion layers' weights
FIELDS = "fields.json"  # fusion: the fields read apart, in order
ENCODER_DIR = "encoder"  # full fine-tune: the whole encoder + tokenizer
ADAPTER_DIR = "adapter"  # LoRA: the adapter only; the base is resolved again at load
# params that do not change what is learnt: a checkpoint stays valid when they change
RUN_INDEPENDENT = ("device", "checkpoint_dir", "checkpoint_every", "resume", "eval_batch_size")


@dataclass
class EncoderArgs(FineTuneArgs):
    """The ``encoder`` kind's parameters: the shared fine-tuning arguments and its own."""

    pair_separator: str | None = None
    fusion: str = "none"
    fusion_heads: int = 8
    dropout: float = 0.1
    head_lr: float = 0.001
    head_init: str = "probe"
    class_weight: str | None = None
    label_smoothing: float = 0.0
    freeze_embeddings: bool = False
    freeze_layers: int = 0
    group_by_length: bool = True
    checkpoint_dir: str | None = None
    checkpoint_every: int = 200
    resume: bool = False

    param_rules: ClassVar[dict[str, Rule]] = {
        **FineTuneArgs.param_rules,
        "pair_separator": Optional(Text(nonempty=True)),
        "fusion": Choice(*FUSIONS),
        "fusion_heads": Integer(min=1),
        "dropout": SHARE,
        "head_lr": POSITIVE,
        "head_init": Choice(*HEAD_INITS),
        "class_weight": Choice("balanced", None),
        "label_smoothing": SHARE,
        "freeze_embeddings": Flag(),
        "freeze_layers": Integer(min=0),
        "group_by_length": Flag(),
        **CHECKPOINTS,
    }


@register("encoder")
class EncoderClassifier(ArgumentsInit, Classifier):
    """Fine-tuned transformer encoder (full or LoRA) with a linear head on pooled tokens."""

    Args: ClassVar[type[FineTuneArgs]] = EncoderArgs

    runtime_params: ClassVar[dict[str, str]] = {
        name: name
        for name in ("device", "eval_batch_size", "checkpoint_dir", "checkpoint_every", "resume")
    }

    # -- parameters ---------------------------------------------------------------------
    def tokens_read(self) -> int | None:
        return self.max_length - 2  # [CLS] and [SEP] take two of max_length

    @property
    def encoder_lr(self) -> float:
        return default_lr(self.lr, self.lora)

    def _check_params(self) -> None:
        need = check_finetune_params(self, "encoder")  # each value alone: EncoderArgs.param_rules
        need(
            self.fusion == "none" or not self.pair_separator,
            f"fusion: {self.fusion} reads the fields apart; drop pair_separator",
        )

    def capabilities(self) -> Capabilities:
        """A fused model reads whole fields: no long-document windows (a window has none)."""
        if self.fusion == "none":
            return self.tags
        from dataclasses import replace

        return replace(self.tags, long_documents=False)

    def _device(self) -> torch.device:
        from docsort.models.nn.training import resolve_device

        return resolve_device(self.device)

    # -- building blocks ----------------------------------------------------------------
    def _build(self, encoder_path: str, n_labels: int) -> EncoderNet:
        from docsort.models.nn.training import EncoderNet, load_encoder

        try:
            encoder = load_encoder(encoder_path)
        except (OSError, ValueError) as exc:
            raise DocsortError(
                f"cannot load the encoder {self.base!r} from {encoder_path} "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            ) from None
        hidden = encoder.config.hidden_size
        if self.fusion != "cross_attention":
            return EncoderNet(encoder, hidden, n_labels, self.pooling, self.dropout)
        from docsort.models.nn.fusion import FusedNet

        if hidden % self.fusion_heads:
            raise DocsortError(
                f"encoder fusion_heads={self.fusion_heads} must divide {self.base!r}'s width "
                f"{hidden} (e.g. 8 or 12 for 384)"
            )
        return FusedNet(
            encoder,
            hidden,
            n_labels,
            len(self.fields_),
            self.fusion_heads,
            self.pooling,
            self.dropout,
        )

    def _add_lora(self, net: EncoderNet) -> None:
        from docsort.models.nn.training import add_lora

        # default: every linear layer of the transformer blocks, whatever the family names them
        net.encoder = add_lora(
            net.encoder,
            r=self.lora_r,
            alpha=self.lora_alpha,
            dropout=self.lora_dropout,
            targets=self.lora_target_modules,
            what="encoder lora_target_modules",
            base=self.base,
        )

    def _freeze(self, net: EncoderNet) -> None:
        from docsort.models.nn.training import embeddings_module, transformer_layers

        frozen = []
        if self.freeze_embeddings:
            frozen.append(embeddings_module(net.encoder))
        if self.freeze_layers:
            layers = transformer_layers(net.encoder)
            if self.freeze_layers > len(layers):
                raise DocsortError(
                    f"encoder freeze_layers={self.freeze_layers}, but {self.base!r} has "
                    f"{len(layers)} layers"
                )
            frozen.extend(layers[: self.freeze_layers])
        for module in frozen:
            module.requires_grad_(False)

    def _probe_head(self, net: EncoderNet, data: Any, y: np.ndarray, device: Any) -> None:
        """Start the head from a logistic regression on the frozen mean-pooled embeddings, so
        the first steps refine a working classifier instead of back-propagating noise.

        Measured on banking77 (2,000 training rows, 3 epochs, dev macro-F1): 0.893 from the
        probe against 0.808 from a random head (0.583 after its first epoch)."""
        import torch
        from sklearn.linear_model import LogisticRegression

        from docsort.models.nn.training import predict_logits

        x = predict_logits(net, data, self.eval_batch_size, device, "probe", embed=True)
        head = net.head
        n_labels = head.out_features
        weight = np.zeros((n_labels, x.shape[1]), dtype=np.float32)
        bias = np.full(n_labels, -10.0, dtype=np.float32)  # a label never seen stays unlikely
        columns = [y[:, j] for j in range(n_labels)] if y.ndim == 2 else [y]
        for j, target in enumerate(columns):
            classes = np.unique(target)
            if len(classes) < 2:
                continue
            probe = LogisticRegression(C=1.0, max_iter=1000, random_state=self.seed)
            with quiet_sklearn_fit():
                probe.fit(x, target)
            if y.ndim == 2:
                weight[j], bias[j] = probe.coef_[0], probe.intercept_[0]
            elif len(classes) == 2:  # binary: sklearn keeps one row for the positive class
                weight[classes[1]], bias[classes] = probe.coef_[0], [0.0, probe.intercept_[0]]
            else:
                weight[classes], bias[classes] = probe.coef_, probe.intercept_
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(weight))
            head.bias.copy_(torch.from_numpy(bias))

    def _loss(self, y: np.ndarray, n_labels: int, device: Any) -> Any:
        import torch

        if self.labels_.multi_label:
            pos_weight = None
            if self.class_weight == "balanced":
                positives = y.sum(axis=0).clip(min=1)
                pos_weight = torch.tensor((len(y) - positives) / positives, dtype=torch.float32)
                pos_weight = pos_weight.to(device)
            bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
            smooth = self.label_smoothing
            return lambda logits, target: bce(logits, target * (1 - smooth) + smooth / 2)
        weight = None
        if self.class_weight == "balanced":
            counts = np.bincount(y, minlength=n_labels)
            present = np.count_nonzero(counts)
            balanced = np.where(counts > 0, len(y) / (present * counts.clip(min=1)), 1.0)
            weight = torch.tensor(balanced, dtype=torch.float32, device=device)
        return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=self.label_smoothing)

    def _optimizer(self, net: EncoderNet, steps: int) -> tuple[Any, Any]:
        """AdamW: the head at its own, larger rate; warm-up then decay over all epochs."""
        from docsort.models.nn.training import adamw_with_warmup

        # the fusion layers are new like the head: they learn fully at its rate, LoRA or not
        fresh = list(net.fusion.parameters()) if hasattr(net, "fusion") else []
        return adamw_with_warmup(
            net.encoder,
            fresh + list(net.head.parameters()),
            lr=self.encoder_lr,
            head_lr=self.head_lr,
            weight_decay=self.weight_decay,
            schedule=self.schedule,
            warmup_ratio=self.warmup_ratio,
            steps=steps,
        )

    def _tokenized(self, texts: Sequence[str]) -> Any:
        from docsort.models.nn import fusion
        from docsort.models.nn.training import Tokenized

        if self.fusion == "cross_attention":
            what = self._fusion_what()
            return fusion.FieldsTokenized(
                self.tokenizer_, texts, self.fields_, self.max_length, what
            )
        texts, separator = self._segments(texts)
        return Tokenized(self.tokenizer_, texts, self.max_length, separator)

    def _segments(self, texts: Sequence[str]) -> tuple[Sequence[str], str | None]:
        """The texts as the tokenizer reads them and the separator of their two segments:
        ``text_pair`` puts the first field and the others into the two."""
        if self.fusion != "text_pair":
            return texts, self.pair_separator
        from docsort.models.nn.fusion import UNIT, pair_texts

        return pair_texts(texts, self.fields_, self._fusion_what()), UNIT

    def _fusion_what(self) -> str:
        return f"this encoder (fusion: {self.fusion})"

    def _find_fields(self, train: Dataset) -> None:
        """The fields a fused model reads apart: those the training texts were joined from."""
        if self.fusion == "none":
            self.fields_ = []
            return
        self.fields_ = field_names(train.texts)
        if len(self.fields_) < 2:
            raise DocsortError(
                f"encoder fusion: {self.fusion} needs two or more text fields (e.g. --text "
                f"title,abstract); {train.name or 'the training data'} has one text per row"
            )

    def _score(self, proba: np.ndarray, y: np.ndarray) -> float:
        """Validation macro-F1 (single-label) or micro-F1 at tuned thresholds (multi-label):
        at a fixed 0.5 every early epoch scores 0 while BCE still shrinks toward base rates."""
        from sklearn.metrics import f1_score

        if not self.labels_.multi_label:
            return float(f1_score(y, proba.argmax(axis=1), average="macro", zero_division=0))
        decided = proba >= tune_thresholds(proba, y)
        return float(f1_score(y, decided, average="micro", zero_division=0))

    def _proba(self, logits: np.ndarray) -> np.ndarray:
        logits = logits.astype(np.float64)
        if self.labels_.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def _run_id(self, train: Dataset, valid: Dataset) -> str:
        params = {k: v for k, v in self.get_params().items() if k not in RUN_INDEPENDENT}
        text = json.dumps([params, train.fingerprint(), valid.fingerprint()], default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    # -- the contract -------------------------------------------------------------------
    def fit(self, train: Dataset, valid: Dataset | None = None) -> EncoderClassifier:
        self.check()
        self._remember_training(train)
        import torch
        from transformers import AutoTokenizer

        from docsort.models.nn import training

        started = time.perf_counter()
        self._find_fields(train)
        if valid is None or valid.labels is None:
            train, valid = stratified_split(train, 0.1, seed=self.seed)
        check_labels_known(self, list(valid.label_counts()), valid.name or "validation data")
        y_train, y_valid = train.targets(self.labels_), valid.targets(self.labels_)
        multi, n_labels = self.labels_.multi_label, len(self.labels_)
        device = self._device()
        training.seed_everything(self.seed)

        path = resolve(self.base)
        with training.quiet_transformers():
            self.tokenizer_ = AutoTokenizer.from_pretrained(path)
        train_rows = self._tokenized(train.texts)
        valid_rows = self._tokenized(valid.texts)
        net = self._build(path, n_labels).to(device)
        folder = Path(self.checkpoint_dir) if self.checkpoint_dir else None
        resuming = bool(self.resume and folder and (folder / training.LAST).is_file())
        if self.lora:
            self._add_lora(net)  # before the probe: a bad target fails fast; B = 0 changes nothing
        self._freeze(net)
        net.to(device)
        if self.head_init == "probe" and not resuming:  # a resumed run reads its head back
            self._probe_head(net, train_rows, y_train, device)
        self.n_params_ = sum(p.numel() for p in net.parameters())
        self.n_trainable_params_ = sum(p.numel() for p in net.parameters() if p.requires_grad)
        self.trainable_share_ = self.n_trainable_params_ / self.n_params_

        def batches(epoch: int) -> list[np.ndarray]:
            return training.epoch_batches(
                train_rows.lengths, self.batch_size, self.seed, epoch, self.group_by_length
            )

        per_epoch = len(batches(0))
        optimizer, scheduler = self._optimizer(net, per_epoch * self.epochs)
        loss_fn = self._loss(y_train, n_labels, device)
        targets = torch.tensor(y_train, dtype=torch.float32 if multi else torch.long)

        def loss_of(rows: np.ndarray) -> torch.Tensor:
            with training.autocast(device):
                logits = net(train_rows.batch(rows, device))
            return loss_fn(logits.float(), targets[rows].to(device))

        def evaluate() -> float:
            logits = training.predict_logits(net, valid_rows, self.eval_batch_size, device)
            return self._score(self._proba(logits), y_valid)

        settings = training.LoopSettings(
            epochs=self.epochs,
            patience=self.patience,
            max_grad_norm=self.max_grad_norm,
            checkpoint_dir=folder,
            checkpoint_every=self.checkpoint_every,
            resume=self.resume,
            run_id=self._run_id(train, valid),
            metric="micro-F1" if multi else "macro-F1",
        )
        scaler = torch.amp.GradScaler(
            "cuda", enabled=device.type == "cuda" and not torch.cuda.is_bf16_supported()
        )
        result = training.train_loop(
            net, optimizer, scheduler, batches, loss_of, evaluate, settings, scaler
        )
        self.net_ = net.eval()
        self.device_ = device
        self.history_ = result.history
        self.steps_ = result.steps
        self.resumed_from_step_ = result.resumed_from_step
        self.best_epoch_ = result.best_epoch
        self.best_score_ = result.best_score
        self.thresholds_ = None
        if multi:
            proba = self._proba(
                training.predict_logits(net, valid_rows, self.eval_batch_size, device)
            )
            self.thresholds_ = tune_thresholds(proba, y_valid)
        self.train_seconds_ = time.perf_counter() - started
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):  # labels_ alone is set early: a failed fit has no net_
            raise DocsortError("this encoder model is not fitted yet: call fit first")

    def _predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        if len(texts) == 0:
            return np.zeros((0, len(self.labels_)), dtype=np.float64)
        from docsort.models.nn import fast

        if self.fusion == "cross_attention":
            from docsort.models.nn.training import predict_logits

            logits = predict_logits(
                self.net_, self._tokenized(texts), self.eval_batch_size, self.device_
            )
            return self._proba(logits)
        # one tokenizer call, length-sorted token-budget batches, numpy padding, inference mode
        texts, separator = self._segments(texts)
        rows = fast.Encoded(self.tokenizer_, texts, self.max_length, separator)
        self.net_.eval()
        logits = fast.run(
            self.net_, rows, self.eval_batch_size, self.device_, self.net_.head.out_features
        )
        return self._proba(logits)

    # -- persistence --------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        from safetensors.torch import save_file

        from docsort.models.nn.training import quiet_transformers

        encoder = self.net_.encoder
        with quiet_transformers():
            if self.lora:
                encoder.save_pretrained(directory / ADAPTER_DIR)
            else:
                encoder.save_pretrained(directory / ENCODER_DIR)
                self.tokenizer_.save_pretrained(directory / ENCODER_DIR)
        head = {k: v.detach().cpu().contiguous() for k, v in self.net_.head.state_dict().items()}
        save_file(head, str(directory / HEAD))
        if self.fusion != "none":
            (directory / FIELDS).write_text(json.dumps(self.fields_), encoding="utf-8")
        if self.fusion == "cross_attention":
            fused = self.net_.fusion.state_dict()
            save_file({k: v.detach().cpu().contiguous() for k, v in fused.items()},
                      str(directory / FUSION))  # fmt: skip

    def _load_weights(self, directory: Path) -> None:
        from peft import PeftModel
        from safetensors.torch import load_file
        from transformers import AutoTokenizer

        from docsort.models.nn.training import quiet_transformers

        folder = directory / (ADAPTER_DIR if self.lora else ENCODER_DIR)
        if not folder.is_dir() or not (directory / HEAD).is_file():
            raise DocsortError(f"{directory}: {folder.name}/ or {HEAD} is missing; save again")
        head = load_file(str(directory / HEAD))
        n_labels = head["weight"].shape[0]
        if n_labels != len(self.labels_):
            raise corrupt_model(
                directory, f"its manifest lists {len(self.labels_)} labels, its head {n_labels}"
            )
        base = resolve(self.base) if self.lora else str(folder)
        self._load_fields(directory)
        net = self._build(base, n_labels)
        if self.fusion == "cross_attention":
            net.fusion.load_state_dict(load_file(str(directory / FUSION)))
        if self.lora:
            with quiet_transformers():
                net.encoder = PeftModel.from_pretrained(net.encoder, str(folder))
        net.head.load_state_dict(head)
        with quiet_transformers():
            self.tokenizer_ = AutoTokenizer.from_pretrained(base)
        self.device_ = self._device()
        self.net_ = net.to(self.device_).eval()

    def _load_fields(self, directory: Path) -> None:
        self.fields_ = []
        if self.fusion == "none":
            return
        needed = [FIELDS] + ([FUSION] if self.fusion == "cross_attention" else [])
        missing = [name for name in needed if not (directory / name).is_file()]
        if missing:
            raise corrupt_model(directory, f"fusion: {self.fusion} but no {missing[0]}")
        fields = json.loads((directory / FIELDS).read_text(encoding="utf-8"))
        if not (
            isinstance(fields, list)
            and len(fields) >= 2
            and all(isinstance(f, str) for f in fields)
        ):
            raise corrupt_model(directory, f"its {FIELDS} is not a list of two or more names")
        self.fields_ = fields

    tags: ClassVar[Capabilities] = Capabilities(exportable=True, trains_on_workers=True)

    def export_network(self):
        """For ``docsort export``: the fine-tuned network (a LoRA adapter merged into a copy)
        as one torch module from token tensors to logits (an ``ExportSpec``,
        ``models/nn/export.py``)."""
        from docsort.models.nn.export import encoder_spec

        if self.fusion != "none":
            raise DocsortError(
                f"docsort export: this encoder reads the fields {', '.join(self.fields_)} "
                f"apart (fusion: {self.fusion}), which the exported model's one-text input "
                "cannot carry; export a model trained with fusion: none"
            )

        return encoder_spec(self)

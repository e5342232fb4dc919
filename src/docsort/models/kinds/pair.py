"""The ``pair`` kind: how well a target text matches an anchor text within a context.

The U.S. patent phrase-matching task is the model case: ("abatement", "eliminating process")
in CPC class A47 scores 0.5 on a 0-1 scale of five levels; a context code is read as its
title from a mapping file (``code,title`` columns; an unknown code falls back to its nearest
parent code's title, then to the code itself), and the saved model carries that mapping.

Two variants share one encoder (``minilm`` by default, fully fine-tuned or with LoRA):
``cross`` reads "anchor [SEP] target [SEP] context title" as one sequence and maps its pooled
vector to a score (accurate: every token of one side sees the other); ``bi`` embeds
(title, anchor) and (title, target) apart and scores their cosine (fast: each distinct side is
embedded once, so a thousand targets of one anchor cost a thousand short passes). Losses:
``mse``; ``pearson`` (1 − batch Pearson r, plus the MSE so the scores keep the data's scale,
which r alone leaves free); ``ordinal`` (a rank-consistent cumulative model over the score
levels, e.g. 0, .25, .5, .75, 1); and an optional in-batch NT-Xent term
(``contrastive_weight``) that pulls the two sides of high-scoring pairs together.

How the context is read (``context_mode``): ``text`` spells its title out as above; ``none``
ignores the column; ``embedding`` (seed 004's fusion) costs no tokens: each code, and each of
its parents seen in training (``A47`` and ``A`` when the context map lists ``A``), has a
learnt vector; a row's vectors are summed, normalised, projected to the encoder's width and
added to every token embedding (``context_fusion: tokens``) or to the pooled vector
(``pooled``). A code seen in fewer than ``context_min_rows`` training rows has no vector of its
own and is read through its parents; a code with no known parent adds nothing. The projection
starts at zero, so training starts from the model without context, and the context parameters
learn at ``context_lr`` (default: the encoder's rate): at the head's rate (1e-3) they outgrew
the token embeddings and cost 3 points of Pearson r (USPTO, 8,000 rows, seed 0).

How it fits the contract: a pair model takes the ``Scorer`` role (``docsort.models.base``), a
regressor's contract beside the ``Classifier`` one. It shares the registry, ``docsort.yaml``
save/load and ``docsort train/eval/predict`` with every kind through ``Model``, and has no
label probabilities to refuse: ``predict`` returns one score per pair, ``labels_`` lists the
score levels seen in training (the ordinal loss's classes, and the range scores are mapped back
to), and ``docsort.evaluate`` reports Pearson and Spearman correlation for it instead of
accuracy.
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
import pandas as pd

from docsort.data.dataset import Dataset, grouped_split
from docsort.data.labels import LabelSet, _preview
from docsort.errors import DocsortError
from docsort.models.base import Capabilities, Scorer, corrupt_model, register
from docsort.models.hub import resolve
from docsort.models.kinds.encoder import ADAPTER_DIR, ENCODER_DIR, HEAD
from docsort.models.nn.arguments import (
    CHECKPOINTS,
    POSITIVE,
    SHARE,
    ArgumentsInit,
    FineTuneArgs,
    check_finetune_params,
    default_lr,
)
from docsort.models.params import Choice, Integer, Number, Optional, Rule, Text

if TYPE_CHECKING:
    import torch

    from docsort.models.nn.pair_training import PairNet

VARIANTS = ("cross", "bi")
LOSSES = ("mse", "pearson", "ordinal")
MAX_LEVELS = 20  # the ordinal loss needs a handful of discrete score levels
CONTEXT_TITLES = "context_titles.json"  # the context map, carried by the saved model
PAIR_STATE = "pair.json"  # score levels and whether the model reads a context
RUN_INDEPENDENT = ("device", "checkpoint_dir", "checkpoint_every", "resume", "eval_batch_size")
CONTEXT_MODES = ("text", "embedding", "none")
CONTEXT_FUSIONS = ("tokens", "pooled")


# -- context titles -----------------------------------------------------------------------
def read_context_map(path: str | Path) -> dict[str, str]:
    """``code → title`` from a CSV with ``code`` and ``title`` columns (others ignored).
    Titles written in capitals (as the CPC scheme writes them) are lower-cased: a tokenizer
    cuts capitals into odd pieces, and an uncased one would lower them anyway."""
    path = Path(path)
    if not path.is_file():
        raise DocsortError(f"context map not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DocsortError(f"cannot read the context map {path}: {exc}") from None
    missing = [c for c in ("code", "title") if c not in frame.columns]
    if missing:
        raise DocsortError(
            f"context map {path}: no column {missing[0]!r}; it needs code,title columns "
            f"(it has {_preview(list(frame.columns))})"
        )
    titles: dict[str, str] = {}
    for code, title in zip(frame["code"], frame["title"], strict=True):
        code, title = code.strip(), title.strip()
        if code and title:
            titles[code] = title.lower() if title.isupper() else title
    if not titles:
        raise DocsortError(f"context map {path} has no rows with both a code and a title")
    return titles


def context_title(code: str, titles: dict[str, str]) -> str:
    """The title of ``code``; else that of its nearest parent (the longest known prefix:
    A47B → A47 → A); else the code itself."""
    levels = code_levels(code, titles)
    return titles[levels[0]] if levels else code.strip()


def code_levels(code: str, known: set[str] | dict[str, Any]) -> list[str]:
    """``code`` and its parents that are in ``known``, longest first (A47B → A47B, A47, A):
    the levels a context embedding sums."""
    code = code.strip()
    levels: list[str] = []
    for end in range(len(code), 0, -1):
        prefix = code[:end].rstrip(" /")
        if prefix in known and prefix not in levels:
            levels.append(prefix)
    return levels


def context_vocabulary(
    codes: Sequence[str], titles: dict[str, str], min_rows: int
) -> dict[str, int]:
    """``level → row of the embedding table`` (from 1; 0 is "no level"): every code and parent
    (a code of the context map or of the training rows) carried by ≥ ``min_rows`` rows."""
    known = set(titles) | {code.strip() for code in codes}
    counts: dict[str, int] = {}
    for code in codes:
        for level in code_levels(code, known):
            counts[level] = counts.get(level, 0) + 1
    kept = sorted(level for level, n in counts.items() if n >= min_rows)
    return {level: i + 1 for i, level in enumerate(kept)}


def _level_name(value: float) -> str:
    return f"{value:g}"


# -- the kind -----------------------------------------------------------------------------
@dataclass
class PairArgs(FineTuneArgs):
    """The ``pair`` kind's parameters: the shared fine-tuning arguments and its own."""

    variant: str = "cross"
    loss: str = "mse"
    context_map: str | None = None
    context_mode: str = "text"
    context_fusion: str = "tokens"
    context_dim: int = 64
    context_min_rows: int = 5
    context_lr: float | None = None  # None: the encoder's learning rate
    contrastive_weight: float = 0.0
    contrastive_temperature: float = 0.05
    contrastive_min_score: float = 0.75
    max_length: int = 64  # the shared default differs
    dropout: float = 0.1
    head_lr: float = 0.001
    epochs: int = 3  # the shared default differs
    valid_share: float = 0.1
    eval_batch_size: int = 128  # the shared default differs
    checkpoint_dir: str | None = None
    checkpoint_every: int = 200
    resume: bool = False

    param_rules: ClassVar[dict[str, Rule]] = {
        **FineTuneArgs.param_rules,
        "variant": Choice(*VARIANTS),
        "loss": Choice(*LOSSES),
        "context_map": Optional(Text(nonempty=True)),
        "context_mode": Choice(*CONTEXT_MODES),
        "context_fusion": Choice(*CONTEXT_FUSIONS),
        "context_dim": Integer(min=1),
        "context_min_rows": Integer(min=1),
        "context_lr": Optional(POSITIVE),
        "contrastive_weight": Number(min=0),
        "contrastive_temperature": POSITIVE,
        "contrastive_min_score": Number(min=0, max=1, exclusive="min"),
        "dropout": SHARE,
        "head_lr": POSITIVE,
        "valid_share": SHARE,  # 0: no validation, every epoch runs and the last is kept
        "batch_size": Integer(min=2),  # the contrastive term needs two rows in a batch
        **CHECKPOINTS,
    }


@register("pair")
class PairScorer(ArgumentsInit, Scorer):
    """Scores (anchor, target) pairs in a context with a fine-tuned cross- or bi-encoder."""

    Args: ClassVar[type[FineTuneArgs]] = PairArgs

    runtime_params: ClassVar[dict[str, str]] = {
        name: name
        for name in ("device", "eval_batch_size", "checkpoint_dir", "checkpoint_every", "resume")
    }
    tags: ClassVar[Capabilities] = Capabilities(
        output="scores",
        multi_label=False,
        long_documents=False,
        exportable=True,
        trains_on_workers=True,
    )

    def export_network(self):
        """For ``docsort export``: the cross-encoder up to its logit, or the bi-encoder's
        pooled vectors, and the score head's numbers (an ``ExportSpec``,
        ``models/nn/export.py``)."""
        from docsort.models.nn.export import pair_spec

        if self.uses_context_ and self.context_mode == "embedding":
            raise DocsortError(
                "docsort export: this pair model reads its context as a learnt embedding, "
                "which the exported graph's token inputs cannot carry; export a model trained "
                "with context_mode: text or none"
            )
        return pair_spec(self)

    # -- parameters ---------------------------------------------------------------------
    @property
    def encoder_lr(self) -> float:
        return default_lr(self.lr, self.lora)

    def _check_params(self) -> None:
        check_finetune_params(self, "pair")  # each value alone: PairArgs.param_rules

    def _device(self) -> torch.device:
        from docsort.models.nn.training import resolve_device

        return resolve_device(self.device)

    # -- inputs -------------------------------------------------------------------------
    def _sides(self, data: Dataset) -> tuple[list[str], list[str], list[str] | None]:
        """Anchors, targets and (when the model reads a context as text) context titles of
        ``data``."""
        source = data.name or "the data"
        if data.text_pair is None:
            raise DocsortError(
                f"{source}: a pair model scores two texts per row; name the second text's "
                "column (--pair COLUMN)"
            )
        titles = None
        if self.uses_context_:
            if data.context is None:
                raise DocsortError(
                    f"{source}: this pair model was trained with a context; name the context "
                    "column (--context COLUMN)"
                )
            if self.context_mode == "text":
                titles = [context_title(code, self.context_titles_) for code in data.context]
        return list(data.texts), list(data.text_pair), titles

    def _levels(self, data: Dataset) -> np.ndarray | None:
        """Each row's context levels as rows of the embedding table (0 pads), when the model
        reads its context as an embedding."""
        if not (self.uses_context_ and self.context_mode == "embedding"):
            return None
        assert data.context is not None  # _sides said so
        rows = [[self.context_vocab_[x] for x in code_levels(code, self.context_vocab_)]
                for code in data.context]  # fmt: skip
        levels = np.zeros((len(rows), max([1, *map(len, rows)])), dtype=np.int64)
        for i, row in enumerate(rows):
            levels[i, : len(row)] = row
        return levels

    def _cross_tokens(self, anchors: list[str], targets: list[str], titles: list[str] | None):
        """Cross-encoder input: "anchor [SEP] target [SEP] title", cut at ``max_length`` from
        the end, so a long title is what gets shortened."""
        from docsort.models.nn.training import Tokenized

        sep = f" {self.tokenizer_.sep_token} "
        joined = [a + sep + t for a, t in zip(anchors, targets, strict=True)]
        if titles is not None:
            joined = [text + sep + title for text, title in zip(joined, titles, strict=True)]
        return Tokenized(self.tokenizer_, joined, self.max_length)

    def _side_tokens(self, phrases: list[str], titles: list[str] | None):
        """One bi-encoder side: the phrase after its context title (a text pair), or alone."""
        from docsort.models.nn.pair_training import PairTokens
        from docsort.models.nn.training import Tokenized

        if titles is None:
            return Tokenized(self.tokenizer_, phrases, self.max_length)
        return PairTokens(self.tokenizer_, titles, phrases, self.max_length)

    def _inputs(self, data: Dataset, contrastive: bool = False) -> dict[str, Any]:
        anchors, targets, titles = self._sides(data)
        inputs: dict[str, Any] = {}
        if self.variant == "cross":
            inputs["cross"] = self._cross_tokens(anchors, targets, titles)
        if self.variant == "bi" or contrastive:
            inputs["first"] = self._side_tokens(anchors, titles)
            inputs["second"] = self._side_tokens(targets, titles)
        levels = self._levels(data)
        if levels is not None:
            from docsort.models.nn.pair_training import ContextTokens

            inputs = {name: ContextTokens(tokens, levels) for name, tokens in inputs.items()}
        return inputs

    # -- building blocks ----------------------------------------------------------------
    def _build(self, encoder_path: str) -> PairNet:
        from docsort.models.nn.pair_training import PairNet
        from docsort.models.nn.training import load_encoder

        try:
            encoder = load_encoder(encoder_path)
        except (OSError, ValueError) as exc:
            raise DocsortError(
                f"cannot load the encoder {self.base!r} from {encoder_path} "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            ) from None
        gaps: list[float] = []
        if self.loss == "ordinal":
            unit = self._unit(self.levels_)
            gaps = list(np.diff(unit))
        hidden = encoder.config.hidden_size
        context = len(self.context_vocab_) if self.context_mode == "embedding" else 0
        return PairNet(
            encoder,
            hidden,
            self.pooling,
            self.dropout,
            self.variant,
            gaps,
            context_levels=context,
            context_dim=self.context_dim,
            context_fusion=self.context_fusion,
        )

    def _unit(self, scores: np.ndarray) -> np.ndarray:
        """Scores mapped onto [0, 1] by the training range: what the network predicts."""
        low, high = self.levels_[0], self.levels_[-1]
        return (np.asarray(scores, dtype=np.float64) - low) / (high - low)

    def _from_unit(self, unit: np.ndarray) -> np.ndarray:
        low, high = self.levels_[0], self.levels_[-1]
        return low + unit * (high - low)

    def _score_loss(self, net: PairNet, z: Any, target: Any, level_index: Any) -> Any:
        import torch.nn.functional as F

        from docsort.models.nn.pair_training import ordinal_loss, pearson_loss

        if self.loss == "ordinal":
            return ordinal_loss(z, net.cuts, level_index)
        predicted = net.unit_score(z)
        mse = F.mse_loss(predicted, target)
        return mse if self.loss == "mse" else pearson_loss(predicted, target) + mse

    @staticmethod
    def _groups(anchors: Sequence[str]) -> np.ndarray:
        """An id per distinct anchor: rows of one anchor are never each other's negatives."""
        index: dict[str, int] = {}
        return np.array([index.setdefault(a, len(index)) for a in anchors], dtype=np.int64)

    def _run_id(self, train: Dataset, valid: Dataset | None) -> str:
        params = {k: v for k, v in self.get_params().items() if k not in RUN_INDEPENDENT}
        if self.context_mode == "text":  # as before these settings: its checkpoints resume
            params = {
                k: v
                for k, v in params.items()
                if not k.startswith("context_") or k == "context_map"
            }
        valid_print = valid.fingerprint() if valid is not None else None
        text = json.dumps([params, train.fingerprint(), valid_print], default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    # -- the contract -------------------------------------------------------------------
    def fit(self, train: Dataset, valid: Dataset | None = None) -> PairScorer:
        self.check()
        if train.labels is None:
            raise DocsortError(f"{train.name or 'training data'} has no scores to learn from")
        y_all = train.scores()
        levels = np.unique(y_all)
        if len(levels) < 2:
            raise DocsortError(
                f"{train.name or 'training data'}: every score is {levels[0]:g}; a pair model "
                "needs at least two different scores"
            )
        if self.loss == "ordinal" and len(levels) > MAX_LEVELS:
            raise DocsortError(
                f"pair loss 'ordinal' needs a few discrete score levels; the data has "
                f"{len(levels)} (use loss: mse or pearson)"
            )
        self.levels_ = levels
        self.context_titles_ = read_context_map(self.context_map) if self.context_map else {}
        self.uses_context_ = train.context is not None and self.context_mode != "none"
        self.context_vocab_: dict[str, int] = {}
        self._sides(train)  # a missing pair column fails before any weights load
        import torch
        from transformers import AutoTokenizer

        from docsort.models.nn import training

        started = time.perf_counter()
        if (valid is None or valid.labels is None) and self.valid_share > 0:
            # held-out anchors, as the model will meet them: rows of one anchor stay together
            train, valid = grouped_split(train, train.texts, self.valid_share, seed=self.seed)
        elif valid is not None and valid.labels is None:
            valid = None
        if self.uses_context_ and self.context_mode == "embedding":
            # from the rows trained on only: a code seen only in validation has no vector
            assert train.context is not None
            self.context_vocab_ = context_vocabulary(
                train.context, self.context_titles_, self.context_min_rows
            )
            if not self.context_vocab_:
                raise DocsortError(
                    f"{train.name or 'the training data'}: no context code or parent is carried "
                    f"by {self.context_min_rows} training rows (context_min_rows); lower it, or "
                    "use context_mode: text"
                )
        if valid is not None:
            self._sides(valid)
        y_train = train.scores()
        self.labels_ = LabelSet(tuple(_level_name(v) for v in levels))
        self.train_fingerprint_ = train.fingerprint()
        device = self._device()
        training.seed_everything(self.seed)

        path = resolve(self.base)
        with training.quiet_transformers():
            self.tokenizer_ = AutoTokenizer.from_pretrained(path)
        contrastive = self.contrastive_weight > 0
        train_inputs = self._inputs(train, contrastive)
        valid_inputs = self._inputs(valid) if valid is not None else None
        net = self._build(path)
        folder = Path(self.checkpoint_dir) if self.checkpoint_dir else None
        if self.lora:
            net.encoder = training.add_lora(
                net.encoder,
                r=self.lora_r,
                alpha=self.lora_alpha,
                dropout=self.lora_dropout,
                targets=self.lora_target_modules,
                what="pair lora_target_modules",
                base=self.base,
            )
        unit_train = self._unit(y_train).astype(np.float32)
        level_train = np.searchsorted(levels, y_train).clip(0, len(levels) - 1)
        net.start_from(unit_train, level_train)
        net.to(device)
        self.n_params_ = sum(p.numel() for p in net.parameters())
        self.n_trainable_params_ = sum(p.numel() for p in net.parameters() if p.requires_grad)

        lengths = next(iter(train_inputs.values())).lengths
        if self.variant == "bi":
            lengths = train_inputs["first"].lengths + train_inputs["second"].lengths

        def batches(epoch: int) -> list[np.ndarray]:
            return training.epoch_batches(lengths, self.batch_size, self.seed, epoch, True)

        per_epoch = len(batches(0))
        optimizer, scheduler = training.adamw_with_warmup(
            net.encoder,
            net.score_parameters(),
            lr=self.encoder_lr,
            head_lr=self.head_lr,
            weight_decay=self.weight_decay,
            schedule=self.schedule,
            warmup_ratio=self.warmup_ratio,
            steps=per_epoch * self.epochs,
            extra=[(net.context_parameters(), self.context_lr or self.encoder_lr)],
        )
        targets = torch.tensor(unit_train)
        level_index = torch.tensor(level_train)
        groups = torch.tensor(self._groups(train.texts))
        positive = targets >= self.contrastive_min_score - 1e-9

        def loss_of(rows: np.ndarray) -> torch.Tensor:
            first = second = None
            if self.variant == "bi" or contrastive:
                first = net.embed(train_inputs["first"].batch(rows, device))
                second = net.embed(train_inputs["second"].batch(rows, device))
            if self.variant == "cross":
                z = net.cross_logit(train_inputs["cross"].batch(rows, device))
            else:
                z = net.from_cosine(first, second)
            picked = torch.from_numpy(rows)
            loss = self._score_loss(
                net, z, targets[picked].to(device), level_index[picked].to(device)
            )
            if contrastive:
                from docsort.models.nn.pair_training import nt_xent

                term = nt_xent(
                    first,
                    second,
                    positive[picked].to(device),
                    groups[picked].to(device),
                    self.contrastive_temperature,
                )
                loss = loss + self.contrastive_weight * term
            return loss

        def evaluate() -> float:
            truth = self._unit(valid.scores())
            return _pearson(truth, self._predict_unit(net, valid_inputs, device))

        settings = training.LoopSettings(
            epochs=self.epochs,
            patience=self.patience,
            max_grad_norm=self.max_grad_norm,
            checkpoint_dir=folder,
            checkpoint_every=self.checkpoint_every,
            resume=self.resume,
            run_id=self._run_id(train, valid),
            metric="pearson",
        )
        scaler = torch.amp.GradScaler("cuda", enabled=False)
        result = training.train_loop(
            net,
            optimizer,
            scheduler,
            batches,
            loss_of,
            evaluate if valid is not None else None,
            settings,
            scaler,
        )
        self.net_ = net.eval()
        self.device_ = device
        self.history_ = result.history
        self.steps_ = result.steps
        self.resumed_from_step_ = result.resumed_from_step
        self.best_epoch_ = result.best_epoch
        self.best_score_ = result.best_score if valid is not None else None
        self.train_seconds_ = time.perf_counter() - started
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise DocsortError("this pair model is not fitted yet: call fit first")

    def _predict_unit(self, net: PairNet, inputs: dict[str, Any], device: Any) -> np.ndarray:
        """Scores on [0, 1] for tokenized rows; the bi-encoder embeds each distinct side once."""
        import torch

        from docsort.models.nn.training import predict_logits

        if "cross" in inputs:
            rows = inputs["cross"]
            description = "scoring pairs" if len(rows) >= 1000 else ""
            z = predict_logits(net, rows, self.eval_batch_size, device, description)[:, 0]
        else:
            sides = []
            for side in (inputs["first"], inputs["second"]):
                keys = [tuple(ids) for ids in side.encoding["input_ids"]]
                if hasattr(side, "levels"):  # one phrase in two contexts is two vectors
                    keys = [(k, tuple(v)) for k, v in zip(keys, side.levels, strict=True)]
                unique: dict[tuple, int] = {}
                owner = np.array([unique.setdefault(k, len(unique)) for k in keys])
                first_rows = np.unique(owner, return_index=True)[1]
                distinct = _subset_tokens(side, first_rows)
                vectors = predict_logits(net, distinct, self.eval_batch_size, device, embed=True)
                sides.append(torch.from_numpy(vectors[owner]))
            with torch.no_grad():
                z = net.from_cosine(sides[0].to(device), sides[1].to(device)).cpu().numpy()
        with torch.no_grad():
            unit = net.unit_score(torch.from_numpy(np.asarray(z, dtype=np.float32)).to(device))
        return unit.cpu().numpy().astype(np.float64)

    def predict_scores(self, data: Dataset) -> np.ndarray:
        """One score per row of ``data`` (text, text_pair and, if trained so, context), on the
        training data's scale."""
        self._check_fitted()
        if len(data) == 0:
            return np.zeros(0, dtype=np.float64)
        unit = self._predict_unit(self.net_, self._inputs(data), self.device_)
        return self._from_unit(unit)

    # -- persistence --------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        from safetensors.torch import save_file

        from docsort.io import write_json
        from docsort.models.nn.training import quiet_transformers

        encoder = self.net_.encoder
        with quiet_transformers():
            if self.lora:
                encoder.save_pretrained(directory / ADAPTER_DIR)
            else:
                encoder.save_pretrained(directory / ENCODER_DIR)
                self.tokenizer_.save_pretrained(directory / ENCODER_DIR)
        state = {
            name: value.detach().cpu().contiguous()
            for name, value in self.net_.state_dict().items()
            if not name.startswith("encoder.")
        }
        save_file(state, str(directory / HEAD))
        write_json(directory / CONTEXT_TITLES, self.context_titles_)
        write_json(
            directory / PAIR_STATE,
            {
                "levels": self.levels_.tolist(),
                "uses_context": self.uses_context_,
                "context_vocabulary": self.context_vocab_,
            },
        )

    def _load_weights(self, directory: Path) -> None:
        from peft import PeftModel
        from safetensors.torch import load_file
        from transformers import AutoTokenizer

        from docsort.models.nn.training import quiet_transformers

        folder = directory / (ADAPTER_DIR if self.lora else ENCODER_DIR)
        needed = [folder, directory / HEAD, directory / PAIR_STATE, directory / CONTEXT_TITLES]
        absent = [p.name for p in needed if not p.exists()]
        if absent:
            raise DocsortError(f"{directory}: {absent[0]} is missing; save the model again")
        state = json.loads((directory / PAIR_STATE).read_text(encoding="utf-8"))
        self.levels_ = np.asarray(state["levels"], dtype=np.float64)
        if self.levels_.shape != (len(self.labels_),):
            raise corrupt_model(
                directory,
                f"its manifest lists {len(self.labels_)} score levels, its {PAIR_STATE} "
                f"{self.levels_.size}",
            )
        self.uses_context_ = bool(state["uses_context"])
        self.context_vocab_ = dict(state.get("context_vocabulary", {}))  # older models: none
        self.context_titles_ = json.loads((directory / CONTEXT_TITLES).read_text("utf-8"))
        base = resolve(self.base) if self.lora else str(folder)
        net = self._build(base)
        if self.lora:
            with quiet_transformers():
                net.encoder = PeftModel.from_pretrained(net.encoder, str(folder))
        head = load_file(str(directory / HEAD))
        unexpected = net.load_state_dict(head, strict=False).unexpected_keys
        if unexpected:
            raise DocsortError(f"{directory}: {HEAD} does not fit this model; save it again")
        with quiet_transformers():
            self.tokenizer_ = AutoTokenizer.from_pretrained(base)
        self.device_ = self._device()
        self.net_ = net.to(self.device_).eval()


def _subset_tokens(tokens: Any, rows: np.ndarray) -> Any:
    """The same tokenized rows, restricted to ``rows`` (no tokenizing again)."""
    part = object.__new__(type(tokens))
    part.tokenizer = tokens.tokenizer
    part.encoding = {key: [values[i] for i in rows] for key, values in tokens.encoding.items()}
    part.lengths = tokens.lengths[rows]
    if hasattr(tokens, "levels"):
        part.levels = tokens.levels[rows]
    return part


def _pearson(truth: np.ndarray, predicted: np.ndarray) -> float:
    if np.std(predicted) == 0 or np.std(truth) == 0:
        return 0.0
    return float(np.corrcoef(truth, predicted)[0, 1])

"""Frozen text vectors + a linear head: the cheap kinds.

``static`` reads model2vec static token embeddings (thousands of documents a second on a CPU);
``embed`` reads a sentence-transformers encoder such as ``minilm`` without training it: the
frozen-embedding linear probe, the cheap middle stage of a cascade. Both share the head: a
logistic regression (one-vs-rest with tuned thresholds for multi-label data).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from docsort.cache import area_path, embed_limit_bytes, touch, trim
from docsort.data.dataset import Dataset
from docsort.errors import DocsortError
from docsort.io import atomic_path
from docsort.models.base import (
    Capabilities,
    Classifier,
    keep_label_names,
    quiet_sklearn_fit,
    register,
    sklearn_labels_problem,
)
from docsort.models.embedders import is_embedder, load_embedder
from docsort.models.hub import resolve
from docsort.models.params import (
    DEVICE,
    SEED,
    Choice,
    Flag,
    Integer,
    Number,
    Optional,
    Rule,
    Text,
)
from docsort.models.thresholds import tune_thresholds

HEAD = "head.joblib"
TUNED = "encoder"  # an ``embed`` model's tuned sentence encoder (``finetune: contrastive``)
# the logistic-regression head's parameters, the same for both kinds
HEAD_RULES: dict[str, Rule] = {
    "C": Number(min=0, exclusive=True),
    "class_weight": Choice("balanced", None),
    "max_iter": Integer(min=1),
}


class EmbeddingHeadClassifier(Classifier):
    """Texts → fixed vectors (``_embed``) → logistic regression. Subclasses supply the vectors."""

    C: float
    class_weight: str | None
    max_iter: int

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def _embed_training_rows(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def _head(self) -> LogisticRegression | OneVsRestClassifier:
        logreg = LogisticRegression(
            C=self.C, class_weight=self.class_weight, max_iter=self.max_iter
        )
        return OneVsRestClassifier(logreg) if self.labels_.multi_label else logreg

    def fit(self, train: Dataset, valid: Dataset | None = None) -> EmbeddingHeadClassifier:
        self._remember_training(train)
        vectors = self._embed_training_rows(train.texts)
        with quiet_sklearn_fit():
            self.head_ = self._head().fit(vectors, train.targets())
        self.thresholds_ = None
        if self.labels_.multi_label and valid is not None and valid.labels is not None:
            proba = self.predict_proba(valid.texts)
            self.thresholds_ = tune_thresholds(proba, valid.targets(self.labels_))
        return self

    def _predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        if len(texts) == 0:
            return np.zeros((0, len(self.labels_)))
        proba = self.head_.predict_proba(self._embed(texts))
        if self.labels_.multi_label:
            return proba
        full = np.zeros((len(texts), len(self.labels_)))
        full[:, self.head_.classes_] = proba  # labels without training rows score 0
        return full

    def _save_head(self, directory: Path) -> None:
        keep_label_names(self.head_, self.labels_)
        joblib.dump(self.head_, directory / HEAD)

    def _load_head(self, directory: Path) -> None:
        if not (directory / HEAD).is_file():
            raise DocsortError(f"{directory}: {HEAD} is missing; save the model again")
        self.head_ = joblib.load(directory / HEAD)

    def _weights_problem(self) -> str | None:
        head = self.head_
        if not isinstance(head, (LogisticRegression, OneVsRestClassifier)) or not hasattr(
            head, "classes_"
        ):
            return f"{HEAD} holds a {type(head).__name__}, not a fitted {self.kind} head"
        return sklearn_labels_problem(head, self.labels_, HEAD)


@register("static")
class StaticClassifier(EmbeddingHeadClassifier):
    """model2vec static embeddings (default: distilled from ``minilm``) + logistic regression.

    The saved model carries its own copy of the static embeddings, so it loads anywhere.
    """

    param_rules = {"base": Text(nonempty=True), "max_length": Integer(min=1), **HEAD_RULES}

    def __init__(
        self,
        base: str = "static",
        max_length: int = 256,
        C: float = 10.0,
        class_weight: str | None = None,
        max_iter: int = 2000,
    ) -> None:
        self.base = base
        self.max_length = max_length
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter

    def tokens_read(self) -> int | None:
        return self.max_length

    def _encoder(self):
        if getattr(self, "encoder_", None) is None:
            self.encoder_ = _load_static(resolve(self.base))
        return self.encoder_

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._encoder().encode(
            list(texts), max_length=self.max_length, use_multiprocessing=False
        )

    def _save_weights(self, directory: Path) -> None:
        self._encoder().save_pretrained(str(directory / "static"))
        self._save_head(directory)

    def _load_weights(self, directory: Path) -> None:
        self.encoder_ = _load_static(str(directory / "static"))
        self._load_head(directory)


@register("embed", version=2)
class EmbedClassifier(EmbeddingHeadClassifier):
    """A frozen sentence-transformers encoder (mean-pooled, normalised) + logistic regression.

    Training rows are embedded once and cached on disk (keyed by model and texts), so trying
    another head or C costs seconds. The saved model refers to ``base`` rather than copying it.

    ``finetune: contrastive`` first tunes the encoder on pairs of the training rows, SetFit's
    few-shot recipe (``models/nn/contrastive.py``: ``num_iterations`` same-label and
    other-label partners per row, ``epochs``, ``lr``, ``train_batch_size``, ``seed``), then
    fits the same head on the tuned vectors; the tuned encoder is saved inside the model dir.

    A ``base`` naming a torch-free embedding backend (``nomic``, ``e5-small-q4``,
    ``use-multilingual``: ``models/embedders/``) is read through it instead, with its
    ``classification`` prompt; such a base is frozen, so ``finetune`` is refused for it.
    """

    runtime_params: ClassVar[dict[str, str]] = {
        "device": "device",
        "eval_batch_size": "batch_size",
        "threads": "threads",  # a torch-free backend's engine threads (--threads)
    }
    param_rules = {
        "base": Text(nonempty=True),
        "max_length": Integer(min=3),  # the encoder adds two special tokens
        "batch_size": Integer(min=1),
        **HEAD_RULES,
        "device": DEVICE,
        "threads": Optional(Integer(min=1)),
        "cache": Flag(),
        "finetune": Choice(None, "contrastive"),
        "num_iterations": Integer(min=1),
        "epochs": Integer(min=1),
        "lr": Number(min=0, exclusive=True),
        "train_batch_size": Integer(min=1),
        "seed": SEED,
    }

    def __init__(
        self,
        base: str = "minilm",
        max_length: int = 256,
        batch_size: int = 64,
        C: float = 10.0,
        class_weight: str | None = None,
        max_iter: int = 2000,
        device: str = "auto",
        cache: bool = True,
        finetune: str | None = None,
        num_iterations: int = 20,
        epochs: int = 1,
        lr: float = 2e-5,
        train_batch_size: int = 16,
        seed: int = 0,
        threads: int | None = None,
    ) -> None:
        self.base = base
        self.max_length = max_length
        self.batch_size = batch_size
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.device = device
        self.cache = cache
        self.finetune = finetune
        self.num_iterations = num_iterations
        self.epochs = epochs
        self.lr = lr
        self.train_batch_size = train_batch_size
        self.seed = seed
        self.threads = threads

    def tokens_read(self) -> int | None:
        if is_embedder(self.base):
            return self.max_length  # the backends cut each text themselves
        return self.max_length - 2  # the encoder adds two special tokens

    def _check_params(self) -> None:
        if self.finetune and is_embedder(self.base):
            raise DocsortError(
                f"embed base {self.base!r} is a frozen embedding backend (no torch): "
                f"finetune: {self.finetune} cannot tune it; drop finetune, or use a "
                "sentence-transformers base such as minilm"
            )

    def _encoder(self):
        if is_embedder(self.base):  # shared within the process: it is frozen
            return load_embedder(self.base, max_length=self.max_length, threads=self.threads)
        if getattr(self, "encoder_", None) is None:
            self.encoder_ = _load_sentence_transformer(resolve(self.base), self.device)
            self.encoder_.max_seq_length = self.max_length
        return self.encoder_

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised vectors by the fast path (``models/nn/fast.py``: one tokenizer call,
        length-sorted token-budget batches, numpy padding), or sentence-transformers' own
        ``encode`` for an encoder made of other modules."""
        if is_embedder(self.base):
            return self._encoder().encode(texts, role="classification")
        from docsort.models.nn.fast import sentence_vectors

        encoder = self._encoder()
        vectors = sentence_vectors(encoder, texts, self.batch_size)
        if vectors is not None:
            return vectors
        return encoder.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def fit(self, train: Dataset, valid: Dataset | None = None) -> EmbedClassifier:
        """The head on frozen vectors, or (``finetune: contrastive``) on the vectors of an
        encoder first tuned on pairs of the training rows."""
        self.history_ = []
        self._check_params()  # a frozen backend refuses finetune even when fit is called alone
        if self.finetune == "contrastive":
            from docsort.models.nn.contrastive import tune_encoder

            self._remember_training(train)
            if self.labels_.multi_label:
                raise DocsortError(
                    "embed finetune: contrastive needs one label per row; this data is "
                    "multi-label (train it without finetune)"
                )
            self.encoder_ = None  # a fresh copy of base: tuning never starts from tuned weights
            self.history_ = tune_encoder(
                self._encoder(),
                train.texts,
                train.targets(),
                num_iterations=self.num_iterations,
                epochs=self.epochs,
                lr=self.lr,
                batch_size=self.train_batch_size,
                seed=self.seed,
            )
        return super().fit(train, valid)

    def _embed_training_rows(self, texts: Sequence[str]) -> np.ndarray:
        """Training vectors come from the disk cache when asked (never for a tuned encoder:
        the cache is keyed by ``base``); evaluation never does, so its timing stays honest."""
        if not self.cache or self.finetune:
            return self._embed(texts)
        stem = f"{resolve(self.base)}|{self.max_length}"
        if is_embedder(self.base):  # the prompt is part of what the vectors are
            stem += "|classification"
        key = hashlib.sha256(stem.encode())
        for text in texts:
            key.update(text.encode("utf-8") + b"\x1e")
        path = _embedding_cache() / f"{key.hexdigest()[:32]}.npy"
        limit = embed_limit_bytes()  # a malformed setting fails before minutes of embedding
        try:
            vectors = np.load(path)
            touch(path)
            return vectors
        except FileNotFoundError:  # not cached yet, or trimmed by another run meanwhile
            pass
        vectors = self._embed(texts)
        with atomic_path(path) as tmp, tmp.open("wb") as handle:
            np.save(handle, vectors)
        trim(path.parent, limit)
        return vectors

    def _save_weights(self, directory: Path) -> None:
        if self.finetune:  # the tuned encoder travels with the model: it loads offline
            self._encoder().save(str(directory / TUNED))
        self._save_head(directory)

    def _load_weights(self, directory: Path) -> None:
        if self.finetune:
            if not (directory / TUNED).is_dir():
                raise DocsortError(f"{directory}: {TUNED}/ is missing; save the model again")
            self.encoder_ = _load_sentence_transformer(str(directory / TUNED), self.device)
            self.encoder_.max_seq_length = self.max_length
        self._load_head(directory)

    tags: ClassVar[Capabilities] = Capabilities(exportable=True)

    def capabilities(self) -> Capabilities:
        """Its encoder trains (so on workers too) only with ``finetune: contrastive``; an
        embedding backend's engine is no torch network, so it does not export."""
        backend = is_embedder(self.base)
        return replace(
            self.tags,
            trains_on_workers=self.finetune == "contrastive",
            exportable=not backend,
        )

    def export_network(self):
        """For ``docsort export``: encoder, pooling, normalisation and the head as one torch
        module from token tensors to logits (an ``ExportSpec``, ``models/nn/export.py``)."""
        from docsort.models.nn.export import embed_spec

        return embed_spec(self)


def _embedding_cache() -> Path:
    return area_path("embeddings")


def _load_static(path: str):
    from model2vec import StaticModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return StaticModel.from_pretrained(path, force_download=False)
    except (OSError, ValueError) as exc:
        raise DocsortError(
            f"cannot load static model {path!r}: {str(exc).splitlines()[0]}"
        ) from None


def _load_sentence_transformer(path: str, device: str):
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # docsort draws its own progress; keep stderr clean

    from docsort.models.nn.training import resolve_device

    try:
        return SentenceTransformer(path, device=str(resolve_device(device)))
    except (OSError, ValueError) as exc:
        raise DocsortError(f"cannot load encoder {path!r}: {str(exc).splitlines()[0]}") from None

"""What an exportable kind hands ``docsort export``: its network as one torch module from token
tensors to logits, the tokenizer that feeds it, and what is left to do after the graph.

Each exportable kind (``tags.exportable``) has an ``export_network()`` method returning an
``ExportSpec``; the builders live here, beside the networks, so that the kind modules stay free
of torch at import time. ``docsort.export`` turns the module into an ONNX graph; the ``onnx``
kind runs it without torch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from docsort.errors import DocsortError
from docsort.models.nn.training import EncoderNet, pooled

if TYPE_CHECKING:
    from docsort.models.kinds.dual import DualEncoderClassifier
    from docsort.models.kinds.embedding import EmbedClassifier
    from docsort.models.kinds.encoder import EncoderClassifier
    from docsort.models.kinds.pair import PairScorer

# the head's bias for a label the training rows never had: its probability is 0, as the
# source kinds give it (exp(-1e4) underflows to exactly 0 after the softmax's max subtraction)
ABSENT = -1.0e4
# a multi-label column whose training rows were all one value: a constant 0 or 1 (sigmoid of
# ±50 is within 2e-22 of it)
CONSTANT = 50.0


@dataclass
class ExportSpec:
    """A kind's network as the exporter needs it.

    ``network(*inputs)`` takes int64 ``[batch, seq]`` tensors named ``inputs`` (in order) and
    returns logits ``[batch, n_labels]``; ``activation`` (``softmax`` or ``sigmoid``) turns
    them into the kind's probabilities. Temperature, thresholds and long-document windows
    stay in the manifest, applied by ``Classifier`` as for any kind. ``tokenizer`` is the
    Hugging Face fast tokenizer the kind reads with (its ``tokenizer.json`` is what the
    exported model reads through the ``tokenizers`` library), ``max_length`` its truncation,
    ``pair_separator`` the encoder's two-segment input, ``head`` the name of the head module
    (kept in fp32 by quantization).

    A network that gives vectors rather than logits (``output="vectors"``: the ``dual``
    encoder, a ``pair`` bi-encoder) or one score per row (``output="scores"``: a ``pair``
    cross-encoder's logit) is wrapped by another exported kind (``exported_kind``), built with
    the extra ``params`` and given the fitted ``state`` (label vectors, score head)."""

    network: nn.Module
    inputs: tuple[str, ...]
    tokenizer: Any
    max_length: int
    activation: str
    pair_separator: str | None = None
    head: str = "head"
    note: str = ""
    output: str = "logits"
    exported_kind: str = "onnx"
    params: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)


class TokensToLogits(nn.Module):
    """Positional token tensors → the named batch a Hugging Face encoder reads → logits."""

    def __init__(self, body: nn.Module, inputs: tuple[str, ...]) -> None:
        super().__init__()
        self.body = body
        self.inputs = inputs

    def forward(self, *tensors: Tensor) -> Tensor:
        return self.body(dict(zip(self.inputs, tensors, strict=True)))


class EmbedNet(nn.Module):
    """The ``embed`` kind in one network: encoder → pooling → L2 normalisation → the logistic
    regression as a linear layer (its logits)."""

    def __init__(self, encoder: nn.Module, pooling: str, weight: np.ndarray, bias: np.ndarray):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.head = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
            self.head.bias.copy_(torch.from_numpy(bias.astype(np.float32)))

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        vectors = nn.functional.normalize(pooled(self.encoder, batch, self.pooling), p=2, dim=1)
        return self.head(vectors)


def input_names(tokenizer: Any) -> tuple[str, ...]:
    """The token tensors the encoder reads, in the graph's order."""
    names = set(getattr(tokenizer, "model_input_names", None) or ())
    return ("input_ids", "attention_mask") + (
        ("token_type_ids",) if "token_type_ids" in names else ()
    )


def _fast(tokenizer: Any, what: str) -> None:
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise DocsortError(f"{what}: export needs a fast (tokenizer.json) tokenizer")
    if getattr(tokenizer, "padding_side", "right") != "right":
        raise DocsortError(f"{what}: export supports right-padding tokenizers only")


def embed_spec(model: EmbedClassifier) -> ExportSpec:
    """The ``embed`` kind: the sentence encoder's transformer, its pooling, the normalisation
    ``embed`` applies, and the logistic-regression head, all in the graph."""
    st = model._encoder()
    modules = list(st)
    names = [type(m).__name__ for m in modules]
    if len(modules) < 2 or names[0] != "Transformer" or names[1] != "Pooling":
        raise DocsortError(f"embed export reads Transformer + Pooling encoders, not {names}")
    if any(name != "Normalize" for name in names[2:]):
        raise DocsortError(f"embed export: the encoder's module {names[2]} is not supported")
    mode = modules[1].pooling_mode
    mode = mode[0] if isinstance(mode, (list, tuple)) and len(mode) == 1 else mode
    if mode not in ("mean", "cls"):
        raise DocsortError(f"embed export supports mean or cls pooling, not {mode!r}")
    tokenizer = modules[0].tokenizer
    _fast(tokenizer, f"embed base {model.base!r}")
    weight, bias, activation = logistic_head(model)
    encoder = copy.deepcopy(modules[0].auto_model).float().cpu().eval()
    inputs = input_names(tokenizer)
    net = TokensToLogits(EmbedNet(encoder, mode, weight, bias), inputs).eval()
    return ExportSpec(
        network=net,
        inputs=inputs,
        tokenizer=tokenizer,
        max_length=int(model.max_length),
        activation=activation,
        note=f"{model.base} encoder, {mode} pooling, L2 normalisation, logistic-regression head",
    )


def logistic_head(model: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """The fitted scikit-learn head as ``weight [n_labels, dim]``, ``bias [n_labels]`` and the
    activation giving the same probabilities: softmax for one label per text (a binary
    logistic regression is ``softmax([0, w·x + b])``), sigmoid per label for multi-label."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    head = model.head_
    n_labels = len(model.labels_)
    if isinstance(head, OneVsRestClassifier):
        dim = int(head.n_features_in_)
        weight = np.zeros((n_labels, dim))
        bias = np.zeros(n_labels)
        for j, estimator in enumerate(head.estimators_):
            if isinstance(estimator, LogisticRegression):
                weight[j], bias[j] = estimator.coef_[0], estimator.intercept_[0]
            else:  # a column with one value in training: sklearn's constant predictor
                constant = float(np.ravel(getattr(estimator, "y_", [0]))[0])
                bias[j] = CONSTANT if constant >= 0.5 else -CONSTANT
        return weight, bias, "sigmoid"
    if not isinstance(head, LogisticRegression):
        raise DocsortError(f"export reads a logistic-regression head, not {type(head).__name__}")
    classes = np.asarray(head.classes_)
    weight = np.zeros((n_labels, head.coef_.shape[1]))
    bias = np.full(n_labels, ABSENT)
    if len(classes) == 2:
        weight[classes[1]], bias[classes[1]] = head.coef_[0], head.intercept_[0]
        bias[classes[0]] = 0.0
    else:
        weight[classes], bias[classes] = head.coef_, head.intercept_
    return weight, bias, "softmax"


def encoder_spec(model: EncoderClassifier) -> ExportSpec:
    """The ``encoder`` kind: its network as trained (a LoRA adapter merged into a copy of the
    encoder first), in eval mode (dropout off)."""
    model._check_fitted()
    _fast(model.tokenizer_, f"encoder base {model.base!r}")
    source: EncoderNet = model.net_
    encoder = copy.deepcopy(source.encoder)
    if hasattr(encoder, "merge_and_unload"):  # a peft model: fold the adapter in
        encoder = encoder.merge_and_unload()
    net = EncoderNet(
        encoder, source.head.in_features, source.head.out_features, source.pooling, 0.0
    )
    net.head.load_state_dict(source.head.state_dict())
    net = net.float().cpu().eval()
    inputs = input_names(model.tokenizer_)
    return ExportSpec(
        network=TokensToLogits(net, inputs).eval(),
        inputs=inputs,
        tokenizer=model.tokenizer_,
        max_length=int(model.max_length),
        activation="sigmoid" if model.labels_.multi_label else "softmax",
        pair_separator=model.pair_separator,
        note=f"{model.base} encoder{' (LoRA merged)' if model.lora else ''}, "
        f"{model.pooling} pooling, linear head",
    )


class UnitVectors(nn.Module):
    """Encoder → pooling → L2 normalisation: the unit vectors the ``dual`` kind compares."""

    def __init__(self, encoder: nn.Module, pooling: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return nn.functional.normalize(pooled(self.encoder, batch, self.pooling), p=2, dim=1)


class Pooled(nn.Module):
    """Encoder → pooling, no normalisation (a ``pair`` bi-encoder's cosine normalises)."""

    def __init__(self, encoder: nn.Module, pooling: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return pooled(self.encoder, batch, self.pooling)


class CrossLogit(nn.Module):
    """A ``pair`` cross-encoder up to its logit ``z`` (one per row; dropout off)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.net.head(pooled(self.net.encoder, batch, self.net.pooling)).squeeze(-1)


def _merged_encoder(encoder: nn.Module) -> nn.Module:
    encoder = copy.deepcopy(encoder)
    if hasattr(encoder, "merge_and_unload"):  # a peft model: fold the adapter in
        encoder = encoder.merge_and_unload()
    return encoder.float().cpu().eval()


def dual_spec(model: DualEncoderClassifier) -> ExportSpec:
    """The ``dual`` kind: its one encoder (documents and label descriptions share it), pooling
    and normalisation give unit vectors; the label vectors as trained (prototypes leaned in)
    are carried as state, the scale, bias and the prototypes for labels added later too."""
    model._check_fitted()
    _fast(model.tokenizer_, f"dual base {model.base!r}")
    encoder = _merged_encoder(model.net_.encoder)
    inputs = input_names(model.tokenizer_)
    net = TokensToLogits(UnitVectors(encoder, model.pooling), inputs).eval()
    prototypes = model.prototypes_
    return ExportSpec(
        network=net,
        inputs=inputs,
        tokenizer=model.tokenizer_,
        max_length=int(model.max_length),
        activation="sigmoid" if model.labels_.multi_label else "softmax",
        note=f"{model.base} encoder{' (LoRA merged)' if model.lora else ''}, "
        f"{model.pooling} pooling, L2 normalisation (documents and label descriptions)",
        output="vectors",
        exported_kind="onnx_dual",
        params={
            "label_max_length": int(model.label_max_length),
            "top_k": model.top_k,
            "at_least_one": bool(model.at_least_one),
        },
        state={
            "label_vectors_": np.asarray(model.label_vectors_, dtype=np.float32).copy(),
            "prototypes_": None if prototypes is None else np.asarray(prototypes).copy(),
            "prototype_weight_": float(model.prototype_weight_),
            "scale_": float(model.scale_),
            "bias_": float(model.bias_),
            "default_threshold_": float(model.default_threshold_),
        },
    )


def pair_spec(model: PairScorer) -> ExportSpec:
    """The ``pair`` kind: a cross-encoder up to its logit, or a bi-encoder's pooled vectors;
    the score head (cosine scale and shift, ordinal cuts) is numpy after the graph."""
    model._check_fitted()
    _fast(model.tokenizer_, f"pair base {model.base!r}")
    source = model.net_
    encoder = _merged_encoder(source.encoder)
    inputs = input_names(model.tokenizer_)
    if model.variant == "cross":
        net = EncoderNet(encoder, source.head.in_features, 1, source.pooling, 0.0)
        net.head.load_state_dict(source.head.state_dict())
        body: nn.Module = CrossLogit(net.float().cpu().eval())
        output = "scores"
    else:
        body = Pooled(encoder, source.pooling)
        output = "vectors"

    def number(name: str) -> Any:
        return getattr(source, name).detach().cpu().numpy().astype(np.float64)

    return ExportSpec(
        network=TokensToLogits(body, inputs).eval(),
        inputs=inputs,
        tokenizer=model.tokenizer_,
        max_length=int(model.max_length),
        activation="ordinal" if source.ordinal else "sigmoid",
        head="net/head" if model.variant == "cross" else "head",
        note=f"{model.base} {model.variant}-encoder{' (LoRA merged)' if model.lora else ''}, "
        f"{source.pooling} pooling" + (", linear head" if model.variant == "cross" else ""),
        output=output,
        exported_kind="onnx_pair",
        params={"variant": model.variant},
        state={
            "levels_": np.asarray(model.levels_, dtype=np.float64).copy(),
            "uses_context_": bool(model.uses_context_),
            "context_titles_": dict(model.context_titles_),
            "sep_token_": str(model.tokenizer_.sep_token),
            "score_head_": {
                "cos_scale": float(number("cos_scale")),
                "cos_shift": float(number("cos_shift")),
                "cuts": number("cuts").tolist(),
                "gaps": number("gaps").tolist(),
            },
        },
    )

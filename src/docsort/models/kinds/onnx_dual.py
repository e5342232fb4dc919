"""An exported ``dual`` model on ONNX Runtime: the ``onnx_dual`` kind, made by ``docsort export``.

The graph (``model.onnx``) is the dual's one encoder with its pooling and L2 normalisation: token
ids → unit vectors, for documents and label descriptions alike (the dual kind embeds both with
the same network, at ``max_length`` and ``label_max_length``). The label vectors the model was
trained to score (prototypes leaned in) are stored beside it (``label_vectors.npy``), with the
scale, bias, default threshold and the prototypes (``dual.json``, ``prototypes.npy``): a label
added at predict time (``with_labels``) is read from its description by the same graph, as the
source model reads it. Neither torch nor transformers is imported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from docsort.errors import DocsortError
from docsort.io import write_json
from docsort.models.base import Capabilities, Classifier, corrupt_model, register
from docsort.models.kinds.dual import PROTOTYPES, STATE, VECTORS, DualEncoderClassifier, _unit
from docsort.models.kinds.onnx import OnnxClassifier
from docsort.models.params import Flag, Integer, Optional
from docsort.models.thresholds import limit_decisions


@register("onnx_dual")
class OnnxDualClassifier(OnnxClassifier):
    """A ``dual`` model exported to ONNX: the shared encoder as the graph, label vectors beside."""

    tags: ClassVar[Capabilities] = Capabilities(scores_new_labels=True, adapts=True)
    param_rules = {
        **OnnxClassifier.param_rules,
        "label_max_length": Integer(min=3),
        "top_k": Optional(Integer(min=1)),
        "at_least_one": Flag(),
    }

    def __init__(
        self,
        source_kind: str = "dual",
        max_length: int = 256,
        inputs: Sequence[str] = ("input_ids", "attention_mask"),
        pad_id: int = 0,
        activation: str = "softmax",
        pair_separator: str | None = None,
        quantization: str = "none",
        batch_size: int = 32,
        threads: int | None = None,
        label_max_length: int = 64,
        top_k: int | None = None,
        at_least_one: bool = False,
    ) -> None:
        super().__init__(
            source_kind, max_length, inputs, pad_id, activation, pair_separator,
            quantization, batch_size, threads,
        )  # fmt: skip
        self.label_max_length = label_max_length
        self.top_k = top_k
        self.at_least_one = at_least_one

    # the dual kind's own label handling, reused as it is: label texts, their averaged
    # vectors, the lean toward the prototypes, new label sets and the transductive boost
    _label_texts = DualEncoderClassifier._label_texts
    _label_vectors = DualEncoderClassifier._label_vectors
    _leaned = DualEncoderClassifier._leaned
    _prototypes_for = DualEncoderClassifier._prototypes_for
    _proba = DualEncoderClassifier._proba
    with_labels = DualEncoderClassifier.with_labels
    adapt = DualEncoderClassifier.adapt
    adapted_vectors = DualEncoderClassifier.adapted_vectors

    def _embed(
        self, texts: Sequence[str], max_length: int, description: str = "", labels: bool = False
    ) -> np.ndarray:
        """Unit vectors of ``texts`` read at ``max_length`` tokens, by the graph (documents and
        label texts alike: an exported encoder has no roles)."""
        self._check_fitted()
        if len(texts) == 0:
            return np.zeros((0, self.label_vectors_.shape[1]), dtype=np.float32)
        return _unit(self.outputs(texts, self._tokenizer_at(max_length)))

    def _check_fitted(self) -> None:
        super()._check_fitted()
        if getattr(self, "label_vectors_", None) is None:
            raise DocsortError("this onnx_dual model has no label vectors: export it again")

    def _predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        if len(texts) == 0:
            return np.zeros((0, len(self.labels_)), dtype=np.float64)
        cosine = self._embed(texts, self.max_length) @ self.label_vectors_.T
        return self._proba(cosine, self.labels_.multi_label)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        decisions = Classifier.decide(self, proba)
        if not self.labels_.multi_label:
            return decisions
        return limit_decisions(proba, decisions, self.top_k, self.at_least_one)

    # -- persistence --------------------------------------------------------------------
    def _save_state(self, directory: Path) -> None:
        state = {
            "scale": self.scale_,
            "bias": self.bias_,
            "default_threshold": self.default_threshold_,
            "prototype_weight": self.prototype_weight_,
        }
        write_json(directory / STATE, state)
        np.save(directory / VECTORS, np.asarray(self.label_vectors_, dtype=np.float32))
        if self.prototypes_ is not None:
            np.save(directory / PROTOTYPES, np.asarray(self.prototypes_, dtype=np.float32))

    def _load_state(self, directory: Path) -> None:
        if not (directory / STATE).is_file() or not (directory / VECTORS).is_file():
            raise DocsortError(f"{directory}: {STATE} or {VECTORS} is missing; export again")
        try:
            state = json.loads((directory / STATE).read_text(encoding="utf-8"))
            self.scale_, self.bias_ = float(state["scale"]), float(state["bias"])
            self.default_threshold_ = float(state["default_threshold"])
            self.prototype_weight_ = float(state.get("prototype_weight", 0.0))
            self.label_vectors_ = np.load(directory / VECTORS, allow_pickle=False)
            prototypes = None
            if (directory / PROTOTYPES).is_file():
                prototypes = np.load(directory / PROTOTYPES, allow_pickle=False)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise corrupt_model(directory, f"{STATE} / {VECTORS}: {exc}") from None
        self.prototypes_ = prototypes
        if self.label_vectors_.ndim != 2 or self.label_vectors_.shape[0] != len(self.labels_):
            raise corrupt_model(
                directory,
                f"its manifest lists {len(self.labels_)} labels, its {VECTORS} "
                f"{self.label_vectors_.shape}",
            )

    def _weights_problem(self) -> str | None:
        session = self._session()
        names = tuple(i.name for i in session.get_inputs())
        if set(names) != set(self.inputs):
            return f"its graph reads {list(names)}, its manifest says {list(self.inputs)}"
        shape = session.get_outputs()[0].shape
        dim = self.label_vectors_.shape[1]
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != dim):
            return f"its label vectors have {dim} dimensions, its graph gives {shape}"
        return None

"""An exported ``pair`` model on ONNX Runtime: the ``onnx_pair`` kind, made by ``docsort export``.

A cross-encoder's graph reads "anchor [SEP] target [SEP] context title" and gives its logit; a
bi-encoder's graph gives the pooled vector of one side ((title, phrase) as the tokenizer's text
pair, or the phrase alone), each distinct side embedded once, and numpy takes their cosine
through the learnt scale and shift. The score head after the logit (a sigmoid, or the ordinal
loss's expected level over its cuts) and the map back to the training scores are numpy, from
the numbers in ``pair.json``; the context map is carried as the source model carried it.
Neither torch nor transformers is imported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from docsort.data.dataset import Dataset
from docsort.errors import DocsortError
from docsort.io import write_json
from docsort.models.base import Scorer, corrupt_model, register
from docsort.models.kinds.onnx import GRAPH_RULES, OnnxGraph
from docsort.models.kinds.pair import CONTEXT_TITLES, PAIR_STATE, VARIANTS, PairScorer
from docsort.models.params import Choice

SCORE_HEAD = ("cos_scale", "cos_shift", "cuts", "gaps")


@register("onnx_pair")
class OnnxPairScorer(OnnxGraph, Scorer):
    """A ``pair`` model exported to ONNX: scores (anchor, target[, context]) rows."""

    param_rules = {
        **GRAPH_RULES,
        "activation": Choice("sigmoid", "ordinal"),
        "variant": Choice(*VARIANTS),
    }

    def __init__(
        self,
        source_kind: str = "pair",
        max_length: int = 64,
        inputs: Sequence[str] = ("input_ids", "attention_mask"),
        pad_id: int = 0,
        activation: str = "sigmoid",
        variant: str = "cross",
        quantization: str = "none",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        self.source_kind = source_kind
        self.max_length = max_length
        self.inputs = tuple(inputs)
        self.pad_id = pad_id
        self.activation = activation
        self.variant = variant
        self.quantization = quantization
        self.batch_size = batch_size
        self.threads = threads

    # the rows as the pair kind reads them (anchors, targets, context titles), given to the
    # graph as (first, second) tuples, not joined text (no ``pair_separator``)
    _sides = PairScorer._sides
    _from_unit = PairScorer._from_unit
    context_mode = "text"  # the only one a graph reads: export refuses a learnt context

    def fit(self, train: Dataset, valid: Dataset | None = None) -> OnnxPairScorer:
        raise DocsortError(
            "an onnx_pair model is not trained: make one with `docsort export MODEL_DIR --out "
            "DIR` from a trained pair model"
        )

    def _check_fitted(self) -> None:
        if getattr(self, "files_", None) is None or not hasattr(self, "score_head_"):
            raise DocsortError("this onnx_pair model has no graph: load one made by docsort export")

    def unit_score(self, z: np.ndarray) -> np.ndarray:
        """The pair network's ``unit_score``: a sigmoid, or the expected ordinal level."""
        z = np.asarray(z, dtype=np.float64)
        if self.activation != "ordinal":
            return 1.0 / (1.0 + np.exp(-z))
        cuts = np.asarray(self.score_head_["cuts"], dtype=np.float64)
        gaps = np.asarray(self.score_head_["gaps"], dtype=np.float64)
        return (1.0 / (1.0 + np.exp(-(z[:, None] + cuts))) * gaps).sum(axis=1)

    def _side_vectors(self, phrases: list[str], titles: list[str] | None) -> np.ndarray:
        """One bi-encoder side, each distinct (title, phrase) embedded once."""
        rows: list[Any] = phrases if titles is None else list(zip(titles, phrases, strict=True))
        unique: dict[Any, int] = {}
        owner = np.array([unique.setdefault(row, len(unique)) for row in rows], dtype=np.int64)
        return self.outputs(list(unique)).astype(np.float64)[owner]

    def predict_scores(self, data: Dataset) -> np.ndarray:
        self._check_fitted()
        if len(data) == 0:
            return np.zeros(0, dtype=np.float64)
        anchors, targets, titles = self._sides(data)
        if self.variant == "cross":
            sep = f" {self.sep_token_} "
            joined = [a + sep + t for a, t in zip(anchors, targets, strict=True)]
            if titles is not None:
                joined = [text + sep + title for text, title in zip(joined, titles, strict=True)]
            z = self.outputs(joined).astype(np.float64).reshape(len(joined))
        else:
            first = self._side_vectors(anchors, titles)
            second = self._side_vectors(targets, titles)
            eps = 1e-8  # torch's cosine_similarity: each norm clamped at eps
            norms = np.maximum(np.linalg.norm(first, axis=1), eps) * np.maximum(
                np.linalg.norm(second, axis=1), eps
            )
            cosine = (first * second).sum(axis=1) / norms
            head = self.score_head_
            z = head["cos_scale"] * cosine + head["cos_shift"]
        return self._from_unit(self.unit_score(z))

    # -- persistence --------------------------------------------------------------------
    def _save_state(self, directory: Path) -> None:
        write_json(directory / CONTEXT_TITLES, self.context_titles_)
        state = {
            "levels": np.asarray(self.levels_).tolist(),
            "uses_context": bool(self.uses_context_),
            "sep_token": self.sep_token_,
            "score_head": self.score_head_,
        }
        write_json(directory / PAIR_STATE, state)

    def _load_state(self, directory: Path) -> None:
        for name in (PAIR_STATE, CONTEXT_TITLES):
            if not (directory / name).is_file():
                raise DocsortError(f"{directory}: {name} is missing; export the model again")
        try:
            state = json.loads((directory / PAIR_STATE).read_text(encoding="utf-8"))
            titles = json.loads((directory / CONTEXT_TITLES).read_text(encoding="utf-8"))
            levels = np.asarray(state["levels"], dtype=np.float64)
            head = {k: state["score_head"][k] for k in SCORE_HEAD}
            sep = str(state["sep_token"])
            uses_context = bool(state["uses_context"])
        except (ValueError, KeyError, TypeError) as exc:
            raise corrupt_model(directory, f"{PAIR_STATE}: {exc}") from None
        if not isinstance(titles, dict) or levels.shape != (len(self.labels_),):
            raise corrupt_model(directory, f"its {PAIR_STATE} does not fit its manifest")
        self.levels_, self.score_head_, self.sep_token_ = levels, head, sep
        self.uses_context_, self.context_titles_ = uses_context, titles

    def _weights_problem(self) -> str | None:
        session = self._session()
        problem = self._inputs_problem(session)
        if problem:
            return problem
        rank = len(session.get_outputs()[0].shape)
        if rank != (1 if self.variant == "cross" else 2):
            return f"a {self.variant}-encoder's graph gives rank {rank} outputs"
        return None

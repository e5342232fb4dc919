"""Model kinds. Importing this package registers every built-in kind."""

from docsort.models import (  # noqa: F401
    cascade,
    dual,
    embedding,
    encoder,
    ensemble,
    llm,
    pair,
    tfidf,
)
from docsort.models.base import REGISTRY, Classifier, create, get_kind, load, register

__all__ = ["REGISTRY", "Classifier", "create", "get_kind", "load", "register"]

"""Model kinds. Importing this package registers every built-in kind."""

from docsort.models import cascade, dual, embedding, encoder, llm, pair, tfidf  # noqa: F401
from docsort.models.base import REGISTRY, Classifier, create, get_kind, load, register

__all__ = ["REGISTRY", "Classifier", "create", "get_kind", "load", "register"]

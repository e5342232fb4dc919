"""Models: the contract and registry (``base``), the kinds (``kinds/``) and the networks and
training loop they share (``nn/``). Importing this package registers every built-in kind."""

from docsort.models import kinds  # noqa: F401  (registers the built-in kinds)
from docsort.models.base import (
    REGISTRY,
    Classifier,
    Model,
    Scorer,
    create,
    get_kind,
    load,
    register,
)

__all__ = ["REGISTRY", "Classifier", "Model", "Scorer", "create", "get_kind", "load", "register"]

"""LLM backends are a registry: a backend registered outside docsort is a valid ``backend:``
and builds from the model's parameters, with no edit to the llm kind."""

from __future__ import annotations

import pytest

from docsort.errors import DocsortError
from docsort.models import create
from docsort.models.kinds.llm.backend import BACKENDS, register_backend


def test_a_registered_backend_is_accepted_and_built_from_the_model() -> None:
    built = []

    @register_backend("test-recorder")
    def recorder(model):
        built.append(model.base)
        return object()

    try:
        model = create("llm", {"backend": "test-recorder", "base": "some-model"})
        model.check()
        assert model._backend() is model._backend()  # built once, kept
        assert built == ["some-model"]
        with pytest.raises(ValueError, match="registered twice"):
            register_backend("test-recorder")(lambda model: object())
    finally:
        BACKENDS.pop("test-recorder")
    with pytest.raises(DocsortError, match="backend must be one of 'llamacpp', 'openai'"):
        create("llm", {"backend": "test-recorder"}).check()

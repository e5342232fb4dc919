"""The built-in model kinds, one module each; importing this package registers them all."""

from docsort.models.kinds import (  # noqa: F401
    cascade,
    dual,
    embedding,
    encoder,
    ensemble,
    llm,
    onnx,
    onnx_dual,
    onnx_pair,
    pair,
    tfidf,
)

"""A trained model's network as an ONNX graph, quantized if asked, wrapped as an ``onnx`` model.

``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``: it needs no onnxscript and
gives the plain MatMul/Softmax graph that ONNX Runtime optimises and quantizes) of the module the
kind's ``export_network()`` gives, with the batch and sequence axes dynamic; dynamic int8
quantization is ``onnxruntime.quantization.quantize_dynamic`` (weights per channel, activations
per batch), the head kept in fp32.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docsort.errors import DocsortError
from docsort.models.base import Classifier
from docsort.models.kinds.onnx import MODEL_FILE, TOKENIZER_FILE, OnnxClassifier

if TYPE_CHECKING:
    from docsort.models.nn.export import ExportSpec

OPSET = 17
FP32_FILE = "model.fp32.onnx"  # the unquantized graph, kept apart while quantizing
SAMPLE = ["a short sample text", "a second, somewhat longer sample text to export with"]


def network_of(model: Classifier) -> ExportSpec:
    """The model's network, as its kind exposes it (``export_network``)."""
    export_network = getattr(model, "export_network", None)
    if not model.capabilities().exportable or export_network is None:
        raise DocsortError(
            f"docsort export supports embed and encoder models so far, not {model.kind!r}"
        )
    return export_network()


def write_graph(spec: ExportSpec, path: Path) -> None:
    """``spec.network`` as an ONNX graph at ``path``: inputs ``spec.inputs`` (int64, batch ×
    sequence), output ``logits`` (batch × labels)."""
    import torch

    tokenizer = spec.tokenizer
    if spec.pair_separator:
        sample = tokenizer(SAMPLE[:1], SAMPLE[1:], padding=True, return_tensors="pt")
    else:
        sample = tokenizer(SAMPLE, padding=True, return_tensors="pt")
    tensors = tuple(sample[name].to(torch.int64) for name in spec.inputs)
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "tokens"} for name in spec.inputs}
    axes["logits"] = {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            spec.network.eval(),
            tensors,
            str(path),
            input_names=list(spec.inputs),
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def head_nodes(path: Path, head: str) -> list[str]:
    """The graph's nodes that belong to the head module (``body.<head>``)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name for node in graph.node if f"/{head}/" in node.name]


def quantize_dynamic(source: Path, target: Path, keep_fp32: list[str]) -> None:
    """Int8 weights, one scale per output channel; ``keep_fp32`` nodes (the head) untouched."""
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as quantize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=keep_fp32,
            op_types_to_quantize=["MatMul"],  # not Gather: the embeddings stay fp32
        )


def build(model: Classifier, directory: Path, quantization: str = "none") -> OnnxClassifier:
    """Export ``model`` into ``directory`` (graph + tokenizer) and open it as an ``onnx`` model
    carrying the source's labels, thresholds, temperature, long-document settings and input
    columns. ``directory`` is a working folder: ``save`` the result to keep it."""
    spec = network_of(model)
    directory.mkdir(parents=True, exist_ok=True)
    graph = directory / (FP32_FILE if quantization != "none" else MODEL_FILE)
    write_graph(spec, graph)
    if quantization == "dynamic":
        quantize_dynamic(graph, directory / MODEL_FILE, head_nodes(graph, spec.head))
        graph.unlink()
    elif quantization != "none":
        raise DocsortError(f"quantization must be none or dynamic, not {quantization!r}")
    (directory / TOKENIZER_FILE).write_text(spec.tokenizer.backend_tokenizer.to_str(), "utf-8")
    exported = OnnxClassifier(
        source_kind=model.kind,
        max_length=spec.max_length,
        inputs=spec.inputs,
        pad_id=int(spec.tokenizer.pad_token_id or 0),
        activation=spec.activation,
        pair_separator=spec.pair_separator,
        quantization=quantization,
    )
    exported.labels_ = model.labels_
    exported.thresholds_ = None if model.thresholds_ is None else model.thresholds_.copy()
    exported.temperature_ = model.temperature_
    exported.calibration_ = model.calibration_
    exported.long_doc_ = model.long_doc_
    exported.input_spec_ = dict(getattr(model, "input_spec_", {}) or {})
    exported.train_fingerprint_ = model.train_fingerprint_
    exported._load_weights(directory)
    problem = exported._weights_problem()
    if problem:
        raise DocsortError(f"the exported graph does not fit the model: {problem}")
    exported.__dict__["graph_note_"] = spec.note
    return exported


def versions() -> dict[str, Any]:
    """The libraries that made and run the graph."""
    import onnx
    import onnxruntime
    import torch

    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__,
            "torch": torch.__version__, "opset": OPSET}  # fmt: skip

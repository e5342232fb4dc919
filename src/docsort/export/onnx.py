"""A trained model's network as an ONNX graph, quantized if asked, wrapped as an ``onnx`` model.

``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``: it needs no onnxscript and
gives the plain MatMul/Softmax graph that ONNX Runtime optimises and quantizes) of the module the
kind's ``export_network()`` gives, with the batch and sequence axes dynamic; int8 (dynamic, or
static QDQ with calibration rows, the head and any nodes that change the answers kept in fp32)
is ``export.quantize``'s.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docsort.errors import DocsortError
from docsort.export.quantize import Scheme, plan_and_quantize
from docsort.models.base import Classifier, create
from docsort.models.kinds.onnx import MODEL_FILE, QUANTIZATIONS, TOKENIZER_FILE, OnnxClassifier

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
            f"docsort export supports embed, encoder, dual and pair models, not {model.kind!r}"
        )
    return export_network()


def write_graph(spec: ExportSpec, path: Path) -> None:
    """``spec.network`` as an ONNX graph at ``path``: inputs ``spec.inputs`` (int64, batch ×
    sequence), output ``spec.output`` (batch × labels, batch × dim, or batch)."""
    import torch

    tokenizer = spec.tokenizer
    if spec.pair_separator:
        sample = tokenizer(SAMPLE[:1], SAMPLE[1:], padding=True, return_tensors="pt")
    else:
        sample = tokenizer(SAMPLE, padding=True, return_tensors="pt")
    tensors = tuple(sample[name].to(torch.int64) for name in spec.inputs)
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "tokens"} for name in spec.inputs}
    axes[spec.output] = {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            spec.network.eval(),
            tensors,
            str(path),
            input_names=list(spec.inputs),
            output_names=[spec.output],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def head_nodes(path: Path, head: str) -> list[str]:
    """The graph's nodes that belong to the head module (``body.<head>``)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name for node in graph.node if f"/{head}/" in node.name]


def build(
    model: Classifier,
    directory: Path,
    quantization: str = "none",
    *,
    scheme: Scheme | None = None,
    keep_fp32: Sequence[str] = (),
    calibration: Sequence[str] = (),
    min_agreement: float = 0.995,
) -> OnnxClassifier:
    """Export ``model`` into ``directory`` (graph + tokenizer) and open it as an ``onnx`` model
    carrying the source's labels, thresholds, temperature, long-document settings and input
    columns. ``directory`` is a working folder: ``save`` the result to keep it.

    ``quantization`` ``dynamic`` or ``static`` turns the fp32 graph into int8 by ``scheme``
    (``export.quantize``), keeping the head and the ``keep_fp32`` groups (or, for ``auto``,
    the groups searched on the ``calibration`` rows to reach ``min_agreement``) in fp32; what
    was kept is in the result's ``precision_`` (export.json's ``precision``)."""
    if quantization not in QUANTIZATIONS:
        raise DocsortError(f"quantization must be none, dynamic or static, not {quantization!r}")
    spec = network_of(model)
    directory.mkdir(parents=True, exist_ok=True)
    graph = directory / MODEL_FILE
    write_graph(spec, graph)
    (directory / TOKENIZER_FILE).write_text(spec.tokenizer.backend_tokenizer.to_str(), "utf-8")
    params = {
        "source_kind": model.kind,
        "max_length": spec.max_length,
        "inputs": spec.inputs,
        "pad_id": int(spec.tokenizer.pad_token_id or 0),
        "activation": spec.activation,
        "quantization": quantization,
        **spec.params,
    }
    if spec.pair_separator:
        params["pair_separator"] = spec.pair_separator
    exported = create(spec.exported_kind, params)
    exported.labels_ = model.labels_
    thresholds = getattr(model, "thresholds_", None)
    exported.thresholds_ = None if thresholds is None else thresholds.copy()
    for name in ("temperature_", "calibration_", "long_doc_", "train_fingerprint_"):
        setattr(exported, name, getattr(model, name, None))
    exported.input_spec_ = dict(getattr(model, "input_spec_", {}) or {})
    exported.__dict__.update(spec.state)
    exported._save_state(directory)  # what the kind keeps beside the graph (label vectors)
    exported._load_weights(directory)
    problem = exported._weights_problem()
    if problem:
        raise DocsortError(f"the exported graph does not fit the model: {problem}")
    exported.__dict__["graph_note_"] = spec.note
    exported.__dict__["precision_"] = None
    if quantization != "none":
        scheme = scheme or Scheme(method=quantization)
        if scheme.method != quantization:
            raise DocsortError(f"the scheme is {scheme.method}, the quantization {quantization}")
        fp32 = directory / FP32_FILE
        os.replace(graph, fp32)
        head = head_nodes(fp32, spec.head)
        work = directory / "quantizing"
        work.mkdir()
        plan = plan_and_quantize(
            exported, fp32, graph, work, scheme, head,
            list(keep_fp32), list(calibration), min_agreement,
        )  # fmt: skip
        fp32.unlink()
        shutil.rmtree(work, ignore_errors=True)
        exported._load_weights(directory)
        exported.__dict__["precision_"] = plan.report(head)
    return exported


def versions() -> dict[str, Any]:
    """The libraries that made and run the graph."""
    import onnx
    import onnxruntime
    import torch

    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__,
            "torch": torch.__version__, "opset": OPSET}  # fmt: skip

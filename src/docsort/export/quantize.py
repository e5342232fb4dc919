"""Int8 graphs that keep the source's answers: dynamic or static (QDQ) quantization, with the
nodes that cause disagreements kept in fp32 (mixed precision).

Both methods are ``onnxruntime.quantization``'s, on the MatMul nodes whose second input is a
weight (the word embeddings, a Gather, the attention products of two activations and the head
stay fp32):

- ``dynamic``: int8 weights (per output channel), activations quantized per batch at run time.
- ``static`` (QDQ): int8 weights per channel, uint8 activations whose ranges are calibrated once
  on calibration rows, read batch by batch as the exported model reads text at predict time
  (``CalibrationRows``); ONNX Runtime fuses each QuantizeLinear/DequantizeLinear pair around a
  MatMul into an integer kernel.

The quantizable MatMuls are grouped per transformer layer and role (``qkv``, ``attention-output``,
``ffn-input``, ``ffn-output``; ``matmul_groups``); ``keep_fp32`` names groups to leave in fp32,
or ``auto`` searches for them (``search``): every group quantized alone is measured against the
fp32 graph on the calibration rows (its label flips and mean |Δp|), then the most harmful groups
are kept in fp32, fewest first, until the labels on the calibration rows agree at least the
target share. The check rows (``--check``) stay out of that search: they only judge the result.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from docsort.errors import DocsortError
from docsort.models.kinds.onnx import OnnxClassifier, open_session

ROLES = ("qkv", "attention-output", "ffn-input", "ffn-output")
CALIBRATIONS = ("minmax", "percentile", "entropy")
KEEP_WORDS = ("auto", "none", "first", "last", *ROLES)
LAYER_NODE = re.compile(r"/layer\.(\d+)/(.+)/MatMul(?:_\d+)?$")


@dataclass(frozen=True)
class Scheme:
    """How the int8 graph is made: the method and its settings (recorded in export.json)."""

    method: str = "static"  # dynamic | static
    per_channel: bool = True
    reduce_range: bool = False  # 7-bit weights: no u8s8 overflow on CPUs without VNNI
    calibrate: str = "minmax"  # static: how activation ranges are read from the rows
    activations: str = "uint8"  # static: uint8 activations, int8 weights (x86's u8s8 kernels)
    fp32_residual: bool = True  # static: only the int8 MatMuls read rounded activations

    def describe(self) -> str:
        weights = "per channel" if self.per_channel else "per tensor"
        bits = "7-bit" if self.reduce_range else "8-bit"
        if self.method == "dynamic":
            return f"dynamic int8 ({bits} weights {weights}, activations per batch; MatMul only)"
        residual = "" if self.fp32_residual else "; the residual stream rounded too"
        return (
            f"static int8 QDQ ({bits} weights {weights}, {self.activations} activations "
            f"calibrated by {self.calibrate}; MatMul only{residual})"
        )


def role_of(module: str) -> str | None:
    """A layer's MatMul by the module it belongs to (BERT's and MPNet's names)."""
    last = module.rsplit("/", 1)[-1]
    if last in ("query", "key", "value", "q", "k", "v"):
        return "qkv"
    if module.endswith(("attention/output/dense", "attn/o")):
        return "attention-output"
    if module.endswith("intermediate/dense"):
        return "ffn-input"
    if module.endswith("output/dense"):
        return "ffn-output"
    return None


def matmul_groups(graph: Path, head: Sequence[str] = ()) -> dict[str, list[str]]:
    """The quantizable MatMul nodes (second input a weight), grouped ``layer.N.role``; the
    ``head`` nodes are left out: the head always stays fp32. A MatMul outside the transformer
    layers is in the group ``other``."""
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    weights = {init.name for init in model.graph.initializer}
    groups: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.op_type != "MatMul" or len(node.input) < 2 or node.input[1] not in weights:
            continue
        if node.name in head:
            continue
        match = LAYER_NODE.search(node.name)
        role = role_of(match.group(2)) if match else None
        name = f"layer.{int(match.group(1))}.{role}" if match and role else "other"
        groups.setdefault(name, []).append(node.name)
    return dict(sorted(groups.items(), key=lambda item: _group_order(item[0])))


def _group_order(name: str) -> tuple[int, int]:
    if not name.startswith("layer."):
        return (10**6, 0)
    layer, role = name[len("layer.") :].split(".", 1)
    return (int(layer), ROLES.index(role))


def layers_of(groups: dict[str, list[str]]) -> list[int]:
    return sorted({int(g.split(".")[1]) for g in groups if g.startswith("layer.")})


def resolve_keep(spec: Sequence[str], groups: dict[str, list[str]]) -> list[str]:
    """The groups a ``--keep-fp32`` list names: ``none``, ``first`` / ``last`` (every role of
    the first / last layer), a role in every layer (``qkv``, ``attention-output``,
    ``ffn-input``, ``ffn-output``), ``layer.N`` (all of layer N) or a group ``layer.N.role``."""
    layers = layers_of(groups)
    chosen: list[str] = []
    for word in spec:
        if word == "none":
            continue
        if word in ("first", "last") and layers:
            layer = layers[0] if word == "first" else layers[-1]
            picked = [g for g in groups if g.startswith(f"layer.{layer}.")]
        elif word in ROLES:
            picked = [g for g in groups if g.endswith(f".{word}")]
        elif re.fullmatch(r"layer\.\d+", word):
            picked = [g for g in groups if g.startswith(f"{word}.")]
        else:
            picked = [word] if word in groups else []
        if not picked:
            raise DocsortError(
                f"--keep-fp32 {word!r} names no node of this graph: give auto, none, first, "
                f"last, {', '.join(ROLES)}, layer.N (0-{layers[-1] if layers else 0}) or "
                "layer.N.role"
            )
        chosen.extend(g for g in picked if g not in chosen)
    return chosen


def parse_keep(text: str | Sequence[str] | None) -> list[str]:
    """``--keep-fp32`` as a list of words (comma-separated text or a list)."""
    if text is None:
        return []
    words = text.split(",") if isinstance(text, str) else list(text)
    words = [str(w).strip() for w in words if str(w).strip()]
    if "auto" in words and len(words) > 1:
        raise DocsortError("--keep-fp32 auto searches the groups itself: give it alone")
    return words


class CalibrationRows:
    """``onnxruntime.quantization.CalibrationDataReader`` over calibration texts: one row per
    batch, so that no padding token widens the activation ranges."""

    def __init__(self, exported: OnnxClassifier, texts: Sequence[str]) -> None:
        batch_size = exported.batch_size
        exported.batch_size = 1
        try:
            self.feeds = [feed for _, feed in exported.feeds(texts)]
        finally:
            exported.batch_size = batch_size
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.feeds):
            return None
        self.position += 1
        return self.feeds[self.position - 1]

    def rewind(self) -> None:
        self.position = 0

    def __len__(self) -> int:
        return len(self.feeds)


def _reader(rows: CalibrationRows) -> Any:
    """``rows`` as a subclass of ORT's reader (some ORT versions check the type)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return rows.get_next()

        def rewind(self) -> None:
            rows.rewind()

    rows.rewind()
    return Reader()


def quantize(
    source: Path,
    target: Path,
    scheme: Scheme,
    nodes: Sequence[str],
    rows: CalibrationRows | None = None,
    cache: Path | None = None,
) -> None:
    """Write ``source`` to ``target`` with the MatMul ``nodes`` quantized by ``scheme`` (every
    other node fp32). Static quantization calibrates on ``rows`` once: the ranges are kept in
    ``cache`` and read back by every later call with the same cache. A MatMul's output stays
    fp32 (the bias Add after it is fp32), so ONNX Runtime runs it as an integer MatMul with a
    float result."""
    from onnxruntime.quantization import QuantFormat, QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_dynamic
    from onnxruntime.quantization import quantize_static as ort_static

    if not nodes:  # nothing to quantize: the fp32 graph as it is
        shutil.copyfile(source, target)
        return
    common = {
        "per_channel": scheme.per_channel,
        "reduce_range": scheme.reduce_range,
        "weight_type": QuantType.QInt8,
        # named one by one: op types alone would take attention's two activation products too
        "nodes_to_quantize": list(nodes),
        "op_types_to_quantize": ["MatMul"],
    }
    with warnings.catch_warnings(), _quiet_ort_logging():
        warnings.simplefilter("ignore")
        if scheme.method == "dynamic":
            ort_dynamic(str(source), str(target), **common)
            return
        if scheme.method != "static":
            raise DocsortError(f"quantization must be dynamic or static, not {scheme.method!r}")
        from onnxruntime.quantization import CalibrationMethod

        cached = cache is not None and cache.is_file()
        if rows is None and not cached:
            raise DocsortError("static quantization needs calibration rows (--calibration DATA)")
        method = {
            "minmax": CalibrationMethod.MinMax,
            "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy,
        }[scheme.calibrate]
        ort_static(
            str(source),
            str(target),
            None if cached or rows is None else _reader(rows),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8 if scheme.activations == "uint8" else QuantType.QInt8,
            calibrate_method=method,
            calibration_cache_path=None if cache is None else str(cache),
            extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]},
            **common,
        )
        import onnx

        if scheme.fp32_residual:
            model = onnx.load(str(target))
            only_matmuls_read_int8(model, set(nodes))
            onnx.save(model, str(target))


@contextlib.contextmanager
def _quiet_ort_logging() -> Iterator[None]:
    """The quantizer logs each node it skips at INFO/WARNING through ``logging``: not the user's."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


@contextlib.contextmanager
def using_graph(exported: OnnxClassifier, graph: Path) -> Iterator[OnnxClassifier]:
    """``exported`` answering with another graph (same inputs and outputs) for a while."""
    saved = {k: exported.__dict__.get(k) for k in ("_session_", "_session_threads")}
    exported.__dict__["_session_"] = open_session(graph, exported.threads)
    exported.__dict__["_session_threads"] = exported.threads
    try:
        yield exported
    finally:
        exported.__dict__.update(saved)


def agreement(exported: OnnxClassifier, reference: np.ndarray, proba: np.ndarray) -> dict:
    """Label agreement (a multi-label row agrees when its whole set does), flips, max and mean
    |Δp| of ``proba`` against ``reference``."""
    same = exported.decide(reference) == exported.decide(proba)
    agreeing = same.all(axis=1) if same.ndim == 2 else same
    delta = np.abs(reference - proba)
    return {
        "label_agreement": round(float(agreeing.mean()), 6),
        "flips": int((~agreeing).sum()),
        "max_abs_dp": round(float(delta.max()), 6),
        "mean_abs_dp": round(float(delta.mean()), 7),
    }


@dataclass
class Plan:
    """What a quantization kept in fp32 and how it was chosen (export.json's ``precision``)."""

    scheme: Scheme
    kept_groups: list[str]
    kept_nodes: list[str]
    quantized_nodes: int
    calibration_rows: int = 0
    calibration_agreement: dict[str, Any] | None = None
    sensitivity: dict[str, dict[str, Any]] = field(default_factory=dict)
    trials: list[dict[str, Any]] = field(default_factory=list)
    search_seconds: float = 0.0

    def report(self, head_nodes: Sequence[str]) -> dict[str, Any]:
        return {
            **asdict(self.scheme),
            "description": self.scheme.describe(),
            "fp32_groups": self.kept_groups,
            "fp32_nodes": [*head_nodes, *self.kept_nodes],
            "quantized_matmuls": self.quantized_nodes,
            "calibration_rows": self.calibration_rows,
            "calibration_agreement": self.calibration_agreement,
            "sensitivity": self.sensitivity,
            "search": self.trials,
            "search_seconds": round(self.search_seconds, 1),
        }


def write_mixed(qdq: Any, fp32: Any, keep: set[str], target: Path) -> None:
    """``qdq`` (a static QDQ graph) with the MatMuls ``keep`` reading their fp32 inputs and
    weights (from ``fp32``) again, saved at ``target``: what the quantizer gives with those
    nodes left out."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(qdq)
    graph = model.graph
    original = {n.name: n for n in fp32.graph.node if n.name in keep}
    weights = {i.name: i for i in fp32.graph.initializer}
    present = {i.name for i in graph.initializer}
    for node in graph.node:
        if node.name in original:
            del node.input[:]
            node.input.extend(original[node.name].input)
            for name in node.input:
                if name in weights and name not in present:
                    graph.initializer.append(weights[name])
                    present.add(name)
    _prune(graph)
    onnx.save(model, str(target))


def only_matmuls_read_int8(model: Any, quantized: set[str]) -> None:
    """Every node but the ``quantized`` MatMuls reads the float tensors again: ONNX Runtime's
    QDQ quantizer hands a quantized activation's DequantizeLinear output to *every* reader
    of the tensor, so the residual Adds (and Shapes) read the int8-rounded hidden states too,
    which cost labels (the residual stream is not what int8 MatMuls need to be fast)."""
    graph = model.graph
    quantizers = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    floats = {
        n.output[0]: quantizers[n.input[0]]
        for n in graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in quantizers
    }
    for node in graph.node:
        if node.name in quantized or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for i, name in enumerate(node.input):
            if name in floats:
                node.input[i] = floats[name]
    _prune(graph)


def _prune(graph: Any) -> None:
    """Drop the Q/DQ nodes no node reads any more, then the initializers nobody reads."""
    outputs = {o.name for o in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        dead = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(o in read for o in n.output)]  # fmt: skip
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in read]:
        graph.initializer.remove(init)


class Trials:
    """Quantize with some groups kept in fp32 and measure it on the calibration rows."""

    def __init__(
        self,
        exported: OnnxClassifier,
        fp32: Path,
        work: Path,
        scheme: Scheme,
        groups: dict[str, list[str]],
        head: Sequence[str],
        texts: Sequence[str],
        rows: CalibrationRows | None,
    ) -> None:
        self.exported, self.fp32, self.work, self.scheme = exported, fp32, work, scheme
        self.groups, self.head, self.texts, self.rows = groups, list(head), list(texts), rows
        # the activation ranges, measured once per calibration method and read back after
        self.cache = work / f"ranges-{scheme.calibrate}.json" if scheme.method == "static" else None
        self.full: Any = None  # the static graph with every group int8, for quick trials
        self.float_: Any = None
        self.reference: np.ndarray | None = None
        if texts:
            with using_graph(exported, fp32) as model:
                self.reference = model.predict_proba(self.texts)

    def nodes(self, kept: Sequence[str]) -> list[str]:
        """The MatMuls quantized when ``kept`` groups stay fp32."""
        return [n for g, names in self.groups.items() if g not in kept for n in names]

    def make(self, kept: Sequence[str], target: Path) -> None:
        """The graph with ``kept`` in fp32, made by ONNX Runtime's quantizer."""
        quantize(self.fp32, target, self.scheme, self.nodes(kept), self.rows, self.cache)

    def trial(self, kept: Sequence[str], target: Path) -> None:
        """The same graph, quickly: a static graph is the fully quantized one (made once) with
        the ``kept`` MatMuls rewired to their fp32 inputs and weights (the quantizer's Python
        loop over weight channels took most of a trial's time); a dynamic one is made anew."""
        if self.scheme.method != "static" or not self.scheme.fp32_residual:
            self.make(kept, target)
            return
        import onnx

        if self.full is None:
            whole = self.work / "all-int8.onnx"
            self.make([], whole)
            self.full = onnx.load(str(whole))
            whole.unlink()
        keep = {n for g in kept for n in self.groups[g]}
        write_mixed(self.full, self.float_model(), keep, target)

    def float_model(self) -> Any:
        if self.float_ is None:
            import onnx

            self.float_ = onnx.load(str(self.fp32))
        return self.float_

    def score(self, graph: Path) -> dict[str, Any]:
        """The graph at ``graph`` against the fp32 graph on the calibration rows."""
        assert self.reference is not None
        with using_graph(self.exported, graph) as model:
            return agreement(model, self.reference, model.predict_proba(self.texts))

    def measure(self, kept: Sequence[str], only: Sequence[str] | None = None) -> dict[str, Any]:
        """Agreement on the calibration rows with ``kept`` in fp32 (or ``only`` quantized)."""
        if only is not None:
            kept = [g for g in self.groups if g not in only]
        trial = self.work / "trial.onnx"
        self.trial(kept, trial)
        try:
            return self.score(trial)
        finally:
            trial.unlink()


def search(trials: Trials, target: float) -> tuple[list[str], dict, dict, list[dict]]:
    """The fewest groups to keep in fp32 for ``target`` agreement on the calibration rows.

    All quantized first; if that falls short, every group is quantized alone and ranked by
    the labels it flips, then its mean |Δp|; the most harmful are kept in fp32, 1, 2, 4, …
    of them until the target holds, then bisected down to the fewest that still hold it."""
    trail: list[dict[str, Any]] = []

    def tried(kept: list[str]) -> dict[str, Any]:
        measured = trials.measure(kept)
        trail.append({"fp32_groups": list(kept), **measured})
        return measured

    every = tried([])
    if every["label_agreement"] >= target:
        return [], every, {}, trail
    sensitivity = {g: trials.measure([], only=[g]) for g in trials.groups}
    ranked = sorted(
        trials.groups, key=lambda g: (-sensitivity[g]["flips"], -sensitivity[g]["mean_abs_dp"])
    )
    low, high, best = 0, None, None  # low: a count known to fall short
    count = 1
    while count <= len(ranked):
        measured = tried(ranked[:count])
        if measured["label_agreement"] >= target:
            high, best = count, measured
            break
        low = count
        count = min(count * 2, len(ranked)) if count < len(ranked) else len(ranked) + 1
    if high is None:  # even every group in fp32 (nothing quantized) falls short: keep all
        return list(ranked), trail[-1], sensitivity, trail
    while high - low > 1:
        middle = (low + high) // 2
        measured = tried(ranked[:middle])
        if measured["label_agreement"] >= target:
            high, best = middle, measured
        else:
            low = middle
    return ranked[:high], best, sensitivity, trail


def plan_and_quantize(
    exported: OnnxClassifier,
    fp32: Path,
    target: Path,
    work: Path,
    scheme: Scheme,
    head: Sequence[str],
    keep: Sequence[str],
    calibration: Sequence[str],
    min_agreement: float,
) -> Plan:
    """Quantize ``fp32`` into ``target`` by ``scheme``, keeping ``keep`` (group words, or
    ``["auto"]``: searched on ``calibration``) in fp32, and say what was kept."""
    started = time.perf_counter()
    head_nodes = list(head)
    groups = matmul_groups(fp32, head_nodes)
    if scheme.method == "static" and not calibration:
        raise DocsortError(
            "--quantize static needs --calibration DATA: rows (a few hundred, e.g. from the "
            "training set) on which the activation ranges are measured"
        )
    if list(keep) == ["auto"] and not calibration:
        raise DocsortError("--keep-fp32 auto needs --calibration DATA to search on")
    rows = CalibrationRows(exported, calibration) if scheme.method == "static" else None
    trials = Trials(exported, fp32, work, scheme, groups, head_nodes, calibration, rows)
    sensitivity: dict[str, dict[str, Any]] = {}
    trail: list[dict[str, Any]] = []
    measured = None
    if list(keep) == ["auto"]:
        kept, measured, sensitivity, trail = search(trials, min_agreement)
        trials.make(kept, target)
    else:
        kept = resolve_keep(keep, groups)
        trials.make(kept, target)
        if calibration:
            measured = trials.score(target)
    kept_nodes = [n for g in kept for n in groups[g]]
    return Plan(
        scheme=scheme,
        kept_groups=list(kept),
        kept_nodes=kept_nodes,
        quantized_nodes=sum(len(v) for v in groups.values()) - len(kept_nodes),
        calibration_rows=len(calibration),
        calibration_agreement=measured,
        sensitivity=sensitivity,
        trials=trail,
        search_seconds=time.perf_counter() - started,
    )

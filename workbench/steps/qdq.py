"""Edits of ONNX QDQ graphs (``QuantizeLinear → DequantizeLinear`` around the tensors a quantizer chose):
find the quantized layers, and keep some of them float.

One edit serves two masters, so that what the quantization debugger predicts is what the quantization
step then makes: ``workbench.analysis.quant_debug`` keeps layers float in an INT8 model to measure their
share of the error, and ONNX Runtime's static quantization step applies the same edit to the layers named
in ``nodes_to_exclude`` (ONNX Runtime on its own leaves such a node's input quantized when the node that
produces it is quantized: the excluded node then computes in float on INT8-rounded values).

Keeping a layer float means: each input it reads through ``DequantizeLinear(QuantizeLinear(x))`` reads
``x``; each weight it reads through ``DequantizeLinear(w_quantized)`` reads the float weight (from the
float model where it has the same name, else its dequantized value); an output quantized straight into a
graph output is not quantized. A ReLU that the quantizer folded into an unsigned range (it removed the
node, the range starting at 0 did its work) is put back in front of the layer, and so is a Clip (ReLU6)
folded the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: ONNX data types of zero points -> their integer range
INT_RANGES = {2: (0, 255), 3: (-128, 127), 4: (0, 65535), 5: (-32768, 32767), 6: (-2**31, 2**31 - 1),
              21: (0, 15), 22: (-8, 7)}
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
FLOAT_SUFFIX = "__wb_float"
RELU_SUFFIX = "__wb_relu"
CLIP_SUFFIX = "__wb_clip"


@dataclass
class QdqLayer:
    """A node whose inputs are quantized, and what keeping it float changes."""

    node: str
    op_type: str
    index: int
    acts: list[tuple[int, str]] = field(default_factory=list)  # (input slot, float tensor before Q)
    weights: list[tuple[int, str, str]] = field(default_factory=list)  # (slot, float weight name, its base name)
    output_dqs: list[tuple[str, str]] = field(default_factory=list)  # (DQ node into a graph output, float tensor)
    ranges: list[tuple[float, float, float]] = field(default_factory=list)  # per act: (lo, hi, step) chosen
    per_channel: list[bool] = field(default_factory=list)  # per weight: one scale per channel (not per tensor)

    @property
    def act_names(self) -> list[str]:
        return [a for _, a in self.acts]

    @property
    def weight_names(self) -> list[str]:
        return [b for _, _, b in self.weights]


@dataclass
class QdqGraph:
    """The quantized layers of a QDQ model, the float weights they need, and the ReLUs folded away."""

    layers: list[QdqLayer]
    float_weights: dict[str, np.ndarray]  # name it gets in the graph -> value
    relu_folded: set[str]
    notes: list[str]
    missing: int = 0  # quantized weights with no float twin of the same name and shape in the float model
    clip_folded: dict[str, tuple[float, float]] = field(default_factory=dict)  # tensor -> Clip (ReLU6) bounds


def _array(t: Any) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(t)


def _range(dq: Any, inits: dict[str, Any]) -> tuple[float, float, float]:
    if dq.input[1] not in inits:
        return (math.nan, math.nan, math.nan)
    scale = np.asarray(_array(inits[dq.input[1]]), np.float64).reshape(-1)
    if len(dq.input) > 2 and dq.input[2] in inits:
        zp = np.asarray(_array(inits[dq.input[2]]), np.float64).reshape(-1)
        qmin, qmax = INT_RANGES.get(inits[dq.input[2]].data_type, (0, 255))
    else:
        zp, (qmin, qmax) = np.zeros_like(scale), (0, 255)
    return float(((qmin - zp) * scale).min()), float(((qmax - zp) * scale).max()), float(scale.max())


def _dequantize(dq: Any, inits: dict[str, Any]) -> np.ndarray:
    q = _array(inits[dq.input[0]]).astype(np.float64)
    scale = _array(inits[dq.input[1]]).astype(np.float64)
    zp = _array(inits[dq.input[2]]).astype(np.float64) if len(dq.input) > 2 and dq.input[2] in inits else 0.0
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
    if np.ndim(scale) == 1 and scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zp = np.reshape(zp, shape) if np.ndim(zp) else zp
    return (q - zp) * scale


def _clip_bounds(node: Any, inits: dict[str, Any]) -> tuple[float, float]:
    """A float model's Clip node's (min, max): inputs (opset >= 11) or attributes; a missing one is infinite."""
    bounds = [-math.inf, math.inf]
    for i, name in enumerate(node.input[1:3]):
        if name and name in inits:
            bounds[i] = float(np.asarray(_array(inits[name])).reshape(-1)[0])
    for a in node.attribute:
        if a.name in ("min", "max"):
            bounds[a.name == "max"] = float(a.f)
    return bounds[0], bounds[1]


def floated(g: Any, src: str, graph: QdqGraph, by_name: dict[str, Any]) -> str:
    """The float value a layer kept float reads for ``src``: ``src`` itself, or ``src`` through the ReLU or
    Clip the quantizer folded into its range (added to ``g`` once)."""
    from onnx import helper, numpy_helper

    if src in graph.relu_folded:
        out = src + RELU_SUFFIX
        if out not in by_name:
            by_name[out] = helper.make_node("Relu", [src], [out], name=out)
            g.node.append(by_name[out])
        return out
    if src in graph.clip_folded:
        out = src + CLIP_SUFFIX
        if out not in by_name:
            lo, hi = graph.clip_folded[src]
            names = [out + "_min", out + "_max"]
            g.initializer.extend(numpy_helper.from_array(np.array(v, np.float32), n) for v, n in zip((lo, hi), names, strict=True))
            by_name[out] = helper.make_node("Clip", [src, *names], [out], name=out)
            g.node.append(by_name[out])
        return out
    return src


def read(proto: Any, float_proto: Any = None) -> QdqGraph:
    """The quantized layers of the QDQ model ``proto``; ``float_proto`` is the float model it came from
    (its weights are the float twins, its ReLUs show which ones the quantizer folded)."""
    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    float_inits = {t.name: t for t in float_proto.graph.initializer} if float_proto is not None else {}
    ref_nodes = {o: n for n in float_proto.graph.node for o in n.output} if float_proto is not None else {}
    outputs = {o.name for o in graph.output}
    quantizers: dict[str, list[Any]] = {}
    for n in graph.node:
        if n.op_type == "QuantizeLinear":
            quantizers.setdefault(n.input[0], []).append(n)
    dq_of = {n.input[0]: n for n in graph.node if n.op_type == "DequantizeLinear"}
    layers, weights, folded, clipped, missing = [], {}, set(), {}, 0
    for index, node in enumerate(graph.node):
        if node.op_type in QDQ_OPS:
            continue
        layer = QdqLayer(node.name, node.op_type, index)
        for slot, name in enumerate(node.input):
            dq = producers.get(name)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            q = producers.get(dq.input[0])
            if q is not None and q.op_type == "QuantizeLinear":  # an activation: x -> Q -> DQ
                src = producers.get(q.input[0])
                ref = ref_nodes.get(q.input[0])
                if ref is not None and ref.op_type in ("Relu", "Clip") and (src is None or src.op_type != ref.op_type):
                    if ref.op_type == "Relu":
                        folded.add(q.input[0])
                    else:  # ReLU6 and other clips folded into the range
                        clipped[q.input[0]] = _clip_bounds(ref, float_inits)
                layer.acts.append((slot, q.input[0]))
                layer.ranges.append(_range(dq, inits))
            elif dq.input[0] in inits:  # a weight or bias stored quantized
                base = dq.input[0].removesuffix("_quantized")
                twin = float_inits.get(base)
                if twin is not None and tuple(twin.dims) == tuple(inits[dq.input[0]].dims):
                    value = _array(twin)
                else:  # no float twin (fused by pre-processing): its dequantized value
                    value = _dequantize(dq, inits)
                    missing += 1
                weights[base + FLOAT_SUFFIX] = np.asarray(value, np.float32)
                layer.weights.append((slot, base + FLOAT_SUFFIX, base))
                scale = inits.get(dq.input[1])
                layer.per_channel.append(scale is not None and math.prod(scale.dims) > 1)
        for out in node.output:  # its output quantized straight into a graph output
            for q in quantizers.get(out, []):
                dq = dq_of.get(q.output[0])
                if dq is not None and dq.output[0] in outputs:
                    layer.output_dqs.append((dq.name, out))
        if layer.acts or layer.weights:
            layers.append(layer)
    notes = [f"{missing} quantized weight(s) had no float twin in the float model (fused by pre-processing): "
             "kept at their dequantized values"] if missing else []
    return QdqGraph(layers, weights, folded, notes, missing, clipped)


def keep_float(proto: Any, names: set[str] | list[str], graph: QdqGraph | None = None, *,
               prune: bool = False) -> list[str]:
    """Keep the layers ``names`` of the QDQ model ``proto`` float, in place (see the module docstring).

    ``prune=True`` also removes the Q/DQ nodes and initializers nothing reads any more (for a model that is
    kept); returns the names of the layers it changed."""
    from onnx import helper, numpy_helper

    graph = graph or read(proto)
    wanted = set(names)
    g = proto.graph
    by_name = {n.name: n for n in g.node}
    added: set[str] = set()
    changed = []
    for layer in graph.layers:
        if layer.node not in wanted or layer.node not in by_name:
            continue
        changed.append(layer.node)
        node = by_name[layer.node]
        for slot, src in layer.acts:
            node.input[slot] = floated(g, src, graph, by_name)
        for slot, fname, _ in layer.weights:
            node.input[slot] = fname
            if fname not in added:
                g.initializer.append(numpy_helper.from_array(graph.float_weights[fname], fname))
                added.add(fname)
        for dq_name, src in layer.output_dqs:
            dq = by_name.get(dq_name)
            if dq is not None:
                g.node.remove(dq)
                by_name[dq_name + FLOAT_SUFFIX] = helper.make_node("Identity", [src], [dq.output[0]],
                                                                   name=dq_name + FLOAT_SUFFIX)
                g.node.append(by_name[dq_name + FLOAT_SUFFIX])
    if prune:
        _prune(g)
    toposort(g)
    return changed


def _prune(g: Any) -> None:
    """Drop the Q/DQ nodes whose outputs nothing reads, then the initializers nothing reads."""
    outputs = {o.name for o in g.output}
    while True:
        read_ = {i for n in g.node for i in n.input} | outputs
        dead = [n for n in g.node if n.op_type in QDQ_OPS and not any(o in read_ for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    read_ = {i for n in g.node for i in n.input} | outputs
    for t in [t for t in g.initializer if t.name not in read_]:
        g.initializer.remove(t)


def toposort(g: Any) -> None:
    """Reorder ``g.node`` topologically (an appended Relu or Identity must come before its consumers)."""
    ready = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    out, pending = [], list(g.node)
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                out.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):  # a subgraph's outer names, or a missing input: keep them in order
            out.extend(rest)
            break
        pending = rest
    del g.node[:]
    g.node.extend(out)


#: a switch's graph input: ``<layer name>`` + this suffix, a bool scalar (True: the layer reads float values)
SWITCH_SUFFIX = "__wb_keep_float"


def switchable(proto: Any, graph: QdqGraph | None = None) -> dict[str, str]:
    """Give every quantized layer of ``proto`` (in place) a bool scalar graph input that keeps it float.

    Each quantized input of a layer becomes ``Where(switch, float value, dequantized value)``, so one
    session answers every "these layers float" question by its feeds (the quantization debugger runs
    hundreds of them): the arithmetic is ONNX's QDQ semantics in float, not a runtime's fused INT8 kernels.
    Returns ``{layer name: its switch input name}``."""
    from onnx import TensorProto, helper, numpy_helper

    graph = graph or read(proto)
    g = proto.graph
    by_name = {n.name: n for n in g.node}
    producers = {o: n for n in g.node for o in n.output}
    added: set[str] = set()
    switches: dict[str, str] = {}
    for i, layer in enumerate(graph.layers):
        node = by_name.get(layer.node)
        if node is None:
            continue
        switch = layer.node + SWITCH_SUFFIX
        g.input.append(helper.make_tensor_value_info(switch, TensorProto.BOOL, []))
        switches[layer.node] = switch
        for j, (slot, src) in enumerate(layer.acts):
            out = f"{layer.node}__wb_in{i}_{j}"
            g.node.append(helper.make_node("Where", [switch, floated(g, src, graph, by_name), node.input[slot]],
                                           [out], name=out))
            node.input[slot] = out
        for j, (slot, fname, _) in enumerate(layer.weights):
            if fname not in added:
                g.initializer.append(numpy_helper.from_array(graph.float_weights[fname], fname))
                added.add(fname)
            out = f"{layer.node}__wb_w{i}_{j}"
            g.node.append(helper.make_node("Where", [switch, fname, node.input[slot]], [out], name=out))
            node.input[slot] = out
        for dq_name, src in layer.output_dqs:
            dq = by_name.get(dq_name)
            if dq is None or producers.get(dq.output[0]) is not dq:
                continue
            final = dq.output[0]
            dq.output[0] = final + "__wb_q"
            g.node.append(helper.make_node("Where", [switch, src, dq.output[0]], [final], name=final + "__wb_sw"))
    toposort(g)
    return switches

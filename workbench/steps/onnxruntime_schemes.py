"""Finer schemes than "keep it float" for ONNX Runtime's static INT8, per layer: ``wb.quantize(model,
"onnxruntime", "static", layer_schemes={node: scheme}, smooth_quant=None | alpha)``.

The quantization debugger (``wb.quantize_debug``) names the layers that make an INT8 model wrong and, from
their figures, the scheme that should fix each (``QuantLayer.fix``); these are the schemes:

* ``"per_channel"``: one INT8 scale per output channel of the layer's weight (``TensorQuantOverrides``
  with an ``axis``), for per-tensor weights whose channels have unequal ranges (BatchNorm folding).
* ``"int16"``: the layer's activation inputs in 16 bits (A16W8: ``QUInt16``, weights still INT8), for
  activation outliers or a clipping calibration. ONNX Runtime runs 16-bit Q/DQ in float on a CPU: this
  buys accuracy, not speed, for that layer.
* ``"smooth_quant"``: SmoothQuant's scale migration (Xiao et al. 2023) for a MatMul/Gemm with a constant
  weight: per input channel ``j``, ``s_j = max|X_j|^alpha / max|W_j|^(1-alpha)``; the input is divided by
  ``s`` (a float ``Mul`` in front of the layer, kept out of quantization) and the weight's row ``j``
  multiplied by it, so the product is unchanged while the input's outlier channels shrink and the
  weight's grow (per-channel weights absorb that). Layers reading the same input share one ``s``.
  ONNX Runtime's own ``extra_options={"SmoothQuant": True}`` needs Intel Neural Compressor; this is the
  same transform on the ONNX graph, with no extra package.
* ``"float"``: the layer stays float (``nodes_to_exclude``).

``smooth_quant=alpha`` applies SmoothQuant to every MatMul/Gemm with a constant weight.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import StepError

SCHEMES = ("per_channel", "int16", "smooth_quant", "float")
WEIGHT_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
SMOOTH_SUFFIX = "__wb_smooth"


def check(layer_schemes: Any, smooth_quant: Any) -> None:
    """Raise a StepError for a ``layer_schemes`` / ``smooth_quant`` value the writer cannot apply."""
    if layer_schemes is not None:
        if not isinstance(layer_schemes, dict):
            raise StepError(f"layer_schemes must be a dict {{node name: scheme}}, got {type(layer_schemes).__name__}",
                            f"e.g. layer_schemes={{'/conv/Conv': 'per_channel'}}; schemes: {', '.join(SCHEMES)}")
        bad = {k: v for k, v in layer_schemes.items() if v not in SCHEMES}
        if bad:
            raise StepError(f"unknown quantization scheme(s) {bad}", f"use one of {', '.join(SCHEMES)}")
    if smooth_quant is not None and not (isinstance(smooth_quant, (int, float)) and 0 < smooth_quant < 1):
        raise StepError(f"smooth_quant must be SmoothQuant's alpha, a number between 0 and 1, got {smooth_quant!r}",
                        "pass smooth_quant=0.5 (the paper's default), or leave it out")


def _weight_axis(node: Any) -> int:
    """The output-channel axis of a layer's weight (input 1)."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        return 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1
    return -1  # MatMul: [..., K, N]


def prepare(source: str, out: Path, calibration: list[dict[str, Any]], layer_schemes: dict[str, str] | None,
            smooth_quant: float | None) -> tuple[str, dict[str, list[dict[str, Any]]], list[str]]:
    """Apply ``layer_schemes`` / ``smooth_quant`` to the (pre-processed) float model ``source``.

    Returns the model to quantize (``source``, or the smoothed copy written to ``out``), the
    ``TensorQuantOverrides`` for ``quantize_static`` and the nodes to keep float (``"float"`` layers and the
    SmoothQuant ``Mul`` nodes)."""
    import onnx
    from onnxruntime.quantization import QuantType

    schemes = dict(layer_schemes or {})
    proto = onnx.load_model(source)
    g = proto.graph
    nodes = {n.name: n for n in g.node}
    unknown = sorted(set(schemes) - set(nodes))
    if unknown:
        raise StepError(f"layer_schemes names node(s) the model does not have: {unknown[:5]}",
                        "use node names of the float ONNX model (the names wb.quantize_debug reports)")
    inits = {t.name for t in g.initializer}
    overrides: dict[str, list[dict[str, Any]]] = {}
    exclude = [name for name, s in schemes.items() if s == "float"]
    for name, scheme in schemes.items():
        node = nodes[name]
        if scheme == "per_channel":
            if node.op_type not in WEIGHT_OPS or len(node.input) < 2 or node.input[1] not in inits:
                raise StepError(f"per_channel needs a layer with a constant weight; {name} is a {node.op_type}",
                                "use 'int16' or 'float' for it")
            overrides[node.input[1]] = [{"axis": _weight_axis(node) % len(_dims(g, node.input[1]))}]
        elif scheme == "int16":
            for x in node.input:
                if x and x not in inits:
                    overrides[x] = [{"quant_type": QuantType.QUInt16}]
    smooth = [n for n in g.node if n.op_type in ("MatMul", "Gemm") and _smoothable(n, g, inits)
              and (smooth_quant is not None or schemes.get(n.name) == "smooth_quant")]
    wrong = [n for n, s in schemes.items() if s == "smooth_quant" and nodes[n] not in smooth]
    if wrong:
        raise StepError(f"smooth_quant needs a MatMul/Gemm with a constant 2-D weight; {wrong[:3]} are not",
                        "use 'int16' or 'float' for them")
    if smooth:
        exclude += _smooth(proto, smooth, source, calibration, smooth_quant if smooth_quant is not None else 0.5)
        onnx.save_model(proto, str(out))
        source = str(out)
    return source, overrides, exclude


def _dims(g: Any, name: str) -> list[int]:
    return next(list(t.dims) for t in g.initializer if t.name == name)


def _smoothable(node: Any, g: Any, inits: set[str]) -> bool:
    if len(node.input) < 2 or node.input[1] not in inits or node.input[0] in inits:
        return False
    if node.op_type == "Gemm" and any(a.name == "transA" and a.i for a in node.attribute):
        return False
    return len(_dims(g, node.input[1])) == 2


def _smooth(proto: Any, layers: list[Any], source: str, calibration: list[dict[str, Any]], alpha: float) -> list[str]:
    """SmoothQuant's migration, in place: per input of ``layers``, its channels' max|x| on the calibration
    data, one ``s`` per input, a ``Mul`` by ``1/s`` in front and the weights' rows scaled by ``s``.
    Returns the names of the ``Mul`` nodes (to keep float)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    g = proto.graph
    inputs = sorted({n.input[0] for n in layers})
    probe = type(proto)()
    probe.CopyFrom(proto)
    known = {o.name for o in probe.graph.output}
    for x in inputs:
        if x not in known:
            probe.graph.output.append(helper.make_tensor_value_info(x, TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    path = source + ".smooth-probe.onnx"
    try:
        import onnx

        onnx.save_model(probe, path)
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        amax: dict[str, np.ndarray] = {}
        for feeds in calibration:
            values = session.run(inputs, {k: v for k, v in feeds.items() if k in {i.name for i in session.get_inputs()}})
            for x, v in zip(inputs, values, strict=True):
                m = np.abs(np.asarray(v, np.float32)).reshape(-1, v.shape[-1]).max(axis=0)
                amax[x] = np.maximum(amax[x], m) if x in amax else m
    finally:
        if os.path.exists(path):
            os.unlink(path)
    weights = {t.name: t for t in g.initializer}
    added = []
    for x in inputs:
        readers = [n for n in layers if n.input[0] == x]
        wmax = np.zeros_like(amax[x])
        rows = {}
        for n in readers:
            w = numpy_helper.to_array(weights[n.input[1]]).astype(np.float32)
            transposed = n.op_type == "Gemm" and any(a.name == "transB" and a.i for a in n.attribute)
            rows[n.name] = (w, transposed)
            wmax = np.maximum(wmax, np.abs(w.T if transposed else w).max(axis=1))
        s = np.power(np.maximum(amax[x], 1e-5), alpha) / np.power(np.maximum(wmax, 1e-5), 1 - alpha)
        s = np.where((amax[x] > 0) & (wmax > 0), s, 1.0).astype(np.float32)
        mul = f"{x}{SMOOTH_SUFFIX}"
        g.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), mul + "_factor"))
        g.node.append(helper.make_node("Mul", [x, mul + "_factor"], [mul], name=mul))
        added.append(mul)
        for n in readers:
            w, transposed = rows[n.name]
            scaled = w * (s[None, :] if transposed else s[:, None])
            name = f"{n.input[1]}{SMOOTH_SUFFIX}_{n.name}"
            g.initializer.append(numpy_helper.from_array(scaled.astype(w.dtype), name))
            n.input[0], n.input[1] = mul, name
    read = {i for n in g.node for i in n.input}
    for t in [t for t in g.initializer if t.name not in read]:  # the weights before scaling
        g.initializer.remove(t)
    from workbench.steps.qdq import toposort

    toposort(g)
    return added

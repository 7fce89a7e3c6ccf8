"""ONNX Runtime's steps: its graph optimizations as a conversion, and its quantizers.

* ``wb.convert(model, "onnx-optimized", level=...)``: ONNX → the graph after ONNX Runtime's optimizations
  (``level="basic" | "extended" | "all"``), saved to a file; the level is recorded in the file's metadata
  (``workbench.ort_graph_optimization_level``). ``"all"`` adds layout changes for this CPU, so keep such a
  file on the machine that made it; ``"extended"`` (the default) is portable across CPUs.
* ``wb.quantize(model, "onnxruntime", method)``: ``static`` (INT8 QDQ with calibration), ``dynamic``,
  ``fp16``, ``int4`` (see ``workbench.steps.quantize``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.errors import StepError
from workbench.core.hardware import int8_sums_saturate
from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.steps import onnxruntime_schemes
from workbench.steps.base import StepSpec, as_model, offer, run_step
from workbench.steps.convert import need_format
from workbench.steps.quantize import CALIBRATE, QuantizeMethods, check_options, need

ORT_LEVELS = ("basic", "extended", "all")
TOOL = "onnxruntime"


@register_step("convert", "onnx-optimized", accepts=("onnx",), produces="onnx",
               aliases=("ort-optimized", TOOL, "ort"))
def convert_optimized(model: Model, *, level: str = "extended", path: str | Path | None = None, isolate: bool = True,
                      timeout: float | None = None, cache: bool = True, validate: bool = True) -> Model:
    """The ONNX graph after ONNX Runtime's optimizations at ``level``."""
    model = as_model(model)
    need_format(model, ("onnx",), "onnx-optimized", "export it first: wb.export(model, 'onnx')")
    if level not in ORT_LEVELS:
        raise StepError(f"unknown graph optimization level {level!r}", f"use one of {', '.join(ORT_LEVELS)}")
    spec = StepSpec("convert:onnx-optimized", {"level": level}, ".onnx", _write_ort_optimized, {"level": level},
                    tag=f"ort-{level}", tools=(TOOL, "onnx"))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


@register_step("quantize", TOOL, accepts=("onnx",), produces="onnx", aliases=("ort", "onnx"),
               methods=("static", "dynamic", "fp16", "int4"), requires=(TOOL,))
@offer("ONNX Runtime static INT8", method="static")
def quantize_onnxruntime(model: Model, method: str | None = None, **options: Any) -> Model:
    """ONNX Runtime quantization: ``static`` (default), ``dynamic``, ``fp16`` or ``int4`` (see ``wb.quantize``)."""
    return METHODS.run(model, method, **options)


# -- plans: validate options, name the result ------------------------------------------------------
#: each method's options and defaults (also what the app's option forms show: ``steps/options.py``)
# reduce_range: 7-bit weights by default where ONNX Runtime adds pairs of uint8 x int8 products in 16 bits
# (x86 without VNNI), which saturate when activations and weights both use their full range. Measured on such
# a CPU (AVX2): a depthwise block's per-channel static INT8 rel. L2 0.288 (FAIL) -> 0.021, digits-cnn
# 0.097 -> 0.019, resnet18 0.047 -> 0.059; a tiny Llama's dynamic INT8 kept 14 of 16 greedy tokens -> 16 of 16
SATURATES = int8_sums_saturate()
STATIC_OPTIONS: dict[str, Any] = {"calibrate": "minmax", "per_channel": True, "percentile": 99.999,
                                  "activation_type": "uint8", "weight_type": "int8", "preprocess": True,
                                  "reduce_range": SATURATES, "op_types": None, "nodes_to_exclude": None,
                                  "layer_schemes": None, "smooth_quant": None}
DYNAMIC_OPTIONS: dict[str, Any] = {"weight_type": "int8", "per_channel": True, "reduce_range": SATURATES,
                                   "op_types": None, "preprocess": True}
FP16_OPTIONS: dict[str, Any] = {"keep_io_types": True}
INT4_OPTIONS: dict[str, Any] = {"block_size": 32, "symmetric": True}


def _plan_static(model: Model, options: dict[str, Any]) -> StepSpec:
    need(model, ("onnx",), "ONNX Runtime quantization", "export it first: wb.export(model, 'onnx')")
    # U8S8 (uint8 activations, int8 weights) is ONNX Runtime's fast path on x86 CPUs (VNNI/AMX): resnet18 runs
    # ~3x faster here than with the S8S8 default of quantize_static. On x86 CPUs without VNNI its sums
    # saturate: reduce_range is on by default there (STATIC_OPTIONS).
    opts = check_options(options, STATIC_OPTIONS, "onnxruntime static")
    onnxruntime_schemes.check(opts["layer_schemes"], opts["smooth_quant"])
    if opts["calibrate"] not in CALIBRATE:
        raise StepError(f"unknown calibration method {opts['calibrate']!r}", f"use one of {', '.join(CALIBRATE)}")
    return StepSpec(f"quantize:{TOOL}", {"method": "static", "format": "QDQ", **opts}, ".onnx",
                    _write_ort_static, dict(opts), tag="int8", precision="int8", tools=(TOOL, "onnx"))


def _plan_dynamic(model: Model, options: dict[str, Any]) -> StepSpec:
    need(model, ("onnx",), "ONNX Runtime quantization", "export it first: wb.export(model, 'onnx')")
    # per-channel by default: per-tensor INT8 weights cost MiniLM ~3% embedding cosine (0.966 vs 0.993 here)
    opts = check_options(options, DYNAMIC_OPTIONS, "onnxruntime dynamic")
    return StepSpec(f"quantize:{TOOL}", {"method": "dynamic", **opts}, ".onnx", _write_ort_dynamic, dict(opts),
                    tag="int8-dynamic", precision="int8", tools=(TOOL, "onnx"))


def _plan_fp16(model: Model, options: dict[str, Any]) -> StepSpec:
    need(model, ("onnx",), "ONNX fp16 conversion", "export it first: wb.export(model, 'onnx')")
    opts = check_options(options, FP16_OPTIONS, "onnxruntime fp16")
    return StepSpec(f"quantize:{TOOL}", {"method": "fp16", **opts}, ".onnx", _write_ort_fp16, dict(opts),
                    tag="fp16", precision="fp16", tools=(TOOL, "onnx"))


def _plan_int4(model: Model, options: dict[str, Any]) -> StepSpec:
    need(model, ("onnx",), "ONNX Runtime INT4 weight quantization", "export it first: wb.export(model, 'onnx')")
    opts = check_options(options, INT4_OPTIONS, "onnxruntime int4")
    return StepSpec(f"quantize:{TOOL}", {"method": "int4", **opts}, ".onnx", _write_ort_int4, dict(opts),
                    tag="int4", precision="int4", tools=(TOOL, "onnx"))


METHODS = QuantizeMethods(TOOL, {"static": _plan_static, "dynamic": _plan_dynamic, "fp16": _plan_fp16,
                                 "int4": _plan_int4}, default="static", calibrated=("static",),
                           options={"static": STATIC_OPTIONS, "dynamic": DYNAMIC_OPTIONS, "fp16": FP16_OPTIONS,
                                    "int4": INT4_OPTIONS})


# -- writers (run in the worker) -------------------------------------------------------------------
def _write_ort_optimized(model: Model, tmp: Path, *, level: str) -> dict[str, Any]:
    import onnx
    import onnxruntime as ort

    from workbench.runtimes.onnxruntime import OPT_LEVELS

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[level])
    so.optimized_model_filepath = str(tmp)
    so.log_severity_level = 3
    ort.InferenceSession(str(model.path), so, providers=["CPUExecutionProvider"])
    proto = onnx.load_model(str(tmp))
    _set_meta(proto, {"workbench.ort_graph_optimization_level": level,
                      "workbench.ort_version": ort.__version__})
    onnx.save_model(proto, str(tmp))
    return {"ort_graph_optimization_level": level}


def _set_meta(proto: Any, values: dict[str, str]) -> None:
    keep = [p for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for k, v in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v


def _qtype(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    table = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8, "qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}
    if name not in table:
        raise StepError(f"unknown quantized type {name!r}", "use 'int8' or 'uint8'")
    return table[name]


def _preprocess(source: str, out: Path) -> str:
    """ONNX Runtime's quantization pre-processing (symbolic shape inference, ONNX shape inference,
    graph optimization); without the symbolic pass when it cannot complete (some dynamo graphs).

    It runs in a scratch working directory: when the symbolic pass fails, ONNX Runtime saves
    ``sym_shape_infer_temp.onnx`` and ``<uuid>.data`` files into the current directory, which must
    never be the user's (a file of theirs with that name would be overwritten)."""
    import os
    import tempfile

    from onnxruntime.quantization.shape_inference import quant_pre_process

    source, target = str(Path(source).resolve()), str(Path(out).resolve())
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="wb-ort-preprocess-") as scratch:
        os.chdir(scratch)
        try:
            try:
                quant_pre_process(source, target, skip_symbolic_shape=False)
            except Exception:  # noqa: BLE001 - "Incomplete symbolic shape inference": retry without that pass
                quant_pre_process(source, target, skip_symbolic_shape=True)
        finally:
            os.chdir(previous)
    return str(out)


def preprocessed(source: str | Path, out: str | Path) -> str:
    """``source`` as ONNX Runtime's static quantization sees it (after ``quant_pre_process``), saved to
    ``out``: its fused weights (a BatchNorm folded into a Conv) are the float twins of the quantized ones,
    which the quantization debugger needs to keep such a layer float."""
    return _preprocess(str(source), Path(out))


class _Reader:
    """ONNX Runtime's CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: list[dict[str, Any]]):
        self.feeds = feeds
        self.it = iter(feeds)

    def get_next(self) -> dict[str, Any] | None:
        return next(self.it, None)

    def rewind(self) -> None:
        self.it = iter(self.feeds)


def _write_ort_static(model: Model, tmp: Path, *, calibration: list[dict[str, Any]], calibrate: str,
                      per_channel: bool, percentile: float, activation_type: str, weight_type: str,
                      preprocess: bool, reduce_range: bool, op_types: Any, nodes_to_exclude: Any,
                      layer_schemes: Any = None, smooth_quant: Any = None) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        quantize_static,
    )

    from workbench.steps import quant_scope

    source = str(model.path)
    pre = tmp.with_name(tmp.stem + ".pre.onnx")
    try:
        if preprocess:
            source = _preprocess(source, pre)
        reader = type("Reader", (_Reader, CalibrationDataReader), {})(calibration)
        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[calibrate]
        extra: dict[str, Any] = {"CalibPercentile": percentile} if calibrate == "percentile" else {}
        if layer_schemes or smooth_quant is not None:  # finer schemes per layer (steps/onnxruntime_schemes.py)
            source, extra["TensorQuantOverrides"], more = onnxruntime_schemes.prepare(
                source, tmp.with_name(tmp.stem + ".smooth.onnx"), calibration, layer_schemes, smooth_quant)
            nodes_to_exclude = [*(nodes_to_exclude or []), *more]
        # read from the graph (workbench.steps.quant_scope): index arithmetic stays float; a transformer
        # quantizes its weight ops unless op_types names others ("all": ONNX Runtime's full set)
        op_types, index = quant_scope.plan(onnx.load_model(source, load_external_data=False).graph, op_types)
        quantize_static(source, str(tmp), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=_qtype(activation_type), weight_type=_qtype(weight_type),
                        calibrate_method=method, reduce_range=reduce_range, op_types_to_quantize=op_types,
                        nodes_to_exclude=[*(nodes_to_exclude or []), *index], extra_options=extra)
        if nodes_to_exclude:
            _float_inputs(tmp, source, nodes_to_exclude)
    finally:
        pre.unlink(missing_ok=True)
        tmp.with_name(tmp.stem + ".smooth.onnx").unlink(missing_ok=True)
        for leftover in Path(tmp.parent).glob("augmented_model*.onnx"):
            leftover.unlink(missing_ok=True)
    return {"calibration_samples": len(calibration), "quantized_op_types": op_types or "all",
            "nodes_kept_float_by_scope": len(index)}


def _float_inputs(path: Path, source: str, nodes: Any) -> None:
    """Excluded nodes also read float inputs: ONNX Runtime leaves the input of an excluded node quantized
    when its producer is quantized (the node then computes on INT8-rounded values); ``workbench.steps.qdq``
    wires it past that Q/DQ pair, as the quantization debugger measured it."""
    import onnx

    from workbench.steps import qdq

    proto = onnx.load_model(str(path))
    if qdq.keep_float(proto, set(nodes), qdq.read(proto, onnx.load_model(source)), prune=True):
        onnx.save_model(proto, str(path))


def _write_ort_dynamic(model: Model, tmp: Path, *, weight_type: str, per_channel: bool, reduce_range: bool,
                       op_types: Any, preprocess: bool) -> dict[str, Any]:
    from onnxruntime.quantization import quantize_dynamic

    pre = tmp.with_name(tmp.stem + ".pre.onnx")
    source = str(model.path)
    try:
        if preprocess:  # shape inference + cleanup: the exporters' value_info can confuse the quantizer
            source = _preprocess(source, pre)
        quantize_dynamic(source, str(tmp), weight_type=_qtype(weight_type), per_channel=per_channel,
                         reduce_range=reduce_range, op_types_to_quantize=op_types)
    finally:
        pre.unlink(missing_ok=True)
    return {}


def _write_ort_fp16(model: Model, tmp: Path, *, keep_io_types: bool) -> dict[str, Any]:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = convert_float_to_float16(onnx.load_model(str(model.path)), keep_io_types=keep_io_types)
    onnx.save_model(proto, str(tmp))
    return {}


def _write_ort_int4(model: Model, tmp: Path, *, block_size: int, symmetric: bool) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    proto = onnx.load_model(str(model.path))
    quantizer = MatMulNBitsQuantizer(proto, block_size=block_size, is_symmetric=symmetric)
    quantizer.process()
    out = quantizer.model.model
    n = sum(1 for node in out.graph.node if node.op_type == "MatMulNBits")
    if n == 0:
        raise StepError(f"{model.name} has no MatMul with constant weights to quantize to INT4",
                        "INT4 weight-only quantization is for transformer MatMuls; use static INT8 for this model")
    onnx.save_model(out, str(tmp))
    return {"matmulnbits_nodes": n}

"""Quantize a model with the tools of its runtime.

``wb.quantize(model, tool, method=..., **options)``; the tools and their methods:

=============== ============== ==================================================================
tool            method         what it does
=============== ============== ==================================================================
``onnxruntime`` ``static``     INT8 QDQ with calibration (``calibrate="minmax" | "entropy" |
                               "percentile"``, ``per_channel=``), after ONNX Runtime's
                               pre-processing (shape inference, graph optimization)
``onnxruntime`` ``dynamic``    INT8 weights, activations quantized at run time (no calibration)
``onnxruntime`` ``fp16``       FP16 weights and compute, FP32 inputs/outputs kept
``onnxruntime`` ``int4``       weight-only INT4 for MatMuls with constant weights (MatMulNBits)
``nncf``        ``ptq``        OpenVINO post-training INT8 quantization with calibration
``nncf``        ``weights``    weight compression, ``mode="int8" | "int4" | "int4_asym"``
``coreml``      ``linear``     linear (symmetric) INT8 weight quantization
``coreml``      ``palettize``  k-means weight palettization (``nbits=`` 2, 4, 6 or 8)
``torch``       ``dynamic``    ``torch.ao`` dynamic INT8 for ``nn.Linear`` (saved as TorchScript)
``torch``       ``pt2e``       PyTorch 2 export quantization with the X86 Inductor quantizer
                               (needs ``torchao``; saved as an ExportedProgram)
=============== ============== ==================================================================

Calibration data (``calibration=``): see ``workbench.steps.calibration`` (the model's zoo data, an
iterable of inputs, or a folder of ``.npy`` files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.errors import BackendUnavailable, StepError
from workbench.core.model import Model
from workbench.steps.base import StepSpec, run_step, source_model
from workbench.steps.calibration import calibration_feeds
from workbench.steps.convert import stable_names

METHODS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("static", "dynamic", "fp16", "int4"),
    "nncf": ("ptq", "weights"),
    "coreml": ("linear", "palettize"),
    "torch": ("dynamic", "pt2e"),
}
TOOL_ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "openvino": "nncf", "ov": "nncf",
                "coremltools": "coreml", "pytorch": "torch"}
METHOD_ALIASES = {"int8": None, "matmulnbits": "int4", "weight_only_int4": "int4", "qdq": "static",
                  "compress_weights": "weights", "weight_compression": "weights", "static": None,
                  "post_training": "ptq", "palettization": "palettize", "linear_int8": "linear"}
DEFAULT_METHOD = {"onnxruntime": "static", "nncf": "ptq", "coreml": "linear", "torch": "dynamic"}
CALIBRATE = ("minmax", "entropy", "percentile")
NEEDS_CALIBRATION = {("onnxruntime", "static"), ("nncf", "ptq"), ("torch", "pt2e")}


def quantize(
    model: Model | Any,
    tool: str,
    method: str | None = None,
    *,
    calibration: Any = None,
    samples: int | None = None,
    path: str | Path | None = None,
    isolate: bool = True,
    timeout: float | None = None,
    cache: bool = True,
    validate: bool = True,
    **options: Any,
) -> Model:
    """Quantize ``model`` with ``tool`` and ``method`` (see the table in the module docstring).

    Args:
        tool: ``"onnxruntime"`` (ONNX in, ONNX out), ``"nncf"`` (OpenVINO IR or ONNX in, IR out),
            ``"coreml"`` (Core ML in and out) or ``"torch"`` (torch in; TorchScript / ExportedProgram out).
        method: the tool's method; default ``static``, ``ptq``, ``linear``, ``dynamic`` respectively.
        calibration: calibration data for static methods (default: the model's own data).
        samples: how many calibration samples to use (default 32; 16 with ``WORKBENCH_QUICK=1``).
        **options: the method's options:
            onnxruntime static: ``calibrate`` (``"minmax"``), ``per_channel`` (True), ``percentile``
            (99.999), ``activation_type`` (``"uint8"``) / ``weight_type`` (``"int8"``), ``preprocess``
            (True), ``reduce_range``, ``op_types``, ``nodes_to_exclude``;
            onnxruntime dynamic: ``weight_type``, ``per_channel`` (True);
            onnxruntime int4: ``block_size`` (32), ``symmetric`` (True);
            nncf ptq: ``preset`` (``"performance"`` | ``"mixed"``), ``transformer`` (False),
            ``fast_bias_correction`` (True); nncf weights: ``mode``, ``group_size``, ``ratio``;
            coreml palettize: ``nbits`` (4); torch dynamic: ``dtype`` (``"qint8"``).
        path, isolate, timeout, cache, validate: see ``workbench.steps.base.run_step``.
    """
    model = source_model(model)
    tool = TOOL_ALIASES.get(tool, tool)
    if tool not in METHODS:
        raise StepError(f"unknown quantization tool {tool!r}", f"choose one of {', '.join(METHODS)}")
    method = _method(tool, method)
    plan = _PLANS[(tool, method)]
    spec = plan(model, dict(options))
    spec.options.setdefault("precision", spec.precision)  # read by wb.compare's precision_of
    if (tool, method) in NEEDS_CALIBRATION:
        feeds, desc, digest = calibration_feeds(model, calibration, samples)
        spec.writer_kwargs["calibration"] = feeds
        spec.options["calibration"] = desc
        spec.cache_extra = digest
    elif calibration is not None:
        raise StepError(f"{tool} {method} quantization takes no calibration data",
                        f"leave calibration out, or use a static method ({', '.join(m for t, m in NEEDS_CALIBRATION if t == tool) or 'none for this tool'})")
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


def _method(tool: str, method: str | None) -> str:
    if method is None:
        return DEFAULT_METHOD[tool]
    if method in METHODS[tool]:
        return method
    alias = METHOD_ALIASES.get(method, method)
    if alias is None:  # "int8" / "static" mean the tool's default static INT8 method
        alias = DEFAULT_METHOD[tool] if tool != "torch" else "pt2e"
    if alias not in METHODS[tool]:
        raise StepError(f"{tool} has no quantization method {method!r}", f"choose one of {', '.join(METHODS[tool])}")
    return alias


def _need(model: Model, formats: tuple[str, ...], what: str, fix: str) -> None:
    if model.format not in formats:
        raise StepError(f"{what} takes a {' or '.join(formats)} model; this one is {model.format}", fix)


def _check_options(options: dict[str, Any], allowed: dict[str, Any], what: str) -> dict[str, Any]:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise StepError(f"unknown option(s) {unknown} for {what}", f"its options are {sorted(allowed)}")
    return {**allowed, **options}


def _module_missing(module: str, fix: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise BackendUnavailable(f"{module} is not installed", fix)


# -- plans: validate options, name the result ------------------------------------------------------
def _plan_ort_static(model: Model, options: dict[str, Any]) -> StepSpec:
    _need(model, ("onnx",), "ONNX Runtime quantization", "export it first: wb.export(model, 'onnx')")
    # U8S8 (uint8 activations, int8 weights) is ONNX Runtime's fast path on x86 CPUs (VNNI/AMX): resnet18 runs
    # ~3x faster here than with the S8S8 default of quantize_static. On x86 CPUs without VNNI, pass
    # reduce_range=True to avoid saturation.
    opts = _check_options(options, {"calibrate": "minmax", "per_channel": True, "percentile": 99.999,
                                    "activation_type": "uint8", "weight_type": "int8", "preprocess": True,
                                    "reduce_range": False, "op_types": None, "nodes_to_exclude": None},
                          "onnxruntime static")
    if opts["calibrate"] not in CALIBRATE:
        raise StepError(f"unknown calibration method {opts['calibrate']!r}", f"use one of {', '.join(CALIBRATE)}")
    return StepSpec("quantize:onnxruntime", {"method": "static", "format": "QDQ", **opts}, ".onnx",
                    _write_ort_static, dict(opts), tag="int8", precision="int8", tools=("onnxruntime", "onnx"))


def _plan_ort_dynamic(model: Model, options: dict[str, Any]) -> StepSpec:
    _need(model, ("onnx",), "ONNX Runtime quantization", "export it first: wb.export(model, 'onnx')")
    # per-channel by default: per-tensor INT8 weights cost MiniLM ~3% embedding cosine (0.966 vs 0.993 here)
    opts = _check_options(options, {"weight_type": "int8", "per_channel": True, "reduce_range": False,
                                    "op_types": None, "preprocess": True}, "onnxruntime dynamic")
    return StepSpec("quantize:onnxruntime", {"method": "dynamic", **opts}, ".onnx", _write_ort_dynamic, dict(opts),
                    tag="int8-dynamic", precision="int8", tools=("onnxruntime", "onnx"))


def _plan_ort_fp16(model: Model, options: dict[str, Any]) -> StepSpec:
    _need(model, ("onnx",), "ONNX fp16 conversion", "export it first: wb.export(model, 'onnx')")
    opts = _check_options(options, {"keep_io_types": True}, "onnxruntime fp16")
    return StepSpec("quantize:onnxruntime", {"method": "fp16", **opts}, ".onnx", _write_ort_fp16, dict(opts),
                    tag="fp16", precision="fp16", tools=("onnxruntime", "onnx"))


def _plan_ort_int4(model: Model, options: dict[str, Any]) -> StepSpec:
    _need(model, ("onnx",), "ONNX Runtime INT4 weight quantization", "export it first: wb.export(model, 'onnx')")
    opts = _check_options(options, {"block_size": 32, "symmetric": True}, "onnxruntime int4")
    return StepSpec("quantize:onnxruntime", {"method": "int4", **opts}, ".onnx", _write_ort_int4, dict(opts),
                    tag="int4", precision="int4", tools=("onnxruntime", "onnx"))


def _plan_nncf_ptq(model: Model, options: dict[str, Any]) -> StepSpec:
    _need(model, ("openvino", "onnx"), "NNCF quantization", "convert it first: wb.convert(model, 'openvino')")
    _module_missing("nncf", "pip install 'deployment-workbench[openvino]'")
    opts = _check_options(options, {"preset": "performance", "transformer": False, "fast_bias_correction": True},
                          "nncf ptq")
    if opts["preset"] not in ("performance", "mixed"):
        raise StepError(f"unknown NNCF preset {opts['preset']!r}", "use 'performance' or 'mixed'")
    return StepSpec("quantize:nncf", {"method": "ptq", **opts}, ".xml", _write_nncf_ptq, dict(opts),
                    tag="int8", precision="int8", tools=("nncf", "openvino"))


def _plan_nncf_weights(model: Model, options: dict[str, Any]) -> StepSpec:
    _need(model, ("openvino", "onnx"), "NNCF weight compression", "convert it first: wb.convert(model, 'openvino')")
    _module_missing("nncf", "pip install 'deployment-workbench[openvino]'")
    opts = _check_options(options, {"mode": "int8", "group_size": None, "ratio": None}, "nncf weights")
    if opts["mode"] not in ("int8", "int8_sym", "int4", "int4_asym"):
        raise StepError(f"unknown weight compression mode {opts['mode']!r}", "use 'int8', 'int8_sym', 'int4', 'int4_asym'")
    precision = "int4" if opts["mode"].startswith("int4") else "int8"
    return StepSpec("quantize:nncf", {"method": "weights", **opts}, ".xml", _write_nncf_weights, dict(opts),
                    tag=f"w{precision[3:]}", precision=precision, tools=("nncf", "openvino"))


def _plan_coreml(method: str) -> Any:
    def plan(model: Model, options: dict[str, Any]) -> StepSpec:
        _need(model, ("coreml",), "Core ML quantization", "convert it first: wb.convert(model, 'coreml')")
        _module_missing("coremltools", "pip install 'deployment-workbench[coreml]'")
        defaults = {"nbits": 4, "mode": "kmeans"} if method == "palettize" else {"mode": "linear_symmetric"}
        opts = _check_options(options, defaults, f"coreml {method}")
        precision = f"int{opts['nbits']}" if method == "palettize" and opts["nbits"] <= 4 else "int8"
        return StepSpec("quantize:coreml", {"method": method, **opts}, ".mlpackage", _write_coreml, {"method": method, **opts},
                        tag="palettized" if method == "palettize" else "int8", precision=precision,
                        tools=("coremltools",))

    return plan


def _plan_torch_dynamic(model: Model, options: dict[str, Any]) -> StepSpec:
    _need(model, ("torch", "hf"), "torch dynamic quantization", "load the PyTorch model")
    opts = _check_options(options, {"dtype": "qint8"}, "torch dynamic")
    return StepSpec("quantize:torch", {"method": "dynamic", **opts}, ".pt", _write_torch_dynamic, dict(opts),
                    tag="int8-dynamic", precision="int8", tools=("torch",))


def _plan_torch_pt2e(model: Model, options: dict[str, Any]) -> StepSpec:
    _need(model, ("torch", "exported_program"), "PyTorch 2 export quantization", "load the PyTorch model")
    _module_missing("torchao", "pip install torchao (pt2e quantization moved from torch.ao to torchao), "
                               "or use method='dynamic'")
    opts = _check_options(options, {"dynamic": False}, "torch pt2e")
    return StepSpec("quantize:torch", {"method": "pt2e", "quantizer": "X86InductorQuantizer", **opts}, ".pt2",
                    _write_torch_pt2e, dict(opts), tag="int8-pt2e", precision="int8", tools=("torch", "torchao"))


_PLANS: dict[tuple[str, str], Any] = {
    ("onnxruntime", "static"): _plan_ort_static,
    ("onnxruntime", "dynamic"): _plan_ort_dynamic,
    ("onnxruntime", "fp16"): _plan_ort_fp16,
    ("onnxruntime", "int4"): _plan_ort_int4,
    ("nncf", "ptq"): _plan_nncf_ptq,
    ("nncf", "weights"): _plan_nncf_weights,
    ("coreml", "linear"): _plan_coreml("linear"),
    ("coreml", "palettize"): _plan_coreml("palettize"),
    ("torch", "dynamic"): _plan_torch_dynamic,
    ("torch", "pt2e"): _plan_torch_pt2e,
}


# -- writers (run in the worker) -------------------------------------------------------------------
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
                      preprocess: bool, reduce_range: bool, op_types: Any, nodes_to_exclude: Any) -> dict[str, Any]:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        quantize_static,
    )

    source = str(model.path)
    pre = tmp.with_name(tmp.stem + ".pre.onnx")
    try:
        if preprocess:
            source = _preprocess(source, pre)
        reader = type("Reader", (_Reader, CalibrationDataReader), {})(calibration)
        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[calibrate]
        extra = {"CalibPercentile": percentile} if calibrate == "percentile" else {}
        quantize_static(source, str(tmp), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=_qtype(activation_type), weight_type=_qtype(weight_type),
                        calibrate_method=method, reduce_range=reduce_range, op_types_to_quantize=op_types,
                        nodes_to_exclude=nodes_to_exclude, extra_options=extra)
    finally:
        pre.unlink(missing_ok=True)
        for leftover in Path(tmp.parent).glob("augmented_model*.onnx"):
            leftover.unlink(missing_ok=True)
    return {"calibration_samples": len(calibration)}


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


def _ov_model(model: Model) -> Any:
    import openvino as ov

    return ov.Core().read_model(str(model.path)) if model.format == "openvino" else ov.convert_model(str(model.path))


def _write_nncf_ptq(model: Model, tmp: Path, *, calibration: list[dict[str, Any]], preset: str, transformer: bool,
                    fast_bias_correction: bool) -> dict[str, Any]:
    import nncf
    import openvino as ov

    ov_model = _ov_model(model)
    names = [p.get_any_name() for p in ov_model.inputs]

    def transform(feeds: dict[str, Any]) -> dict[str, Any]:
        values = list(feeds.values())
        return {n: feeds.get(n, values[i]) for i, n in enumerate(names)}

    kwargs: dict[str, Any] = {
        "preset": nncf.QuantizationPreset.MIXED if preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE,
        "subset_size": len(calibration), "fast_bias_correction": fast_bias_correction,
    }
    if transformer:
        kwargs["model_type"] = nncf.ModelType.TRANSFORMER
    quantized = nncf.quantize(ov_model, nncf.Dataset(calibration, transform), **kwargs)
    stable_names(quantized)
    ov.save_model(quantized, str(tmp), compress_to_fp16=False)
    return {"calibration_samples": len(calibration)}


def _write_nncf_weights(model: Model, tmp: Path, *, mode: str, group_size: int | None, ratio: float | None) -> dict[str, Any]:
    import nncf
    import openvino as ov

    modes = {"int8": nncf.CompressWeightsMode.INT8_ASYM, "int8_sym": nncf.CompressWeightsMode.INT8_SYM,
             "int4": nncf.CompressWeightsMode.INT4_SYM, "int4_asym": nncf.CompressWeightsMode.INT4_ASYM}
    kwargs: dict[str, Any] = {"mode": modes[mode]}
    if group_size is not None:
        kwargs["group_size"] = group_size
    if ratio is not None:
        kwargs["ratio"] = ratio
    compressed = nncf.compress_weights(_ov_model(model), **kwargs)
    stable_names(compressed)
    ov.save_model(compressed, str(tmp), compress_to_fp16=False)
    return {}


def _write_coreml(model: Model, tmp: Path, *, method: str, **opts: Any) -> dict[str, Any]:
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    mlmodel = ct.models.MLModel(str(model.path), skip_model_load=True)
    if method == "linear":
        config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode=opts["mode"], dtype="int8"))
        out = cto.linear_quantize_weights(mlmodel, config=config)
    else:
        config = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(mode=opts["mode"], nbits=opts["nbits"]))
        out = cto.palettize_weights(mlmodel, config=config)
    out.save(str(tmp))
    return {}


def _write_torch_dynamic(model: Model, tmp: Path, *, dtype: str) -> dict[str, Any]:
    import warnings

    import numpy as np
    import torch

    from workbench.formats.torchscript import SPEC_FILE, specs_to_json

    module = model.native()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=getattr(torch, dtype))
        feeds = model.example_inputs()
        args = tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names)
        with torch.no_grad():
            traced = torch.jit.trace(q, args, strict=False, check_trace=False)
    torch.jit.save(traced, str(tmp), _extra_files={SPEC_FILE: specs_to_json(model.inputs, model.outputs)})
    return {}


def _write_torch_pt2e(model: Model, tmp: Path, *, calibration: list[dict[str, Any]], dynamic: bool) -> dict[str, Any]:
    import warnings

    import numpy as np
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    from workbench.formats.torchscript import SPEC_FILE, specs_to_json

    def args_of(feeds: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names)

    native = model.native()
    module = native.module() if model.format == "exported_program" else native
    example = args_of(model.example_inputs())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = torch.export.export(module, example).module()
        quantizer = X86InductorQuantizer()
        quantizer.set_global(get_default_x86_inductor_quantization_config(is_dynamic=dynamic))
        prepared = prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            for feeds in calibration:
                prepared(*args_of(feeds))
        converted = convert_pt2e(prepared)
        ep = torch.export.export(converted, example)
    # the graph is specialised to the example's shapes: record those, not the dynamic ones
    from workbench.core.model import TensorSpec

    fixed = [TensorSpec(s.name, tuple(a.shape), s.dtype) for s, a in zip(model.inputs, example, strict=True)]
    torch.export.save(ep, str(tmp), extra_files={SPEC_FILE: specs_to_json(fixed, model.outputs)})
    return {"calibration_samples": len(calibration)}


def _register() -> None:
    from functools import partial

    from workbench.core.registry import register_step

    accepts = {"onnxruntime": ("onnx",), "nncf": ("openvino", "onnx"), "coreml": ("coreml",),
               "torch": ("torch", "hf", "exported_program")}

    def produces(tool: str) -> Any:
        fixed = {"onnxruntime": "onnx", "nncf": "openvino", "coreml": "coreml"}
        if tool in fixed:
            return fixed[tool]
        return lambda opts: "exported_program" if opts.get("method") == "pt2e" else "torchscript"

    for tool in METHODS:
        register_step("quantize", tool, accepts=accepts[tool], produces=produces(tool), methods=METHODS[tool],
                      aliases=tuple(a for a, t in TOOL_ALIASES.items() if t == tool))(partial(quantize, tool=tool))


_register()

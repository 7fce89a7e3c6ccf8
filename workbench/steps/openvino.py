"""OpenVINO's steps: conversion to OpenVINO IR, and NNCF's quantization of it.

* ``wb.convert(model, "openvino", fp16_weights=False)``: ONNX or torch (``nn.Module``, ExportedProgram) →
  OpenVINO IR (``.xml`` + ``.bin``); ``fp16_weights=True`` compresses the weights to FP16 (half the size;
  computed in the device's precision).
* ``wb.quantize(model, "nncf", method)``: ``ptq`` (post-training INT8 with calibration) or ``weights``
  (weight compression, ``mode="int8" | "int4" | …``); OpenVINO IR or ONNX in, IR out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from workbench.core.errors import StepError
from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.formats.openvino import error_fix, error_text
from workbench.steps.base import StepSpec, as_model, offer, run_step
from workbench.steps.convert import TORCH_FORMATS, need_extra, need_format
from workbench.steps.quantize import QuantizeMethods, check_options, need, need_module

TARGET = "openvino"
INSTALL = f"pip install 'deployment-workbench[{TARGET}]'"


@register_step("convert", TARGET, accepts=("onnx", *TORCH_FORMATS, TARGET), produces=TARGET,
               aliases=("ov", "ir"), requires=(TARGET,))
@offer("OpenVINO IR")
def convert_openvino(model: Model, *, fp16_weights: bool = False, static_batch: int | None = None,
                     path: str | Path | None = None, isolate: bool = True, timeout: float | None = None,
                     cache: bool = True, validate: bool = True) -> Model:
    """OpenVINO IR from ONNX or torch (``fp16_weights=True``: FP16 weights). ``static_batch=n`` fixes every
    input shape at batch ``n`` (what ``benchmark_app -shape`` does: the CPU plugin then compiles for one
    shape); it also takes an IR, to fix the shapes of one made before (an NNCF INT8 IR)."""
    model = as_model(model)
    sources = ("onnx", *TORCH_FORMATS, TARGET) if static_batch is not None else ("onnx", *TORCH_FORMATS)
    need_format(model, sources, TARGET, "load a torch or ONNX model")
    need_extra(TARGET, TARGET)
    options: dict[str, Any] = {"fp16_weights": fp16_weights}
    if static_batch is not None:
        options["static_batch"] = static_batch
    spec = StepSpec(f"convert:{TARGET}", options, ".xml", _write_openvino, dict(options),
                    tag="-".join(t for t in ("fp16" if fp16_weights else "",
                                             f"b{static_batch}" if static_batch is not None else "") if t),
                    precision="fp16" if fp16_weights else None, tools=(TARGET, "torch"))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


@register_step("quantize", "nncf", accepts=(TARGET, "onnx"), produces=TARGET, aliases=(TARGET, "ov"),
               methods=("ptq", "weights"), requires=("nncf",))
@offer("OpenVINO NNCF INT8")
def quantize_nncf(model: Model, method: str | None = None, **options: Any) -> Model:
    """NNCF quantization of OpenVINO IR (or ONNX): ``ptq`` (default) or ``weights`` (see ``wb.quantize``)."""
    return METHODS.run(model, method, **options)


# -- plans: validate options, name the result ------------------------------------------------------
#: each NNCF method's options and defaults (also what the app's option forms show: ``steps/options.py``)
PTQ_OPTIONS: dict[str, Any] = {"preset": "performance", "transformer": False, "fast_bias_correction": True,
                               "ignored_scope": None}
WEIGHTS_OPTIONS: dict[str, Any] = {"mode": "int8", "group_size": None, "ratio": None}


def _plan_ptq(model: Model, options: dict[str, Any]) -> StepSpec:
    need(model, (TARGET, "onnx"), "NNCF quantization", "convert it first: wb.convert(model, 'openvino')")
    need_module("nncf", INSTALL)
    opts = check_options(options, PTQ_OPTIONS, "nncf ptq")
    if opts["ignored_scope"] is not None:  # op names kept float (NNCF's IgnoredScope(names=...))
        if isinstance(opts["ignored_scope"], str) or not all(isinstance(n, str) for n in opts["ignored_scope"]):
            raise StepError("ignored_scope must be a list of op names", "pass e.g. ignored_scope=['node_conv2d']")
        opts["ignored_scope"] = sorted(opts["ignored_scope"])
    if opts["preset"] not in ("performance", "mixed"):
        raise StepError(f"unknown NNCF preset {opts['preset']!r}", "use 'performance' or 'mixed'")
    return StepSpec("quantize:nncf", {"method": "ptq", **opts}, ".xml", _write_nncf_ptq, dict(opts),
                    tag="int8", precision="int8", tools=("nncf", TARGET))


def _plan_weights(model: Model, options: dict[str, Any]) -> StepSpec:
    need(model, (TARGET, "onnx"), "NNCF weight compression", "convert it first: wb.convert(model, 'openvino')")
    need_module("nncf", INSTALL)
    opts = check_options(options, WEIGHTS_OPTIONS, "nncf weights")
    if opts["mode"] not in ("int8", "int8_sym", "int4", "int4_asym"):
        raise StepError(f"unknown weight compression mode {opts['mode']!r}", "use 'int8', 'int8_sym', 'int4', 'int4_asym'")
    precision = "int4" if opts["mode"].startswith("int4") else "int8"
    return StepSpec("quantize:nncf", {"method": "weights", **opts}, ".xml", _write_nncf_weights, dict(opts),
                    tag=f"w{precision[3:]}", precision=precision, tools=("nncf", TARGET))


METHODS = QuantizeMethods("nncf", {"ptq": _plan_ptq, "weights": _plan_weights}, default="ptq",
                          calibrated=("ptq",), options={"ptq": PTQ_OPTIONS, "weights": WEIGHTS_OPTIONS})


# -- writers (run in the worker) -------------------------------------------------------------------
def _write_openvino(model: Model, tmp: Path, *, fp16_weights: bool, static_batch: int | None = None) -> dict[str, Any]:
    import openvino as ov

    try:
        if model.format == "onnx":
            ov_model = ov.convert_model(str(model.path))
        elif model.format == TARGET:
            ov_model = ov.Core().read_model(str(model.path))
        else:
            ov_model = _ov_from_torch(model)
    except StepError:
        raise
    except Exception as err:  # noqa: BLE001 - OpenVINO's frontends raise with long C++ traces
        raise StepError(f"OpenVINO could not convert {model.name} ({model.format}): {error_text(err)}",
                        error_fix(err, model.format)) from None
    if static_batch is not None:
        _fix_shapes(ov_model, model, static_batch)
    stable_names(ov_model)
    ov.save_model(ov_model, str(tmp), compress_to_fp16=fp16_weights)
    return {"openvino_version": ov.get_version()}


def _fix_shapes(ov_model: Any, model: Model, batch: int) -> None:
    import openvino as ov

    shapes = {}
    for i, port in enumerate(ov_model.inputs):
        names = port.get_names()
        spec = next((s for s in model.inputs if s.name in names), model.inputs[i] if i < len(model.inputs) else None)
        if spec is None:
            raise StepError(f"cannot match OpenVINO input {port.get_any_name()!r} to {model.name}'s inputs",
                            "give the model named inputs")
        shapes[port] = ov.PartialShape(list(spec.concrete_shape(batch=batch)))
    ov_model.reshape(shapes)


def stable_names(ov_model: Any) -> None:
    """Renumber OpenVINO's auto-generated op names (``Constant_5982``, from a process-wide counter) in
    graph order, so the same model gives the same IR bytes whatever the process did before."""
    auto = re.compile(r"^([A-Za-z]+)_\d+$")
    ops = list(ov_model.get_ordered_ops())
    taken = {op.get_friendly_name() for op in ops if not auto.match(op.get_friendly_name())}
    counters: dict[str, int] = {}
    for op in ops:
        m = auto.match(op.get_friendly_name())
        if not m:
            continue
        kind = m.group(1)
        while True:
            counters[kind] = counters.get(kind, 0) + 1
            name = f"{kind}_{counters[kind]}"
            if name not in taken:
                break
        taken.add(name)
        op.set_friendly_name(name)


def _ov_from_torch(model: Model) -> Any:
    import numpy as np
    import openvino as ov
    import torch

    native = model.native()
    if model.format == "exported_program":
        return ov.convert_model(native)
    feeds = model.example_inputs()
    example = tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names)
    shapes = [ov.PartialShape([-1 if isinstance(d, str) else d for d in s.shape]) for s in model.inputs]
    ov_model = ov.convert_model(native, example_input=example, input=shapes)
    for port, spec in zip(ov_model.inputs, model.inputs, strict=False):
        port.get_tensor().set_names({spec.name})
    for port, spec in zip(ov_model.outputs, model.outputs, strict=False):
        port.get_tensor().set_names({spec.name})
    return ov_model


def _ov_model(model: Model) -> Any:
    import openvino as ov

    return ov.Core().read_model(str(model.path)) if model.format == TARGET else ov.convert_model(str(model.path))


def _write_nncf_ptq(model: Model, tmp: Path, *, calibration: list[dict[str, Any]], preset: str, transformer: bool,
                    fast_bias_correction: bool, ignored_scope: list[str] | None = None) -> dict[str, Any]:
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
    if ignored_scope:
        kwargs["ignored_scope"] = nncf.IgnoredScope(names=list(ignored_scope), validate=False)
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

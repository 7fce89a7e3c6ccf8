"""Core ML's steps: conversion from torch, and coremltools' weight quantization.

* ``wb.convert(model, "coreml", precision="fp32" | "fp16")``: torch → Core ML ML Program (``.mlpackage``).
  Converting works on Linux; running a Core ML model needs macOS, so its validation is skipped here (and
  says so).
* ``wb.quantize(model, "coreml", method)``: ``linear`` (symmetric INT8 weights) or ``palettize`` (k-means,
  ``nbits=``); Core ML in and out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.errors import StepError
from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.steps.base import StepSpec, as_model, run_step
from workbench.steps.convert import TORCH_FORMATS, need_extra, need_format
from workbench.steps.quantize import QuantizeMethods, check_options, need, need_module

TARGET = "coreml"
PRECISIONS = ("fp32", "fp16")


@register_step("convert", TARGET, accepts=TORCH_FORMATS, produces=TARGET, aliases=("mlpackage",),
               requires=("coremltools",))
def convert_coreml(model: Model, *, precision: str = "fp32", minimum_deployment_target: str = "iOS16",
                   path: str | Path | None = None, isolate: bool = True, timeout: float | None = None,
                   cache: bool = True, validate: bool = True) -> Model:
    """A Core ML ML Program from torch, at ``precision`` for ``minimum_deployment_target``."""
    model = as_model(model)
    need_format(model, TORCH_FORMATS, TARGET,
                "convert from the PyTorch model (wb.load(module, example_inputs=...)), not from "
                f"{model.format}: Core ML's converter takes torch models")
    need_extra("coremltools", TARGET)
    if precision not in PRECISIONS:
        raise StepError(f"unknown Core ML precision {precision!r}", "use 'fp32' or 'fp16'")
    opts = {"precision": precision, "minimum_deployment_target": minimum_deployment_target}
    spec = StepSpec(f"convert:{TARGET}", opts, ".mlpackage", _write_coreml, opts,
                    tag="fp16" if precision == "fp16" else "", precision=precision, tools=("coremltools", "torch"))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


@register_step("quantize", TARGET, accepts=(TARGET,), produces=TARGET, aliases=("coremltools",),
               methods=("linear", "palettize"), requires=("coremltools",))
def quantize_coreml(model: Model, method: str | None = None, **options: Any) -> Model:
    """coremltools weight quantization: ``linear`` (default) or ``palettize`` (see ``wb.quantize``)."""
    return METHODS.run(model, method, **options)


# -- plans: validate options, name the result ------------------------------------------------------
def _plan(method: str) -> Any:
    def plan(model: Model, options: dict[str, Any]) -> StepSpec:
        need(model, (TARGET,), "Core ML quantization", "convert it first: wb.convert(model, 'coreml')")
        need_module("coremltools", f"pip install 'deployment-workbench[{TARGET}]'")
        defaults = {"nbits": 4, "mode": "kmeans"} if method == "palettize" else {"mode": "linear_symmetric"}
        opts = check_options(options, defaults, f"coreml {method}")
        precision = f"int{opts['nbits']}" if method == "palettize" and opts["nbits"] <= 4 else "int8"
        return StepSpec(f"quantize:{TARGET}", {"method": method, **opts}, ".mlpackage", _write_quantized, {"method": method, **opts},
                        tag="palettized" if method == "palettize" else "int8", precision=precision,
                        tools=("coremltools",))

    return plan


METHODS = QuantizeMethods(TARGET, {"linear": _plan("linear"), "palettize": _plan("palettize")}, default="linear")


# -- writers (run in the worker) -------------------------------------------------------------------
def _write_coreml(model: Model, tmp: Path, *, precision: str, minimum_deployment_target: str) -> dict[str, Any]:
    """torch → Core ML: through ``torch.export`` first (what coremltools recommends for recent torch;
    the transformers convert only this way here), then a TorchScript trace if that fails."""
    import warnings

    import coremltools as ct
    import torch

    try:
        target = getattr(ct.target, minimum_deployment_target)
    except AttributeError:
        raise StepError(f"unknown Core ML deployment target {minimum_deployment_target!r}",
                        "use e.g. 'iOS16', 'iOS17', 'macOS13', 'macOS14'") from None
    common = dict(convert_to="mlprogram", minimum_deployment_target=target,
                  compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32)
    failures = []
    mlmodel, used = None, None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        for path in ("exported_program", "trace"):
            try:
                mlmodel = _coreml_via(path, model, ct, common)
                used = path
                break
            except StepError:
                raise
            except Exception as err:  # noqa: BLE001 - coremltools raises many types (unsupported ops, torch versions)
                first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
                failures.append(f"via {path}: {type(err).__name__}: {first}")
    if mlmodel is None:
        raise StepError(f"Core ML conversion of {model.name} failed ({'; '.join(failures)})",
                        f"coremltools {ct.__version__} is tested with older torch than {torch.__version__}: try "
                        "dynamic=False exports, or replace the operator the message names")
    _rename_features(mlmodel, model)
    mlmodel.save(str(tmp))
    return {"coremltools_version": ct.__version__, "coreml_source": used,
            **({"notes": [f"Core ML: {f}" for f in failures]} if failures else {})}


def _coreml_via(path: str, model: Model, ct: Any, common: dict[str, Any]) -> Any:
    import numpy as np
    import torch

    native = model.native()
    feeds = model.example_inputs()
    example = tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names)
    if path == "exported_program":
        if model.format == "exported_program":
            ep = native
        else:
            ep = torch.export.export(native, example)
        return ct.convert(ep.run_decompositions({}), **common)
    if model.format == "exported_program":
        native = native.module()
    traced = torch.jit.trace(native, example, strict=False, check_trace=False)
    inputs = [ct.TensorType(name=s.name, shape=tuple(feeds[s.name].shape), dtype=feeds[s.name].dtype)
              for s in model.inputs]
    return ct.convert(traced, inputs=inputs, outputs=[ct.TensorType(name=s.name) for s in model.outputs], **common)


def _rename_features(mlmodel: Any, model: Model) -> None:
    """Give the Core ML model the inputs' and outputs' names of the source (torch.export names them
    after the graph's placeholders)."""
    from coremltools.models.utils import rename_feature

    spec = mlmodel._spec
    for feature, spec_ in ((spec.description.input, model.inputs), (spec.description.output, model.outputs)):
        for f, s in zip(list(feature), spec_, strict=False):
            if f.name != s.name:
                rename_feature(spec, f.name, s.name)


def _write_quantized(model: Model, tmp: Path, *, method: str, **opts: Any) -> dict[str, Any]:
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

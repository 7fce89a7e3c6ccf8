"""Convert a model to another format or an optimized graph: ``wb.convert(model, target)``.

``convert`` is generic: it finds the step registered as ``("convert", target)`` (or an alias) in
``workbench.core.registry`` and calls it. The targets live with their tools, one plugin file each:

* ``"onnx-optimized"`` (``steps/onnxruntime.py``): ONNX → the graph after ONNX Runtime's optimizations
  (``level="basic" | "extended" | "all"``);
* ``"onnx-simplified"`` (``steps/onnx_simplify.py``): ONNX → a simplified ONNX with ``tool="onnxslim"``
  (default) or ``tool="onnxsim"``;
* ``"openvino"`` (``steps/openvino.py``): ONNX or torch → OpenVINO IR (``fp16_weights=True`` stores FP16 weights);
* ``"coreml"`` (``steps/coreml.py``): torch → Core ML ML Program (``precision="fp32" | "fp16"``); converting
  works on Linux, running it needs macOS, so its validation is skipped here (and says so).

The helpers below are what the conversion plugins share.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from workbench.core.errors import BackendUnavailable, StepError
from workbench.core.model import Model
from workbench.steps.base import as_model, call_step, resolve_step

TORCH_FORMATS = ("torch", "exported_program", "hf")


def convert(
    model: Model,
    target: str,
    *,
    path: str | Path | None = None,
    level: str | None = None,
    tool: str | None = None,
    fp16_weights: bool | None = None,
    precision: str | None = None,
    minimum_deployment_target: str | None = None,
    isolate: bool = True,
    timeout: float | None = None,
    cache: bool = True,
    validate: bool = True,
    **options: Any,
) -> Model:
    """Convert ``model`` to ``target`` (see the module docstring) and return the new Model.

    Args:
        target: a registered conversion target or alias (``"onnx-optimized"``, ``"onnx-simplified"``,
            ``"openvino"``, ``"coreml"``, ``"onnxslim"``, ``"ov"``, …).
        level: ONNX Runtime graph optimization level for ``"onnx-optimized"`` (default ``"extended"``).
        tool: ``"onnxslim"`` or ``"onnxsim"`` for ``"onnx-simplified"`` (default: the one installed,
            onnxslim first; also implied by ``target="onnxsim"``).
        fp16_weights: OpenVINO: store the weights in FP16 (default False).
        precision: Core ML compute precision, ``"fp32"`` (default) or ``"fp16"``.
        minimum_deployment_target: Core ML target (default ``"iOS16"``; ML Programs need iOS15+).
        path, isolate, timeout, cache, validate: see ``workbench.steps.base.run_step``.
        **options: options of other registered targets.

    The keywords a target does not use are ignored; those left at None take the target's default.
    """
    model = as_model(model)
    plugin = resolve_step("convert", target, "conversion target")
    tuning = dict(level=level, tool=tool, fp16_weights=fp16_weights, precision=precision,
                  minimum_deployment_target=minimum_deployment_target)
    common = {"target": target, **{k: v for k, v in tuning.items() if v is not None},
              "path": path, "isolate": isolate, "timeout": timeout, "cache": cache, "validate": validate}
    return call_step(plugin, model, common, options)


def need_format(model: Model, formats: tuple[str, ...], target: str, fix: str) -> None:
    """Raise the StepError of a conversion to ``target`` handed a model of another format."""
    if model.format not in formats:
        raise StepError(f"convert to {target} takes a {' or '.join(formats)} model; this one is {model.format}", fix)


def need_extra(module: str, extra: str) -> None:
    """Raise BackendUnavailable (with the pip command) when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise BackendUnavailable(f"{module} is not installed", f"pip install 'deployment-workbench[{extra}]'")


def via_onnx(model: Model, **common: Any) -> Model:
    """``model`` as ONNX, through the registry's shortest route of export/convert steps (unvalidated: the
    step that asked validates its own result against the original); an ONNX model is returned as it is."""
    from workbench.core import registry

    for step in registry.route(model.format, "onnx"):
        model = call_step(step, model, {**common, "validate": False}, {})
    return model


def first_line(err: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (runtimes raise with long C++ traces), or its type."""
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else type(err).__name__

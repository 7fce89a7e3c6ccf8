"""Runtimes: one module per backend, one ``Runner`` interface (see ``base.py``).

``wb.backends()`` lists every runtime with its availability (and, when unavailable, why and the fix);
``wb.runner(model, name, **options)`` returns a Runner, converting the model first when the runtime
does not take its format directly (e.g. a torch model for ONNX Runtime is exported to ONNX).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from workbench.errors import IncompatibleModel, WorkbenchError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from workbench.backends.base import Runner
    from workbench.model import Model

# backend name -> (module, class); the modules are imported only when asked about
REGISTRY: dict[str, tuple[str, str]] = {
    "torch_eager": ("workbench.backends.torch_eager", "TorchEagerRunner"),
    "torch_compile": ("workbench.backends.torch_compile", "TorchCompileRunner"),
    "torchscript": ("workbench.backends.torchscript", "TorchScriptRunner"),
    "onnxruntime": ("workbench.backends.onnxruntime", "OnnxRuntimeRunner"),
    "openvino": ("workbench.backends.openvino", "OpenVINORunner"),
    "coreml": ("workbench.backends.coreml", "CoreMLRunner"),
}
ALIASES = {"ort": "onnxruntime", "ov": "openvino", "torch": "torch_eager", "eager": "torch_eager",
           "inductor": "torch_compile", "jit": "torchscript"}


def get_backend(name: str) -> type[Runner]:
    """The Runner class registered under ``name`` (or an alias such as ``"ort"``, ``"ov"``)."""
    key = ALIASES.get(name, name)
    if key not in REGISTRY:
        raise WorkbenchError(f"unknown backend {name!r}", f"choose one of {', '.join(REGISTRY)}")
    module, cls = REGISTRY[key]
    return getattr(importlib.import_module(module), cls)


def backends(as_frame: bool = True) -> pd.DataFrame | list[Any]:
    """Every runtime: available or not, its version, the formats it takes, and if unavailable why and the fix."""
    rows = [get_backend(name).availability() for name in REGISTRY]
    if not as_frame:
        return rows
    import pandas as pd

    return pd.DataFrame([{
        "backend": a.name, "available": a.available, "version": a.version or "",
        "formats": ", ".join(a.formats), "devices": ", ".join(a.devices), "precisions": ", ".join(a.precisions),
        "reason": a.reason or "", "fix": a.fix or "",
    } for a in rows]).set_index("backend")


def default_backend(model: Model) -> str:
    """The natural runtime for a model's format."""
    return {"torch": "torch_eager", "hf": "torch_eager", "exported_program": "torch_eager",
            "torchscript": "torchscript", "onnx": "onnxruntime", "openvino": "openvino",
            "coreml": "coreml"}[model.format]


# How to reach a format a runtime takes from one it does not: (from, to) -> export/convert target.
_CONVERSIONS = {
    "onnx": ("torch", "hf", "exported_program"),
    "torchscript": ("torch", "hf"),
}


def runner(model: Model | Any, backend: str, **options: Any) -> Runner:
    """A Runner for ``model`` on ``backend``; converts the model when the runtime needs another format.

    Options go to the runtime (e.g. ``providers=``, ``graph_optimization_level=``, ``threads=`` for
    ONNX Runtime; ``device=``, ``hint=``, ``precision=`` for OpenVINO). See each backend's docstring.
    """
    from workbench.model import Model, load

    if not isinstance(model, Model):
        model = load(model)
    cls = get_backend(backend)
    if model.format not in cls.formats:
        model = _convert_for(model, cls)
    return cls(model, **options)


def _convert_for(model: Model, cls: type[Runner]) -> Model:
    for target in ("onnx", "torchscript"):
        if target in cls.formats and model.format in _CONVERSIONS[target]:
            cache = model.metadata.setdefault("_runner_exports", {})
            if target not in cache:
                from workbench.steps.export import export

                cache[target] = export(model, target, validate=False)  # the caller compares if it wants
            return cache[target]
    raise IncompatibleModel(
        f"{cls.name} cannot run a {model.format} model, and there is no conversion path from {model.format}",
        f"{cls.name} takes: {', '.join(cls.formats)}",
    )


class _CallableModule(types.ModuleType):
    """``wb.backends`` names both this package and its function: importing the package (``import
    workbench.backends``) makes Python set ``workbench.backends`` to the module, hiding the lazily
    exported function. Calling the module calls the function, so ``wb.backends()`` always works."""

    def __call__(self, as_frame: bool = True) -> Any:
        return backends(as_frame)


sys.modules[__name__].__class__ = _CallableModule

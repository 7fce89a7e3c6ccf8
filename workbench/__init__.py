"""Deployment Workbench: take a trained model to deployment, hands-on, in a notebook.

``import workbench as wb`` is fast: the heavy runtimes (torch, onnxruntime, openvino, coremltools,
triton) are imported only when a function that needs them is called. Every public name below is
resolved lazily on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, attribute); attribute None means the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    "load": ("workbench.model", "load"),
    "Model": ("workbench.model", "Model"),
    "TensorSpec": ("workbench.model", "TensorSpec"),
    "backends": ("workbench.backends", "backends"),
    "runner": ("workbench.backends", "runner"),
    "Runner": ("workbench.backends.base", "Runner"),
    "export": ("workbench.steps.export", "export"),
    "convert": ("workbench.steps.convert", "convert"),
    "quantize": ("workbench.steps.quantize", "quantize"),
    "Pipeline": ("workbench.steps.pipeline", "Pipeline"),
    "Step": ("workbench.steps.pipeline", "Step"),
    "set_workspace": ("workbench.workspace", "set_workspace"),
    "artifacts": ("workbench.workspace", "artifacts"),
    "compare": ("workbench.compare", "compare"),
    "compare_layers": ("workbench.compare", "compare_layers"),
    "Comparison": ("workbench.compare", "Comparison"),
    "compare_outputs": ("workbench.compare", "compare_outputs"),
    "LayerReport": ("workbench.compare", "LayerReport"),
    "profile_nodes": ("workbench.profile", "profile_nodes"),
    "html_report": ("workbench.report", "html_report"),
    "TuneResult": ("workbench.autotune", "TuneResult"),
    "benchmark": ("workbench.bench", "benchmark"),
    "BenchReport": ("workbench.bench", "BenchReport"),
    "autotune": ("workbench.autotune", "autotune"),
    "Graph": ("workbench.graph", "Graph"),
    "show": ("workbench.ui", "show"),
    "Workbench": ("workbench.ui.app", "Workbench"),
    "WorkbenchError": ("workbench.errors", "WorkbenchError"),
    "zoo": ("workbench.zoo", None),
    "kernels": ("workbench.kernels", None),
    "errors": ("workbench.errors", None),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from workbench import errors, kernels, zoo  # noqa: F401
    from workbench.backends import backends, runner  # noqa: F401
    from workbench.backends.base import Runner  # noqa: F401
    from workbench.errors import WorkbenchError  # noqa: F401
    from workbench.model import Model, TensorSpec, load  # noqa: F401

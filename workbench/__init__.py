"""Deployment Workbench: take a trained model to deployment, hands-on, in a notebook.

``import workbench as wb`` is fast: the heavy runtimes (torch, onnxruntime, openvino, coremltools,
triton) are imported only when a function that needs them is called. Every public name below is
resolved lazily on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# known notices of optional libraries (Core ML on Linux, torchao's CUDA kernels, …) are dropped at their
# loggers, one message pattern each, before any of those libraries is imported: workbench/core/notices.py
importlib.import_module("workbench.core.notices").install()

# public name -> (module, attribute); attribute None means the module itself. The functions that take a
# model point at workbench.api, which loads zoo names, paths and modules before calling the engine.
_LAZY: dict[str, tuple[str, str | None]] = {
    "load": ("workbench.api", "load"),
    "Model": ("workbench.core.model", "Model"),
    "TensorSpec": ("workbench.core.model", "TensorSpec"),
    "backends": ("workbench.api", "backends"),
    "runner": ("workbench.api", "runner"),
    "registry": ("workbench.core.registry", None),
    "Runner": ("workbench.core.runner", "Runner"),
    "export": ("workbench.api", "export"),
    "convert": ("workbench.api", "convert"),
    "quantize": ("workbench.api", "quantize"),
    "quantize_debug": ("workbench.api", "quantize_debug"),
    "QuantDebugReport": ("workbench.analysis.quant_debug", "QuantDebugReport"),
    "Pipeline": ("workbench.api", "Pipeline"),
    "Step": ("workbench.steps.pipeline", "Step"),
    "set_workspace": ("workbench.steps.workspace", "set_workspace"),
    "artifacts": ("workbench.steps.workspace", "artifacts"),
    "compare": ("workbench.api", "compare"),
    "compare_layers": ("workbench.api", "compare_layers"),
    "Comparison": ("workbench.analysis.compare", "Comparison"),
    "compare_outputs": ("workbench.analysis.compare", "compare_outputs"),
    "LayerReport": ("workbench.analysis.layerwise", "LayerReport"),
    "profile_nodes": ("workbench.api", "profile_nodes"),
    "html_report": ("workbench.analysis.report", "html_report"),
    "TuneResult": ("workbench.analysis.autotune", "TuneResult"),
    "benchmark": ("workbench.api", "benchmark"),
    "BenchReport": ("workbench.analysis.bench", "BenchReport"),
    "autotune": ("workbench.api", "autotune"),
    "sweep": ("workbench.api", "sweep"),
    "package": ("workbench.api", "package"),
    "serve": ("workbench.api", "serve"),
    "load_test": ("workbench.api", "load_test"),
    "LoadTestReport": ("workbench.serving.load_test", "LoadTestReport"),
    "SweepResult": ("workbench.analysis.sweep", "SweepResult"),
    "Graph": ("workbench.core.graph", "Graph"),
    "show": ("workbench.ui", "show"),
    "Workbench": ("workbench.ui.app", "Workbench"),
    "KernelLab": ("workbench.ui.kernel_lab", "KernelLab"),
    "QuantDebugView": ("workbench.ui.quant_debug_view", "QuantDebugView"),
    "WorkbenchError": ("workbench.core.errors", "WorkbenchError"),
    "Cancelled": ("workbench.core.progress", "Cancelled"),
    "CancelToken": ("workbench.core.progress", "CancelToken"),
    "zoo": ("workbench.zoo", None),
    "kernels": ("workbench.kernels", None),
    "errors": ("workbench.core.errors", None),
}

__all__ = sorted(_LAZY) + ["__version__"]

#: public name -> the ui module whose view of it registers on the progress channel when used in a notebook
_NOTEBOOK_VIEWS = {"Pipeline": "workbench.ui.pipeline_view", "benchmark": "workbench.ui.pipeline_view",
                   "autotune": "workbench.ui.pipeline_view"}


def _register_notebook_view(module_name: str) -> None:
    """In a Jupyter kernel, import the view module (it registers itself with ``workbench.core.progress``),
    so ``Pipeline.run`` shows the notebook view with its Cancel button; elsewhere, and without
    ipywidgets, the engine's default (tqdm) stays."""
    from workbench.core.progress import in_notebook

    if in_notebook():
        try:
            importlib.import_module(module_name)
        except ImportError:
            pass


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    if name in _NOTEBOOK_VIEWS:
        _register_notebook_view(_NOTEBOOK_VIEWS[name])
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from workbench import kernels, zoo  # noqa: F401
    from workbench.api import (  # noqa: F401
        Pipeline,
        autotune,
        backends,
        benchmark,
        compare,
        compare_layers,
        convert,
        export,
        load,
        load_test,
        package,
        profile_nodes,
        quantize,
        quantize_debug,
        runner,
        serve,
        sweep,
    )
    from workbench.core import errors  # noqa: F401
    from workbench.core.errors import WorkbenchError  # noqa: F401
    from workbench.core.model import Model, TensorSpec  # noqa: F401
    from workbench.core.runner import Runner  # noqa: F401

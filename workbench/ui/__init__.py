"""Notebook views over the engine. ``ipywidgets``/``anywidget`` are imported only when a view is made,
so ``import workbench`` stays fast.

- ``show(model)``: the native graph widget (``GraphView``); ``show(model, viewer="netron")``: Netron.
- ``show(graph_diff)`` or ``show((a, b))``: a diff (``DiffView``).
"""

from __future__ import annotations

import importlib
from typing import Any

_VIEWS = {
    "GraphView": "workbench.ui.graph_view",
    "DiffView": "workbench.ui.graph_view",
    "NetronView": "workbench.ui.netron_view",
    "KernelLab": "workbench.ui.kernel_lab",
    "BenchView": "workbench.ui.bench_view",
    "CompareBoard": "workbench.ui.compare_board",
    "Workbench": "workbench.ui.app",
    "PipelineStepper": "workbench.ui.pipeline_stepper",
    "QuantDebugView": "workbench.ui.quant_debug_view",
    "ModelExplorer": "workbench.ui.model_explorer",
    "FastestRuntime": "workbench.ui.fastest_runtime",
    "DownloadButton": "workbench.ui.download",
    "CodeBox": "workbench.ui.download",
    "ModelPicker": "workbench.ui.model_picker",
}

__all__ = ["show", *_VIEWS]


def show(model: Any, viewer: str = "native", **kwargs: Any) -> Any:
    """A view of ``model``'s graph, displayed when it is the last value of a cell.

    Args:
        model: a Model, a zoo name, a path, a ``wb.Graph``; for a diff, a ``GraphDiff`` or a pair
            ``(model_a, model_b)``.
        viewer: ``"native"`` (the workbench's graph widget: stats, folding, overlays) or
            ``"netron"`` (Netron's own viewer, for every format Netron opens).
        **kwargs: passed to the view (``height=``, ``fold_threshold=``; for diffs ``layout=``
            ``"side-by-side"`` or ``"merged"`` and ``match=``).

    Returns the widget (``GraphView``, ``NetronView`` or ``DiffView``); call ``.overlay(...)`` on a
    GraphView to colour it.
    """
    from workbench.analysis.graph_diff import GraphDiff
    from workbench.core.errors import WorkbenchError

    if isinstance(model, GraphDiff) or (isinstance(model, tuple) and len(model) == 2):
        from workbench.ui.graph_view import DiffView

        return DiffView(*((model,) if isinstance(model, GraphDiff) else model), **kwargs)
    if viewer == "native":
        from workbench.ui.graph_view import GraphView

        return GraphView(model, **kwargs)
    if viewer == "netron":
        from workbench.ui.netron_view import NetronView

        return NetronView(model, **kwargs)
    raise WorkbenchError(f"unknown viewer {viewer!r}", "use viewer='native' or viewer='netron'")


def __getattr__(name: str) -> Any:
    if name in _VIEWS:
        return getattr(importlib.import_module(_VIEWS[name]), name)
    raise AttributeError(f"module 'workbench.ui' has no attribute {name!r}")

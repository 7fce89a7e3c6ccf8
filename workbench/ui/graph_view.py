"""``GraphView``: the native graph widget, and ``DiffView``: two graphs side by side or merged.

The browser half is TypeScript in ``widgets/src/graph/`` (the repository's top-level ``widgets/``
package), bundled to ``workbench/widgets/graph.js`` at build time (an anywidget ESM module): layout,
drawing, folding, search, minimap, export and the details panel all run in the browser, so the widget needs nothing but the
kernel's comm channel and works the same in JupyterLab, Notebook 7, Voilà and behind a base URL.
The kernel answers one request: a node's details (attributes, weights' statistics), on selection.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

from workbench.analysis.graph_diff import GraphDiff, diff
from workbench.core.errors import WorkbenchError
from workbench.core.graph import Graph
from workbench.ui import assets
from workbench.ui.show_code import code_trait


def as_graph(source: Any) -> Graph:
    """A ``Graph`` from a Graph, a Model, or anything ``wb.load`` accepts (path, zoo name, module)."""
    if isinstance(source, Graph):
        return source
    from workbench.api import load
    from workbench.core.model import Model
    from workbench.steps.isolation import graph_of

    model = source if isinstance(source, Model) else load(source)
    return graph_of(model)  # in the worker in a published app: a visitor's model is untrusted native work


def overlay_payload(graph: Graph, values: Any, label: str, unit: str = "",
                    thresholds: Sequence[float] | None = None, colors: Mapping[str, str] | None = None,
                    scale: str = "linear") -> dict[str, Any]:
    """Validate a per-node mapping and turn it into the widget's overlay description.

    ``values`` maps node names to numbers (latency, error, …) or to labels (``"quantized"``); a
    pandas Series indexed by node name, or any object with ``.per_node()`` returning such a mapping
    (the workbench's latency and layerwise reports), works too. Names may also be output tensor names.
    """
    if hasattr(values, "per_node") and callable(values.per_node):
        values = values.per_node()
    if hasattr(values, "to_dict") and not isinstance(values, Mapping):  # pandas Series
        values = values.to_dict()
    if not isinstance(values, Mapping):
        raise WorkbenchError(f"an overlay needs a mapping of node name to value, not a {type(values).__name__}",
                             "pass a dict {node_name: value}, a pandas Series indexed by node name, "
                             "or a report with .per_node()")
    if scale not in ("linear", "log"):
        raise WorkbenchError(f"unknown overlay scale {scale!r}", "use scale='linear' or scale='log'")
    by_tensor = {t: n.name for n in graph.nodes for t in n.outputs}
    out: dict[str, Any] = {}
    unknown: list[str] = []
    categorical = False
    for key, v in values.items():
        name = str(key)
        if name not in graph:
            name = by_tensor.get(name, "")
        if not name:
            unknown.append(str(key))
            continue
        if v is None:
            continue
        if isinstance(v, bool | str):
            categorical = True
            out[name] = str(v)
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise WorkbenchError(f"the overlay value for {key!r} is a {type(v).__name__}, not a number or label",
                                 "pass numbers (latency, error) or strings (categories)") from None
        if math.isfinite(f):
            out[name] = f
    if values and not out and unknown:
        raise WorkbenchError(
            f"none of the {len(unknown)} names in the overlay match a node of {graph.name!r} "
            f"(e.g. {unknown[0]!r})",
            f"use node names from graph.nodes, e.g. {', '.join(repr(n.name) for n in graph.nodes[:2])}")
    if unknown:
        warnings.warn(f"{len(unknown)} overlay names match no node (e.g. {unknown[:3]}); they are not shown",
                      stacklevel=3)
    if categorical:
        out = {k: str(v) for k, v in out.items()}
    return {"values": out, "label": label, "unit": unit, "kind": "categorical" if categorical else "numeric",
            "thresholds": sorted(float(t) for t in thresholds) if thresholds else [],
            "colors": dict(colors or {}), "scale": scale, "unmatched": len(unknown)}


class GraphView(anywidget.AnyWidget):
    """The native graph widget: nodes with op, shapes, dtypes, parameters and MACs; a details panel;
    search; folding by module; model stats; overlays. ``wb.show(model)`` makes one.

    Args:
        source: a Model, a Graph, a path or a zoo name.
        height: pixels; the view keeps it inside any layout (VBox, HBox, Voilà).
        fold_threshold: graphs with more nodes start folded by module, opened level by level while at
            most this many boxes show (lists of layers open so a transformer shows its layers).

    Example::

        v = wb.ui.GraphView(wb.load("resnet18"))
        v.overlay(latency_report.per_node(), label="latency", unit="ms", thresholds=[0.1, 1.0])
        v
    """

    _esm = assets.esm("graph")
    _css = assets.css("graph")
    data = traitlets.Dict().tag(sync=True)
    overlay_data = traitlets.Dict().tag(sync=True)
    extra = traitlets.Dict().tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    height = traitlets.Int(560).tag(sync=True)
    fold_threshold = traitlets.Int(40).tag(sync=True)
    #: views with the same non-empty group pan and zoom together (the panes of a side-by-side diff)
    sync_group = traitlets.Unicode("").tag(sync=True)
    #: "Show code": the Python this view stands for (``code()``); empty hides the control (diff panes)
    code_text = code_trait()

    def __init__(self, source: Any, *, height: int = 560, fold_threshold: int = 40,
                 _payload: dict[str, Any] | None = None, **kwargs: Any):
        assets.require("graph")
        self.graph = source if _payload is not None else as_graph(source)
        super().__init__(data=_payload if _payload is not None else self.graph.to_view(), height=height,
                         fold_threshold=fold_threshold, **kwargs)
        self.on_msg(self._on_msg)
        # Show code: what was shown and how; a diff's panes (a payload given, or a sync group) have none
        self._source = source
        self._overlay_call: dict[str, Any] | None = None
        if _payload is None and not self.sync_group:
            self.code_text = _code_or_comment(self._shown_code)

    def overlay(self, values: Any, label: str = "value", unit: str = "", thresholds: Sequence[float] | None = None,
                colors: Mapping[str, str] | None = None, scale: str = "linear") -> GraphView:
        """Colour nodes by a per-node value, with a legend.

        Args:
            values: ``{node_name: number | label}``, a pandas Series indexed by node name, or an
                object with ``.per_node()`` (latency profile, layerwise error report).
            label, unit: the legend's title ("latency", "ms").
            thresholds: numbers that split the values into bins coloured green → red; without them
                the colour follows a continuous scale from the minimum to the maximum.
            colors: for labels, ``{label: css colour}``.
            scale: ``"linear"`` or ``"log"`` (continuous scale only).

        Returns the view, so ``wb.show(m).overlay(...)`` displays the coloured graph.
        """
        self.overlay_data = overlay_payload(self.graph, values, label, unit, thresholds, colors, scale)
        self._overlay_call = {"values": self.overlay_data["values"], "label": label, "unit": unit,
                              "thresholds": list(thresholds) if thresholds else None,
                              "colors": dict(colors) if colors else None, "scale": scale}
        if self.code_text:
            self.code_text = _code_or_comment(self._shown_code)
        return self

    def clear_overlay(self) -> GraphView:
        """Back to colouring by op family."""
        self.overlay_data = {}
        self._overlay_call = None
        if self.code_text:
            self.code_text = _code_or_comment(self._shown_code)
        return self

    #: overlays with more values than this show an excerpt in the browser's Show code (``code()`` has all)
    SHOWN_VALUES = 2000

    def _shown_code(self) -> str:
        return self.code(max_values=self.SHOWN_VALUES)

    def code(self, max_values: int | None = None) -> str:
        """The Python this view stands for: ``wb.show(...)`` with its arguments and its overlay (values
        included, so the code runs as is). ``max_values`` cuts a longer overlay to an excerpt (then the
        code says so and is not complete)."""
        from workbench.ui.show_code import model_expr, py_value

        source, notes = model_expr(self._source)
        args = "".join(f", {k}={v!r}" for k, v, default in (("height", self.height, 560),
                                                             ("fold_threshold", self.fold_threshold, 40))
                       if v != default)
        lines = ["import workbench as wb", "", *notes, f"view = wb.show({source}{args})"]
        o = self._overlay_call
        if o is not None:
            opts = "".join(f", {k}={o[k]!r}" for k in ("label", "unit", "thresholds", "colors") if o[k])
            opts += f", scale={o['scale']!r}" if o["scale"] != "linear" else ""
            values = o["values"]
            if max_values is not None and len(values) > max_values:
                lines.append(f"# an excerpt: {max_values:,} of the overlay's {len(values):,} values "
                             "(print(view.code()) in the notebook writes them all)")
                values = dict(list(values.items())[:max_values])
            lines += [f"values = {py_value(values, 9)}", f"view.overlay(values{opts})"]
        return "\n".join([*lines, "view"]) + "\n"

    def select(self, name: str) -> GraphView:
        """Select a node (unfolds its modules, centres it and shows its details)."""
        self.graph.node(name)  # KeyError with close names when absent
        self.selected = name
        return self

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "details":
            return
        name = str(content.get("name", ""))
        try:
            details = self.graph.details(name)
            self.send({"type": "details", "id": content.get("id"), "details": details})
        except Exception as err:  # noqa: BLE001 - the message goes to the panel; the kernel carries on
            self.send({"type": "details", "id": content.get("id"), "error": f"{type(err).__name__}: {err}"})


class _GraphLike:
    """The bit of ``Graph`` that GraphView uses for a merged diff: details of either side's nodes."""

    def __init__(self, d: GraphDiff, payload: dict[str, Any]):
        self._d = d
        self.name = payload["name"]
        removed = {n for n in payload["nodes"]["name"] if payload["status"].get(n) == "removed"}
        self._removed = removed
        self.nodes = d.b.nodes + [d.a.node(n) for n in d.removed]

    def __contains__(self, name: object) -> bool:
        return name in self._d.b or name in self._removed

    def node(self, name: str) -> Any:
        return self._d.b.node(name) if name in self._d.b else self._d.a.node(name.removesuffix(" (removed)"))

    def details(self, name: str) -> dict[str, Any]:
        if name in self._d.b:
            return self._d.b.details(name)
        return self._d.a.details(name.removesuffix(" (removed)"))


class DiffView(widgets.VBox):
    """Two graphs compared: ``layout="side-by-side"`` (two views, selection linked through the
    match) or ``"merged"`` (one view of the second graph plus the removed nodes). Added nodes are
    green, removed red, changed orange, the same grey; a changed node's details list what changed.
    """

    def __init__(self, a: Any, b: Any | None = None, *, layout: str = "side-by-side", match: str = "auto",
                 height: int = 560, **kwargs: Any):
        if layout not in ("side-by-side", "merged"):
            raise WorkbenchError(f"unknown diff layout {layout!r}", "use layout='side-by-side' or 'merged'")
        self._call = {"a": a, "b": b, "layout": layout, "match": match, "height": height}
        from workbench.ui.download import CodeBox
        if isinstance(a, GraphDiff):
            self.diff = a
        else:
            if b is None:
                raise WorkbenchError("a diff needs two models", "pass wb.ui.DiffView(model_a, model_b)")
            self.diff = diff(as_graph(a), as_graph(b), match=match)
        d = self.diff
        summary = widgets.HTML(f"<div class='wb-diff-summary'>{_escape(d.summary())}</div>")
        colors = {"same": "#c9cdd3", "changed": "#f28e2b", "added": "#2ca02c", "removed": "#d62728"}
        cats = ["same", "changed", "added", "removed"]
        if layout == "merged":
            payload = d.to_view()
            view = GraphView(_GraphLike(d, payload), height=height, _payload=payload, **kwargs)
            view.overlay_data = {"values": payload["status"], "label": "diff", "unit": "", "kind": "categorical",
                                 "categories": cats, "colors": colors, "thresholds": [], "scale": "linear"}
            view.extra = {k: {"changes": ", ".join(v)} for k, v in payload["changes"].items()}
            self.views = [view]
            super().__init__([summary, view, CodeBox(self.code)])
            return
        group = f"diff-{id(self):x}"
        va = GraphView(d.a, height=height, sync_group=group, **kwargs)
        vb = GraphView(d.b, height=height, sync_group=group, **kwargs)
        for v, st in ((va, d.status_a()), (vb, d.status_b())):
            v.overlay_data = {"values": st, "label": "diff", "unit": "", "kind": "categorical", "categories": cats,
                              "colors": colors, "thresholds": [], "scale": "linear"}
        va.extra = {m.a: {"changes": ", ".join(m.changes), "matched": m.b} for m in d.matches if m.a and m.b}
        vb.extra = {m.b: {"changes": ", ".join(m.changes), "matched": m.a} for m in d.matches if m.a and m.b}
        pairs = d.pairs()
        rev = {v: k for k, v in pairs.items()}

        def link(src: GraphView, dst: GraphView, mapping: dict[str, str]) -> None:
            def on_change(change: dict[str, Any]) -> None:
                other = mapping.get(change["new"])
                if other and dst.selected != other:
                    dst.selected = other

            src.observe(on_change, names="selected")

        link(va, vb, pairs)
        link(vb, va, rev)
        self.views = [va, vb]
        row = widgets.HBox([va, vb], layout=widgets.Layout(width="100%"))
        va.layout = widgets.Layout(flex="1 1 0", min_width="0")
        vb.layout = widgets.Layout(flex="1 1 0", min_width="0")
        super().__init__([summary, row, CodeBox(self.code)])

    def code(self) -> str:
        """The Python this view stands for: ``DiffView(a, b, ...)`` with its arguments."""
        from workbench.ui.show_code import model_expr

        c = self._call
        if isinstance(c["a"], GraphDiff):
            a, b, notes = "d.a", "d.b", ["# d: the GraphDiff you passed (wb.ui.DiffView(model_a, model_b) makes one)"]
        else:
            (a, na), (b, nb) = model_expr(c["a"], "model_a"), model_expr(c["b"], "model_b")
            notes = na + nb
        opts = "".join(f", {k}={c[k]!r}" for k, default in (("layout", "side-by-side"), ("match", "auto"),
                                                             ("height", 560)) if c[k] != default)
        return "\n".join(["import workbench as wb", "from workbench.ui import DiffView", "", *notes,
                          f"view = DiffView({a}, {b}{opts})", "view"]) + "\n"


def _code_or_comment(code: Any) -> str:
    try:
        return code()
    except Exception as err:  # noqa: BLE001 - a view whose code cannot be written still renders
        return f"# the code could not be written: {type(err).__name__}: {err}"


def _escape(text: str) -> str:
    import html

    return html.escape(text)

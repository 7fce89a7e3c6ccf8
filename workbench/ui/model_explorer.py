"""``wb.ui.ModelExplorer``: what a model is — its graph, its description, its inputs and outputs, and what
its graph is made of (operators with their counts, parameters and MACs) — for the model a ``ModelPicker``
picks. The Voilà app ``notebooks/apps/model_explorer.ipynb`` is this one widget.

A thin view: the picker loads (``wb.load``), the graph comes from ``Model.graph()`` (in the worker process
in a published app: a visitor's file is untrusted native work), the tables from ``Graph.stats()`` and
``Graph.to_frame()``. In a published app (``settings.published()``, or a kernel started by Voilà) the
visitor chooses among zoo models and uploads only, sees no server path, and gets no "Show code" (its code
would name the server's files).
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from workbench.core.errors import WorkbenchError
from workbench.core.graph import Graph
from workbench.core.model import Model
from workbench.ui.download import CodeBox
from workbench.ui.graph_view import GraphView, as_graph
from workbench.ui.model_picker import ModelPicker

#: compact rows, numbers right-aligned, a rule under each row (the notebook's own table style may be absent)
TABLE_CSS = ("<style>.wb-table table{border-collapse:collapse;font-size:13px}"
             ".wb-table th,.wb-table td{padding:3px 10px;border-bottom:1px solid #e0e0e0;text-align:right;"
             "white-space:nowrap}.wb-table th{background:#f5f5f5}</style>")
TABS = ("Graph", "Description", "Inputs and outputs", "Operators")


def op_table(graph: Graph) -> Any:
    """Per operator type: how many nodes, their parameters and MACs, and the share of the model's MACs
    (a ``pandas.DataFrame`` sorted by MACs, then count)."""
    import pandas as pd

    frame = graph.to_frame()
    if frame.empty:
        return pd.DataFrame(columns=["count", "params", "macs", "share_of_macs"])
    for column in ("params", "macs"):
        if column not in frame:
            frame[column] = 0
    table = frame.groupby("op").agg(count=("name", "size"), params=("params", "sum"), macs=("macs", "sum"))
    total = float(table["macs"].sum())
    table["share_of_macs"] = table["macs"] / total if total else 0.0
    return table.sort_values(["macs", "count"], ascending=False)


def io_table(model: Model) -> Any:
    """One row per input and output: kind, name, dtype, shape, the dynamic axes (named dimensions)."""
    import pandas as pd

    rows = [{"kind": kind, "name": s.name, "dtype": s.dtype,
             "shape": "[" + ", ".join(str(d) for d in s.shape) + "]",
             "dynamic axes": ", ".join(str(s.shape[i]) for i in s.dynamic_axes) or "-"}
            for kind, specs in (("input", model.inputs), ("output", model.outputs)) for s in specs]
    return pd.DataFrame(rows)


def _human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f}"


class ModelExplorer(widgets.VBox):
    """Pick a model and see its graph (``GraphView``), its description, its inputs and outputs (dynamic
    axes named) and its operators (count, parameters, MACs per op type).

    Args:
        model: the zoo model (or, outside a published app, path) shown at start; None for none.
        models: the zoo models offered (default: every zoo model installed here).
        published: a published app's explorer (no paths, no code shown); default: the picker's rule
            (``settings.published()``, or a kernel started by Voilà).
        height: the graph's height in pixels.

    ``.model`` and ``.graph`` are what is shown, ``.show_model(model)`` shows another ``Model``, and
    ``.code()`` is the Python that makes the same views.
    """

    def __init__(self, model: Any = "digits-cnn", *, models: list[str] | None = None,
                 published: bool | None = None, height: int = 520):
        self.picker = ModelPicker(None, models=models, published=published)
        self.published = self.picker.published
        self.model: Model | None = None
        self.graph: Graph | None = None
        self.height = height
        self.status = widgets.HTML()
        self._panes = [widgets.Box(layout=widgets.Layout(width="100%")) for _ in TABS]
        self.tabs = widgets.Tab(children=self._panes, titles=TABS)
        self.code_box = None if self.published else CodeBox(self.code)
        children = [widgets.HTML("<h3 style='margin:4px 0'>Model explorer</h3>"), self.picker, self.status, self.tabs]
        super().__init__(children=children + ([self.code_box] if self.code_box is not None else []))
        self.add_class("wb-model-explorer")
        self.picker.on_pick(self.show_model)
        if model is not None and model != "":
            try:
                self.picker.pick(model)
            except WorkbenchError as err:  # shown by the picker as well
                self._say(f"could not load {model!r}: {err}", error=True)

    def show_model(self, model: Model) -> None:
        """Show ``model``: its graph and tables (an error building the graph is shown; the rest still is)."""
        self.model, self.graph = model, None
        self._say(f"reading the graph of {model.name} …")
        self._panes[1].children = [self._pre(self._description(model))]
        self._panes[2].children = [self._table(io_table(model))]
        try:
            self.graph = as_graph(model)
        except WorkbenchError as err:
            self._panes[0].children = [self._pre(str(err))]
            self._panes[3].children = [self._pre("no graph: " + str(err))]
            self._say(f"{model.name}: no graph ({err.problem})", error=True)
        else:
            stats = self.graph.stats()
            self._panes[0].children = [GraphView(self.graph, height=self.height)]
            self._panes[3].children = [self._table(op_table(self.graph), share=True)]
            self._say(f"<b>{html.escape(model.name)}</b> ({html.escape(model.format)}): {stats['nodes']} nodes, "
                      f"{_human(stats['params'])} parameters, {_human(stats['macs'])} MACs, "
                      f"{len(stats['op_histogram'])} operator types")
        if self.code_box is not None:
            self.code_box.refresh()

    def code(self) -> str:
        """The Python that loads the model and makes the same views (runs as is)."""
        if self.model is None:
            return self.picker.code().rstrip() + "\n"
        return self.picker.script(
                "from workbench.ui.model_explorer import io_table, op_table\n",
                "print(m.describe())\n"
                "print(io_table(m))\n"
                "print(op_table(m.graph()))\n"
                "wb.show(m)\n")

    # -- rendering -----------------------------------------------------------------------------------
    def _description(self, model: Model) -> str:
        text = model.describe()
        if self.published and model.path is not None:  # a visitor sees the file's name, not the server's path
            text = text.replace(str(model.path.parent), "…")
        return text

    def _say(self, text: str, error: bool = False) -> None:
        colour = "#b00020" if error else "#333"
        self.status.value = f"<div style='color:{colour};margin:4px 0'>{text if not error else html.escape(text)}</div>"

    @staticmethod
    def _pre(text: str) -> widgets.HTML:
        return widgets.HTML(f"<pre style='white-space:pre-wrap;margin:4px 0'>{html.escape(text)}</pre>")

    @staticmethod
    def _table(frame: Any, share: bool = False) -> widgets.HTML:
        if share:
            frame = frame.reset_index()
        formatters = {"share_of_macs": lambda v: f"{100 * v:.1f}%"} if share else None
        body = frame.to_html(escape=True, border=0, formatters=formatters, index=False,
                             float_format=lambda v: f"{v:,.0f}")
        return widgets.HTML(f"{TABLE_CSS}<div class='wb-table' style='max-height:480px;overflow:auto'>{body}</div>")

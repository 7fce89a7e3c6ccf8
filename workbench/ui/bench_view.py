"""``BenchView``: a dashboard over results (BenchReport, Comparison, LayerReport, NodeProfile, TuneResult).

One tab per result, each with its verdict, its table and its charts. The charts are the report's static
SVG (``workbench.analysis.report``), so the dashboard renders the same in JupyterLab, Notebook 7 and Voilà, behind
a base URL, offline, with no extra JavaScript. "Save report" writes the standalone HTML page to the
artifacts folder (a new file; nothing is overwritten). The view computes nothing: it renders results.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from workbench.core.errors import WorkbenchError


def _verdict(result: Any) -> str:
    kind = type(result).__name__
    if kind == "BenchReport":
        ok, text = (not result.noisy), ("noisy: the machine was busy, measure again" if result.noisy else "steady")
        if not result:
            ok, text = False, "some configurations failed"
    elif kind == "TuneResult":
        ok = result.best is not None
        text = f"best: {result.best.label} ({result.best.latency_ms:.3f} ms)" if ok else "no configuration met the budget"
    elif kind == "NodeProfile":
        ok, text = True, ", ".join(f"{b}: {result.total_ms(b):.3f} ms per run" for b in result.backends)
    else:  # Comparison, LayerReport
        ok = bool(result)
        first = getattr(result, "first_divergent", None)
        text = "PASS" if ok else ("FAIL" + (f": first divergent node {first.node} ({first.op_type})" if first else ""))
    colour = "#1a7f37" if ok else "#cf222e"
    return f"<div style='font-weight:bold;color:{colour};margin:4px 0'>{html.escape(text)}</div>"


class BenchView(widgets.VBox):
    """A tabbed dashboard of one or more results; ``BenchView(report, comparison, tuned)``."""

    def __init__(self, *results: Any, title: str = "Compare and benchmark"):
        from workbench.analysis.report import sections

        if not results:
            raise WorkbenchError("BenchView needs at least one result",
                                 "pass e.g. BenchView(wb.benchmark(...), wb.compare(...))")
        self.results = list(results)
        pages, names = [], []
        for result in self.results:
            try:
                heading, parts = sections(result)
            except TypeError:
                raise WorkbenchError(f"BenchView cannot show a {type(result).__name__}",
                                     "pass BenchReport, Comparison, LayerReport, NodeProfile or TuneResult") from None
            names.append(heading)
            pages.append(widgets.HTML(_verdict(result) + "".join(p for p in parts if p),
                                      layout=widgets.Layout(overflow="auto")))
        self.tabs = widgets.Tab(children=pages)
        for i, name in enumerate(names):
            self.tabs.set_title(i, name)
        self.save_button = widgets.Button(description="Save report", icon="download",
                                          tooltip="write a standalone HTML report to the artifacts folder")
        self.status = widgets.HTML()
        self.save_button.on_click(lambda _button: self.save())
        self._title = title
        super().__init__([widgets.HTML(f"<h3 style='margin:4px 0'>{html.escape(title)}</h3>"), self.tabs,
                          widgets.HBox([self.save_button, self.status])])

    def save(self) -> str:
        """Write the HTML report to a new file in the artifacts folder; returns its path."""
        from workbench.analysis.report import html_report
        from workbench.steps.workspace import unique_path

        path = unique_path("report", ".html")  # reserves a new name
        html_report(*self.results, path=path, title=self._title, overwrite=True)  # over our own placeholder
        self.status.value = f"saved <code>{html.escape(str(path))}</code>"
        return str(path)

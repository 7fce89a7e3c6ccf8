"""``BenchView``: a dashboard over results (BenchReport, Comparison, TuneResult, SweepResult, LayerReport,
NodeProfile).

Benchmarks, comparisons, autotune and sweep results go on one ``CompareBoard`` (one line per candidate,
failed ones marked, plots drawn in the browser, candidates toggled on and off); per-layer results
(LayerReport, NodeProfile) get a tab each with their verdict, table and static SVG charts
(``workbench.analysis.report``). "Download report" saves the standalone HTML page of every result in the
browser (a published Voilà app has no server path a visitor could reach); ``save()`` writes it to the
artifacts folder from Python. "Show code" gives the Python that reproduces the results. The view
computes nothing: it renders results.
"""

from __future__ import annotations

import html
import re
from typing import Any

import ipywidgets as widgets

from workbench.analysis.board import KINDS
from workbench.core.errors import WorkbenchError
from workbench.ui.download import CodeBox, DownloadButton


def _verdict(result: Any) -> str:
    kind = type(result).__name__
    if kind == "NodeProfile":
        ok, text = True, ", ".join(f"{b}: {result.total_ms(b):.3f} ms per run" for b in result.backends)
    else:  # LayerReport
        ok = bool(result)
        first = getattr(result, "first_divergent", None)
        text = "PASS" if ok else ("FAIL" + (f": first divergent node {first.node} ({first.op_type})" if first else ""))
    colour = "#1a7f37" if ok else "#cf222e"
    return f"<div style='font-weight:bold;color:{colour};margin:4px 0'>{html.escape(text)}</div>"


class BenchView(widgets.VBox):
    """A dashboard of one or more results; ``BenchView(report, comparison, tuned, layers)``.

    ``board`` is the CompareBoard of the benchmark-like results (None without any), ``tabs`` the tabs of
    the per-layer ones (None without any)."""

    def __init__(self, *results: Any, title: str = "Compare and benchmark"):
        from workbench.analysis.report import sections

        if not results:
            raise WorkbenchError("BenchView needs at least one result",
                                 "pass e.g. BenchView(wb.benchmark(...), wb.compare(...))")
        self.results = list(results)
        self._title = title
        on_board = [r for r in self.results if type(r).__name__ in KINDS]
        others = [r for r in self.results if type(r).__name__ not in KINDS]
        pages, names = [], []
        for result in others:
            try:
                heading, parts = sections(result)
            except TypeError:
                raise WorkbenchError(f"BenchView cannot show a {type(result).__name__}",
                                     "pass BenchReport, Comparison, TuneResult, SweepResult, LayerReport or "
                                     "NodeProfile") from None
            names.append(heading)
            pages.append(widgets.HTML(_verdict(result) + "".join(p for p in parts if p),
                                      layout=widgets.Layout(overflow="auto")))
        self.board: Any = None
        if on_board:
            from workbench.ui.compare_board import CompareBoard

            self.board = CompareBoard(*on_board, title=title)
        self.tabs: widgets.Tab | None = None
        if pages:
            self.tabs = widgets.Tab(children=pages)
            for i, name in enumerate(names):
                self.tabs.set_title(i, name)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", title.strip().lower()).strip("-.") or "report"
        self.download = DownloadButton("Download report", lambda: (f"{stem}.html", self.html().encode("utf-8"),
                                                                   "text/html"),
                                       tooltip="the standalone HTML report of every result (no JavaScript)")
        self.code_box = CodeBox(self.code)
        children: list[Any] = []
        if self.board is None:
            children.append(widgets.HTML(f"<h3 style='margin:4px 0'>{html.escape(title)}</h3>"))
        else:
            children.append(self.board)
        if self.tabs is not None:
            children.append(self.tabs)
        children += [self.download, self.code_box]
        super().__init__(children)

    def html(self) -> str:
        """The standalone HTML report of every result."""
        from workbench.analysis.report import html_report

        return html_report(*self.results, title=self._title)

    def save(self) -> str:
        """Write the HTML report to a new file in the artifacts folder; returns its path."""
        from workbench.analysis.report import html_report
        from workbench.steps.workspace import unique_path

        path = unique_path("report", ".html")  # reserves a new name
        html_report(*self.results, path=path, title=self._title, overwrite=True)  # over our own placeholder
        return str(path)

    def code(self) -> str:
        """Python that reproduces the results (the per-layer ones as comments: their models are named,
        not recorded as files)."""
        from workbench.ui.compare_board import board_code

        on_board = [r for r in self.results if type(r).__name__ in KINDS]
        text = board_code(on_board, title=self._title, sources=getattr(self.board, "sources", None)) if on_board \
            else "import workbench as wb\n"
        extra = []
        for r in self.results:
            kind = type(r).__name__
            if kind == "LayerReport":
                extra.append(f"# layers = wb.compare_layers({r.model!r}, {list(r.backends)!r})  # per-layer errors")
            elif kind == "NodeProfile":
                extra.append(f"# profile = wb.profile_nodes({r.model!r}, {list(r.backends)!r}, runs={r.runs})")
        return text + ("\n" + "\n".join(extra) + "\n" if extra else "")

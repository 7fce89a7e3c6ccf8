"""Browser tests of the graph views: a real JupyterLab (at / and under a base URL), Notebook 7 and
Voilà, driven by Debian's Chromium through Playwright. A notebook exports the zoo's digits CNN to
ONNX and shows it with each viewer; the tests check that nodes are drawn and that selecting one
shows its details (which come from the kernel). Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.ui.jupyter_servers import CHROMIUM, SCREENSHOTS, jupyter_lab, voila

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs Debian's chromium
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
playwright_sync = pytest.importorskip("playwright.sync_api")

NOTEBOOK_CELLS = [
    "import workbench as wb\nm = wb.load('digits-cnn')\nx = wb.export(m, 'onnx')",
    "wb.show(x, height=420)",
    "wb.show(x, viewer='netron', height=420)",
]
WIDGET_TIMEOUT = 120_000  # ms: kernel start + model load + export on a busy 2-core machine


def _write_notebook(folder: Path) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "graph_ui.ipynb")
    return "graph_ui.ipynb"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    _write_notebook(root)
    return root


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@contextmanager
def _evidence(page, name: str):
    """A screenshot of the whole page when the block fails."""
    try:
        yield
    except BaseException:
        try:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"FAILED-{name}.png"), full_page=True)
        finally:
            raise


def _check_native(page, shot: str) -> None:
    """Nodes drawn; a real click on a Conv node shows its details, weights' statistics included."""
    with _evidence(page, f"{shot}-native"):
        _native(page, shot)


def _check_netron(page, shot: str) -> None:
    with _evidence(page, f"{shot}-netron"):
        _netron(page, shot)


def _native(page, shot: str) -> None:
    graph = page.locator(".wb-graph[data-state=ready]").first
    graph.wait_for(timeout=WIDGET_TIMEOUT)
    # both outputs must be in place before clicking: a late output shifts the page
    page.locator(".wb-netron[data-state]").first.wait_for(timeout=WIDGET_TIMEOUT)
    for attempt in range(3):  # the notebook may still scroll between measuring and clicking
        graph.scroll_into_view_if_needed()
        info = graph.evaluate("""(el) => {
            const v = el.__wbGraph; const g = v.g;
            const i = g.op.indexOf('Conv');
            v.focusNode(i); v.draw();
            v.selected = -1; v.details.replaceChildren(); v.draw();
            const k = v.visible.rep[i]; const r = v.canvas.getBoundingClientRect();
            return {n: g.n, ops: [...new Set(g.op)], x: r.left + v.L.x[k] * v.view.s + v.view.tx,
                    y: r.top + v.L.y[k] * v.view.s + v.view.ty, visible: +el.dataset.visible};
        }""")
        assert "Conv" in info["ops"] and "Gemm" in info["ops"] and info["visible"] >= info["n"] // 2
        page.mouse.click(info["x"], info["y"])
        title = graph.locator(".wb-graph-details-title")
        title.wait_for(timeout=10_000)
        if title.inner_text() == "Conv" or attempt == 2:
            break
    assert title.inner_text() == "Conv"
    # attributes and weight statistics come from the kernel over the widget's comm
    graph.locator(".wb-graph-details h4", has_text="weights").wait_for(timeout=30_000)
    assert "mean" in graph.locator(".wb-graph-details").inner_text()
    graph.locator(".wb-graph-search").fill("Gemm")
    graph.locator(".wb-graph-result", has_text="Gemm").first.wait_for(timeout=10_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    graph.screenshot(path=str(SCREENSHOTS / f"{shot}-native.png"))


def _netron(page, shot: str) -> None:
    """Netron drew the graph inside the output; clicking a Conv node opens Netron's node sidebar."""
    box = page.locator(".wb-netron[data-state=ready]").first
    box.wait_for(timeout=WIDGET_TIMEOUT)
    box.scroll_into_view_if_needed()
    frame = page.frame_locator(".wb-netron-frame").first
    conv = frame.locator("g.node", has_text="Conv").first
    conv.wait_for(timeout=30_000)
    assert frame.locator("g.node").count() >= 8
    conv.locator(".node-item-type").first.click()  # the op header, not a weight row
    sidebar = frame.locator("#sidebar-content")
    sidebar.wait_for(state="visible", timeout=15_000)
    assert "Conv" in sidebar.inner_text(timeout=15_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    box.screenshot(path=str(SCREENSHOTS / f"{shot}-netron.png"))


def _run_all(page) -> None:
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=90_000)
    page.evaluate("""async () => {
        const w = window.jupyterapp.shell.currentWidget;
        await w.sessionContext.ready;
        await window.jupyterapp.commands.execute('notebook:run-all-cells');
    }""")


def test_jupyterlab_both_viewers(page, workdir):
    with jupyter_lab(workdir) as (base, token):
        page.goto(f"{base}lab/tree/graph_ui.ipynb?token={token}")
        _run_all(page)
        _check_native(page, "jupyterlab")
        _check_netron(page, "jupyterlab")
        _shot(page, "jupyterlab-page")
        assert not [e for e in page.errors if "wb" in e or "netron" in e.lower()], page.errors


def test_base_url_jupyterlab_and_notebook7(browser, workdir):
    """Under --ServerApp.base_url=/wb/ (as behind Binder's proxy): JupyterLab, then Notebook 7."""
    with jupyter_lab(workdir, base_url="/wb/") as (base, token):
        assert base.endswith("/wb/")
        for label, url in (("lab-base-url", f"{base}lab/tree/graph_ui.ipynb?token={token}"),
                           ("notebook7-base-url", f"{base}notebooks/graph_ui.ipynb?token={token}")):
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            pg = ctx.new_page()
            try:
                pg.goto(url)
                _run_all(pg)
                _check_native(pg, label)
                _check_netron(pg, label)
            finally:
                _shot(pg, f"{label}-page")
                ctx.close()
            # the kernel of the first page is shut down before Notebook 7 opens the same notebook
            import json
            import urllib.request

            sessions = json.load(urllib.request.urlopen(f"{base}api/sessions?token={token}"))  # noqa: S310
            for s in sessions:
                req = urllib.request.Request(f"{base}api/sessions/{s['id']}?token={token}", method="DELETE")
                urllib.request.urlopen(req)  # noqa: S310


def test_voila_both_viewers(page, workdir):
    with voila(workdir, "graph_ui.ipynb") as url:
        page.goto(url, timeout=WIDGET_TIMEOUT)
        _check_native(page, "voila")
        _check_netron(page, "voila")
        _shot(page, "voila-page")


@pytest.mark.skipif(os.environ.get("WORKBENCH_UI_OVERLAY") == "0", reason="disabled")
def test_overlay_and_diff_render_in_jupyterlab(page, tmp_path):
    """An overlay's legend and a side-by-side diff with linked selection, in JupyterLab."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in [
        "import workbench as wb, onnx, onnxslim\n"
        "m = wb.load('digits-cnn')\nx = wb.export(m, 'onnx')\n"
        "p = x.path.with_name('slim.onnx'); onnx.save(onnxslim.slim(onnx.load(str(x.path))), str(p))\n"
        "s = wb.load(p)",
        "v = wb.show(x, height=360)\nv.overlay({n.name: float(n.macs) for n in x.graph().nodes}, label='MACs', "
        "thresholds=[1e4, 1e5])",
        "wb.show((x, s), height=360)",
    ]]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "overlay.ipynb")
    with jupyter_lab(tmp_path) as (base, token):
        page.goto(f"{base}lab/tree/overlay.ipynb?token={token}")
        _run_all(page)
        graphs = page.locator(".wb-graph[data-state=ready]")
        page.wait_for_function("document.querySelectorAll('.wb-graph[data-state=ready]').length >= 3",
                               timeout=WIDGET_TIMEOUT)
        legend = graphs.nth(0).locator(".wb-graph-legend")
        assert "MACs" in legend.inner_text() and "≥" in legend.inner_text()
        colors = graphs.nth(0).evaluate("(el) => el.__wbGraph.nodeColors.filter(Boolean).length")
        assert colors >= 5
        # select a Conv in the left graph: the right graph selects its match
        graphs.nth(1).evaluate("(el) => { const v = el.__wbGraph; v.focusNode(v.g.op.indexOf('Conv')); }")
        page.wait_for_function(
            "(() => { const g = document.querySelectorAll('.wb-graph')[2].__wbGraph; "
            "return g.selected >= 0 && g.g.op[g.selected] === 'Conv'; })()", timeout=30_000)
        assert "diff" in graphs.nth(2).locator(".wb-graph-legend").inner_text()
        _shot(page, "overlay-diff-page")

"""The graph widget (TypeScript in widgets/, bundled into workbench/widgets/graph.js) in a real browser:
Voilà renders a notebook with a ~190-node torch transformer in GraphView and two DiffViews (side by
side and merged), and Debian's Chromium checks what a user meets: every view at its set height,
module search highlighting the module, fold/unfold, panes of a diff moving together, SVG export.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.jupyter_servers import CHROMIUM, SCREENSHOTS, voila

pytestmark = [pytest.mark.browser]

if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs Debian's chromium
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api")

MODEL = '''
import torch, workbench as wb
from workbench.analysis.graph_diff import diff
from torch import nn

class Layer(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x):
        a = torch.softmax(self.q(x) @ self.k(x).transpose(1, 2), -1) @ self.v(x)
        x = self.norm1(x + self.o(a))
        return self.norm2(x + self.mlp(x))

class Encoder(nn.Module):
    def __init__(self, n, d=16):
        super().__init__()
        self.embed = nn.Linear(8, d)
        self.layer = nn.ModuleList(Layer(d) for _ in range(n))
        self.head = nn.Linear(d, 4)

    def forward(self, x):
        x = self.embed(x)
        for layer in self.layer:
            x = layer(x)
        return self.head(x)

torch.manual_seed(0)
x = torch.randn(1, 6, 8)
big = wb.load(Encoder(13).eval(), x).graph()
small = wb.load(Encoder(12).eval(), x).graph()
d = diff(small, big)  # one diff for both views
print("nodes", len(big.nodes))
'''
CELLS = [MODEL, "wb.show(big, height=520)", "wb.ui.DiffView(d, height=430)",
         "wb.ui.DiffView(d, layout='merged', height=390)"]


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    import nbformat

    root = tmp_path_factory.mktemp("graph-widget")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "graph_widget.ipynb")
    return root


def test_graph_widget_in_voila(page, notebook):
    with voila(notebook, "graph_widget.ipynb") as url:
        page.goto(url, timeout=120_000)
        page.wait_for_function("document.querySelectorAll('.wb-graph[data-state=ready]').length >= 4", timeout=120_000)
        try:
            _check(page)
        finally:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "graph-widget-voila.png"), full_page=True)
        assert not [e for e in page.errors if "wb" in e.lower() or "graph" in e.lower()], page.errors


def _check(page) -> None:
    graphs = page.locator(".wb-graph")
    # every view at its set height: the single view, both diff panes, the merged diff
    heights = [round(graphs.nth(k).bounding_box()["height"]) for k in range(4)]
    assert heights == [520, 430, 430, 390], heights
    view = graphs.nth(0)
    info = view.evaluate("(el) => { const v = el.parentElement.__wbGraph; return {n: v.g.n, boxes: v.visible.vis.length,"
                         " labels: v.visible.vis.filter(b => b.kind === 'group').map(b => v.g.scopeLabel[b.id])}; }")
    assert 150 <= info["n"] <= 260, info["n"]
    # a ~190-node transformer opens by layer: layer.0 … layer.12 as boxes, no bare "0", "1"
    assert {"layer.0", "layer.12"} <= set(info["labels"]) and not [x for x in info["labels"] if x.isdigit()], info
    assert info["boxes"] < info["n"] // 2
    assert "node" in view.locator(".wb-graph-title").inner_text()
    # search for a module: the module is listed and its box highlighted
    view.locator(".wb-graph-search").fill("layer.3")
    view.locator(".wb-graph-result", has_text="layer.3").first.wait_for(timeout=10_000)
    host = page.locator(".wb-graph-host").nth(0)
    assert int(host.get_attribute("data-highlighted")) >= 1
    # fold everything, then unfold a level: fewer boxes, then more
    view.get_by_role("button", name="Fold", exact=True).click()
    folded = int(host.get_attribute("data-visible"))
    view.get_by_role("button", name="Unfold", exact=True).click()
    unfolded = int(host.get_attribute("data-visible"))
    assert folded < unfolded <= info["n"] + 2, (folded, unfolded)
    # a double-click on a module box opens it
    box = view.evaluate("""(el) => { const v = el.parentElement.__wbGraph; v.draw();
        let k = -1;  // the biggest folded module
        v.visible.vis.forEach((b, i) => { if (b.kind === 'group' && (k < 0 || v.g.scopeCount[b.id] > v.g.scopeCount[v.visible.vis[k].id])) k = i; });
        v.centerOn(k); v.draw();
        const r = v.canvas.getBoundingClientRect();
        return {k, x: r.left + v.L.x[k] * v.view.s + v.view.tx, y: r.top + v.L.y[k] * v.view.s + v.view.ty}; }""")
    before = int(host.get_attribute("data-visible"))
    page.mouse.dblclick(box["x"], box["y"])
    page.wait_for_function(f"+document.querySelectorAll('.wb-graph-host')[0].dataset.visible > {before}", timeout=5_000)
    # SVG export: the download is an SVG document with the boxes in it
    with page.expect_download() as dl:
        view.get_by_role("button", name="SVG", exact=True).click()
    svg = Path(dl.value.path()).read_text()
    assert svg.startswith("<svg") and svg.count("<rect") > 10 and "layer" in svg
    png = view.evaluate("async (el) => { const b = await el.__wbGraph.exportPNG(); "
                        "const h = new Uint8Array(await b.slice(0, 4).arrayBuffer()); return [b.type, b.size, [...h]]; }")
    assert png[0] == "image/png" and png[1] > 2000 and png[2] == [0x89, 0x50, 0x4E, 0x47], png[:2]
    # wheel-zoom far out and back: the graph stays on screen
    b = view.locator("canvas.wb-graph-canvas").bounding_box()
    page.mouse.move(b["x"] + 20, b["y"] + 20)
    for _ in range(12):
        page.mouse.wheel(0, 800)
    page.mouse.wheel(0, -400)
    on_screen = view.evaluate("""(el) => { const v = el.__wbGraph; v.draw(); const [W, H] = v.size();
        const [x0, y0, x1, y1] = v.L.bounds, {s, tx, ty} = v.view;
        return x1 * s + tx > 0 && x0 * s + tx < W && y1 * s + ty > 0 && y0 * s + ty < H; }""")
    assert on_screen
    # the side-by-side panes pan and zoom together
    left, right = page.locator(".wb-graph-host").nth(1), page.locator(".wb-graph-host").nth(2)
    canvas = left.locator("canvas.wb-graph-canvas")
    b = canvas.bounding_box()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    page.mouse.wheel(0, -300)
    page.wait_for_function("""(() => { const [a, b] = [...document.querySelectorAll('.wb-graph-host')].slice(1, 3)
        .map(e => e.__wbGraph.view); return Math.abs(a.s - b.s) < 1e-9 && a.s !== 1; })()""", timeout=5_000)
    s_left = left.evaluate("(el) => el.__wbGraph.view.s")
    assert s_left == right.evaluate("(el) => el.__wbGraph.view.s")
    # the merged diff colours by status, with the legend
    assert "removed" in graphs.nth(3).locator(".wb-graph-legend").inner_text()

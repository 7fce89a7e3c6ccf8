"""The quantization debugger in the Workbench app, served by real Voilà and driven in Debian's Chromium: pick
the depthwise digits net, run per-tensor INT8 and see it fail the budget, open the debugger and see the
depthwise layers ranked and lit up on the graph, accept the fix and see it PASS with every layer INT8."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.ui.jupyter_servers import CHROMIUM, SCREENSHOTS, voila

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs Debian's chromium
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
playwright_sync = pytest.importorskip("playwright.sync_api")

TIMEOUT = 240_000  # ms: kernel start, training the zoo net on first use, quantization steps, on 2 busy cores


def _notebook(root: Path) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('import workbench as wb\n'
                                          'app = wb.Workbench("digits-mobilenet", bench_seconds=0.2)\napp')]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "quant.ipynb")
    return "quant.ipynb"


def test_voila_app_int8_fails_the_budget_debugger_lights_the_layers_and_the_fix_passes(page, tmp_path):
    with voila(tmp_path, _notebook(tmp_path)) as url:
        page.goto(url, timeout=TIMEOUT)
        page.wait_for_selector("pre.wb-describe >> text=digits-mobilenet", timeout=TIMEOUT)
        page.get_by_role("tab", name="Quantization").click()
        panel = page.locator(".wb-quant-debug")
        panel.get_by_role("button", name="Run INT8").click()
        failed = panel.locator(".wb-qd-bad", has_text="FAILS the budget")
        failed.wait_for(timeout=TIMEOUT)
        # digits-mobilenet is trained here on first use, so its FP32 accuracy varies a little by CPU
        fp32, int8 = map(float, re.search(r"accuracy: FP32 ([\d.]+), INT8 ([\d.]+)", failed.inner_text()).groups())
        assert fp32 > 0.95 and fp32 - int8 > 0.01, failed.inner_text()

        panel.get_by_role("button", name="Open the debugger").click()
        table = panel.locator("table.wb-qd-table")
        table.wait_for(timeout=TIMEOUT)
        rows = table.locator("tbody tr")
        top3 = [rows.nth(i).inner_text() for i in range(3)]
        assert all("per_channel" in r and "weight channels of unequal range" in r for r in top3), top3
        legend = panel.locator(".wb-graph-legend")
        legend.wait_for(timeout=TIMEOUT)
        assert "share of INT8 error" in legend.inner_text()  # the graph is coloured by each layer's share
        # lit up: the three ranked first get the ramp's red end, the least one its green end
        names = [table.locator("tbody tr").nth(i).locator("td").first.inner_text().strip() for i in (0, 1, 2, 8)]
        graph = panel.locator(".wb-graph[data-state=ready]")
        colors = graph.evaluate("(el, names) => { const v = el.__wbGraph; "
                                "return names.map((n) => v.nodeColors[v.g.index.get(n)]); }", names)
        red = [int(c[4:-1].split(",")[0]) - int(c[4:-1].split(",")[1]) for c in colors]  # rgb(r,g,b): r - g
        assert min(red[:3]) > 0 > red[3], (names, colors)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "voila-quant-debugger.png"), full_page=True)

        panel.get_by_role("button", name="Accept the fix").click()
        passed = panel.locator(".wb-qd-ok", has_text="PASS")
        passed.wait_for(timeout=TIMEOUT)
        text = passed.inner_text()
        assert "budget 0.01: met" in text and "100% of the layers INT8" in text and "Latency p50" in text, text
        page.screenshot(path=str(SCREENSHOTS / "voila-quant-debugger-fixed.png"), full_page=True)

"""The model explorer and "which runtime is fastest here" in a published Voilà app (the app configuration
``scripts/start --app`` uses: visitor kernels marked published), in Debian's Chromium: the graph renders, the
visitor gets no path field and no code, the operator table is one click away, and a search run from the
browser ends in a ranking.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.jupyter_servers import CHROMIUM, SCREENSHOTS, voila

pytestmark = [pytest.mark.browser]

if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs Debian's chromium
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api")

CELLS = [
    "from workbench.ui.model_explorer import ModelExplorer\nModelExplorer('digits-cnn')",
    # one runtime and two precisions keep the search to a few seconds
    "from workbench.ui.fastest_runtime import FastestRuntime\n"
    "FastestRuntime('digits-cnn', runtimes=['onnxruntime'], precisions=['fp32', 'int8'])",
]


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    import nbformat

    root = tmp_path_factory.mktemp("apps")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "apps.ipynb")
    return root


def test_explorer_and_fastest_runtime_in_a_published_voila_app(page, notebook):
    with voila(notebook, "apps.ipynb", app_config=True) as url:
        page.goto(url, timeout=180_000)
        try:
            page.wait_for_selector(".wb-graph[data-state=ready]", timeout=180_000)
            explorer = page.locator(".wb-model-explorer")
            assert "digits-cnn" in explorer.inner_text() and "MACs" in explorer.inner_text()
            # published: no path field for the visitor, no code naming the server's files
            for picker in page.locator(".wb-mp").all():
                assert not picker.get_by_role("button", name="Path").is_visible()
                assert not picker.locator(".wb-mp-path").is_visible()
            assert "from workbench.ui." not in page.content()
            explorer.get_by_role("tab", name="Operators").click()
            page.wait_for_selector(".wb-model-explorer td:has-text('aten.conv2d')", timeout=10_000)
            # the search, started from the browser, ends in a ranking
            fastest = page.locator(".wb-fastest-runtime")
            fastest.get_by_role("button", name="Find the fastest").click()
            page.wait_for_selector(".wb-ranking table", timeout=240_000)
            assert "fastest valid here" in fastest.inner_text()
            first = fastest.locator(".wb-ranking tbody tr").first.inner_text()
            assert first.split()[0] == "1" and "valid" in first, first
        finally:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "apps-explorer-fastest-voila.png"), full_page=True)
        assert not [e for e in page.errors if "wb" in e.lower()], page.errors

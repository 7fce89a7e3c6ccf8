"""The KernelLab in a real browser: JupyterLab (edit, check, an error marked in the gutter) and Voilà
(read-only), with Debian's Chromium driven by Playwright. Servers from tests/ui/jupyter_servers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.jupyter_servers import CHROMIUM, SCREENSHOTS, jupyter_lab, voila

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs Debian's chromium
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
playwright_sync = pytest.importorskip("playwright.sync_api")

TIMEOUT = 120_000  # ms: kernel start + torch/triton import on a busy 2-core machine


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    import nbformat

    root = tmp_path_factory.mktemp("kernel_lab_ui")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from workbench.ui.kernel_lab import KernelLab\nlab = KernelLab()\nlab")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "lab.ipynb")
    return root


def _shot(locator, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_jupyterlab_edit_check_and_error_line(page, workdir):
    with jupyter_lab(workdir) as (base, token):
        page.goto(f"{base}lab/tree/lab.ipynb?token={token}")
        page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=90_000)
        page.evaluate("""async () => {
            const w = window.jupyterapp.shell.currentWidget;
            await w.sessionContext.ready;
            await window.jupyterapp.commands.execute('notebook:run-all-cells');
        }""")
        lab = page.locator(".wb-kl").first
        lab.wait_for(timeout=TIMEOUT)
        assert "interpreter" in lab.locator(".wb-kl-badge").inner_text()
        assert lab.locator(".wb-kl-editor pre .tok-kw").count() >= 3  # highlighted: def, return, …
        lab.locator("button[data-action=check]").click()
        # the panel may still show an earlier "ran without errors": wait for the check's own result
        out = lab.locator(".wb-kl-out.ok", has_text="all 4 cases pass")
        out.wait_for(timeout=TIMEOUT)
        assert "all 4 cases pass" in out.inner_text()
        # the check's access map: one heat-map per tensor argument of the kernel
        lab.locator(".wb-kl-map canvas").first.wait_for(timeout=TIMEOUT)
        assert [c.get_attribute("data-tensor") for c in lab.locator(".wb-kl-map canvas").all()] == [
            "x_ptr", "y_ptr", "out_ptr"]
        assert "programs" in lab.locator(".wb-kl-map-head").inner_text()

        area = lab.locator("textarea")
        area.fill(area.input_value().replace("mask = offs < n\n", "mask = offs < nn\n"))
        lab.locator("button[data-action=check]").click()
        failed = lab.locator(".wb-kl-out.fail")
        failed.wait_for(timeout=TIMEOUT)
        assert "NameError" in failed.inner_text() and "line 4 of the cell" in failed.inner_text()
        assert lab.locator(".wb-kl-gutter .err").inner_text() == "4"
        _shot(lab, "kernel-lab-jupyterlab")
        assert not [e for e in page.errors if "wb-kl" in e or "kernel_lab" in e], page.errors


def test_voila_lab_is_read_only(page, workdir):
    with voila(workdir, "lab.ipynb") as url:
        page.goto(url)
        lab = page.locator(".wb-kl").first
        lab.wait_for(timeout=TIMEOUT)
        assert lab.locator("textarea").get_attribute("readonly") is not None
        lab.locator("button[data-action=run]").click()
        lab.locator(".wb-kl-out.ok").wait_for(timeout=TIMEOUT)
        _shot(lab, "kernel-lab-voila")

"""End to end in a real browser, as a user meets the workbench: JupyterLab, Notebook 7 (one JupyterLab
server) and the published Voilà app (``binder/app/voila.json``, as ``scripts/start --app``), each driven by
Debian's Chromium through Playwright in one page per front end, at a 1000 px wide viewport.

The story in each front end: the widgets are drawn from the kernel's state, "Show code" shows the Python
the view stands for, its Copy button puts it on the clipboard, and that code, run in a fresh interpreter,
reproduces what the page shows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.ui.jupyter_servers import (
    CHROMIUM,
    REPO,
    SCREENSHOTS,
    jupyter_lab,
    kernel_env,
    quiet_lab_settings,
    voila,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs Debian's chromium
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api")

TIMEOUT = 240_000  # ms: kernel start, imports and steps on a busy 2-core machine
APP = REPO / "notebooks" / "apps" / "workbench_app.ipynb"
FRONT_ENDS = ("jupyterlab", "notebook7", "voila")

# The notebook a learner writes in JupyterLab and Notebook 7: their own ONNX file, shown as a graph.
CELLS = [
    "import workbench as wb\nm = wb.load('tiny.onnx')",
    "view = wb.show(m, height=360)\nview",
]


def _tiny_onnx(path: Path) -> None:
    """A small float MLP (8 → 16 → 4) with fixed weights: the user's own file to bring."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 16)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((16, 4)).astype(np.float32), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Add", ["h", "b1"], ["hb"], name="fc1_bias"),
             helper.make_node("Relu", ["hb"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w1, b1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    import nbformat

    root = tmp_path_factory.mktemp("e2e")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "e2e.ipynb")
    _tiny_onnx(root / "tiny.onnx")
    quiet_lab_settings(root, windowing=False)
    shutil.copy(APP, root / APP.name)
    return root


@pytest.fixture(scope="module")
def lab_server(workdir):
    """One JupyterLab server for both JupyterLab and Notebook 7 (the same server serves both)."""
    with jupyter_lab(workdir) as (base, token):
        yield base, token


@pytest.fixture()
def story_page(browser):
    """A page at 1000 px wide (the width the compare table must stay readable at) that may use the
    clipboard (Show code's Copy button); ``page.errors`` collects the page's JavaScript errors."""
    ctx = browser.new_context(viewport={"width": 1000, "height": 900})
    ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    ctx.close()


@contextmanager
def _evidence(page, name: str):
    """A screenshot of the whole page whether the block passes or fails (FAILED- when it fails)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        page.screenshot(path=str(SCREENSHOTS / f"FAILED-e2e-{name}.png"), full_page=True)
        raise
    page.screenshot(path=str(SCREENSHOTS / f"e2e-{name}.png"), full_page=True)


def _run_all(page) -> None:
    """Run every cell of the open notebook (JupyterLab and Notebook 7 expose the app as ``jupyterapp``)."""
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=TIMEOUT)
    page.evaluate("""async () => {
        const w = window.jupyterapp.shell.currentWidget;
        await w.sessionContext.ready;
        await window.jupyterapp.commands.execute('notebook:run-all-cells');
    }""")


def _shutdown_sessions(base: str, token: str) -> None:
    """End the notebook's kernel, so the next front end starts from a fresh one (and memory is freed)."""
    with urllib.request.urlopen(f"{base}api/sessions?token={token}") as r:  # noqa: S310 - 127.0.0.1 only
        sessions = json.load(r)
    for s in sessions:
        req = urllib.request.Request(f"{base}api/sessions/{s['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(req).close()  # noqa: S310


def _copied_code(page, scope) -> str:
    """Open ``scope``'s "Show code", press its Copy button and read the clipboard: the code as a user gets
    it (the text shown, byte for byte)."""
    panel = scope.locator(".wb-show-code").first
    panel.locator("summary, .lm-AccordionPanel-title, .p-Collapse-header, .jupyter-widget-Collapse-header").first.click()
    shown = panel.locator("pre.wb-code").inner_text(timeout=TIMEOUT)
    copy = panel.locator("button.wb-copy")
    if copy.count():
        copy.click()
        page.wait_for_function("async () => (await navigator.clipboard.readText()).length > 0", timeout=10_000)
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert copied.strip() == shown.strip()
        return copied
    return shown


PROBE = '''
import json as _json, sys as _sys
_out = {}
for _name, _value in list(globals().items()):
    if type(_value).__name__ == "Model" and hasattr(_value, "format"):
        _out[_name] = {"format": _value.format, "name": getattr(_value, "name", None),
                       "passed": (bool(_value.validation) if getattr(_value, "validation", None) is not None
                                  and not _value.validation.skipped else None)}
print("E2E-STATE " + _json.dumps(_out))
'''


def run_code(code: str, root: Path, timeout: float = 300) -> dict:
    """Run code copied from the page in a fresh interpreter (the workbench of this checkout, the
    server's workspace, ``root`` as the working directory) and return the Models it left in its
    globals: name -> format, model name, validation passed."""
    proc = subprocess.run([sys.executable, "-c", code + "\n" + PROBE], cwd=root, env=kernel_env(root),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"the shown code failed:\n{code}\n{proc.stderr[-3000:]}"
    line = next(x for x in proc.stdout.splitlines() if x.startswith("E2E-STATE "))
    return json.loads(line.removeprefix("E2E-STATE "))


# -- the story, per front end ---------------------------------------------------------------------------


def _notebook_story(page, root: Path) -> None:
    """JupyterLab / Notebook 7: the user's own ONNX file shown as a graph."""
    graph = page.locator(".wb-graph[data-state=ready]").first
    graph.wait_for(timeout=TIMEOUT)
    assert "4 nodes" in graph.locator(".wb-graph-title").inner_text()


def _voila_story(page, root: Path) -> None:
    """The published app: drawn from the kernel; the Deploy tab's script runs as shown."""
    page.wait_for_selector("pre.wb-describe >> text=digits-cnn (torch)", timeout=TIMEOUT)
    # nowhere for a visitor to type code
    assert page.locator("textarea, .cm-editor, .CodeMirror, [contenteditable=true]").count() == 0
    page.get_by_role("tab", name="Deploy").click()
    page.get_by_text("The same as a Python script").click()
    script = page.locator("pre.wb-script").inner_text(timeout=TIMEOUT)
    assert "wb.load('digits-cnn')" in script
    state = run_code(script, root)
    assert state["m0"]["name"] == "digits-cnn" and state["m1"]["format"] == "onnx", state


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_user_story(front_end, request, story_page, workdir):
    page = story_page
    with _evidence(page, front_end):
        if front_end == "voila":
            with voila(workdir, APP.name, app_config=True, args=("--VoilaConfiguration.default_pool_size=1",)) as url:
                page.goto(url, timeout=TIMEOUT)
                _voila_story(page, workdir)
        else:
            base, token = request.getfixturevalue("lab_server")
            path = "lab/tree" if front_end == "jupyterlab" else "notebooks"
            page.goto(f"{base}{path}/e2e.ipynb?token={token}", timeout=TIMEOUT)
            try:
                _run_all(page)
                _notebook_story(page, workdir)
            finally:
                _shutdown_sessions(base, token)
    assert not [e for e in page.errors if "wb" in e.lower()], page.errors

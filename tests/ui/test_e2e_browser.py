"""End to end in a real browser, as a user meets the workbench: JupyterLab, Notebook 7 (one JupyterLab
server) and the published Voilà app (``binder/app/voila.json``, as ``scripts/start --app``), each driven by
Debian's Chromium through Playwright in one page per front end, at a 1000 px wide viewport.

The story, the same in each front end (in JupyterLab and Notebook 7 a notebook with a ModelPicker feeding a
PipelineStepper, then cells a user adds; in Voilà the Workbench app built from the same widgets):

- upload the user's own ONNX file through the picker's file input (sent in chunks to the kernel);
- run the INT8 step with an option changed (per-tensor weights): it FAILs validation, and the row says
  what to try; "Try this" sets the per-channel option and the next run PASSes;
- the INT8 model's graph;
- a benchmark started in the background, then cancelled (the notebook's task view, the app's Cancel);
- the compare table of a benchmark at a 1000 px page: one line per candidate, no row over 40 px, nothing
  to scroll sideways;
- "Show code" of the stepper, the graph and the board: the Copy button puts the code on the clipboard,
  and that code, run in a fresh interpreter with an empty workspace, makes what the page shows (the INT8
  model PASSing with the same rel. L2, a graph of as many nodes, a board of the same candidates).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import browser_page
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

# The notebook a learner writes in JupyterLab and Notebook 7: a picker for their own file, whose pick
# feeds the deployment steps.
CELLS = [
    "import workbench as wb\nfrom workbench.ui import ModelPicker, PipelineStepper\n\npicker = ModelPicker(None)\npicker",
    "stepper = PipelineStepper()\npicker.on_pick(stepper.set_model)\nstepper",
]
INT8 = "ONNX Runtime static INT8"


def _tiny_onnx(path: Path) -> None:
    """The user's own file: a small depthwise block (1×1 expand, 3×3 depthwise, 1×1 project) with a dead
    channel whose depthwise weight is huge, as BatchNorm folding leaves in real MobileNets. Per-tensor
    INT8 weights take their scale from that weight and round every other channel's weights to 0 or one
    step (FAIL); per-channel weights do not (PASS)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((8, 4, 1, 1)) * 0.5).astype(np.float32)
    b1 = np.zeros(8, np.float32)
    b1[0] = -1000.0  # channel 0 is dead after the ReLU…
    w2 = (rng.standard_normal((8, 1, 3, 3)) * 0.3).astype(np.float32)
    w2[0] = 50.0  # …and its depthwise weight is huge
    w3 = (rng.standard_normal((4, 8, 1, 1)) * 0.5).astype(np.float32)
    weights = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (w3, "w3"))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="expand"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="depthwise", group=8, pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Conv", ["r2", "w3"], ["y"], name="project")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], weights)
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
    # the app gets a folder (and so a workspace) of its own: its steps run in the visitor's kernel, not
    # served from the notebooks' cache
    (root / "app").mkdir()
    shutil.copy(APP, root / "app" / APP.name)
    shutil.copy(root / "tiny.onnx", root / "app" / "tiny.onnx")
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
    with browser_page(browser, 1000, 900, ("clipboard-read", "clipboard-write")) as pg:
        yield pg


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
        const shell = window.jupyterapp.shell, w = shell.currentWidget;
        if (shell.collapseLeft) shell.collapseLeft();  // JupyterLab's file browser closed: the page's width for the notebook
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
        panel.locator("button.wb-copy", has_text="Copied").wait_for(timeout=10_000)  # the clipboard took it
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert copied.strip() == shown.strip()
        return copied
    return shown


PROBE = '''
import json as _json
_out = {}
for _name, _value in list(globals().items()):
    if type(_value).__name__ == "Model" and hasattr(_value, "format"):
        _v = getattr(_value, "validation", None)
        _out[_name] = {"format": _value.format, "name": _value.name,
                       "passed": None if _v is None or _v.skipped else bool(_v),
                       "rel_l2": None if _v is None else _v.figures.get("rel_l2")}
    elif type(_value).__name__ == "GraphView":
        _out[_name] = {"graph_nodes": len(_value.graph.nodes), "height": _value.height}
    elif type(_value).__name__ == "CompareBoard":
        _out[_name] = {"board": [(r["label"], r["backend"], r["status"]) for r in _value.payload["rows"]]}
print("E2E-STATE " + _json.dumps(_out))
'''


def run_code(code: str, root: Path, timeout: float = 300) -> dict:
    """Run code copied from the page in a fresh interpreter (this checkout's workbench) with an empty
    workspace of its own, so nothing comes from the page's cache, in ``root`` (the server's folder) or,
    for a published app's code, in a visitor's folder; return the Models it left in its globals (name ->
    format, model name, validation passed, rel_l2), its GraphViews (name -> graph_nodes, height) and its
    CompareBoards (name -> board: their rows' label, runtime and status).

    A published app's code names no server folder: its artifacts folder is ``workbench-artifacts/`` and an
    uploaded file goes by the name the visitor gave it. The visitor's folder then holds the files the code
    names (the file they uploaded, the artifacts the app lets them download), as a visitor who kept them
    would have them."""
    n = len(list(root.glob("replay-*"))) + len(list(root.glob("visitor-*")))
    cwd = root
    named = set(re.findall(r"['\"]workbench-artifacts/([^'\"]+)['\"]", code))
    if named:
        assert str(root) not in code, code  # nothing of the server's layout shown to a visitor
        cwd = root / f"visitor-{n}"
        for rel in named:
            src = root / "artifacts" / rel
            assert src.exists(), (rel, code)
            folder = (cwd / "workbench-artifacts" / rel).parent
            folder.mkdir(parents=True, exist_ok=True)
            for f in src.parent.glob(f"{src.stem}.*"):  # with a format's other files (.xml and .bin)
                shutil.copy(f, folder / f.name)
        for bare in set(re.findall(r"['\"]([^'\"/\\]+\.\w+)['\"]", code)):  # the file they uploaded, as they named it
            if (root / bare).is_file():
                shutil.copy(root / bare, cwd / bare)
    env = kernel_env(root)
    env["WORKBENCH_ARTIFACTS"] = str(cwd / f"replay-{n}")
    proc = subprocess.run([sys.executable, "-c", code + "\n" + PROBE], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"the shown code failed:\n{code}\n{proc.stderr[-3000:]}"
    line = next(x for x in proc.stdout.splitlines() if x.startswith("E2E-STATE "))
    return json.loads(line.removeprefix("E2E-STATE "))


def _add_cell_and_run(page, code: str) -> None:
    """Type a new cell at the end of the notebook and run it, as a user does (JupyterLab, Notebook 7)."""
    page.evaluate("""async (code) => {
        const app = window.jupyterapp, nb = app.shell.currentWidget.content;
        nb.activeCellIndex = nb.widgets.length - 1;
        await app.commands.execute('notebook:insert-cell-below');
        nb.activeCell.model.sharedModel.setSource(code);
        app.commands.execute('notebook:run-cell');  // not awaited: a background task's cell returns at once
    }""", code)


# -- the story's parts ----------------------------------------------------------------------------------


CELL_ERROR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"


def _drawn(page, selector: str) -> None:
    """Wait for ``selector``; a cell's error (a traceback in an output) fails at once, with its text."""
    page.wait_for_selector(f"{selector}, {CELL_ERROR}", timeout=TIMEOUT)
    errors = page.locator(CELL_ERROR)
    assert not errors.count(), errors.first.inner_text()


def _upload(page, path: Path) -> None:
    """ModelPicker: the Upload tab, a file chosen in the file input, sent to the kernel and loaded."""
    _drawn(page, ".wb-mp")
    picker = page.locator(".wb-mp").first
    picker.locator(".wb-mp-tab[data-source=upload]").click()
    picker.locator(".wb-mp-file").set_input_files(str(path))
    page.wait_for_selector(".wb-mp[data-status=ready]", timeout=TIMEOUT)
    assert path.stem in picker.locator(".wb-mp-status").inner_text()


def _stepper(page):
    return page.locator(".wb-stepper").first


def _step(page, label: str):
    return _stepper(page).locator(f".wb-stepper-step[data-step='{label}']")


def _row(page, label: str):
    return _stepper(page).locator(f"tr.wb-stepper-row[data-step='{label}']")


def _run_steps(page, label: str, verdict: str) -> None:
    """Run steps; wait for the run to end with ``verdict`` on ``label``'s row."""
    stepper = _stepper(page)
    stepper.locator(".wb-stepper-run").click()
    badge = _row(page, label).locator(f".wb-badge-{verdict.lower()}")
    badge.wait_for(timeout=TIMEOUT)
    assert badge.inner_text() == verdict
    page.wait_for_function("() => !document.querySelector('.wb-stepper-run').disabled", timeout=TIMEOUT)


def _steps_with_options_and_a_hint(page, model_name: str) -> None:
    """PipelineStepper: only the INT8 step, per-tensor weights (an option): it FAILs validation with the
    hint to quantize per channel; "Try this" sets that option, and the next run PASSes."""
    stepper = _stepper(page)
    stepper.locator(".wb-stepper-title", has_text=f"Deploy {model_name}").wait_for(timeout=TIMEOUT)
    for label in ("OpenVINO NNCF INT8", "OpenVINO IR"):  # the slow ones: a user's quick first try
        box = _step(page, label).locator("input[type=checkbox]").first
        if box.count() and box.is_checked():
            box.uncheck()
            page.wait_for_function(f"() => !document.querySelector(\"li[data-step='{label}']\")", timeout=60_000)
    _step(page, INT8).locator("details.wb-stepper-options > summary").click()
    per_channel = stepper.get_by_label(f"{INT8}: per_channel")
    per_channel.uncheck()
    _step(page, INT8).locator("summary", has_text="1 changed").wait_for(timeout=60_000)
    _run_steps(page, INT8, "FAIL")
    row = _row(page, INT8)
    assert "rel. L2" in row.locator(".wb-stepper-figures").inner_text()
    hints = row.locator(".wb-stepper-hints li")
    per_channel_hint = hints.filter(has_text="per channel").first
    assert per_channel_hint.count(), row.inner_text()
    per_channel_hint.locator(".wb-stepper-apply").click()  # "Try this"
    page.wait_for_function(f"() => document.querySelector(\"[aria-label='{INT8}: per_channel']\")?.checked",
                           timeout=60_000)
    _run_steps(page, INT8, "PASS")


def _stepper_code_replays(page, root: Path) -> None:
    """Show code of the stepper, copied from the page, makes the same INT8 model in a fresh interpreter
    and a fresh workspace: it PASSes with the rel. L2 the page shows."""
    code = _copied_code(page, _stepper(page))
    assert "wb.quantize(" in code and "'onnxruntime'" in code and "tiny.onnx" in code, code
    shown = _row(page, INT8).locator(".wb-stepper-figures").inner_text()
    state = run_code(code, root)
    int8 = [v for k, v in state.items() if v.get("passed") is not None and k != "m"]  # m: the script's loop variable
    assert len(int8) == 1 and int8[0]["passed"], state
    page_rel_l2 = float(re.search(r"rel\. L2 (\S+)", shown).group(1))
    assert int8[0]["rel_l2"] == pytest.approx(page_rel_l2, rel=0.05), (shown, state)


def _cancel_benchmark_in_a_notebook(page) -> None:
    """A benchmark started in the background shows its task view; Cancel stops it within seconds and
    keeps the configurations that finished."""
    _add_cell_and_run(page, f"task = wb.benchmark([stepper.model, stepper.results[{INT8!r}]], "
                            "backends=['onnxruntime', 'openvino'], duration_s=8, background=True)\ntask")
    view = page.locator(".workbench-task").last
    view.wait_for(timeout=TIMEOUT)
    view.locator("text=running:").wait_for(timeout=TIMEOUT)
    view.get_by_role("button", name="Cancel").click()
    try:
        view.get_by_role("button", name="Cancelled").wait_for(timeout=60_000)
    except Exception as err:
        raise AssertionError(f"not cancelled within 60 s; the view reads: {view.inner_text()!r}") from err
    assert "cancelled" in view.inner_text()
    _add_cell_and_run(page, "print('partial', task.partial is not None and task.partial.cancelled, "
                            "len(task.partial or []))")
    out = page.locator(".jp-OutputArea-output", has_text="partial ").last
    out.wait_for(timeout=60_000)
    words = out.inner_text().split()
    assert words[1] == "True" and int(words[2]) < 4, words  # cancelled before the 4 configurations ended


def _compare_table(page, root: Path, rows: int, replay: bool = True) -> None:
    """CompareBoard at a 1000 px wide page: one line per candidate (no row taller than 40 px), every
    column on screen; its Show code (``replay``), run in a fresh interpreter, makes a board of the same
    candidates."""
    board = page.locator(".wb-cb").last
    board.locator("tr.wb-cb-row").nth(rows - 1).wait_for(timeout=TIMEOUT)
    board.scroll_into_view_if_needed()
    lines = board.locator("tr.wb-cb-row")
    assert lines.count() == rows, board.inner_text()
    heights = [lines.nth(i).bounding_box()["height"] for i in range(rows)]
    assert max(heights) <= 40, heights
    wrap = board.locator(".wb-cb-table-wrap").evaluate("(e) => [e.scrollWidth, e.clientWidth]")
    assert wrap[0] <= wrap[1] + 1, wrap  # nothing to scroll sideways to
    shown = sorted((lines.nth(i).get_attribute("data-status") or "") for i in range(rows))
    if not replay:
        return
    code = _copied_code(page, board)
    boards = [v["board"] for v in run_code(code, root).values() if "board" in v]
    assert len(boards) == 1 and len(boards[0]) == rows, boards
    assert sorted(status for _label, _backend, status in boards[0]) == shown, (boards, shown)
    labels = [lines.nth(i).locator(".wb-cb-name").inner_text() for i in range(rows)]
    assert sorted(label for label, _backend, _status in boards[0]) == sorted(labels), (boards, labels)


def _benchmark_board_in_a_notebook(page, root: Path) -> None:
    """The original and its INT8 model on two runtimes, on a CompareBoard with their comparison."""
    _add_cell_and_run(page, "from workbench.ui import CompareBoard\n"
                            f"int8 = stepper.results[{INT8!r}]\n"
                            "report = wb.benchmark([stepper.model, int8], backends=['onnxruntime', 'openvino'], "
                            "iterations=20, progress=False)\n"
                            "CompareBoard(report, wb.compare(stepper.model, [int8]))")
    _drawn(page, ".wb-cb tr.wb-cb-row")
    _compare_table(page, root, rows=4)


def _graph_code_replays(page, root: Path, height: int | None = None) -> None:
    """The graph view drawn (the INT8 model's graph); its Show code, run in a fresh interpreter, makes a
    view of the same graph (as many nodes as the page's title says), at the same height."""
    graph = page.locator(".wb-graph[data-state=ready]").last
    graph.wait_for(timeout=TIMEOUT)
    title = graph.locator(".wb-graph-title").inner_text()
    nodes = int(re.search(r"([\d,]+) nodes?", title).group(1).replace(",", ""))
    if height is not None:
        assert round(graph.bounding_box()["height"]) == height
    code = _copied_code(page, graph.locator("xpath=.."))  # the widget: the graph and its Show code
    views = [v for v in run_code(code, root).values() if "graph_nodes" in v]
    assert len(views) == 1 and views[0]["graph_nodes"] == nodes, (views, title)
    if height is not None:
        assert views[0]["height"] == height


# -- the story, per front end ---------------------------------------------------------------------------


def _notebook_story(page, root: Path) -> None:
    """JupyterLab / Notebook 7: upload the user's ONNX file, run the INT8 step with an option that fails,
    follow the hint to a PASS, replay Show code, the INT8 graph and its code, cancel a benchmark, read the
    compare table."""
    _upload(page, root / "tiny.onnx")
    _steps_with_options_and_a_hint(page, "tiny (onnx)")
    _stepper_code_replays(page, root)
    _add_cell_and_run(page, f"wb.show(stepper.results[{INT8!r}], height=360)")
    _drawn(page, ".wb-graph[data-state=ready]")
    _graph_code_replays(page, root, height=360)
    _cancel_benchmark_in_a_notebook(page)
    _benchmark_board_in_a_notebook(page, root)


def _voila_story(page, root: Path) -> None:
    """The published app (a visitor's kernel: uploads of pure-data files, no paths, no code to type): the
    same upload, steps, hint and replay as in a notebook; the Graph tab and its code; then the Benchmark
    tab: Benchmark, Cancel, and the compare table of a full run."""
    _drawn(page, ".wb-app .wb-mp")
    assert page.locator("textarea, .cm-editor, .CodeMirror, [contenteditable=true]").count() == 0
    assert page.locator(".wb-mp-tab[data-source=path]").is_hidden()  # no server paths for visitors
    _upload(page, root / "tiny.onnx")
    page.get_by_role("tab", name="Deploy").click()
    _steps_with_options_and_a_hint(page, "tiny (onnx)")
    _stepper_code_replays(page, root)
    page.get_by_role("tab", name="Graph").click()  # the graph of the step's ONNX result
    _graph_code_replays(page, root)
    page.get_by_role("tab", name="Benchmark").click()
    bench = page.locator(".wb-app button.widget-button:visible", has_text="Benchmark")  # the icon is in its name
    bench.click()
    page.locator(".wb-app button.widget-button:visible", has_text="Cancel").click()
    page.locator(".wb-app .wb-message", has_text="cancel").first.wait_for(timeout=TIMEOUT)
    page.wait_for_function("() => [...document.querySelectorAll('.wb-app button')].some("
                           "b => b.textContent.trim() === 'Benchmark' && !b.disabled)", timeout=TIMEOUT)
    bench.click()
    _compare_table(page, root, rows=2)  # the original and its INT8 model, each on its runtime


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_user_story(front_end, request, story_page, workdir):
    page = story_page
    with _evidence(page, front_end):
        if front_end == "voila":
            app = workdir / "app"
            with voila(app, APP.name, app_config=True, args=("--VoilaConfiguration.default_pool_size=1",)) as url:
                page.goto(url, timeout=TIMEOUT)
                _voila_story(page, app)
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

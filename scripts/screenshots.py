"""Screenshots of every workbench widget, each drawn in a real page from a real kernel: a JupyterLab
notebook (one cell per widget) and the published app in Voilà (``binder/app/voila.json``, as
``scripts/start --app`` serves it), driven by Debian's Chromium through Playwright on 127.0.0.1.

    python scripts/screenshots.py                          # every widget -> test-artifacts/screenshots/
    python scripts/screenshots.py --out DIR --only graph,compare_board --width 1200

Writes ``<widget>.png`` per widget (the widget's output, not the whole page) and prints one JSON line per
widget: its file, size in pixels, and ``ok`` (false, with the error, when the widget did not draw: the
PNG then shows what the page showed instead). Exits 1 when any widget failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ui.jupyter_servers import CHROMIUM, CHROMIUM_ARGS, jupyter_lab, quiet_lab_settings, voila  # noqa: E402

SETUP = """\
import workbench as wb
import workbench.ui  # wb.ui.<View>
from workbench.analysis.graph_diff import diff
m = wb.load("digits-cnn")
x = wb.export(m, "onnx")
q = wb.quantize(x, "onnxruntime", "static")
"""


@dataclass(frozen=True)
class Shot:
    """A widget to draw: ``code`` assigns the widget to ``w``; ``ready`` is a CSS selector that exists
    inside the cell's output once the widget has drawn what it shows."""

    name: str
    code: str
    ready: str


SHOTS = [
    Shot("graph", "w = wb.show(x, height=420)", ".wb-graph[data-state=ready]"),
    Shot("diff", "w = wb.ui.DiffView(x, q, height=420)", ".wb-graph[data-state=ready]"),
    Shot("netron", "w = wb.show(x, viewer='netron', height=420)", ".wb-netron[data-state=ready]"),
    Shot("kernel_lab", "w = wb.ui.KernelLab()", ".wb-kl"),
    Shot("model_picker", "w = wb.ui.ModelPicker('digits-cnn')", ".wb-mp[data-status=ready]"),
    Shot("pipeline_stepper", "w = wb.ui.PipelineStepper(m)\nw.run(background=False)", ".wb-stepper tr.wb-stepper-row"),
    Shot("compare_board", "w = wb.ui.CompareBoard(wb.benchmark([m, x, q], duration_s=0.3, progress=False), "
                          "wb.compare(m, q))", ".wb-cb tr.wb-cb-row"),
    Shot("quant_debug", "w = wb.ui.QuantDebugView(m, budget=0.01, samples=16, bench_seconds=0.2)",
         ".wb-quant-debug"),
]
APP = Shot("app", "", ".wb-app")


def _cell(shot: Shot) -> str:
    """The widget's cell: a failure prints its traceback in the output (the screenshot shows it) and the
    notebook goes on to the next widget."""
    body = textwrap.indent(shot.code, "    ")
    return (f"# {shot.name}\ntry:\n{body}\nexcept Exception:\n    import traceback\n"
            f"    traceback.print_exc()\n    w = None\nw")


def _notebook(folder: Path, shots: list[Shot]) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), *(nbformat.v4.new_code_cell(_cell(s)) for s in shots)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "widgets.ipynb")
    return "widgets.ipynb"


def _save(locator, path: Path) -> dict:
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(path))
    box = locator.bounding_box() or {}
    return {"file": str(path), "width": round(box.get("width", 0)), "height": round(box.get("height", 0))}


def shoot_notebook(browser, folder: Path, shots: list[Shot], out: Path, width: int, timeout_s: float) -> list[dict]:
    """Run the widgets' notebook in JupyterLab; one PNG per widget's output."""
    quiet_lab_settings(folder, windowing=False)
    name = _notebook(folder, shots)
    results = []
    with jupyter_lab(folder) as (base, token):
        # tall: an output taller than the notebook's scrolling area would be cut in its screenshot
        ctx = browser.new_context(viewport={"width": width, "height": 2400})
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)[:300]))
        try:
            page.goto(f"{base}lab/tree/{name}?token={token}", timeout=timeout_s * 1000)
            page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext",
                                   timeout=timeout_s * 1000)
            # the side panels closed: the notebook gets the page's width, as in a focused session
            page.evaluate("""async () => {
                const app = window.jupyterapp, w = app.shell.currentWidget;
                app.shell.collapseLeft(); app.shell.collapseRight();
                await w.sessionContext.ready;
                await app.commands.execute('notebook:run-all-cells');
            }""")
            cells = page.locator(".jp-Notebook .jp-CodeCell")
            for i, shot in enumerate(shots, start=1):
                t0 = time.monotonic()
                output = cells.nth(i).locator(".jp-OutputArea")
                result = {"widget": shot.name, "front_end": "jupyterlab"}
                try:
                    output.locator(shot.ready).first.wait_for(timeout=timeout_s * 1000)
                    page.wait_for_timeout(800)  # the widget's own layout and fonts settle
                    result["ok"] = True
                except Exception as err:  # noqa: BLE001 - reported, and the page is shot as it is
                    text = output.inner_text(timeout=5_000)[-600:] if output.count() else ""
                    result.update(ok=False, error=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}",
                                  output=text)
                result.update(_save(output if output.count() else cells.nth(i), out / f"{shot.name}.png"))
                result["seconds"] = round(time.monotonic() - t0, 1)
                result["page_errors"] = [e for e in errors if "wb" in e.lower()][:3]
                results.append(result)
                print(json.dumps(result), flush=True)
        finally:
            ctx.close()
    return results


def shoot_app(browser, folder: Path, out: Path, width: int, timeout_s: float) -> dict:
    """The published app in Voilà: its first screen, then its Deploy tab."""
    app = ROOT / "notebooks" / "apps" / "workbench_app.ipynb"
    shutil.copy(app, folder / app.name)
    result: dict = {"widget": "app", "front_end": "voila"}
    flags = ("--VoilaConfiguration.preheat_kernel=False",)
    with voila(folder, app.name, app_config=True, args=flags) as url:
        ctx = browser.new_context(viewport={"width": width, "height": 1000})
        page = ctx.new_page()
        try:
            page.goto(url, timeout=timeout_s * 1000)
            try:
                page.locator(APP.ready).first.wait_for(timeout=timeout_s * 1000)
                page.wait_for_timeout(1500)
                result["ok"] = True
            except Exception as err:  # noqa: BLE001
                result.update(ok=False, error=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
            page.screenshot(path=str(out / "app.png"), full_page=True)
            result["file"] = str(out / "app.png")
            tab = page.get_by_role("tab", name="Deploy")
            if result.get("ok") and tab.count():
                tab.first.click()
                page.wait_for_timeout(1500)
                page.screenshot(path=str(out / "app-deploy.png"), full_page=True)
                result["files"] = [result["file"], str(out / "app-deploy.png")]
        finally:
            ctx.close()
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "screenshots",
                    help="folder for the PNGs (default: test-artifacts/screenshots/)")
    names = [s.name for s in SHOTS] + ["app"]
    ap.add_argument("--only", default="", help=f"comma-separated widgets (default all): {', '.join(names)}")
    ap.add_argument("--width", type=int, default=1200, help="the page's width in CSS pixels")
    ap.add_argument("--timeout", type=float, default=300, help="seconds a widget may take to draw")
    args = ap.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()} or set(names)
    unknown = only - set(names)
    if unknown:
        ap.error(f"unknown widget(s) {sorted(unknown)}: choose from {names}")
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    os.environ.setdefault("WORKBENCH_QUICK", "1")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="wb-screenshots-"))
    results = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                shots = [s for s in SHOTS if s.name in only]
                if shots:
                    (folder / "lab").mkdir()
                    results += shoot_notebook(browser, folder / "lab", shots, out, args.width, args.timeout)
                if "app" in only:
                    (folder / "app").mkdir()
                    results.append(shoot_app(browser, folder / "app", out, args.width, args.timeout))
            finally:
                browser.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    failed = [r["widget"] for r in results if not r.get("ok")]
    print(json.dumps({"screenshots": str(out), "widgets": len(results), "failed": failed}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

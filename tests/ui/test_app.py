"""The Workbench app served by real Voilà, driven in headless Chromium: a visitor picks steps and runs
them, sees each step validated, and has nowhere to type code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.ui.jupyter_servers import SCREENSHOTS, voila

playwright_sync = pytest.importorskip("playwright.sync_api")
APP = Path(__file__).resolve().parents[2] / "notebooks" / "apps" / "workbench_app.ipynb"
TIMEOUT = 180_000


def test_voila_app_runs_steps_and_offers_no_code_input(page, tmp_path):
    """Served as ``scripts/start --app`` serves it (binder/app/voila.json): a preheated kernel, capped
    and marked published, so the steps' validation and the graph run in the worker."""
    shutil.copy(APP, tmp_path / APP.name)
    with voila(tmp_path, APP.name, app_config=True, args=("--VoilaConfiguration.default_pool_size=1",)) as url:
        page.goto(url, timeout=TIMEOUT)
        page.wait_for_selector("text=Deployment Workbench", timeout=TIMEOUT)
        page.wait_for_selector("pre.wb-describe >> text=digits-cnn (torch)", timeout=TIMEOUT)
        # no code cell, editor or free-text field for visitors
        assert page.locator("textarea, .cm-editor, .CodeMirror, input[type=text], [contenteditable=true]").count() == 0
        page.get_by_role("tab", name="Deploy").click()
        page.get_by_text("OpenVINO NNCF INT8").click()  # untick the slowest step
        page.get_by_role("button", name="Run steps").click()
        table = page.locator("table.wb-steps")
        table.locator("text=ONNX Runtime static INT8").wait_for(timeout=TIMEOUT)
        page.wait_for_function(
            "() => document.querySelectorAll('table.wb-steps tr').length >= 4", timeout=TIMEOUT)
        text = table.inner_text()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "voila-app-steps.png"))
        assert text.count("PASS") >= 3 and "FAIL" not in text, text  # ONNX, OpenVINO IR, INT8 each validated
        assert "accuracy" in text
        page.get_by_text("The same as a Python script").click()
        script = page.locator("pre.wb-script").inner_text()
        assert "m3 = wb.quantize(m1, 'onnxruntime', 'static')" in script and "nncf" not in script


def test_app_script_is_the_pipeline_of_the_ticked_steps():
    import workbench as wb

    app = wb.Workbench("digits-cnn")
    text = app.script_text()
    assert "m2 = wb.convert(m1, 'openvino')" in text and "m4 = wb.quantize(m2, 'nncf')" in text
    boxes = {box.description: box for box in app.step_boxes}
    # edge and compiler toolchains are offered, unticked (the default run stays quick)
    assert not boxes["MNN"].value and boxes["ONNX export"].value
    boxes["OpenVINO IR"].value = False  # no OpenVINO IR: NNCF has nothing to start from, so it is left out
    text = app.script_text()
    assert "m2 = wb.quantize(m1, 'onnxruntime', 'static')" in text
    assert "openvino" not in text and "nncf" not in text and "m3" not in text
    assert "wb.export(m0, &#x27;onnx&#x27;)" in app.script.value  # what the app shows

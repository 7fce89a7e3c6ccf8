"""The Workbench app: built from ModelPicker, PipelineStepper, CompareBoard and DownloadButton, driven from
Python (bring your own ONNX file, options change the pipeline, downloads carry the real bytes, a benchmark
cancels), and served by real Voilà in headless Chromium (a visitor chooses steps and options, runs them,
sees each step validated, and has nowhere to type code)."""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.ui.jupyter_servers import SCREENSHOTS, voila

APP = Path(__file__).resolve().parents[2] / "notebooks" / "apps" / "workbench_app.ipynb"
TIMEOUT = 180_000
INT8 = "ONNX Runtime static INT8"


@pytest.fixture(scope="module")
def app(fresh_workspace):
    import workbench as wb

    return wb.Workbench("digits-cnn", bench_seconds=0.1)


def test_app_script_is_the_pipeline_of_the_ticked_steps(app):
    text = app.script_text()
    assert "m2 = wb.convert(m1, 'openvino')" in text and "m4 = wb.quantize(m2, 'nncf')" in text
    steps = {s["label"]: s for s in app.stepper.steps}
    # edge and compiler toolchains are offered, unticked (the default run stays quick)
    assert not steps["MNN"]["ticked"] and steps["ONNX export"]["ticked"]
    app.stepper.tick("OpenVINO IR", False)  # no OpenVINO IR: NNCF has nothing to start from, so it is left out
    text = app.script_text()
    assert "m2 = wb.quantize(m1, 'onnxruntime', 'static')" in text
    assert "openvino" not in text and "nncf" not in text and "m3" not in text
    assert [p["index"] for p in app.stepper.plan if p["label"] == "OpenVINO NNCF INT8"] == [0]  # refused, said why
    assert app.stepper.code_text == text  # what Show code shows
    app.stepper.tick("OpenVINO IR", True)


def test_options_reach_the_result_and_downloads_are_the_real_files(app):
    app.stepper.tick("OpenVINO NNCF INT8", False)
    app.stepper.set_options(INT8, per_channel=False, samples=8)
    assert "wb.quantize(m1, 'onnxruntime', 'static', per_channel=False, samples=8)" in app.script_text()
    app.run_steps()
    q = app.results[INT8]
    assert q.lineage[-1].options["per_channel"] is False and q.validation
    # each artifact downloads as its bytes; the OpenVINO IR as a zip of its .xml and .bin
    buttons = {b.label: b for b in app.artifact_box.children}
    onnx = next(b for label, b in buttons.items() if label.startswith(INT8))
    name, data, _mime = onnx.payload()
    assert name == q.path.name and data == q.path.read_bytes()
    ir = app.results["OpenVINO IR"]
    name, data, mime = next(b for label, b in buttons.items() if label.startswith("OpenVINO IR")).payload()
    assert mime == "application/zip" and name == f"{ir.path.stem}.zip"
    members = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert sorted(members) == sorted([ir.path.name, ir.path.with_suffix(".bin").name])
    # the report: each step against the original (and the benchmark once run), as one HTML page
    name, data, mime = app.report_button.payload()
    page = data.decode()
    assert mime == "text/html" and name.endswith(".html") and "digits-cnn" in page and "<svg" in page
    assert all(m.path.name in page or m.name in page for m in app.results.values())
    app.stepper.reset_options(INT8)


def test_benchmark_runs_in_the_background_and_cancels(app):
    from workbench.core import progress

    task = app.run_benchmark(background=True)
    assert app.bench_cancel.layout.display == ""  # the Cancel button shows while it runs
    app.cancel_benchmark()
    assert task.wait(120)
    assert isinstance(task.error, progress.Cancelled) or "cancelled" in app.bench_status.value
    assert app.bench_cancel.layout.display == "none" and not app.bench_button.disabled
    report = app.run_benchmark().result()  # not cancelled: every model timed, shown on the board
    assert len(report.to_frame()) >= 1 + len(app.results)
    board = app.bench_output.children[0]
    assert type(board).__name__ == "CompareBoard"
    # the Deploy results' checks ride along, so a step that FAILs accuracy is marked, never ranked best
    assert app.results and [type(r).__name__ for r in board.results] == ["BenchReport", "Comparison"]
    assert "wb.benchmark(" in app.bench_code.code()
    assert "Benchmark" in app.report_file()[1].decode()


def test_bring_your_own_onnx_file(app, digits_onnx, tmp_path):
    mine = tmp_path / "my model.onnx"
    shutil.copy(digits_onnx.path, mine)
    m = app.picker.pick(str(mine))  # what the path field (or an upload) does
    assert app.model is m and m.format == "onnx"
    labels = [s["label"] for s in app.stepper.steps]
    assert "ONNX export" not in labels and INT8 in labels  # the registry's steps for an ONNX file
    assert app.results == {} and app.bench_output.children == ()
    assert str(mine) in app.script_text() and "wb.export" not in app.script_text()
    for label in labels:
        app.stepper.tick(label, label == INT8)
    app.run_steps()
    row = next(r for r in app.stepper.rows if r["label"] == INT8)
    assert row["verdict"] == "PASS", row
    assert "my model.onnx" in app.describe.value
    # each tab's Show code runs as is
    for box in (app.model_code, app.graph_code):
        namespace: dict = {}
        exec(compile(box.code(), "<tab code>", "exec"), namespace)
        assert namespace["m"].format == "onnx"


def test_voila_app_runs_steps_with_options_and_offers_no_code_input(page, tmp_path):
    """Served as ``scripts/start --app`` serves it (binder/app/voila.json): a preheated kernel, capped
    and marked published, so the steps' validation and the graph run in the worker."""
    pytest.importorskip("playwright.sync_api")
    shutil.copy(APP, tmp_path / APP.name)
    with voila(tmp_path, APP.name, app_config=True, args=("--VoilaConfiguration.default_pool_size=1",)) as url:
        page.goto(url, timeout=TIMEOUT)
        page.wait_for_selector("text=Deployment Workbench", timeout=TIMEOUT)
        page.wait_for_selector("pre.wb-describe >> text=digits-cnn (torch)", timeout=TIMEOUT)
        # no code cell, editor or path field; the only text inputs are option fields the kernel checks
        assert page.locator("textarea, .cm-editor, .CodeMirror, [contenteditable=true]").count() == 0
        assert page.locator("input[type=text]:visible").count() == page.locator(
            ".wb-stepper-option input[type=text]:visible").count()
        page.get_by_role("tab", name="Deploy").click()
        page.get_by_label("OpenVINO NNCF INT8", exact=True).uncheck()  # the slowest step
        step = page.locator(".wb-stepper-step[data-step='ONNX Runtime static INT8']")
        step.locator("summary").click()
        step.get_by_label("ONNX Runtime static INT8: per_channel").uncheck()
        page.locator(".wb-stepper-step[data-step='ONNX Runtime static INT8'] .wb-changed").wait_for(timeout=TIMEOUT)
        page.get_by_role("button", name="Run steps").click()
        table = page.locator("table.wb-stepper-table")
        page.wait_for_function(
            "() => document.querySelectorAll('table.wb-stepper-table tr[data-final=true]').length >= 3",
            timeout=TIMEOUT)
        text = table.inner_text()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "voila-app-steps.png"))
        assert text.count("PASS") >= 3 and "FAIL" not in text, text  # ONNX, OpenVINO IR, INT8 each validated
        assert "accuracy" in text
        # each step's time cell reads as seconds (a step taking 10.0 s must not read as "0.0 s") or "cached"
        times = table.locator("td.wb-stepper-time").all_inner_texts()
        assert len(times) >= 3 and all(
            t == "cached" or (re.fullmatch(r"\d+(\.\d)? s", t) and t != "0.0 s") for t in times), times
        page.locator(".wb-stepper summary", has_text="Show code").click()
        script = page.locator(".wb-stepper pre.wb-code").inner_text()
        assert "m3 = wb.quantize(m1, 'onnxruntime', 'static', per_channel=False)" in script and "nncf" not in script
        assert not page.errors, page.errors

"""PipelineStepper driven from Python with real steps on digits-cnn: options from the registry change the
pipeline (its script and the result's lineage), the browser's requests are checked in the kernel, a
failure shows its error, fix and hints, a cancel stops the run, cached steps say so, and the payloads
match the schema the TypeScript is generated from."""

from __future__ import annotations

import time

import pytest

from workbench.core.errors import StepError, WorkbenchError
from workbench.ui import assets
from workbench.ui.pipeline_stepper import PipelineStepper, StepChoice

pytest.importorskip("anywidget")
INT8 = "ONNX Runtime static INT8"


def _validate(stepper: PipelineStepper) -> None:
    for kind, items in (("StepperStep", stepper.steps), ("StepperPlanRow", stepper.plan),
                        ("StepperRow", stepper.rows)):
        for item in items:
            assets.validate(item, kind)


@pytest.fixture(scope="module")
def stepper(fresh_workspace, zoo):
    s = PipelineStepper(zoo("digits-cnn"), published=True)
    for label in ("OpenVINO IR", "OpenVINO NNCF INT8"):
        s.tick(label, False)
    return s


def test_steps_and_options_come_from_the_registry(stepper):
    steps = {s["label"]: s for s in stepper.steps}
    assert {"ONNX export", "OpenVINO IR", INT8, "OpenVINO NNCF INT8"} <= set(steps)
    opts = {o["name"]: o for o in steps[INT8]["options"]}
    assert opts["per_channel"]["kind"] == "bool" and opts["per_channel"]["value"] is True
    assert opts["calibrate"]["choices"] == ["minmax", "entropy", "percentile"]
    assert opts["method"]["value"] == "static" and "dynamic" in opts["method"]["choices"]
    assert opts["samples"]["kind"] == "int" and opts["samples"]["optional"]
    assert opts["smooth_quant"]["maximum"] < 1 and "layer_schemes" not in opts  # a dict is not a form field
    export = {o["name"]: o for o in steps["ONNX export"]["options"]}
    assert export["opset"]["kind"] == "int" and export["opset"]["value"] == 18
    nncf = {o["name"] for o in steps["OpenVINO NNCF INT8"]["options"]}
    assert {"preset", "transformer"} <= nncf
    # a method's own options: dynamic INT8 has no calibration
    stepper.set_options(INT8, method="dynamic")
    names = {o.name for o in stepper.options_of(INT8)}
    assert "calibrate" not in names and "samples" not in names and "per_channel" in names
    stepper.reset_options(INT8)
    _validate(stepper)


def test_browser_requests_are_checked_in_the_kernel(stepper):
    before = stepper.code()
    for request in ({"type": "option", "label": INT8, "name": "per_channel", "value": "__import__('os')"},
                    {"type": "option", "label": INT8, "name": "calibrate", "value": "../../etc/passwd"},
                    {"type": "option", "label": INT8, "name": "path", "value": "/tmp/x.onnx"},
                    {"type": "option", "label": "ONNX export", "name": "opset", "value": 99},
                    {"type": "option", "label": "no such step", "name": "opset", "value": 17},
                    {"type": "apply", "label": INT8, "options": {"op_types": ["Conv; rm -rf /"]}}):
        stepper._on_msg(stepper, request, [])
        assert stepper.error, request
    assert stepper.code() == before
    # synced state is the kernel's: a state update from the browser changes nothing
    stepper.set_state({"running": True, "code_text": "import os", "steps": [], "published": False})
    assert not stepper.running and stepper.code_text == before and stepper.steps and stepper.published
    with pytest.raises(StepError, match="range"):
        stepper.set_options("ONNX export", opset=6)
    with pytest.raises(StepError, match="range"):  # a published app bounds the work a visitor asks for
        stepper.set_options(INT8, samples=1000)
    stepper._on_msg(stepper, {"type": "option", "label": INT8, "name": "op_types", "value": ["Conv", "Gemm"]}, [])
    assert stepper.error == "" and "op_types=['Conv', 'Gemm']" in stepper.code()
    stepper.reset_options(INT8)


def test_options_change_the_pipeline_and_the_result(stepper):
    stepper._on_msg(stepper, {"type": "option", "label": INT8, "name": "per_channel", "value": False}, [])
    assert stepper.error == ""
    code = stepper.code()
    assert "m2 = wb.quantize(m1, 'onnxruntime', 'static', per_channel=False)" in code
    assert stepper.code_text == code
    assert [p["source"] for p in stepper.plan] == ["input", "step 1"]  # the INT8 step takes the export
    stepper.run(background=False)
    assert not stepper.running and stepper.status.startswith("finished")
    q = stepper.results[INT8]
    assert q.lineage[-1].options["per_channel"] is False
    rows = {r["label"]: r for r in stepper.rows}
    assert rows[INT8]["verdict"] == "PASS" and rows[INT8]["final"]
    figures = {f["name"]: f["value"] for f in rows[INT8]["figures"]}
    assert figures["cosine"] > 0.99 and "accuracy" in figures and "accuracy drop" in figures
    assert rows[INT8]["seconds"] > 0 and rows[INT8]["artifact"].endswith(".onnx")
    _validate(stepper)
    # the script runs as is, and makes the same artifact (served from the cache)
    namespace: dict = {}
    exec(compile(code, "<stepper code>", "exec"), namespace)
    assert namespace["m2"].lineage[-1].options["per_channel"] is False
    # a second run is served from the cache: marked cached, with no time
    done = []
    stepper.on_done(done.append)
    stepper.run(background=False)
    rows = {r["label"]: r for r in stepper.rows}
    assert rows[INT8]["cached"] and rows[INT8]["seconds"] is None and rows[INT8]["verdict"] == "PASS"
    assert done and set(done[0]) == {"ONNX export", INT8}
    stepper.reset_options(INT8)


def test_a_failure_shows_its_error_fix_and_hints(fresh_workspace, zoo):
    """A step whose toolchain cannot run here (TensorRT needs an NVIDIA GPU) fails with its fix; the
    step after it is skipped, and the run does not stop the kernel."""
    choices = [StepChoice("ONNX export", ("export", "onnx")),
               StepChoice("TensorRT", ("convert", "tensorrt"), ("ONNX export",))]
    s = PipelineStepper(zoo("digits-cnn"), choices=choices)
    s.set_options("ONNX export", opset=17)  # options of a fixed choice too
    s.run(background=False)
    rows = {r["label"]: r for r in s.rows}
    assert rows["ONNX export"]["verdict"] == "PASS"
    trt = rows["TensorRT"]
    assert trt["status"] == "failed" and trt["error"] and trt["fix"], trt
    assert trt["hints"] and "untick" in trt["hints"][0]["text"]
    assert set(s.results) == {"ONNX export"}
    _validate(s)


def test_cancel_stops_the_run(fresh_workspace, zoo):
    s = PipelineStepper(zoo("digits-cnn"))
    for label in ("OpenVINO NNCF INT8", INT8):
        s.tick(label, False)
    s.set_options("ONNX export", opset=16)  # a fresh export: not in the cache
    s.run(background=True)
    assert s.running
    deadline = time.monotonic() + 120
    while not any(r["status"] in ("running", "validating") for r in s.rows) and time.monotonic() < deadline:
        time.sleep(0.05)
    s._on_msg(s, {"type": "cancel"}, [])  # the browser's Cancel button
    assert s.wait(180)
    rows = {r["label"]: r for r in s.rows}
    assert rows["OpenVINO IR"]["status"] == "cancelled", rows
    assert not s.running and "cancelled" in s.status
    assert "OpenVINO IR" not in s.results
    with pytest.raises(WorkbenchError, match="no step"):
        s.tick("nothing", True)

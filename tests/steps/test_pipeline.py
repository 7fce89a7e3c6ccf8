"""Pipelines: plan, run, cache, cancel, and to_script() that reproduces the same files."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import workbench as wb
from workbench.core.errors import StepError
from workbench.steps.pipeline import Step
from workbench.steps.workspace import read_manifest, using_workspace

THREE_STEPS = [("export", "onnx"), ("quantize", "onnxruntime", {"method": "static"}), "convert:openvino"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_plan_is_shown_before_running_and_checked(zoo):
    p = wb.Pipeline(THREE_STEPS)
    text = repr(p)
    assert "1. export onnx" in text and "2. quantize onnxruntime (method='static')" in text
    rows = p.plan(zoo("digits-cnn"))
    assert [(r["takes"], r["gives"]) for r in rows] == [("torch", "onnx"), ("onnx", "onnx"), ("onnx", "openvino")]
    bad = wb.Pipeline([("convert", "openvino"), ("quantize", "onnxruntime", {"method": "dynamic"})])
    with pytest.raises(StepError, match="step 2 .* needs onnx, gets openvino"):
        bad.run(zoo("digits-cnn"), progress=False)


def test_three_step_pipeline_runs_caches_and_scripts(zoo, tmp_path):
    first, second = tmp_path / "run", tmp_path / "script"
    p = wb.Pipeline(THREE_STEPS)
    with using_workspace(first):
        run = p.run(zoo("digits-cnn"), progress="tqdm")
        assert run.passed, run
        assert [r.status for r in run.records] == ["done", "done", "done"]
        final = run.final
        assert final.format == "openvino"
        assert [e.step for e in final.lineage] == ["export:onnx", "quantize:onnxruntime", "convert:openvino"]
        assert run.to_frame().loc[2, "accuracy"] >= run.to_frame().loc[1, "accuracy"] - 0.01
        # the manifest has every artifact and its parent
        entries = {a["path"]: a for a in read_manifest()["artifacts"]}
        assert entries[final.path.name]["parent"]["path"] == run[2].path.name
        assert entries[final.path.name]["validation"]["passed"] is True
        # a re-run is served from the cache: the same files, nothing rewritten
        mtimes = {m.path: m.path.stat().st_mtime_ns for m in run.models[1:]}
        again = p.run(zoo("digits-cnn"), progress=False)
        assert [r.status for r in again.records] == ["cached"] * 3
        assert {m.path: m.path.stat().st_mtime_ns for m in again.models[1:]} == mtimes
        assert again.final.validation

    script = p.to_script()
    assert "wb.load('digits-cnn')" in script and "wb.quantize(m1, 'onnxruntime', 'static')" in script
    (tmp_path / "pipeline_script.py").write_text(script)
    env = dict(os.environ, WORKBENCH_ARTIFACTS=str(second))
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.run([sys.executable, str(tmp_path / "pipeline_script.py")], env=env, capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("PASS") == 3
    for m in run.models[1:]:
        files = [m.path] + ([m.path.with_suffix(".bin")] if m.format == "openvino" else [])
        for f in files:
            twin = second / f.name
            assert twin.exists(), f"the script did not write {f.name}"
            assert _sha(twin) == _sha(f), f"{f.name} differs"


def test_cancel_between_steps(zoo, tmp_path):
    seen = []

    def stop_after_me(model):  # a custom step that presses "Cancel" while the pipeline runs
        seen.append(model.format)
        p.cancel()
        return model

    p = wb.Pipeline([("export", "torchscript"), Step.custom(stop_after_me), ("export", "onnx")])
    with using_workspace(tmp_path):
        run = p.run(zoo("digits-cnn"), progress=False)
    assert seen == ["torchscript"]
    assert [r.status for r in run.records] == ["done", "done", "cancelled"]
    assert run.final.format == "torchscript" and run.final.path.exists()
    assert not list(tmp_path.glob("*.onnx"))


def test_failed_step_keeps_earlier_results(zoo, tmp_path):
    p = wb.Pipeline([("export", "onnx"), ("quantize", "onnxruntime", {"method": "int4"}), ("convert", "openvino",
                                                                                        {"source": 1})])
    with using_workspace(tmp_path):
        run = p.run(zoo("digits-cnn"), progress=False, raise_errors=False)
    assert [r.status for r in run.records] == ["done", "failed", "done"]
    assert "no MatMul" in run.records[1].error
    assert run.final.format == "openvino"


def test_progress_widget_renders_records(zoo):
    pytest.importorskip("ipywidgets")
    from workbench.steps.pipeline import PipelineRun
    from workbench.ui.pipeline_view import PipelineView

    p = wb.Pipeline(THREE_STEPS)
    run = PipelineRun(p, zoo("digits-cnn"))
    assert PipelineView(p, run).cancel_button.disabled  # in the foreground the kernel cannot take the click
    run.background = True
    view = PipelineView(p, run)
    rec = run.records[0]
    rec.status = "validating"
    view.update(rec)
    assert view.bars[1].value == 2
    rec.status, rec.error = "failed", "boom"
    view.update(rec)
    assert view.bars[1].bar_style == "danger" and "boom" in view.status[1].value
    view.cancel_button.click()
    assert p._cancel.cancelled and view.cancel_button.disabled

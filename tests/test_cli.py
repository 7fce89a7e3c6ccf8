"""The ``workbench`` command line mirrors the API (export, convert, quantize, backends, zoo, describe)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from workbench.cli import main


def test_console_script_exports_and_validates(tmp_path):
    env = dict(os.environ, WORKBENCH_ARTIFACTS=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "export", "digits-cnn", "onnx", "--opset", "17"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"wrote {tmp_path / 'digits-cnn.onnx'}" in proc.stdout
    assert "validation: PASS export:onnx [fp32]" in proc.stdout
    # a second process finds the artifact's lineage in the manifest: real calibration data, validated vs torch
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "quantize", str(tmp_path / "digits-cnn.onnx"),
                           "onnxruntime", "--method", "static", "--calibrate", "entropy", "--strict"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lineage: export:onnx → quantize:onnxruntime" in proc.stdout
    assert "accuracy=" in proc.stdout


def test_steps_in_process(zoo, tmp_path, capsys):
    ws = ["--workspace", str(tmp_path)]
    assert main(["export", "digits-cnn", "onnx", *ws]) == 0
    assert main(["convert", str(tmp_path / "digits-cnn.onnx"), "openvino", *ws]) == 0
    assert main(["quantize", str(tmp_path / "digits-cnn.xml"), "nncf", "--method", "ptq", "--json", *ws]) == 0
    out = capsys.readouterr().out
    entry = json.loads(out[out.index("{"):])
    assert entry["step"] == "quantize:nncf" and entry["validation"]["passed"] is True
    assert entry["options"]["calibration"]["source"] == "model"
    assert main(["quantize", str(tmp_path / "digits-cnn.onnx"), "onnxruntime", "--method", "dynamic",
                 "-o", "per_channel=False", *ws]) == 0
    assert "per_channel" in json.dumps(json.loads((tmp_path / "manifest.json").read_text()))
    assert main(["artifacts", *ws]) == 0
    assert "quantize:nncf" in capsys.readouterr().out
    assert main(["describe", str(tmp_path / "digits-cnn-int8.xml"), *ws]) == 0
    assert "lineage: export:onnx → convert:openvino → quantize:nncf" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["quantize", "digits-cnn", "onnxruntime"], "takes a onnx model; this one is torch"),
    (["convert", "no-such-model", "openvino"], "is not a file, a folder or a zoo model"),
    (["export", "digits-cnn", "onnx", "-o", "colour=red"], "unexpected keyword argument 'colour'"),
    (["quantize", "digits-cnn", "torch", "-o", "nonsense"], "is not KEY=VALUE"),
])
def test_errors_are_one_line_with_a_fix(argv, message, capsys, tmp_path):
    assert main([*argv, "--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "fix:" in err
    assert len(err.splitlines()) == 1


def test_listings(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "openvino" in out and "coreml" in out
    assert main(["zoo"]) == 0
    assert "digits-cnn" in capsys.readouterr().out
    assert main(["describe", "digits-cnn"]) == 0
    assert "pixels: float32[batch, 1, 8, 8]" in capsys.readouterr().out

"""TensorRT: here (no NVIDIA GPU) the runtime and its steps say why in one line, with the fix, before anything
CUDA-heavy is imported, and everything else keeps working; an engine file is still recognised. On a machine
with an NVIDIA GPU, TensorRT and a CUDA torch, the GPU tests build fp32/fp16/INT8 engines from the digits CNN
and validate them."""

from __future__ import annotations

import importlib.util

import pytest

import workbench as wb
from tests.hidden_module import run_hidden
from workbench.core.errors import BackendUnavailable, StepError
from workbench.formats.tensorrt import nvidia_gpu


def _cuda_ready() -> bool:
    if nvidia_gpu() is None or importlib.util.find_spec("tensorrt") is None:
        return False
    import torch

    return torch.cuda.is_available()


needs_gpu = pytest.mark.skipif(not _cuda_ready(), reason="needs an NVIDIA GPU, TensorRT and a CUDA build of torch")
no_gpu = pytest.mark.skipif(nvidia_gpu() is not None, reason="this machine has an NVIDIA GPU")


@no_gpu
def test_without_a_gpu_it_says_why_in_one_line_imports_nothing_heavy_and_the_rest_works(digits_onnx):
    got = run_hidden(["tensorrt"], f"""
        import json, sys, workbench as wb
        from workbench.core.errors import BackendUnavailable
        row = wb.backends().loc["tensorrt"]
        with wb.runner(wb.load({str(digits_onnx.path)!r}), "onnxruntime") as r:
            shape = list(r.infer()["logits"].shape)
        try:
            wb.convert(wb.load({str(digits_onnx.path)!r}), "tensorrt", precision="fp16")
            error = None
        except BackendUnavailable as err:
            error = str(err)
        try:
            wb.runner(wb.load({str(digits_onnx.path)!r}), "trt").prepare()
            run_error = None
        except BackendUnavailable as err:
            run_error = str(err)
        heavy = sorted(m for m in ("tensorrt", "pycuda", "cuda") if sys.modules.get(m) is not None)
        print(json.dumps({{"available": bool(row.available), "reason": row.reason, "fix": row.fix,
                          "error": error, "run_error": run_error, "heavy": heavy, "shape": shape}}))
    """)
    assert got["available"] is False
    assert "needs an NVIDIA GPU" in got["reason"] and "\n" not in got["reason"]
    assert "pip install" in got["fix"] and "onnxruntime" in got["fix"]
    assert got["error"] and "needs an NVIDIA GPU" in got["error"]
    assert got["run_error"] and "needs an NVIDIA GPU" in got["run_error"]
    assert got["heavy"] == []
    assert got["shape"] == [1, 10]  # everything else keeps working


def test_steps_check_their_input_before_the_gpu(digits_onnx, zoo):
    with pytest.raises(StepError, match="ONNX"):
        wb.convert(zoo("digits-cnn"), "tensorrt")  # a torch model: the step takes ONNX
    with pytest.raises(StepError, match="precision"):
        wb.convert(digits_onnx, "tensorrt", precision="fp8")


@no_gpu
def test_the_app_offers_no_tensorrt_step_without_a_gpu():
    from workbench.ui.app import choices_for

    labels = [c.label for c in choices_for("onnx")]
    assert labels and not any("TensorRT" in label for label in labels)


@no_gpu
def test_an_engine_file_is_recognised_and_explained(tmp_path):
    engine = tmp_path / "model.bin"
    engine.write_bytes(b"ftrt" + bytes(60))
    with pytest.raises(BackendUnavailable, match="NVIDIA GPU"):
        wb.load(engine)


@needs_gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_gpu_engine_validates(digits_onnx, precision):
    engine = wb.convert(digits_onnx, "tensorrt", precision=precision)
    assert engine.format == "tensorrt"
    assert engine.validation.passed, engine.validation.summary()
    assert wb.load(engine.path).inputs[0].name == digits_onnx.inputs[0].name
    report = wb.benchmark(engine, backends=["tensorrt"], duration_s=0.3)
    assert report.results[0].error is None and report.results[0].latency.p50 > 0


@needs_gpu
def test_gpu_int8_engine_validates_within_int8_tolerance(digits_onnx):
    engine = wb.quantize(digits_onnx, "tensorrt")
    assert engine.validation.passed, engine.validation.summary()
    assert engine.validation.precision == "int8"
    assert engine.lineage[-1].options["calibration"]["n"] > 0

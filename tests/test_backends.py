"""Every runtime that can run a zoo model here agrees with torch eager, within the tolerance of its precision."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from tests.conftest import needs_hf
from workbench.core.errors import InputError
from workbench.core.precision import normalize_precision
from workbench.core.tolerances import metrics, tolerance

# (backend, options, precision the comparison is held to)
RUNTIMES = [
    ("torch_compile", {}, "fp32"),
    ("torchscript", {}, "fp32"),
    ("onnxruntime", {}, "fp32"),
    ("onnxruntime", {"graph_optimization_level": "disable"}, "fp32"),
    ("openvino", {"precision": "fp32"}, "fp32"),
    ("openvino", {}, "bf16"),  # OpenVINO's default: bf16 where the CPU has it (AVX-512 BF16 / AMX), else fp32
]
MODELS = ["digits-cnn", "resnet18", "mobilenetv2", "tiny-transformer"]


def test_backends_lists_every_runtime_with_reason_and_fix():
    table = wb.backends()
    assert {"torch_eager", "torch_compile", "torchscript", "onnxruntime", "openvino", "coreml"} <= set(table.index)
    assert table.loc["onnxruntime", "available"] and table.loc["onnxruntime", "version"]
    for name, row in table.iterrows():
        if not row["available"]:
            assert row["reason"] and row["fix"], name


def _openvino_default_precision() -> str:
    """What OpenVINO's CPU plugin computes in by default on this machine: bf16 where the CPU offers it."""
    import openvino as ov

    return "bf16" if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "fp32"


def _check_pair(model, backend, options, precision, feeds):
    with wb.runner(model, "torch_eager") as r:
        ref = r.infer(feeds)
    with wb.runner(model, backend, **options) as r:
        got = r.infer(feeds)
        if backend == "openvino" and not options:
            assert normalize_precision(r.inference_precision) == _openvino_default_precision()
    assert list(got) == list(ref)
    tol = tolerance(precision)
    for name in ref:
        assert got[name].shape == ref[name].shape
        rel_l2, max_abs, cos = metrics(ref[name], got[name])
        assert tol.check(rel_l2, max_abs, cos), (backend, options, name, rel_l2, max_abs, cos)


@pytest.mark.parametrize("backend,options,precision", RUNTIMES, ids=lambda v: str(v) if v else "default")
@pytest.mark.parametrize("name", MODELS)
def test_runtime_matches_torch_eager(zoo, name, backend, options, precision):
    model = zoo(name)
    _check_pair(model, backend, options, precision, model.example_inputs(batch=2, seed=3))


@needs_hf
@pytest.mark.parametrize("backend,options,precision", RUNTIMES, ids=lambda v: str(v) if v else "default")
def test_minilm_runtime_matches_torch_eager(zoo, backend, options, precision):
    model = zoo("minilm")
    _check_pair(model, backend, options, precision, model.example_inputs(batch=2))


def test_dynamic_batch_and_sequence_run_on_exported_onnx(zoo):
    model = zoo("tiny-transformer")
    x = wb.export(model, "onnx")
    assert x.inputs[0].shape == ("batch", "sequence")
    feeds = {"input_ids": np.random.default_rng(0).integers(0, 1000, (3, 20)).astype(np.int64)}
    with wb.runner(x, "onnxruntime") as r:
        assert r.infer(feeds)["logits"].shape == (3, 20, 8)


def test_runner_validates_feeds(zoo):
    model = zoo("digits-cnn")
    with wb.runner(model, "onnxruntime") as r:
        with pytest.raises(InputError, match="missing input"):
            r.infer({"image": np.zeros((1, 1, 8, 8), np.float32)})
        with pytest.raises(InputError, match="astype"):
            r.infer({"pixels": np.zeros((1, 1, 8, 8), np.float64)})
        with pytest.raises(InputError, match="axis 2"):
            r.infer({"pixels": np.zeros((1, 1, 7, 8), np.float32)})
        out = r.infer({"pixels": np.zeros((5, 1, 8, 8), np.float32)})  # the runner still works
        assert out["logits"].shape == (5, 10)
        assert r.timing.infer_count == 1 and r.timing.prepare_s > 0


def test_runner_is_a_context_manager_and_closes(zoo):
    r = wb.runner(zoo("digits-cnn"), "openvino", precision="fp32")
    with r:
        assert r.is_prepared
        r.infer()
    assert not r.is_prepared
    r.close()  # twice is fine


def test_unknown_backend_and_options_are_explained(zoo):
    with pytest.raises(wb.WorkbenchError, match="choose one of"):
        wb.runner(zoo("digits-cnn"), "tensorflow")
    with pytest.raises(wb.WorkbenchError, match="graph_optimization_level"):
        with wb.runner(zoo("digits-cnn"), "onnxruntime", graph_optimization_level="max") as r:
            r.infer()


def test_openvino_takes_onnx_and_ir_and_torch(zoo, tmp_path):
    import openvino as ov

    model = zoo("digits-cnn")
    x = wb.export(model, "onnx")
    xml = tmp_path / "d.xml"
    ov.save_model(ov.convert_model(str(x.path)), str(xml), compress_to_fp16=False)
    feeds = model.example_inputs(batch=1)
    outs = []
    for m in (model, x, wb.load(xml)):
        with wb.runner(m, "openvino", precision="fp32") as r:
            outs.append(next(iter(r.infer(feeds).values())))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(outs[1], outs[2], rtol=1e-4, atol=1e-4)


def test_backends_stays_callable_after_the_package_is_imported():
    import importlib

    import workbench

    importlib.import_module("workbench.runtimes.onnxruntime")  # importing a plugin shadows nothing
    assert "onnxruntime" in set(workbench.backends().index)

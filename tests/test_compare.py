"""wb.compare: real models on real runtimes; a planted error is flagged, identical models pass."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import workbench as wb
from workbench.analysis.compare import Check, compare_arrays, compare_outputs, output_kind, precision_of
from workbench.core.errors import WorkbenchError
from workbench.core.tolerances import tolerance


@pytest.fixture(scope="module")
def digits(fresh_workspace):
    return wb.load("digits-cnn")


def _perturbed(model, scale=None, value=None):
    """A copy of the digits CNN with one weight of its first conv changed."""
    import torch

    module = copy.deepcopy(model.native())
    conv = module.features[0]
    with torch.no_grad():
        if value is not None:
            conv.weight[0, 0, 1, 1] = value
        else:
            conv.weight.mul_(scale)
    feeds = model.example_inputs()
    return wb.load(module, example_inputs=torch.from_numpy(feeds["pixels"]), input_names=["pixels"],
                   output_names=["logits"])


def test_identical_models_pass_on_every_runtime(digits, digits_onnx):
    c = wb.compare(digits, [digits_onnx, (digits_onnx, "openvino"), (digits_onnx, "openvino", {"precision": "fp32"})])
    assert c, c.summary()
    assert len(c.candidates) == 3 and c.n_inputs == 3
    ort = c.result(0, "logits")
    assert ort.precision == "fp32" and ort.rel_l2 < 1e-5 and ort.cosine > 0.99999 and ort.top1 == 1.0
    # OpenVINO computes in bf16 by default here (AVX-512 BF16): judged by the bf16 tolerance
    ov_default, ov_fp32 = c.result(1), c.result(2)
    assert ov_default.precision in ("bf16", "fp32")
    assert ov_fp32.precision == "fp32" and ov_fp32.rel_l2 < 1e-5
    frame = c.to_frame()
    assert list(frame.index.names) == ["candidate", "output"] and len(frame) == 3
    assert frame["passed"].all()


def test_planted_error_is_flagged(digits):
    bad = _perturbed(digits, scale=1.05)
    c = wb.compare(digits, bad)
    assert not c
    r = c.result(0)
    assert not r.passed and "fp32 tolerance" in r.reason
    assert r.rel_l2 > tolerance("fp32").rel_l2
    assert len(c.failures()) == 1


def test_nan_output_fails(digits):
    bad = _perturbed(digits, value=float("nan"))
    c = wb.compare(digits, bad)
    assert not c
    r = c.result(0)
    assert r.nan_count > 0 and "NaN" in r.reason


def test_polygraphy_checks_and_per_output_tolerances(digits, digits_onnx):
    strict = wb.compare(digits, digits_onnx, atol=0.0, rtol=0.0)
    if strict.result(0).max_abs > 0:  # ORT and torch differ in the last bits: an exact check fails
        assert not strict
    loose = wb.compare(digits, digits_onnx, atol=1e-3, rtol=1e-3)
    assert loose
    per_output = wb.compare(digits, digits_onnx, tolerances={"logits": {"atol": 1e-3, "mode": "quantile"}})
    assert per_output and "quantile" in per_output.result(0).criterion
    with pytest.raises(WorkbenchError, match="check mode"):
        Check(mode="sometimes")


def test_check_modes_on_arrays():
    ref = np.linspace(1, 2, 1000, dtype=np.float32)
    cand = ref.copy()
    cand[0] += 1.0  # one outlier
    elemwise = compare_arrays(ref, cand, Check(atol=1e-3, rtol=1e-3))
    quantile = compare_arrays(ref, cand, Check(atol=1e-3, rtol=1e-3, mode="quantile", quantile=0.99))
    assert not elemwise.passed and quantile.passed
    assert elemwise.max_abs == pytest.approx(1.0)


def test_shape_dtype_inf_and_metrics():
    ref = {"y": np.ones((2, 3), np.float32)}
    assert not compare_outputs(ref, {"y": np.ones((3, 2), np.float32)})
    assert not compare_outputs(ref, {"y": np.ones((2, 3), np.int64)})
    inf = {"y": np.array([[1, np.inf, 1], [1, 1, 1]], np.float32)}
    assert not compare_outputs(ref, inf)
    assert compare_outputs(inf, {"y": inf["y"].copy()})  # the same Inf in both is agreement
    half = compare_outputs(ref, {"y": np.ones((2, 3), np.float16)})
    assert half and "float16" in half.result(0).notes[0]
    missing = compare_outputs({"a": ref["y"], "b": ref["y"]}, {"a": ref["y"], "c": ref["y"], "d": ref["y"]})
    assert not missing and "missing" in missing.result(0, "b").reason
    # top-k for logits, PSNR for images
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((64, 10)).astype(np.float32)
    noisy = logits + rng.standard_normal(logits.shape).astype(np.float32)
    r = compare_outputs({"logits": logits}, {"logits": noisy}, precision="int8").result(0)
    assert r.kind == "logits" and 0.0 < r.top1 < 1.0 and 0.0 < r.topk <= 1.0
    img = rng.random((1, 3, 16, 16)).astype(np.float32)
    p = compare_outputs({"image": img}, {"image": img + 0.01}).result(0)
    assert p.kind == "image" and 35 < p.psnr < 45  # 20·log10(range / 0.01) ≈ 40 dB
    assert output_kind("features", (1, 512, 7, 7), "float32") == "tensor"


def test_json_has_schema_and_no_nan(digits):
    c = compare_outputs({"y": np.ones(3, np.float32)}, {"y": np.array([1, np.nan, 1], np.float32)})
    doc = json.loads(c.to_json())
    assert doc["schema"] == "workbench.comparison" and doc["schema_version"] >= 1
    assert doc["passed"] is False and doc["results"][0]["nan_count"] == 1


def test_broken_candidate_is_reported_not_raised(digits, digits_onnx, tmp_path):
    c = wb.compare(digits, [digits_onnx, (digits_onnx, "no-such-runtime")])
    assert not c
    assert c.result(0).passed
    assert "could not" in c.result(1, 0).reason
    with pytest.raises(WorkbenchError, match="no candidates"):
        wb.compare(digits, [])


def test_precision_from_runner_and_lineage(digits_onnx):
    with wb.runner(digits_onnx, "openvino") as r:
        assert precision_of(digits_onnx, r) in ("bf16", "fp32")
    with wb.runner(digits_onnx, "openvino", precision="fp32") as r:
        assert precision_of(digits_onnx, r) == "fp32"
    assert precision_of(digits_onnx) == "fp32"


# -- layer-wise ------------------------------------------------------------------------------------


def _perturb_initializer(model, initializer, path, factor=1.05):
    """A copy of an ONNX model with one weight scaled (the task is kept for real inputs)."""
    import onnx
    from onnx import numpy_helper

    proto = copy.deepcopy(model.native())
    for init in proto.graph.initializer:
        if init.name == initializer:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(factor), init.name))
            break
    else:
        raise AssertionError(f"no initializer {initializer}")
    onnx.save(proto, str(path))
    loaded = wb.load(path)
    loaded.task = model.task
    return loaded


def test_layers_identical_model_passes(digits_onnx):
    report = wb.compare_layers(digits_onnx, ["onnxruntime", ("openvino", {"precision": "fp32"})])
    assert report, report.summary()
    assert report.first_divergent is None
    graph_nodes = [n.name for n in digits_onnx.native().graph.node]
    per_node = report.per_node("onnxruntime")
    assert set(per_node) == set(graph_nodes) and max(per_node.values()) < 1e-5
    frame = report.to_frame()
    assert set(frame["backend"]) == {"onnxruntime", "openvino (precision=fp32)"}
    assert frame[frame["node"] == "node_conv2d"]["module"].iloc[0].startswith("features.0")


def test_first_divergent_finds_the_perturbed_node(digits_onnx, tmp_path):
    conv = next(n for n in digits_onnx.native().graph.node if n.name == "node_conv2d_1")
    bad = _perturb_initializer(digits_onnx, conv.input[1], tmp_path / "bad.onnx")
    report = wb.compare_layers(bad, "onnxruntime", reference=digits_onnx)
    first = report.first_divergent
    assert not report and first is not None
    assert (first.node, first.op_type) == ("node_conv2d_1", "Conv")
    assert first.module.startswith("features.2") and "Conv2d" in first.module
    assert report.per_node()["node_conv2d"] < 1e-5  # upstream of the change: unchanged
    doc = json.loads(report.to_json())
    assert doc["schema"] == "workbench.layer_report" and doc["first_divergent"]["node"] == "node_conv2d_1"


def test_first_divergent_in_a_transformer(tmp_path, fresh_workspace):
    model = wb.export(wb.load("tiny-transformer"), "onnx")
    graph = model.native().graph
    weights = {i.name for i in graph.initializer}
    matmuls = [n for n in graph.node if n.op_type in ("MatMul", "Gemm") and any(i in weights for i in n.input)]
    target = matmuls[len(matmuls) // 2]  # one in the middle of the network
    users = [n for n in graph.node if any(i in weights and i in target.input for i in n.input)]
    assert users == [target]
    weight = next(i for i in target.input if i in weights)
    bad = _perturb_initializer(model, weight, tmp_path / "bad-transformer.onnx", factor=1.2)
    report = wb.compare_layers(bad, "onnxruntime", reference=model)
    assert report.first_divergent.node == target.name


def test_layers_run_in_bounded_chunks(digits_onnx):
    whole = wb.compare_layers(digits_onnx, "onnxruntime", nodes=["Conv", "Gemm"])
    chunked = wb.compare_layers(digits_onnx, "onnxruntime", nodes=["Conv", "Gemm"], chunk_bytes=1)
    assert whole.chunks == 1 and chunked.chunks == len(chunked.rows) == 4
    assert {r.op_type for r in chunked.rows} == {"Conv", "Gemm"}
    assert chunked.per_node() == pytest.approx(whole.per_node(), abs=1e-6)


def test_layers_quantized_tensors_against_float_twins(digits, digits_onnx, tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.data = iter(digits.calibration_data(n=16))

        def get_next(self):
            return next(self.data, None)

    path = tmp_path / "digits-int8.onnx"
    quantize_static(str(digits_onnx.path), str(path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    q = wb.load(path)
    q.task = digits.task
    report = wb.compare_layers(q, "onnxruntime", reference=digits_onnx)
    frame = report.to_frame()
    twins = frame[frame["tensor"] != frame["ref_tensor"]]
    assert len(twins) >= 4 and twins["tensor"].str.endswith("_DequantizeLinear_Output").all()
    assert (frame["precision"] == "int8").all()
    # INT8 on real digits: close to the float tensors, not equal
    assert frame["cosine"].min() > 0.95 and frame["rel_l2"].max() > 1e-4


def test_layers_bad_input(digits_onnx):
    with pytest.raises(WorkbenchError, match="no node outputs"):
        wb.compare_layers(digits_onnx, "onnxruntime", nodes=["NoSuchOp"])
    report = wb.compare_layers(digits_onnx, ["onnxruntime", "no-such-runtime"], nodes=["Conv"])
    assert not report and "no-such-runtime" in report.errors


def test_layers_of_openvino_irs(digits, digits_onnx):
    from workbench.analysis.autotune import quantize_int8, static_openvino

    ir = static_openvino(digits_onnx, batch=1)
    same = wb.compare_layers(ir, [("openvino", {"precision": "fp32"})], reference=digits_onnx)
    assert same and len(same.rows) >= 8
    graph_nodes = {n.name for n in digits_onnx.native().graph.node}
    assert set(same.per_node()) <= graph_nodes  # OpenVINO keeps the ONNX node names: overlays line up
    assert max(same.per_node().values()) < 1e-5

    nncf_ir = quantize_int8(digits_onnx, "openvino", digits.calibration_data(n=16))
    report = wb.compare_layers(nncf_ir, ["openvino", "onnxruntime"], reference=digits_onnx)
    frame = report.to_frame()
    fq = frame[frame["op_type"] == "FakeQuantize"]
    assert len(fq) >= 3 and {"relu", "relu_1"} <= set(fq["ref_tensor"])  # the float tensors they quantize
    assert set(report.per_node("openvino")) - graph_nodes <= {"pixels/fq_output_0"}  # the input's own FQ
    assert (frame["precision"] == "int8").all() and frame["cosine"].min() > 0.99
    assert "onnxruntime" in report.errors  # an IR runs on OpenVINO only: said, not crashed
    with pytest.raises(WorkbenchError, match="reference="):
        wb.compare_layers(nncf_ir, "openvino")


def test_one_precision_rule_for_lineage_and_runtime(digits_onnx):
    """core.precision.precision_of: what the steps recorded wins over the step's name; a quantize step that
    recorded nothing is int8; the runtime's own precision counts (validation and compare share it)."""
    from workbench.core.model import LineageEntry
    from workbench.core.precision import loosest, normalize_precision
    from workbench.core.precision import precision_of as core_precision_of

    assert core_precision_of is precision_of  # one rule, re-exported
    half = digits_onnx.derive("onnx", None, LineageEntry("quantize:onnxruntime", {"precision": "fp16"}, digits_onnx))
    assert precision_of(half) == "fp16"
    unsaid = digits_onnx.derive("onnx", None, LineageEntry("quantize:onnxruntime", {}, digits_onnx))
    assert precision_of(unsaid) == "int8"
    assert normalize_precision("<Type: 'bfloat16'>") == "bf16" and loosest("fp32", "bf16", None) == "bf16"
    with wb.runner(digits_onnx, "openvino", **wb.registry.get_runtime("openvino").reference_options()) as r:
        assert precision_of(half, r) == "fp16" and r.effective_precision() is not None


def test_feeds_are_renamed_and_batched_by_one_loader(digits_onnx):
    from workbench.core.data import batch_feeds, feeds_for, input_sets
    from workbench.core.errors import InputError

    sets = input_sets(digits_onnx, 2, batch=3)
    assert len(sets) == 2 and sets[0]["pixels"].shape[0] == 3
    renamed = feeds_for(digits_onnx, {"x": sets[0]["pixels"]})
    assert list(renamed) == ["pixels"]
    assert batch_feeds(digits_onnx, 5)["pixels"].shape[0] == 5
    with pytest.raises(InputError, match="inputs"):
        feeds_for(digits_onnx, {"a": sets[0]["pixels"], "b": sets[0]["pixels"]})

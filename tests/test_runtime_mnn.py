"""MNN: ONNX → .mnn with MNN's converter (fp32, fp16 weights, 8-bit weights), run by MNN's Python runtime,
validated like every step, described and drawn from MNN's reader, timed by wb.benchmark, and reported
unavailable (with the fix) where the package is missing."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.hidden_module import run_hidden

pytest.importorskip("MNN")

import workbench as wb  # noqa: E402
from workbench.core.errors import ModelFormatError  # noqa: E402
from workbench.core.graph import Graph  # noqa: E402


@pytest.fixture(scope="module")
def digits_mnn(fresh_workspace, digits_onnx):
    return wb.convert(digits_onnx, "mnn")


def test_digits_cnn_converts_validates_and_describes_itself(digits_mnn, tmp_path):
    v = digits_mnn.validation
    assert v.passed, v.summary()
    assert v.precision == "fp32" and v.backend == "mnn"
    assert v.figures["rel_l2"] < 1e-4 and v.metric_drop["accuracy"] == 0.0
    copy = tmp_path / "copy.mnn"
    shutil.copy(digits_mnn.path, copy)
    loaded = wb.load(copy)
    assert loaded.format == "mnn"
    assert loaded.input_names == ["pixels"] and loaded.output_names == ["logits"]
    assert loaded.inputs[0].shape[1:] == (1, 8, 8) and loaded.outputs[0].shape[-1] == 10
    assert loaded.metadata["ops"]["Convolution"] >= 3  # two convolutions, and the linear layers as 1x1 convolutions
    assert loaded.metadata["producer"].startswith("MNN ")
    graph = Graph.from_model(loaded)
    assert "Convolution" in {n.op for n in graph.nodes}
    assert graph.inputs == ["pixels"] and "logits" in {t for n in graph.nodes for t in n.outputs}
    with wb.runner(loaded, "mnn", precision="fp32") as r:  # batches of any size (the Module API reshapes)
        out = r.infer({"pixels": np.zeros((4, 1, 8, 8), np.float32)})["logits"]
    assert out.shape == (4, 10)
    report = wb.benchmark(loaded, backends=["mnn"], duration_s=0.3, warmup=2)
    assert report.results[0].error is None and report.results[0].latency.p50 > 0


def test_fp16_and_8bit_weights_shrink_the_file_within_their_tolerance(digits_mnn, digits_onnx):
    half = wb.convert(digits_onnx, "mnn", fp16_weights=True)
    eight = wb.convert(digits_onnx, "mnn", weight_bits=8)
    assert half.validation.passed and half.validation.precision == "fp16", half.validation.summary()
    assert eight.validation.passed and eight.validation.precision == "int8", eight.validation.summary()
    assert half.size_bytes < 0.6 * digits_mnn.size_bytes
    assert eight.size_bytes < 0.35 * digits_mnn.size_bytes
    assert 0 < eight.validation.figures["rel_l2"] < 0.05  # really quantized, still the same classifier


def test_a_transformer_with_integer_inputs_validates(fresh_workspace, zoo):
    m = wb.convert(zoo("tiny-transformer"), "mnn")  # torch: exported to ONNX on the way
    assert [e.step for e in m.lineage] == ["export:onnx", "convert:mnn"]
    assert m.validation.passed, m.validation.summary()
    assert m.inputs[0].dtype == "int64"  # MNN computes int32; the runner casts


def test_bad_files_are_explained(tmp_path):
    bad = tmp_path / "broken.mnn"
    bad.write_bytes(b"\xff" * 64)
    with pytest.raises(ModelFormatError, match="not an MNN model"):  # no FlatBuffers header
        wb.load(bad)


def test_without_mnn_it_says_why_and_everything_else_works(digits_mnn, digits_onnx):
    got = run_hidden(["MNN", "_tools"], f"""
        import json, workbench as wb
        from workbench.core.errors import WorkbenchError
        row = wb.backends().loc["mnn"]
        m = wb.load({str(digits_onnx.path)!r})
        with wb.runner(m, "onnxruntime") as r:
            shape = list(r.infer()["logits"].shape)
        errors = []
        for action in (lambda: wb.load({str(digits_mnn.path)!r}), lambda: wb.convert(m, "mnn")):
            try:
                action()
                errors.append(None)
            except WorkbenchError as err:
                errors.append(str(err))
        print(json.dumps({{"available": bool(row.available), "reason": row.reason, "fix": row.fix,
                          "shape": shape, "errors": errors}}))
    """)
    assert got["available"] is False
    assert got["reason"] == "MNN is not installed" and "[mnn]" in got["fix"]
    assert got["shape"] == [1, 10]
    assert all(e and "pip install 'deployment-workbench[mnn]'" in e for e in got["errors"]), got["errors"]


def test_a_damaged_model_is_refused_not_crashed_on(digits_mnn, tmp_path):
    data = bytearray(digits_mnn.path.read_bytes())
    for i in range(200, len(data), 997):  # the header still looks like FlatBuffers; the tables do not verify
        data[i] ^= 0xFF
    damaged = tmp_path / "damaged.mnn"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="does not verify"):
        wb.load(damaged)

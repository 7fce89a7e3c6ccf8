"""Conversions with the real tools (ONNX Runtime, onnxslim, OpenVINO, coremltools), validated."""

from __future__ import annotations

import importlib.util

import onnx
import pytest

import workbench as wb
from workbench.core.errors import StepError
from workbench.core.tolerances import tolerance


def _within(model: wb.Model, precision: str) -> None:
    v = model.validation
    assert v is not None and v.skipped is None, v
    tol = tolerance(precision)
    assert v.figures["rel_l2"] <= tol.rel_l2 and v.figures["cosine"] >= tol.cosine, v.summary()
    assert v, v.summary()


@pytest.mark.parametrize("level", ["basic", "all"])
def test_ort_optimized_records_level_in_file(digits_onnx, level):
    opt = wb.convert(digits_onnx, "onnx-optimized", level=level)
    props = {p.key: p.value for p in onnx.load_model(str(opt.path)).metadata_props}
    assert props["workbench.ort_graph_optimization_level"] == level
    assert opt.lineage[-1].options == {"level": level}
    _within(opt, "fp32")


def test_onnxslim_simplifies(zoo):
    x = wb.export(zoo("tiny-transformer"), "onnx", exporter="torchscript")
    slim = wb.convert(x, "onnx-simplified")
    assert slim.metadata["nodes_after"] <= slim.metadata["nodes_before"]
    _within(slim, "fp32")


def test_onnxsim_missing_says_how_to_install(digits_onnx):
    if importlib.util.find_spec("onnxsim") is not None:
        pytest.skip("onnxsim is installed here")
    with pytest.raises(wb.errors.BackendUnavailable, match="onnxsim is not installed"):
        wb.convert(digits_onnx, "onnxsim")


def test_openvino_from_onnx_and_from_torch(zoo, digits_onnx):
    from_onnx = wb.convert(digits_onnx, "openvino")
    from_torch = wb.convert(zoo("digits-cnn"), "openvino")
    for ir in (from_onnx, from_torch):
        assert ir.format == "openvino" and ir.path.with_suffix(".bin").exists()
        assert ir.input_names == ["pixels"]
        _within(ir, "fp32")
    assert from_torch.lineage[-1].parent is zoo("digits-cnn")


def test_openvino_fp16_weights_halve_the_size(zoo):
    m = zoo("tiny-transformer")
    full = wb.convert(m, "openvino")
    half = wb.convert(m, "openvino", fp16_weights=True)
    assert half.size_bytes < 0.6 * full.size_bytes
    assert half.metadata["precision"] == "fp16"
    _within(half, "fp16")


def test_coreml_converts_and_says_it_cannot_run_here(zoo):
    pytest.importorskip("coremltools")
    ml = wb.convert(zoo("digits-cnn"), "coreml", precision="fp16")
    assert ml.format == "coreml" and ml.path.suffix == ".mlpackage" and ml.path.is_dir()
    assert ml.metadata["precision"] == "fp16"
    assert ml.input_names == ["pixels"]
    assert ml.metadata["coreml_source"] == "exported_program"
    v = ml.validation
    assert v.skipped and "macOS" in v.skipped and not v
    # the transformers convert through torch.export (the TorchScript path fails in coremltools 9 + torch 2.13)
    tiny = wb.convert(zoo("tiny-transformer"), "coreml", validate=False)
    assert tiny.input_names == ["input_ids"] and tiny.output_names == ["logits"]


def test_wrong_input_format_is_explained(zoo, digits_onnx):
    with pytest.raises(StepError, match="takes a onnx model; this one is torch"):
        wb.convert(zoo("digits-cnn"), "onnx-optimized")
    with pytest.raises(StepError, match="Core ML's converter takes torch models"):
        wb.convert(digits_onnx, "coreml")
    with pytest.raises(StepError, match="unknown conversion target"):
        wb.convert(digits_onnx, "no-such-runtime")

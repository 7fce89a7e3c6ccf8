"""What the app suggests after a failed step (``workbench.steps.hints``), read from real models and the
validation records steps make: a transformer's INT8 failure gets the fixes that work on MiniLM (dynamic
INT8 for ONNX Runtime, NNCF's transformer type), a CNN's gets per-channel weights, a missing toolchain its
install line, an export failure the other exporter."""

from __future__ import annotations

import pytest

from workbench.core.errors import BackendUnavailable
from workbench.core.hardware import int8_sums_saturate
from workbench.steps import hints
from workbench.steps.validate import Validation


def _failed(model, metric_drop=None):
    model.validation = Validation("quantize:onnxruntime", "int8", figures={"passed": False, "cosine": 0.93},
                                  metric_drop=metric_drop)
    return model


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    pytest.importorskip("transformers")
    import workbench as wb
    from tests import hf_tiny

    return wb.load(hf_tiny.save("bert", tmp_path_factory.mktemp("bert") / "bert"))


def test_a_transformers_int8_failure_says_what_works(tiny_bert):
    assert hints.is_transformer(tiny_bert)
    result = _failed(tiny_bert, {"spearman": 0.05, "cosine_gap": -0.01})
    ort = hints.failure_hints("quantize", "onnxruntime", {"method": "static"}, result=result, model=tiny_bert)
    assert ort[0].options == {"method": "dynamic"} and "spearman dropped 0.0500" in ort[0].text
    assert "cosine_gap" not in ort[0].text  # a metric that got better is no loss
    assert any(h.options == {"smooth_quant": 0.5} for h in ort)
    assert any("accuracy_budget=0.01" in h.code for h in ort) and any("Quantization tab" in h.text for h in ort)
    nncf = hints.failure_hints("quantize", "nncf", {}, result=result, model=tiny_bert)
    assert nncf[0].options == {"transformer": True} and "wb.quantize(m, 'nncf', transformer=True)" == nncf[0].code
    # once tried, it is not suggested again
    again = hints.failure_hints("quantize", "nncf", {"transformer": True}, result=result, model=tiny_bert)
    assert all(h.options != {"transformer": True} for h in again)


def test_a_cnns_int8_failure_suggests_per_channel_weights(zoo):
    m = zoo("digits-cnn")
    assert not hints.is_transformer(m)
    out = hints.failure_hints("quantize", "onnxruntime", {"method": "static", "per_channel": False},
                              result=_failed(m, {"accuracy": 0.2}), model=m)
    assert out[0].options == {"per_channel": True} and "accuracy dropped 0.2000" in out[0].text
    assert "per_channel=True" in out[0].code
    assert any(h.options == {"calibrate": "percentile"} for h in out)
    # 7-bit weights are the default where ONNX Runtime's 8-bit sums saturate (x86 without VNNI): suggested
    # there when they were turned off, never elsewhere or when on
    assert all(h.options != {"reduce_range": True} for h in out)
    off = hints.failure_hints("quantize", "onnxruntime", {"method": "static", "reduce_range": False},
                              result=_failed(m, {"accuracy": 0.2}), model=m)
    assert any(h.options == {"reduce_range": True} for h in off) == int8_sums_saturate()


def test_int8_takes_7_bit_weights_where_8_bit_sums_saturate(monkeypatch):
    from workbench.core import hardware
    from workbench.steps.onnxruntime import DYNAMIC_OPTIONS, STATIC_OPTIONS

    assert STATIC_OPTIONS["reduce_range"] is DYNAMIC_OPTIONS["reduce_range"] is hardware.int8_sums_saturate()
    avx2 = frozenset({"avx", "avx2", "fma"})
    monkeypatch.setattr(hardware.platform, "machine", lambda: "x86_64")
    for flags, saturates in ((avx2, True), (avx2 | {"avx512_vnni"}, False), (avx2 | {"avx_vnni"}, False),
                             (avx2 | {"amx_int8"}, False), (frozenset({"neon", "asimd"}), False)):
        monkeypatch.setattr(hardware, "cpu_info", lambda flags=flags: ("cpu", flags))
        assert hardware.int8_sums_saturate() is saturates, flags


def test_errors_get_their_install_line_or_another_exporter():
    err = BackendUnavailable("TensorRT needs an NVIDIA GPU", "pip install tensorrt on a machine with one")
    problem, fix = hints.split_error(str(err))
    assert problem == "TensorRT needs an NVIDIA GPU" and fix.startswith("pip install")
    out = hints.failure_hints("convert", "tensorrt", {}, error=str(err), error_type="BackendUnavailable")
    assert "untick" in out[0].text and out[0].code == "pip install tensorrt on a machine with one"
    out = hints.failure_hints("convert", "x", {}, error=str(BackendUnavailable(
        "x is not installed", "pip install 'deployment-workbench[x]'; or use y")), error_type="BackendUnavailable")
    assert out[0].code == "pip install 'deployment-workbench[x]'"
    export = hints.failure_hints("export", "onnx", {}, error="export:onnx of m failed: Unsupported op")
    assert export[0].options == {"exporter": "torchscript"} and any(h.options == {"dynamic": False} for h in export)
    assert hints.failure_hints("export", "onnx", {}, error="x was cancelled", error_type="Cancelled") == []

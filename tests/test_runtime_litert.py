"""LiteRT (TFLite): torch → .tflite with LiteRT's torch converter (fp32), ai-edge-quantizer's dynamic-range and
full INT8 (calibrated) on it, run by LiteRT's interpreter, validated like every step, its graph read from the
flatbuffer, timed by wb.benchmark, and reported unavailable (with the fix) where the package is missing."""

from __future__ import annotations

import pytest

from tests.hidden_module import run_hidden

pytest.importorskip("ai_edge_litert.interpreter")
pytest.importorskip("litert_torch")

import workbench as wb  # noqa: E402
from workbench.core.errors import ModelFormatError  # noqa: E402
from workbench.core.graph import Graph  # noqa: E402


@pytest.fixture(scope="module")
def digits_tflite(fresh_workspace, zoo):
    return wb.convert(zoo("digits-cnn"), "litert")


def test_digits_cnn_converts_validates_and_shows_its_graph(digits_tflite, digits_onnx):
    v = digits_tflite.validation
    assert v.passed, v.summary()
    assert v.precision == "fp32" and v.backend == "litert"
    assert v.figures["rel_l2"] < 1e-4 and v.metric_drop["accuracy"] == 0.0
    copy = digits_tflite.path.with_name("renamed.bin")  # detected from content, not the name
    copy.write_bytes(digits_tflite.path.read_bytes())
    loaded = wb.load(copy)
    assert loaded.format == "tflite"
    assert [s.name for s in loaded.inputs] == ["pixels"] and loaded.inputs[0].shape == (1, 1, 8, 8)
    assert [s.name for s in loaded.outputs] == ["logits"]
    assert "CONV_2D" in loaded.metadata["op_types"] and "CONV_2D" in loaded.describe()
    graph = Graph.from_model(loaded)
    assert len(graph.nodes) == loaded.metadata["operators"]
    assert graph.inputs == ["pixels"] and graph.outputs == ["logits"]
    assert graph.producer["logits"] == graph.nodes[-1].name
    assert {n.scope[0] for n in graph.nodes if n.scope} == {"features", "classifier"}  # the torch modules
    macs = sum(n.macs for n in graph.nodes)  # TFLite's OHWI / depthwise weights counted as ONNX's are
    assert macs > 0 and macs == sum(n.macs for n in Graph.from_model(digits_onnx).nodes)
    conv = next(n for n in graph.nodes if n.op == "CONV_2D")
    weight = graph.weights[conv.weights[0]]
    assert weight.array().shape == weight.shape and weight.array().dtype.name == "float32"
    assert sum(w.numel for w in graph.weights.values() if w.is_param) >= 1000


@pytest.mark.parametrize("method", ["dynamic", "static"])
def test_int8_models_validate_within_int8_tolerance(digits_tflite, method):
    q = wb.quantize(digits_tflite, "litert", method)
    v = q.validation
    assert v.passed, v.summary()
    assert v.precision == "int8" and 0 < v.figures["rel_l2"] < 0.2
    assert v.metric_drop["accuracy"] <= 0.02
    assert q.size_bytes < 0.5 * digits_tflite.size_bytes
    assert q.inputs[0].dtype == "float32"  # the runner converts the int8 interface
    if method == "static":
        assert q.lineage[-1].options["calibration"]["n"] > 0
        assert any("quantized inputs/outputs" in n for n in q.metadata["notes"])
    assert all(n.precision == "quantized" for n in Graph.from_model(q).nodes if n.op in ("CONV_2D", "FULLY_CONNECTED"))


def test_runner_and_benchmark(digits_tflite, zoo):
    with wb.runner(zoo("digits-cnn"), "tflite") as r:  # a torch model, converted on the way (cached); an alias
        assert r.infer()["logits"].shape == (1, 10)
    report = wb.benchmark(digits_tflite, backends=["litert"], duration_s=0.3, warmup=3)
    assert report.results[0].error is None and report.results[0].latency.p50 > 0
    async_report = wb.benchmark(digits_tflite, backends=["litert"], duration_s=0.3, mode="async", streams=2)
    assert async_report.results[0].error is None and async_report.results[0].throughput > 0
    assert wb.backends().loc["litert", "available"]
    from workbench.ui.app import choices_for

    labels = [c.label for c in choices_for("torch")]
    assert "LiteRT (.tflite)" in labels and "LiteRT INT8" in labels


def test_a_file_that_is_not_tflite_is_explained(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFormatError, match="TFL3"):
        wb.load(bad)


def test_without_litert_it_says_why_and_everything_else_works(digits_tflite, digits_onnx):
    got = run_hidden(["ai_edge_litert", "litert_torch"], f"""
        import json, workbench as wb
        from workbench.core.errors import WorkbenchError
        row = wb.backends().loc["litert"]
        with wb.runner(wb.load({str(digits_onnx.path)!r}), "onnxruntime") as r:
            shape = list(r.infer()["logits"].shape)
        try:
            wb.load({str(digits_tflite.path)!r})
            load_error = None
        except WorkbenchError as err:
            load_error = str(err)
        print(json.dumps({{"available": bool(row.available), "reason": row.reason, "fix": row.fix,
                          "shape": shape, "load_error": load_error}}))
    """)
    assert got["available"] is False
    assert "not installed" in got["reason"] and "litert" in got["fix"]
    assert got["shape"] == [1, 10]
    assert got["load_error"] and "pip install" in got["load_error"]

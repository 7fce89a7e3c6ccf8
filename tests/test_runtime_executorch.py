"""ExecuTorch: torch → .pte (XNNPACK; fp32, PT2E INT8 with calibration), run by ExecuTorch's Python runtime,
validated like every step, profiled through ETDump, timed by wb.benchmark, and reported unavailable (with
the fix) where the package is missing."""

from __future__ import annotations

import pytest

from tests.hidden_module import run_hidden

pytest.importorskip("executorch.runtime")

import workbench as wb  # noqa: E402
from workbench.core.errors import ModelFormatError  # noqa: E402
from workbench.core.graph import Graph  # noqa: E402


@pytest.fixture(scope="module")
def digits_pte(fresh_workspace, zoo):
    return wb.convert(zoo("digits-cnn"), "executorch")


def test_digits_cnn_fp32_program_validates_and_describes_itself(digits_pte, digits_onnx):
    v = digits_pte.validation
    assert v.passed, v.summary()
    assert v.precision == "fp32" and v.backend == "executorch"
    assert v.figures["rel_l2"] < 1e-4 and v.metric_drop["accuracy"] == 0.0
    # detected from its content: the file reloads as ExecuTorch whatever its name
    copy = digits_pte.path.with_name("renamed.bin")
    copy.write_bytes(digits_pte.path.read_bytes())
    loaded = wb.load(copy)
    assert loaded.format == "executorch"
    assert [s.name for s in loaded.inputs] == ["pixels"] and loaded.inputs[0].shape == (1, 1, 8, 8)
    assert [s.name for s in loaded.outputs] == ["logits"]
    assert loaded.metadata["delegates"] == ["XnnpackBackend"]
    assert "XnnpackBackend" in loaded.describe()
    graph = Graph.from_model(loaded)  # the XNNPACK delegate's own operators, read from its payload
    ops = {n.op for n in graph.nodes}
    assert {"Conv2d", "DepthwiseConv2d", "FullyConnected", "MaxPooling2d"} <= ops, ops
    assert graph.inputs == ["pixels"] and graph.outputs == ["logits"]
    assert graph.producer["logits"] == graph.nodes[-1].name and "pixels" in graph.nodes[0].inputs
    assert sum(n.macs for n in graph.nodes) == sum(n.macs for n in Graph.from_model(digits_onnx).nodes)


def test_int8_program_validates_within_int8_tolerance(fresh_workspace, zoo):
    q = wb.quantize(zoo("digits-cnn"), "executorch")  # pt2e with the model's calibration digits
    v = q.validation
    assert v.passed, v.summary()
    assert v.precision == "int8"
    assert q.lineage[-1].options["calibration"]["n"] > 0
    assert 0 < v.figures["rel_l2"] < 0.2  # really quantized, and still the same classifier
    assert v.metric_drop["accuracy"] <= 0.02
    assert wb.load(q.path).metadata["precision"] == "int8"
    assert q.size_bytes < 0.5 * wb.convert(zoo("digits-cnn"), "executorch").size_bytes


def test_portable_program_shows_its_kernels_in_the_graph(fresh_workspace, zoo):
    pte = wb.convert(zoo("digits-cnn"), "executorch", delegate="portable")
    assert pte.validation.passed, pte.validation.summary()
    graph = Graph.from_model(pte)
    ops = {n.op for n in graph.nodes}
    assert any("convolution" in op for op in ops) and any("addmm" in op or "linear" in op or "mm" in op
                                                         for op in ops), ops
    assert graph.weights  # the constants stored in the program
    produced = {t for n in graph.nodes for t in n.outputs}
    assert "logits" in produced


def test_runner_benchmark_and_etdump_profile(digits_pte, zoo):
    with wb.runner(zoo("digits-cnn"), "executorch") as r:  # a torch model: converted on the way (cached)
        out = r.infer()
    assert out["logits"].shape == (1, 10)
    report = wb.benchmark(digits_pte, backends=["executorch"], duration_s=0.5, warmup=3)
    assert report.results[0].latency.p50 > 0 and report.results[0].error is None
    profile = wb.profile_nodes(digits_pte, ["executorch"], runs=3, warmup=1)
    kernels = {row.kernel for row in profile.rows}
    assert any(k.startswith("Convolution") for k in kernels), kernels  # XNNPACK's own operator names
    assert profile.total_ms("executorch") > 0
    assert wb.backends().loc["executorch", "available"]
    from workbench.ui.app import choices_for

    labels = [c.label for c in choices_for("torch")]  # the app's deploy choices come from the registry
    assert "ExecuTorch (XNNPACK)" in labels and "ExecuTorch XNNPACK INT8" in labels


def test_a_file_that_is_not_a_program_is_explained(tmp_path):
    bad = tmp_path / "broken.pte"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFormatError, match="ExecuTorch"):
        wb.load(bad)


def test_without_executorch_it_says_why_and_everything_else_works(digits_pte, digits_onnx):
    got = run_hidden(["executorch"], f"""
        import json, workbench as wb
        from workbench.core.errors import WorkbenchError
        row = wb.backends().loc["executorch"]
        m = wb.load({str(digits_onnx.path)!r})
        with wb.runner(m, "onnxruntime") as r:
            shape = list(r.infer()["logits"].shape)
        try:
            wb.load({str(digits_pte.path)!r})
            load_error = None
        except WorkbenchError as err:
            load_error = str(err)
        print(json.dumps({{"available": bool(row.available), "reason": row.reason, "fix": row.fix,
                          "shape": shape, "load_error": load_error}}))
    """)
    assert got["available"] is False
    assert "not installed" in got["reason"] and "executorch" in got["fix"]
    assert got["shape"] == [1, 10]
    assert got["load_error"] and "pip install" in got["load_error"]

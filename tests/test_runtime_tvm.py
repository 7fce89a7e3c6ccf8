"""Apache TVM: ONNX / ExportedProgram → Relax → a library compiled for this CPU, run by TVM's Relax VM,
validated like every step, described and drawn from what was recorded at compile time, loaded only when
the workbench compiled it (or with trust=True), timed by wb.benchmark, and reported unavailable (with the
fix) where the package is missing."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.hidden_module import run_hidden

pytest.importorskip("tvm")

import workbench as wb  # noqa: E402
from workbench.core.errors import ModelFormatError, StepError, UntrustedPickleError  # noqa: E402
from workbench.core.graph import Graph  # noqa: E402


@pytest.fixture(scope="module")
def digits_tvm(fresh_workspace, digits_onnx):
    return wb.convert(digits_onnx, "tvm")


def test_digits_cnn_compiles_validates_and_describes_itself(digits_tvm):
    v = digits_tvm.validation
    assert v.passed, v.summary()
    assert v.precision == "fp32" and v.backend == "tvm"
    assert v.figures["rel_l2"] < 1e-4 and v.metric_drop["accuracy"] == 0.0
    assert (digits_tvm.path / "lib.so").is_file()
    meta = digits_tvm.metadata
    assert '"kind":"llvm"' in meta["target"] and meta["schedule"] == "parallel" and meta["tuning_trials"] == 0
    assert meta["ops"]["nn.conv2d"] == 2
    assert digits_tvm.inputs[0].shape == ("batch", 1, 8, 8)  # the ONNX's dynamic batch stays dynamic
    graph = Graph.from_model(digits_tvm)
    assert [n.op for n in graph.nodes].count("nn.conv2d") == 2
    assert graph.inputs == ["pixels"] and len(graph.weights) >= 4
    with wb.runner(digits_tvm, "tvm") as r:
        out = r.infer({"pixels": np.zeros((3, 1, 8, 8), np.float32)})["logits"]
    assert out.shape == (3, 10)
    report = wb.benchmark(digits_tvm, backends=["tvm"], duration_s=0.3, warmup=2)
    assert report.results[0].error is None and report.results[0].latency.p50 > 0


def test_a_library_from_elsewhere_runs_only_with_trust(digits_tvm, tmp_path):
    copy = tmp_path / "shared.tvm"
    shutil.copytree(digits_tvm.path, copy)
    loaded = wb.load(copy)  # described from its JSON: nothing native is loaded
    assert loaded.format == "tvm" and loaded.output_names == ["logits"]
    with pytest.raises(UntrustedPickleError, match="native code"):
        wb.runner(loaded, "tvm").prepare()
    with wb.runner(wb.load(copy, trust=True), "tvm") as r:
        assert r.infer()["logits"].shape == (1, 10)


def test_a_transformer_validates(fresh_workspace, zoo):
    m = wb.convert(zoo("tiny-transformer"), "tvm")  # torch: exported to ONNX on the way
    assert [e.step for e in m.lineage] == ["export:onnx", "convert:tvm"]
    assert m.validation.passed, m.validation.summary()
    assert m.metadata["ops"].get("matmul", 0) >= 4


def test_bad_options_and_folders_are_explained(digits_onnx, tmp_path):
    with pytest.raises(StepError, match="unknown TVM schedule"):
        wb.convert(digits_onnx, "tvm", schedule="fastest")
    with pytest.raises(StepError, match="tune_trials"):
        wb.convert(digits_onnx, "tvm", tune_trials=-1)
    with pytest.raises(StepError, match="give it as JSON"):
        wb.convert(digits_onnx, "tvm", llvm_target="llvm -mcpu=skylake")
    fake = tmp_path / "fake.tvm"
    fake.mkdir()
    (fake / "tvm_model.json").write_text('{"kind": "something else"}')
    (fake / "lib.so").write_bytes(b"\x7fELF")
    with pytest.raises(ModelFormatError, match="not a workbench TVM description"):
        wb.load(fake)


def test_without_tvm_it_says_why_and_everything_else_works(digits_tvm, digits_onnx):
    got = run_hidden(["tvm"], f"""
        import json, workbench as wb
        from workbench.core.errors import WorkbenchError
        row = wb.backends().loc["tvm"]
        m = wb.load({str(digits_onnx.path)!r})
        with wb.runner(m, "onnxruntime") as r:
            shape = list(r.infer()["logits"].shape)
        ops = wb.load({str(digits_tvm.path)!r}).metadata["ops"]  # described without TVM
        try:
            wb.convert(m, "tvm")
            step_error = None
        except WorkbenchError as err:
            step_error = str(err)
        print(json.dumps({{"available": bool(row.available), "reason": row.reason, "fix": row.fix,
                          "shape": shape, "ops": ops, "step_error": step_error}}))
    """)
    assert got["available"] is False
    assert got["reason"] == "Apache TVM is not installed" and "[tvm]" in got["fix"]
    assert got["shape"] == [1, 10] and got["ops"]["nn.conv2d"] == 2
    assert got["step_error"] and "pip install 'deployment-workbench[tvm]'" in got["step_error"]

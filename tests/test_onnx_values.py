"""ONNX models with strings, sequences, optionals and float8 go through ``wb.runner`` and ``wb.compare`` like
plain ONNX Runtime runs them. A representative sample of ONNX's own backend node cases (generated from
``onnx.backend.test.case``); ``benchmarks/onnx_backend_parity.py`` runs all of them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.core.errors import WorkbenchError

SAMPLE = ("test_string_concat", "test_string_split_basic", "test_equal_string", "test_regex_full_match_basic",
          "test_strnormalizer_nostopwords_nochangecase", "test_ai_onnx_ml_label_encoder_string_int",
          "test_sequence_insert_at_back", "test_sequence_map_add_2_sequences", "test_split_to_sequence_1",
          "test_identity_sequence", "test_identity_opt", "test_if_opt", "test_loop16_seq_none", "test_add",
          "test_cast_FLOAT_to_FLOAT8E4M3FN", "test_cast_FLOAT8E4M3FN_to_FLOAT")


@pytest.fixture(scope="module")
def parity():
    spec = importlib.util.spec_from_file_location(
        "onnx_backend_parity", Path(__file__).resolve().parents[1] / "benchmarks" / "onnx_backend_parity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sample_cases(parity):
    found = {c.name: c for c in parity.cases() if c.name in SAMPLE}
    assert len(found) >= len(SAMPLE) - 2, sorted(set(SAMPLE) - set(found))  # the onnx package renames rarely
    return list(found.values())


def test_workbench_passes_every_sample_case_plain_ort_passes(parity, sample_cases):
    report = parity.compare(sample_cases, [("onnxruntime", parity.run_plain_ort, parity.run_workbench)])
    ort = report["onnxruntime"]
    assert ort["plain"] >= 12  # strings, sequences and optionals among them
    assert ort["lost"] == {}, ort["lost"]


def test_workbench_passes_every_sample_case_plain_openvino_passes(parity, sample_cases):
    pytest.importorskip("openvino")
    report = parity.compare(sample_cases, [("openvino", parity.run_plain_openvino,
                                            lambda path, case: parity.run_workbench(path, case, "openvino"))])
    assert report["openvino"]["lost"] == {}, report["openvino"]["lost"]


def _string_model(tmp_path: Path) -> wb.Model:
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("StringConcat", ["a", "b"], ["y"]),
                           helper.make_node("SequenceConstruct", ["a", "b"], ["seq"])], "g",
                          [helper.make_tensor_value_info("a", TensorProto.STRING, ["n"]),
                           helper.make_tensor_value_info("b", TensorProto.STRING, ["n"])],
                          [helper.make_tensor_value_info("y", TensorProto.STRING, ["n"]),
                           helper.make_tensor_sequence_value_info("seq", TensorProto.STRING, None)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)], ir_version=10), str(tmp_path / "s.onnx"))
    return wb.load(tmp_path / "s.onnx")


def test_string_and_sequence_specs_example_inputs_and_compare(tmp_path):
    m = _string_model(tmp_path)
    assert [s.dtype for s in m.inputs] == ["string", "string"]
    assert [s.dtype for s in m.outputs] == ["string", "sequence(string)"]
    r = wb.runner(m, "onnxruntime")
    feeds = m.example_inputs(batch=3)  # made-up strings
    out = r.infer(feeds)
    assert list(out["y"]) == [a + b for a, b in zip(feeds["a"], feeds["b"], strict=True)]
    assert isinstance(out["seq"], list) and len(out["seq"]) == 2
    assert r.infer({"a": np.array(["x"]), "b": np.array(["y"], dtype=object)})["y"].tolist() == ["xy"]

    from workbench.core.metrics import compare_outputs

    same = compare_outputs(out, out)
    assert same.passed
    changed = {"y": out["y"].copy(), "seq": [out["seq"][0], out["seq"][1][:1]]}
    changed["y"][0] = "nope"
    comp = compare_outputs(out, changed)
    y, seq = comp.result(0, "y"), comp.result(0, "seq")
    assert not y.passed and "1 of 3 values differ" in y.reason and "'nope'" in y.reason
    assert not seq.passed and "structure" in seq.reason


def test_wrong_kind_of_value_is_a_clear_error(tmp_path):
    m = _string_model(tmp_path)
    r = wb.runner(m, "onnxruntime")
    with pytest.raises(WorkbenchError, match="expects strings"):
        r.infer({"a": np.ones(2, np.float32), "b": np.array(["x", "y"])})


def test_optional_and_sequence_inputs_take_none_and_lists(parity, sample_cases):
    case = next(c for c in sample_cases if c.name == "test_loop16_seq_none")
    import onnx

    path = Path(__import__("tempfile").mkdtemp()) / "loop.onnx"
    onnx.save_model(case.model, str(path))
    m = wb.load(path)
    optional = next(s for s in m.inputs if s.kind == "optional")
    assert optional.dtype.startswith("optional(sequence(")
    with pytest.raises(WorkbenchError, match="sequence"):
        wb.runner(m, "onnxruntime").infer({s.name: (np.ones(3, np.float32) if s is optional else v)
                                           for s, v in zip(m.inputs, case.data_sets[0][0], strict=True)})

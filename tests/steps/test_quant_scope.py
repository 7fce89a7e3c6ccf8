"""Which nodes static INT8 touches, read from the graph (``workbench.steps.quant_scope``).

The graph below is T5's relative-position bias in miniature: positions from the input's shape, a float
``Log`` of them that is ``-inf`` at 0 (a branch ``Where`` then discards), cast back to indices into a
bias table. Quantizing that arithmetic with every op type gave a NaN zero point and an index of -9.2e18."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import workbench as wb
from workbench.steps import quant_scope


def _bucket_model(path) -> None:
    f = helper.make_node
    nodes = [
        f("Shape", ["x"], ["shape"], name="shape"),
        f("Gather", ["shape", "zero"], ["n"], name="seq_len", axis=0),
        f("Range", ["zero", "n", "one"], ["pos"], name="positions"),
        f("Cast", ["pos"], ["posf"], name="to_float", to=TensorProto.FLOAT),
        f("Log", ["posf"], ["logp"], name="log"),  # -inf at position 0
        f("Mul", ["logp", "two"], ["scaled"], name="scale"),
        f("Cast", ["scaled"], ["big"], name="to_index", to=TensorProto.INT64),
        f("Less", ["pos", "one"], ["small"], name="is_small"),
        f("Where", ["small", "pos", "big"], ["idx0"], name="pick"),
        f("Min", ["idx0", "last"], ["idx"], name="clamp"),
        f("Gather", ["bias_table", "idx"], ["bias"], name="bias_lookup", axis=0),
        f("MatMul", ["x", "w"], ["h"], name="proj"),
        f("Add", ["h", "bias"], ["y"], name="add_bias"),
    ]
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in
             {"zero": 0, "one": 1, "last": 7}.items()]
    inits += [numpy_helper.from_array(np.array(2.0, np.float32), "two"),
              numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "bias_table"),
              numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "w")]
    graph = helper.make_graph(nodes, "buckets", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))


def test_index_arithmetic_is_found_and_kept_float(tmp_path):
    _bucket_model(tmp_path / "buckets.onnx")
    graph = onnx.load_model(str(tmp_path / "buckets.onnx")).graph
    index = quant_scope.index_nodes(graph)
    assert set(index) == {"seq_len", "positions", "to_float", "log", "scale", "to_index", "is_small", "pick", "clamp"}
    assert quant_scope.default_op_types(graph) is None  # no attention, no layer norm: every op type
    m = wb.load(tmp_path / "buckets.onnx")
    calibration = [{"x": np.random.default_rng(i).standard_normal((6, 4)).astype(np.float32)} for i in range(4)]
    q = wb.quantize(m, "onnxruntime", "static", calibration=calibration, preprocess=False, isolate=False, cache=False)
    assert q.validation.passed, q.validation.summary()
    assert q.metadata["nodes_kept_float_by_scope"] == len(index)
    quantized = onnx.load_model(str(q.path)).graph
    assert any(n.op_type == "QuantizeLinear" for n in quantized.node)  # the MatMul is INT8
    dq_inputs = {i for n in quantized.node if n.op_type == "QuantizeLinear" for i in n.input}
    assert not dq_inputs & {"logp", "scaled", "posf"}  # the index arithmetic is not


@pytest.mark.parametrize("op, transformer", [("Softmax", True), ("LayerNormalization", True), ("Relu", False)])
def test_transformers_default_to_their_weight_ops(op, transformer):
    node = helper.make_node(op, ["x"] + (["s", "b"] if op == "LayerNormalization" else []), ["y"], name="n")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    assert quant_scope.is_transformer(graph) is transformer
    assert quant_scope.default_op_types(graph) == (list(quant_scope.WEIGHT_OPS) if transformer else None)

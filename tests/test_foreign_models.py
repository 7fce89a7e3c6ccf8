"""Models made elsewhere: foreign TorchScript, OpenVINO's whole error, the validation headline, ONNX
subgraphs and scalar constants in the graph."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from workbench.core.errors import WorkbenchError


# -- TorchScript saved by someone else ---------------------------------------------------------------
class _Net:
    @staticmethod
    def make():
        import torch

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 3)

            def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                return self.conv(x) + y.float().sum()

        return Net().eval()


def test_traced_torchscript_loads_with_its_traced_shapes(tmp_path):
    import torch

    traced = torch.jit.trace(_Net.make(), (torch.randn(2, 3, 8, 8), torch.ones(2, 5, dtype=torch.int64)))
    torch.jit.save(traced, str(tmp_path / "t.pt"))  # plain torch.jit.save: no workbench specs inside
    m = wb.load(tmp_path / "t.pt")
    assert [str(s) for s in m.inputs] == ["x: float32[batch, 3, 8, 8]", "y: int64[batch, 5]"]
    assert m.example_inputs()["y"].dtype == np.int64 and m.example_inputs()["y"].shape == (2, 5)
    out = wb.runner(m, "torchscript").infer()
    assert next(iter(out.values())).shape == (2, 4, 6, 6)


def test_scripted_torchscript_takes_any_shape_then_records_it(tmp_path):
    import torch

    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 3)), str(tmp_path / "s.pt"))
    m = wb.load(tmp_path / "s.pt")
    assert not m.inputs[0].rank_known  # unknown, not ()
    r = wb.runner(m, "torchscript")
    assert r.infer({"input": np.ones((4, 2), np.float32)})["output"].shape == (4, 3)
    assert m.inputs[0].shape == ("batch", 2)  # recorded by the first run
    with pytest.raises(WorkbenchError, match="dimensions"):
        r.infer({"input": np.ones((2,), np.float32)})


# -- OpenVINO's whole message ---------------------------------------------------------------------
def test_openvino_error_names_the_unsupported_operator(tmp_path):
    pytest.importorskip("openvino")
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Mystery", ["x"], ["y"], domain="com.example")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)]),
              str(tmp_path / "m.onnx"))
    m = wb.load(tmp_path / "m.onnx")
    with pytest.raises(WorkbenchError) as info:
        wb.runner(m, "openvino").prepare()
    err = info.value
    assert "com.example.Mystery" in err.problem and "core.cpp" not in err.problem
    assert "com.example.Mystery" in err.fix and "wb.export(m, 'onnx')" not in err.fix  # it is ONNX already


# -- validation headline ------------------------------------------------------------------------------
def test_headline_takes_each_measure_from_its_worst_output():
    from workbench.core.metrics import compare_outputs, worst_per_measure

    rng = np.random.default_rng(0)
    small = rng.standard_normal((4, 8)).astype(np.float32)  # tiny values: a large rel_l2 from a small error
    big = 100 * rng.standard_normal((4, 8)).astype(np.float32)
    ref = {"pooled": small * 1e-3, "hidden": big}
    cand = {"pooled": small * 1e-3 + 1e-4, "hidden": big + 2.6e-2}
    comp = compare_outputs(ref, cand, precision="int8")
    worst = worst_per_measure(comp.results)
    assert worst["rel_l2_output"] == "pooled" and worst["max_abs_output"] == "hidden"
    assert worst["max_abs"] == pytest.approx(2.6e-2, rel=1e-2)
    assert "max_abs=2.60e-02 (hidden)" in comp.summary()

    from workbench.steps.validate import Validation

    v = Validation("quantize:x", "int8", figures={"passed": True, **worst})
    assert "max_abs=2.60e-02 (hidden)" in v.summary()  # named: not the output the rel_l2 comes from


# -- the ONNX graph -------------------------------------------------------------------------------
def _if_model():
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper

    then = h.make_graph([h.make_node("Add", ["x", "w"], ["a"], name="Add_0"), h.make_node("Relu", ["a"], ["t"])],
                        "then", [], [h.make_tensor_value_info("t", T.FLOAT, [2, 4])])
    other = h.make_graph([h.make_node("Sub", ["x", "w"], ["t2"], name="Add_0")], "else", [],
                         [h.make_tensor_value_info("t2", T.FLOAT, [2, 4])])
    nodes = [h.make_node("Constant", [], ["eps"], value=h.make_tensor("v", T.FLOAT, [], [1e-5])),
             h.make_node("Add", ["x", "eps"], ["x2"], name="add_eps"),
             h.make_node("ReduceSum", ["x2"], ["s"], keepdims=0, name="sum"),
             h.make_node("Greater", ["s", "eps"], ["c"], name="gt"),
             h.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other, name="if")]
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, [2, 4])],
                     [h.make_tensor_value_info("y", T.FLOAT, [2, 4])],
                     [numpy_helper.from_array(np.ones((2, 4), np.float32), "w")])
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    return model


def test_graph_counts_subgraph_nodes_and_not_scalar_constants():
    from workbench.formats.onnx import read_graph

    g = read_graph(_if_model())
    ops = sorted(n.op for n in g.nodes)
    assert ops == ["Add", "Add", "Greater", "If", "ReduceSum", "Relu", "Sub"]  # both branches inside If
    assert {n.scope for n in g.nodes if n.op in ("Relu", "Sub")} == {("if/then_branch",), ("if/else_branch",)}
    assert len({n.name for n in g.nodes}) == len(g.nodes)  # the branches' two "Add_0" stay apart
    assert not g.weights["eps"].is_param and g.weights["w"].is_param
    assert g.num_params == 8

"""Per-node latency from ONNX Runtime's profiler and OpenVINO's performance counters, as one table."""

from __future__ import annotations

import json

import pytest

import workbench as wb
from workbench.analysis.profile import profile_nodes
from workbench.core.errors import WorkbenchError


def test_both_runtimes_in_one_table(digits_onnx):
    prof = profile_nodes(digits_onnx, ["onnxruntime", "openvino"], runs=3, warmup=1)
    frame = prof.to_frame()
    assert set(frame["backend"]) == {"onnxruntime", "openvino"}
    graph_nodes = {n.name: n.op_type for n in digits_onnx.native().graph.node}
    for backend in prof.backends:
        rows = frame[frame["backend"] == backend]
        assert (rows["time_ms"] >= 0).all() and rows["time_ms"].sum() > 0
        assert rows["share"].sum() == pytest.approx(1.0)
        per_node = prof.per_node(backend)
        assert set(per_node) <= set(graph_nodes)  # what the graph view can colour
        everything = prof.per_node(backend, runtime_kernels=True)
        assert sum(everything.values()) == pytest.approx(prof.total_ms(backend))
        assert sum(per_node.values()) == pytest.approx(rows[rows["in_graph"]]["time_ms"].sum())
        # the convolutions (fused with their ReLU or not) map back to the graph's Conv nodes
        conv_nodes = {n for n, op in graph_nodes.items() if op == "Conv"}
        assert conv_nodes <= set(per_node), (backend, sorted(per_node))
        mapped = rows[rows["in_graph"]]
        assert set(mapped["node"]) <= set(graph_nodes)
    by_op = prof.by_op()
    assert ("onnxruntime", "Conv") in by_op.index and ("openvino", "Convolution") in by_op.index
    assert by_op.groupby(level=0)["share"].sum().to_numpy() == pytest.approx([1.0, 1.0])
    doc = json.loads(prof.to_json())
    assert doc["schema"] == "workbench.node_profile" and len(doc["rows"]) == len(frame)


def test_torch_model_is_profiled_as_one_onnx_graph():
    m = wb.load("tiny-transformer")
    prof = profile_nodes(m, ["onnxruntime", "openvino"], runs=2, warmup=1)
    ort, ov = prof.per_node("onnxruntime"), prof.per_node("openvino")
    # both runtimes' times land on nodes of the one ONNX export, the linear layers' among them. OpenVINO's
    # fused kernels carry the name of the fused group's last node, which differs by CPU: a FullyConnected
    # (MatMul + bias Add) is named after the Add; without bf16 the attention's MatMuls fuse into one kernel
    nodes = wb.export(m, "onnx").native().graph.node
    matmul_outputs = {o for n in nodes if n.op_type in ("MatMul", "Gemm") for o in n.output}
    linear = {n.name for n in nodes if n.op_type in ("MatMul", "Gemm") or set(n.input) & matmul_outputs}
    shared = set(ort) & set(ov)
    assert shared <= {n.name for n in nodes}, sorted(shared)[:10]
    assert shared & linear, (sorted(shared)[:10], sorted(linear)[:10])


def test_bad_backend():
    with pytest.raises(WorkbenchError, match="profiler"):
        profile_nodes("digits-cnn", "torch_eager")


def test_profilers_come_from_the_registry(digits_onnx):
    from workbench.analysis.profile import profilers

    assert {"onnxruntime", "openvino"} <= set(profilers()) == set(wb.registry.runtimes_with("profile_nodes"))
    prof = profile_nodes(digits_onnx, runs=1, warmup=0)  # default: every available profiler that takes ONNX
    assert set(prof.backends) == {b for b in profilers() if wb.registry.get_runtime(b).availability()
                                  and wb.registry.reachable("onnx", b)}
    with pytest.raises(WorkbenchError, match="Model"):
        profile_nodes("digits-cnn", "onnxruntime")  # names are loaded by the facade (wb.profile_nodes)

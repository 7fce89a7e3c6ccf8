"""The graph model: counts, shapes, parameters and MACs on known models, hierarchy, diff, overlays."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from workbench.analysis.graph_diff import diff
from workbench.core.errors import ModelFormatError, WorkbenchError
from workbench.core.graph import Graph, canonical_op
from workbench.formats import onnx as onnx_format
from workbench.formats import torchscript as torchscript_format


def _small_cnn_onnx(path, with_identity: bool = False):
    """input[1,1,8,8] -> /features/conv/Conv(4x1x3x3, pad 1) -> /features/act/Relu -> Flatten -> /head/fc/Gemm(10).

    MACs by hand: conv 4*8*8 outputs x (1*3*3) = 2,304; Gemm 10 outputs x 256 = 2,560.
    Parameters: 36 + 4 (conv) + 2,560 + 10 (fc) = 2,610.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "conv.weight"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "conv.bias"),
        numpy_helper.from_array(rng.standard_normal((10, 256)).astype(np.float32), "fc.weight"),
        numpy_helper.from_array(rng.standard_normal(10).astype(np.float32), "fc.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "conv.weight", "conv.bias"], ["c"], name="/features/conv/Conv",
                         pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="/features/act/Relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="/Flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits" if not with_identity else "g"],
                         name="/head/fc/Gemm", transB=1),
    ]
    if with_identity:
        nodes.append(helper.make_node("Identity", ["g"], ["logits"], name="/head/Identity"))
    graph = helper.make_graph(nodes, "small_cnn", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    return _small_cnn_onnx(tmp_path_factory.mktemp("graph") / "cnn.onnx")


def test_onnx_counts_shapes_params_macs(cnn):
    g = onnx_format.read_graph(str(cnn))
    assert [n.op for n in g.nodes] == ["Conv", "Relu", "Flatten", "Gemm"]
    assert len(g.edges) == 3
    assert g.inputs == ["input"] and g.outputs == ["logits"]
    assert g.tensors["c"].shape == (1, 4, 8, 8) and g.tensors["f"].shape == (1, 256)
    assert g.tensors["logits"].dtype == "float32"
    assert g.node("/features/conv/Conv").macs == 2304
    assert g.node("/head/fc/Gemm").macs == 2560
    assert g.macs == 2304 + 2560
    assert g.num_params == 2610
    assert g.node("/head/fc/Gemm").params == 2570
    assert g.op_histogram() == {"Conv": 1, "Relu": 1, "Flatten": 1, "Gemm": 1}
    assert g.node("/features/conv/Conv").scope == ("features", "conv")
    tree = g.hierarchy()
    assert {c["name"] for c in tree["children"]} == {"features", "head"}
    features = next(c for c in tree["children"] if c["name"] == "features")
    assert features["nodes"] == 2 and features["macs"] == 2304


def test_details_have_weights_statistics(cnn):
    g = onnx_format.read_graph(str(cnn))
    d = g.details("/features/conv/Conv")
    assert d["attributes"]["pads"] == [1, 1, 1, 1]
    w = {x["name"]: x for x in d["weights"]}["conv.weight"]
    arr = g.weights["conv.weight"].array()
    assert w["shape"] == [4, 1, 3, 3] and w["min"] == pytest.approx(float(arr.min()))
    assert w["std"] == pytest.approx(float(arr.std()), rel=1e-6)
    assert d["outputs"][0]["to"] == ["/features/act/Relu"]
    with pytest.raises(KeyError, match="did you mean"):
        g.node("/features/conv/Con")


def test_view_payload_is_consistent(cnn):
    g = onnx_format.read_graph(str(cnn))
    v = g.to_view()
    nodes = v["nodes"]
    names = nodes["name"]
    assert all(len(col) == len(names) for col in nodes.values())
    assert names[0] == "input" and nodes["op"][0] == "Input" and nodes["op"][-1] == "Output"
    assert len(names) == len(g.nodes) + 2
    assert all(0 <= a < len(names) and 0 <= b < len(names) for a, b in zip(v["edges"]["src"], v["edges"]["dst"], strict=True))
    assert len(v["edges"]["src"]) == len(g.edges) + 2  # + input -> Conv, Gemm -> output
    conv = names.index("/features/conv/Conv")
    assert nodes["category"][conv] == "conv" and nodes["shape"][conv] == "1×4×8×8" and nodes["macs"][conv] == 2304
    assert v["scopes"]["label"][:2] == ["features", "conv"]
    assert v["scopes"]["path"][:2] == ["features", "features.conv"]
    assert v["scopes"]["path"][nodes["scope"][conv]] == "features.conv"


def test_resnet18_from_torch(zoo):
    g = zoo("resnet18").graph()
    assert g.num_params == 11_689_512
    assert 1.75e9 < g.macs < 1.9e9  # 1.82 G at 224x224
    assert g.op_histogram()["aten.conv2d"] == 20
    first = g.nodes[0]
    assert first.op == "aten.conv2d" and g.tensors[first.outputs[0]].shape == (1, 64, 112, 112)
    assert ("layer1", "layer1.0", "layer1.0.conv1") in {n.scope for n in g.nodes}
    assert len(g.edges) >= len(g.nodes) - 1


def test_openvino_and_diff_against_onnx(cnn):
    ov = pytest.importorskip("openvino")
    from workbench.formats import openvino as openvino_format

    a = onnx_format.read_graph(str(cnn))
    b = openvino_format.read_graph(ov.convert_model(str(cnn)))
    assert "Convolution" in b.op_histogram()
    assert b.node("/features/conv/Conv").op in ("Add", "Convolution")
    assert b.macs == a.macs
    assert b.num_params == a.num_params
    d = diff(a, b)
    pairs = d.pairs()
    assert canonical_op(b.node(pairs["/features/conv/Conv"]).op) == "conv"
    assert canonical_op(b.node(pairs["/head/fc/Gemm"]).op) == "matmul"
    assert not d.removed or set(a.node(n).op for n in d.removed) <= {"Flatten"}


def test_torchscript_shapes_from_example_inputs():
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(256, 10)).eval()
    x = torch.randn(1, 1, 8, 8)
    ts = torch.jit.trace(net, (x,))
    g = torchscript_format.read_graph(ts, {"input": x.numpy()}, input_names=["input"])
    assert g.num_params == sum(p.numel() for p in net.parameters())
    assert g.macs == 2304 + 2560
    conv = next(n for n in g.nodes if canonical_op(n.op) == "conv")
    assert g.tensors[conv.outputs[0]].shape == (1, 4, 8, 8)
    assert conv.scope == ("0",)
    bare = torchscript_format.read_graph(ts)  # without example inputs: structure and params, no shapes
    assert bare.num_params == g.num_params and bare.macs == 0 and bare.notes


def _quantize(src, dst):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.it = iter([{"input": rng.standard_normal((1, 1, 8, 8)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.it, None)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ)
    return dst


def test_diff_fp32_vs_qdq(cnn, tmp_path):
    q = onnx_format.read_graph(str(_quantize(cnn, tmp_path / "cnn_qdq.onnx")))
    a = onnx_format.read_graph(str(cnn))
    d = diff(a, q)
    added_ops = {q.node(n).op for n in d.added}
    assert added_ops == {"QuantizeLinear", "DequantizeLinear"}
    pairs = d.pairs()
    assert pairs["/features/conv/Conv"] == "/features/conv/Conv" and pairs["/head/fc/Gemm"] == "/head/fc/Gemm"
    st = {m.a: m for m in d.matches if m.a}
    assert st["/features/conv/Conv"].status == "changed"
    assert any("precision" in c for c in st["/features/conv/Conv"].changes)
    assert q.quantized()["/features/conv/Conv"] == "quantized"
    assert q.num_params < 2 * a.num_params  # int8 weights count once, scales do not
    assert bool(d) and d.counts()["added"] == len(d.added)
    frame = d.to_frame()
    assert set(frame.status) <= {"same", "changed", "added", "removed"}
    merged = d.to_view()
    assert len(merged["nodes"]["name"]) == len(q.to_view()["nodes"]["name"]) + len(d.removed)


def test_diff_before_after_simplification(tmp_path):
    import onnx
    import onnxslim

    src = _small_cnn_onnx(tmp_path / "cnn_id.onnx", with_identity=True)
    slim = onnxslim.slim(onnx.load(str(src)))
    a, b = onnx_format.read_graph(str(src)), onnx_format.read_graph(slim)
    d = diff(a, b)
    assert [a.node(n).op for n in d.removed] == ["Identity"]
    assert not d.added
    assert {m.a for m in d.matches if m.status in ("same", "changed")} >= {"/features/conv/Conv", "/head/fc/Gemm"}


def test_structural_match_without_names(cnn):
    import onnx

    proto = onnx.load(str(cnn))
    for i, n in enumerate(proto.graph.node):
        n.name = f"renamed_{i}"
    a, b = onnx_format.read_graph(str(cnn)), onnx_format.read_graph(proto)
    assert diff(a, b, match="name").counts()["added"] == 4
    d = diff(a, b, match="structure")
    assert d.counts() == {"same": 4, "changed": 0, "added": 0, "removed": 0}
    assert d.pairs()["/head/fc/Gemm"] == "renamed_3"
    with pytest.raises(WorkbenchError, match="match"):
        diff(a, b, match="fuzzy")


def test_overlay_payload(cnn):
    pd = pytest.importorskip("pandas")
    from workbench.ui.graph_view import overlay_payload

    g = onnx_format.read_graph(str(cnn))
    p = overlay_payload(g, {"/features/conv/Conv": 0.5, "r": 0.1}, "latency", "ms", thresholds=[0.2])
    assert p["values"] == {"/features/conv/Conv": 0.5, "/features/act/Relu": 0.1}  # tensor names map to nodes
    assert p["kind"] == "numeric" and p["thresholds"] == [0.2]
    series = pd.Series({"/head/fc/Gemm": 3.0})
    assert overlay_payload(g, series, "err")["values"] == {"/head/fc/Gemm": 3.0}

    class Report:
        def per_node(self):
            return {"/flatten": 1.0, "/Flatten": 2.0}

    with pytest.warns(UserWarning, match="match no node"):
        assert overlay_payload(g, Report(), "x")["values"] == {"/Flatten": 2.0}
    with pytest.raises(WorkbenchError, match="none of the 1 names"):
        overlay_payload(g, {"nope": 1.0}, "x")
    cat = overlay_payload(g, g.quantized(), "precision")
    assert cat["kind"] == "categorical" and set(cat["values"].values()) == {"float"}


def test_unsupported_format_names_the_fix():
    from workbench.core.model import Model

    m = Model("coreml", name="x", inputs=[], outputs=[], native=object())
    with pytest.raises(ModelFormatError, match="netron"):
        Graph.from_model(m)


def test_netron_assets_are_guarded(tmp_path):
    from workbench.ui.netron_view import model_files_for_netron, read_asset

    assert "import * as base" in read_asset("view.js")
    for bad in ("../__init__.py", "/etc/passwd", "view.js/../../x.js", "server.py"):
        with pytest.raises(WorkbenchError):
            read_asset(bad)
    xml, bin_ = tmp_path / "m.xml", tmp_path / "m.bin"
    xml.write_text("<net/>")
    bin_.write_bytes(b"\0")
    files, ident = model_files_for_netron(str(xml))
    assert ident == "m.xml" and {f.name for f in files} == {"m.xml", "m.bin"}


def test_import_workbench_stays_light():
    code = ("import sys, workbench, workbench.ui, workbench.core.graph, workbench.analysis.graph_diff; "
            "bad = [m for m in ('ipywidgets', 'anywidget', 'torch', 'onnxruntime', 'openvino') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr

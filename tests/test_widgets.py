"""The widgets' Python half against the one payload schema (widgets/schema/graph.schema.json), the
same payloads decoded by the TypeScript (a cross-language round trip through Node), and each graph
widget's state: GraphView, DiffView side by side and merged.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import workbench as wb
from workbench.analysis.graph_diff import diff
from workbench.core.errors import WorkbenchError
from workbench.core.graph import scope_label
from workbench.ui import assets
from workbench.ui.graph_view import DiffView, GraphView, overlay_payload

REPO = Path(__file__).resolve().parent.parent
WIDGETS = REPO / "widgets"


class Blocks(torch.nn.Module):
    """A stem, a ModuleList of three blocks (the shape of a transformer's layers) and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Linear(8, 16)
        self.layers = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16)) for _ in range(3))
        self.head = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = x + layer(x)
        return self.head(x)


@pytest.fixture(scope="module")
def blocks():
    torch.manual_seed(0)
    return wb.load(Blocks().eval(), torch.randn(2, 8))


@pytest.fixture(scope="module")
def blocks_onnx(blocks):
    return wb.export(blocks, "onnx")


def test_schema_example_and_real_payloads_validate(blocks, blocks_onnx):
    assets.validate(json.loads((WIDGETS / "schema" / "examples" / "tiny.json").read_text()))
    for model in (blocks, blocks_onnx):
        payload = model.graph().to_view()
        assets.validate(payload)
        json.dumps(payload, allow_nan=False)  # strict JSON: what the comm sends
    d = diff(blocks_onnx.graph(), blocks_onnx.graph())
    assets.validate(d.to_view())
    assets.validate(overlay_payload(blocks_onnx.graph(), {n.name: 1.0 for n in blocks_onnx.graph().nodes}, "x"),
                    "OverlayPayload")


def test_schema_rejects_what_the_widget_cannot_read(blocks_onnx):
    payload = blocks_onnx.graph().to_view()
    bad = {**payload, "nodes": [[n, "Relu"] for n in payload["nodes"]["name"]]}  # the old positional rows
    with pytest.raises(WorkbenchError, match="GraphPayload does not match the widget schema at nodes"):
        assets.validate(bad)
    short = json.loads(json.dumps(payload))
    short["nodes"]["op"].pop()
    with pytest.raises(WorkbenchError, match="nodes.op has"):
        assets.validate(short)
    with pytest.raises(WorkbenchError, match="no payload kind"):
        assets.validate({}, "Nope")


def test_module_names_are_paths_never_bare_indices(blocks):
    payload = blocks.graph().to_view()
    scopes = payload["scopes"]
    assert "layers.1" in scopes["path"]
    labels = dict(zip(scopes["path"], scopes["label"], strict=True))
    assert labels["layers.1"] == "layers.1" and labels["layers.1.2"] == "layers.1.2"
    assert not [label for label in scopes["label"] if label.isdigit()]
    assert scope_label("encoder.layer.0", "encoder") == "layer.0"
    assert scope_label("encoder.layer.0.attention", "encoder.layer.0") == "attention"
    assert scope_label("layer1.0", "layer1") == "layer1.0"


@pytest.mark.skipif(shutil.which("node") is None or not (WIDGETS / "node_modules").is_dir(),
                    reason="needs Node.js and `npm ci` in widgets/ (scripts/setup does both)")
def test_typescript_decodes_what_python_encodes(blocks_onnx):
    """Python encodes, the widget's own TypeScript decoder (run in Node) decodes: every node's fields,
    every edge, the initial folding (layers as boxes) and a module search come back as Python sees them."""
    g = blocks_onnx.graph()
    payload = g.to_view()
    out = subprocess.run(["node", "scripts/decode.mjs", "6", "layers.2"], cwd=WIDGETS, input=json.dumps(payload),
                         capture_output=True, text=True, check=True, timeout=120)
    seen = json.loads(out.stdout)
    by_name = {n["name"]: n for n in seen["nodes"]}
    assert len(by_name) == len(g.nodes) + len(g.inputs) + len(g.outputs)
    for n in g.nodes:
        ts = by_name[n.name]
        assert (ts["op"], ts["params"], ts["macs"], ts["precision"]) == (n.op, n.params, n.macs, n.precision)
        tensor = g.tensors.get(n.outputs[0])
        assert ts["dtype"] == (tensor.dtype or "")
        assert ts["module"].split(".")[-1] == n.scope[-1].split(".")[-1].split("/")[-1] if n.scope else ts["module"] == ""
    assert len(seen["edges"]) == len(payload["edges"]["src"])
    assert {(a, b) for a, b, _ in seen["edges"]} >= {(e.src, e.dst) for e in g.edges}
    labels = [b["label"] for b in seen["boxes"] if "module" in b]
    assert {"layers.0", "layers.1", "layers.2"} <= set(labels), labels
    # search matches module paths: the module first, then the nodes inside it (whatever their names)
    assert seen["search"][0] == "module:layers.2"
    found = [by_name[s]["module"] for s in seen["search"] if not s.startswith("module:")]
    assert found and all(m.startswith("layers.2") for m in found)


def test_graph_view_state(blocks_onnx):
    v = GraphView(blocks_onnx, height=333)
    assert v.height == 333 and v.fold_threshold == 40 and v.sync_group == ""
    assets.validate(v.data)
    node = blocks_onnx.graph().nodes[3].name
    v.select(node)
    assert v.selected == node
    v.overlay({node: 2.0}, label="latency", unit="ms", thresholds=[1.0])
    assets.validate(v.overlay_data, "OverlayPayload")
    assert v.overlay_data["values"] == {node: 2.0}
    assert v.clear_overlay().overlay_data == {}
    with pytest.raises(KeyError):
        v.select("no-such-node")


def test_diff_views_state(blocks, blocks_onnx):
    side = DiffView(blocks, blocks_onnx, height=300)
    left, right = side.views
    assert left.height == right.height == 300
    assert left.sync_group and left.sync_group == right.sync_group  # panes pan and zoom together
    assets.validate(left.overlay_data, "OverlayPayload")
    assets.validate(left.extra, "ExtraPayload")
    other = DiffView(blocks, blocks_onnx)
    assert other.views[0].sync_group != left.sync_group
    merged = DiffView(blocks_onnx, blocks_onnx, layout="merged", height=280)
    (view,) = merged.views
    assert view.height == 280
    assets.validate(view.data)
    assert set(view.data["status"].values()) == {"same"}


def test_missing_bundle_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(assets, "BUILT", tmp_path)
    with pytest.raises(assets.WidgetsNotBuilt, match="npm ci && npm run build"):
        assets.require("graph")
    module = assets.esm("graph")
    assert isinstance(module, str) and "export default" in module and "scripts/setup" in module
    assert assets.css("graph") == ""


def test_kernel_lab_access_map_matches_the_schema():
    """The access map KernelLab draws (TypeScript in widgets/src/kernel_lab/) is what the schema says."""
    triton = pytest.importorskip("triton")
    from workbench.kernels.access import trace
    from workbench.kernels.library.vector_add import add_kernel
    from workbench.kernels.modes import mode

    if not mode().interpreted:
        pytest.skip("the access map is traced in Triton's interpreter")
    x, y = torch.randn(300), torch.randn(300)

    def launch(x, y):
        out = torch.empty_like(x)
        add_kernel[(triton.cdiv(300, 128),)](x, y, out, 300, BLOCK_SIZE=128)
        return out

    (amap,) = trace(launch, x, y).maps
    payload = json.loads(json.dumps(amap.to_json()))
    assets.validate(payload, "AccessMapPayload")
    assert [t["name"] for t in payload["tensors"]] == ["x_ptr", "y_ptr", "out_ptr"]
    with pytest.raises(WorkbenchError, match="AccessMapPayload does not match"):
        assets.validate({**payload, "tensors": [{"name": "x"}]}, "AccessMapPayload")


def test_graph_and_diff_views_show_code_that_runs(blocks, blocks_onnx):
    v = GraphView(blocks_onnx, height=333)
    node = blocks_onnx.graph().nodes[3].name
    v.overlay({node: 2.0}, label="latency", unit="ms", thresholds=[1.0])
    code = v.code()
    assert v.code_text == code and "wb.show(" in code and "height=333" in code and "view.overlay(" in code
    ns: dict = {}
    exec(compile(code, "<graph view code>", "exec"), ns)  # noqa: S102 - the code the view shows
    again = ns["view"]
    assert again.data["nodes"]["name"] == v.data["nodes"]["name"] and again.height == 333
    assert again.overlay_data == v.overlay_data
    v.SHOWN_VALUES = 0  # a huge overlay: the browser gets an excerpt, code() keeps every value
    v.overlay({node: 2.0}, label="latency")
    assert "an excerpt" in v.code_text and "an excerpt" not in v.code() and repr(node) in v.code()
    assert ".overlay(" not in v.clear_overlay().code_text
    merged = DiffView(blocks_onnx, blocks_onnx, layout="merged", height=280)
    ns = {}
    exec(compile(merged.code(), "<diff view code>", "exec"), ns)  # noqa: S102
    assert ns["view"].views[0].data["nodes"]["name"] == merged.views[0].data["nodes"]["name"]
    assert "layout='merged'" in html.unescape(merged.children[-1].pre.value)  # its Show code box
    side = DiffView(blocks_onnx, blocks_onnx)
    assert all(p.code_text == "" for p in side.views)  # the panes show none of their own: the diff does
    # a model that lives only in memory: the code says what to define instead of naming a file it has not
    assert "lives only in memory" in GraphView(blocks).code()

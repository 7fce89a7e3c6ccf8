"""The quantization debugger (``wb.quantize_debug``) and accuracy-aware quantization (``accuracy_budget=``).

The model: a small MLP trained here on scikit-learn's digits, then rescaled so that one hidden unit of
the first layer is 1000x larger and the second layer's weight for it 1000x smaller — the float function is
unchanged, but the second layer's input now has one outlier channel, so per-tensor INT8 activations wipe
out the others. That layer is the one known sensitive layer: the debugger must rank it first, and the
accuracy budget must be met by keeping it (and few others) float.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import workbench as wb
from workbench.analysis.quant_debug import BudgetSearch, QuantDebugReport
from workbench.core.errors import WorkbenchError

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def outlier_mlp():
    from torch import nn

    from workbench.formats.torch_module import from_module
    from workbench.zoo.digits import INPUT, OUTPUT, DigitsTask, _splits  # noqa: F401 - the zoo's own split

    x_tr, x_te, y_tr, _ = _splits()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    for _ in range(15):
        for i in range(0, len(x), 128):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[i:i + 128]), y[i:i + 128]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():  # the same function, with one 1000x outlier channel into the second Linear
        unit = int(torch.relu(net[1](net[0](x[:256]))).mean(0).argmax())  # an active unit
        net[1].weight[unit] *= 1000
        net[1].bias[unit] *= 1000
        net[3].weight[:, unit] /= 1000
    model = from_module(net, {INPUT: x_te[:1]}, name="outlier-mlp", task=DigitsTask(), input_names=[INPUT],
                        output_names=[OUTPUT], dynamic_axes={INPUT: {0: "batch"}})
    return wb.export(model, "onnx")


def _sensitive(report: QuantDebugReport) -> str:
    return next(r.node for r in report.layers if any(w.startswith("net.3.") or w.endswith("3.weight")
                                                     for w in r.weights))


def test_the_debugger_ranks_the_outlier_layer_first_on_onnxruntime_qdq(outlier_mlp, tmp_path):
    q = wb.quantize(outlier_mlp, "onnxruntime", "static", validate=False)
    report = wb.quantize_debug(outlier_mlp, q)
    assert report.scheme == "qdq" and len(report.layers) >= 3
    top = report.ranked[0]
    assert top.node == _sensitive(report), report.summary()
    assert top.share > 0.5 and top.channel_spread > 100, report.summary()
    assert "outlier channels" in top.cause
    assert report.metric_drop is not None and report.metric_drop > 0.05  # INT8 genuinely hurts it
    # every layer is a node of the quantized graph (what GraphView.overlay draws)
    names = {n.name for n in q.graph().nodes}
    assert set(report.per_node()) <= names and report.per_node("alone")[top.node] > 0
    back = QuantDebugReport.from_json(report.to_json())
    assert back.top(3) == report.top(3) and json.loads(report.to_json())["ranking"][0] == top.node
    frame = report.to_frame()
    assert list(frame["node"])[:1] == [top.node] and "cause" in frame
    html = wb.html_report(report, path=tmp_path / "r.html")
    assert "Quantization debugger" in (tmp_path / "r.html").read_text() or "Quantization debugger" in str(html)


def test_accuracy_budget_keeps_the_fewest_layers_float_and_says_why(outlier_mlp):
    plain = wb.quantize(outlier_mlp, "onnxruntime", "static", validate=False)
    budget = 0.01
    q = wb.quantize(outlier_mlp, "onnxruntime", "static", accuracy_budget=budget, finer=False, validate=False)
    search = q.metadata["accuracy_budget"]
    assert isinstance(search, BudgetSearch) and search.met, search.summary()
    kept = [k["node"] for k in search.kept_float]
    assert 1 <= len(kept) < search.layers and search.int8_fraction > 0.5
    assert "of the INT8 output error" in search.kept_float[0]["why"]
    # the excluded layers are the registered step's option, in the lineage
    assert set(kept) <= set(q.lineage[-1].options["nodes_to_exclude"])
    metric = q.evaluate()["accuracy"]
    assert search.float_metric - metric <= budget
    assert search.float_metric - plain.evaluate()["accuracy"] > budget
    assert json.loads(search.to_json())["met"] is True
    # the trials were cached steps: asking again runs no new quantization
    again = wb.quantize(outlier_mlp, "onnxruntime", "static", accuracy_budget=budget, finer=False, validate=False)
    assert again.path == q.path


def test_accuracy_budget_moves_the_outlier_layer_to_smooth_quant_instead_of_float(outlier_mlp):
    """With finer schemes (the default), the outlier-channel MatMul stays INT8: SmoothQuant moves its input's
    outlier channel into its weight, which per-channel INT8 absorbs."""
    q = wb.quantize(outlier_mlp, "onnxruntime", "static", accuracy_budget=0.01, validate=False)
    search = q.metadata["accuracy_budget"]
    assert search.met and not search.kept_float and search.int8_fraction == 1.0, search.summary()
    assert [f["scheme"] for f in search.finer] == ["smooth_quant"], search.finer
    assert q.lineage[-1].options["layer_schemes"] == {search.finer[0]["node"]: "smooth_quant"}
    assert search.float_metric - q.evaluate()["accuracy"] <= 0.01


def test_the_debugger_reads_nncf_fake_quantize_and_ignored_scope_keeps_a_layer_float(outlier_mlp):
    pytest.importorskip("nncf")
    q = wb.quantize(outlier_mlp, "nncf", validate=False)
    report = wb.quantize_debug(outlier_mlp, q, alone=False)
    assert report.scheme == "fake_quantize"
    top = report.ranked[0]
    assert top.op_type == "MatMul" and top.share > 0.5 and top.channel_spread > 100, report.summary()
    kept = wb.quantize(outlier_mlp, "nncf", ignored_scope=[top.node], validate=False)
    assert kept.lineage[-1].options["ignored_scope"] == [top.node]
    assert kept.evaluate()["accuracy"] > q.evaluate()["accuracy"]


def test_bad_input_gets_a_clear_error(outlier_mlp):
    with pytest.raises(WorkbenchError, match="no quantized layers"):
        wb.quantize_debug(outlier_mlp, outlier_mlp)
    x = wb.export(wb.load(torch.nn.Linear(4, 2), {"x": np.ones((1, 4), np.float32)}), "onnx")
    with pytest.raises(WorkbenchError, match="task metric"):
        wb.quantize(x, "onnxruntime", accuracy_budget=0.01)
    with pytest.raises(WorkbenchError, match="accuracy_budget"):
        wb.quantize(outlier_mlp, "onnxruntime", accuracy_budget=-1)
    with pytest.raises(WorkbenchError, match="unknown quantization scheme"):
        wb.quantize(outlier_mlp, "onnxruntime", layer_schemes={"x": "int3"})
    with pytest.raises(WorkbenchError, match="does not have"):
        wb.quantize(outlier_mlp, "onnxruntime", layer_schemes={"no such node": "per_channel"}, validate=False)
    with pytest.raises(WorkbenchError, match="alpha"):
        wb.quantize(outlier_mlp, "onnxruntime", smooth_quant=2)


def test_smooth_quant_migration_keeps_the_float_function(outlier_mlp, tmp_path):
    """SmoothQuant's rescaling alone (before quantization) changes no output, and it shrinks the outlier
    channel the MatMul reads."""
    import onnx
    import onnxruntime as ort

    from workbench.steps import onnxruntime_schemes

    feeds = outlier_mlp.task.calibration_data(n=4, batch=8)
    out, overrides, keep = onnxruntime_schemes.prepare(str(outlier_mlp.path), tmp_path / "s.onnx", feeds, None, 0.5)
    assert out == str(tmp_path / "s.onnx") and not overrides and len(keep) == 3  # one Mul per Gemm/MatMul input
    assert {n.op_type for n in onnx.load_model(out).graph.node if n.name in keep} == {"Mul"}
    a = ort.InferenceSession(str(outlier_mlp.path), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    for f in feeds:
        np.testing.assert_allclose(a.run(None, f)[0], b.run(None, f)[0], rtol=1e-4, atol=1e-4)


def test_the_app_panel_runs_int8_debugs_and_accepts_the_fix(outlier_mlp):
    pytest.importorskip("ipywidgets")
    view = wb.QuantDebugView(outlier_mlp, budget=0.01, samples=8, bench_seconds=0.1)
    view.run_int8()
    assert "FAILS the budget" in view.status.value
    # Show code: the INT8 run as a script, which runs (the model's task lives in memory, not in its file:
    # the script names it `model`)
    code = view.code()
    assert "define model = " in code and "wb.quantize(fp, " in code and "quantize_debug" not in code
    ns = {"model": outlier_mlp}
    exec(compile(code, "<quant debug code>", "exec"), ns)  # noqa: S102 - the code the view shows
    assert ns["f"] - ns["q"] > 0.01  # the same INT8 model fails the budget there too
    view.debug()
    assert view.report.ranked[0].node in view.table.value
    overlay = view.graph_box.children[0].overlay_data
    assert overlay and view.report.ranked[0].node in str(overlay)
    view.accept_fix()
    assert "met" in view.result.value and "Kept float" in view.result.value, view.result.value
    assert view.fixed.metadata["accuracy_budget"].met
    assert "accuracy_budget=0.01, report=report" in view.code() and "quantize_debug(" in view.code_box.pre.value
    # a bad budget is a message in the panel, not a traceback
    bad = wb.QuantDebugView(outlier_mlp, budget=-1)
    bad.fix_button.click()
    assert "accuracy_budget" in bad.status.value


def test_digits_mobilenet_per_tensor_int8_fails_and_per_channel_depthwise_layers_win_it_back():
    """A genuine case (nothing planted): the zoo's depthwise net trained on digits loses ~90 points under
    per-tensor INT8 (dead ReLU6 channels, BatchNorm folding); the debugger puts the three depthwise convs
    first, says why (weight channel spread), and the budget is met by per-channel weights for those three
    only, every layer still INT8."""
    import onnx

    m = wb.export(wb.load("digits-mobilenet"), "onnx")
    q = wb.quantize(m, "onnxruntime", "static", per_channel=False, validate=False)
    report = wb.quantize_debug(m, q)
    assert report.metric_drop > 0.5, report.summary()
    # every layer float again is the float model: the BatchNorm-folded weights' float twins and the folded
    # ReLU6 (Clip) are restored
    assert report.float_metric == pytest.approx(m.evaluate()["accuracy"])
    depthwise = {n.name for n in onnx.load_model(str(q.path)).graph.node
                 if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)}
    top = report.ranked[:len(depthwise)]
    assert {r.node for r in top} == depthwise, report.summary()
    assert all(r.fix == "per_channel" and r.weight_spread > 100 and "weight channels" in r.cause for r in top)
    fixed = wb.quantize(m, "onnxruntime", "static", per_channel=False, accuracy_budget=0.01, validate=False)
    search = fixed.metadata["accuracy_budget"]
    assert search.met and not search.kept_float and search.int8_fraction == 1.0, search.summary()
    assert {f["node"]: f["scheme"] for f in search.finer} == dict.fromkeys(depthwise, "per_channel")
    assert search.float_metric - fixed.evaluate()["accuracy"] <= 0.01

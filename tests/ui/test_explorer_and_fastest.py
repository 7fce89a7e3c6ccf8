"""The two small Voilà apps' widgets: ModelExplorer (graph, description, inputs/outputs, operators) and
FastestRuntime (autotune over runtimes x precisions, ranked, failing configurations never ranked), with
real models, real runtimes and their Show code executed."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import workbench as wb
from workbench.analysis.autotune import Trial, TuneResult
from workbench.ui.fastest_runtime import FastestRuntime, ranking
from workbench.ui.graph_view import GraphView
from workbench.ui.model_explorer import ModelExplorer, io_table, op_table


def _tiny_onnx(path) -> None:
    """A MatMul + Relu with a dynamic batch: a file a visitor could upload."""
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"), helper.make_node("Relu", ["h"], ["y"], name="relu")],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_model_explorer_shows_graph_tables_and_code_that_runs(capsys):
    e = ModelExplorer("digits-cnn", published=False)
    assert e.model is not None and e.model.name == "digits-cnn"
    graph_pane, description, io, ops = (p.children[0] for p in e._panes)
    assert isinstance(graph_pane, GraphView)
    assert "pixels" in description.value and "float32" in description.value
    assert "batch" in io.value and "logits" in io.value
    table = op_table(e.graph)
    stats = e.graph.stats()
    assert table["count"].sum() == stats["nodes"] and table["macs"].sum() == stats["macs"]
    assert table.index[0] == "aten.conv2d" and math.isclose(table["share_of_macs"].sum(), 1.0)
    assert "aten.conv2d" in ops.value and "digits-cnn" in e.status.value
    assert e.code_box is not None and "wb.load(\"digits-cnn\")" in e.code()
    exec(compile(e.code(), "<model explorer code>", "exec"), {})  # Show code runs as is
    assert "aten.conv2d" in capsys.readouterr().out


def test_published_model_explorer_shows_no_paths_and_no_code(tmp_path):
    path = tmp_path / "visitor-model.onnx"
    _tiny_onnx(path)
    e = ModelExplorer(None, published=True)
    assert e.code_box is None and e.model is None
    with pytest.raises(wb.WorkbenchError, match="published"):
        e.picker.pick(str(path))  # a visitor's path is refused ...
    e.show_model(wb.load(path))  # ... an uploaded file arrives as a Model
    description = e._panes[1].children[0].value
    assert "visitor-model.onnx" in description and str(tmp_path) not in description
    assert list(io_table(e.model)["dynamic axes"]) == ["batch", "batch"]
    assert set(op_table(e.graph).index) == {"MatMul", "Relu"}


def _trial(backend, precision, p50, *, valid=True, drop=0.0, reason="", error=None):
    return Trial(backend, precision, {}, "m", p50_ms=p50, metric_drop=drop, valid=valid, reason=reason, error=error)


def test_ranking_never_ranks_a_configuration_that_failed_validation():
    fast_but_wrong = _trial("onnxruntime", "int8", 0.01, valid=False, drop=0.2, reason="accuracy drop 0.2 > 0.01")
    good = _trial("openvino", "fp32", 0.03)
    base = _trial("torch_eager", "fp32", 0.09)
    broken = _trial("ncnn", "fp32", math.nan, valid=False, error="conversion failed")
    result = TuneResult("m", [fast_but_wrong, good, base, broken], good, "metric_drop", {}, "")
    frame = ranking(result)
    assert list(frame["configuration"]) == ["openvino fp32", "torch_eager fp32", "onnxruntime int8", "ncnn fp32"]
    assert list(frame["rank"].iloc[:2]) == [1, 2] and frame["rank"].iloc[2:].isna().all()
    assert frame["status"].iloc[2].startswith("not valid: accuracy drop")
    assert frame["status"].iloc[3] == "failed: conversion failed"
    assert frame["speedup"].iloc[0] == pytest.approx(3.0) and bool(frame["best"].iloc[0])


def test_fastest_runtime_ranks_real_runtimes_and_its_code_runs(capsys):
    f = FastestRuntime("digits-cnn", runtimes=["onnxruntime"], precisions=["fp32", "int8"], published=False)
    assert f.space()["backends"] == ["onnxruntime"] and f.space()["precisions"] == ["fp32", "int8"]
    f.run_button.click()  # what the browser's click does: a run in the background
    task = f.task
    result = task.result(timeout=300)
    assert result is f.result and not f.run_button.disabled and f.cancel_button.disabled
    frame = f.ranking()
    assert set(frame["runtime"]) == {"onnxruntime", "torch_eager"}  # the original is the baseline
    assert frame["rank"].iloc[0] == 1 and frame["best"].iloc[0] and result.best.label == frame["configuration"].iloc[0]
    assert "fastest valid here" in f.status.value and "<table" in f.table.value and f.board.children
    exec(compile(f.code(), "<fastest runtime code>", "exec"), {})  # Show code runs the same search
    assert "onnxruntime" in capsys.readouterr().out


def test_fastest_runtime_refuses_an_empty_space_and_a_second_run_and_cancels():
    with pytest.raises(wb.WorkbenchError, match="unknown runtime"):
        FastestRuntime(None, runtimes=["onnxruntime", "no-such-runtime"])
    f = FastestRuntime("digits-cnn", runtimes=["onnxruntime"], precisions=["fp32"], published=True)
    assert f.code_box is None
    f.precision_boxes["fp32"].value = False
    with pytest.raises(wb.WorkbenchError, match="ticked"):
        f.run(background=False)
    f.run_button.click()  # the button shows the refusal instead
    assert "ticked" in f.status.value and f.task is None
    f.precision_boxes["fp32"].value = True
    task = f.run(background=True)
    with pytest.raises(wb.WorkbenchError, match="already running"):
        f.run(background=True)
    f.cancel()
    task.wait(300)
    assert task.done and not f.run_button.disabled  # the app is usable again
    assert f.result is None or f.result.cancelled or f.result.best is not None

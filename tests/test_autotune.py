"""wb.autotune on digits-cnn (real accuracy): a small space, every trial validated, Pareto front, script."""

from __future__ import annotations

import json

import pytest

import workbench as wb
from workbench.analysis.autotune import _pareto

SPACE = {"backends": ["onnxruntime", "openvino"], "precisions": ["fp32", "int8"], "threads": [None],
         "hint": ["LATENCY"], "graph_optimization_level": ["all"]}


@pytest.fixture(scope="module")
def tuned(fresh_workspace):
    return wb.autotune("digits-cnn", max_metric_drop=0.02, space=SPACE, duration_s=0.2, confirm=2,
                       confirm_rounds=1, calibration_samples=16)


def test_every_trial_is_timed_and_validated(tuned):
    assert tuned.error_axis == "metric_drop"
    labels = {t.label for t in tuned.trials}
    assert len(tuned.trials) == 5, tuned.summary()  # torch baseline + 2 runtimes x 2 precisions
    assert any("int8" in label and "openvino" in label for label in labels)
    for t in tuned.trials:
        assert t.error is None, (t.label, t.error)
        assert t.p50_ms > 0 and t.throughput > 0
        assert t.metric is not None and 0.8 < t.metric <= 1.0  # digits accuracy, really computed
        assert t.valid == (t.metric_drop <= 0.02)
        assert t.rel_l2 >= 0 and t.cosine > 0.9
    int8 = [t for t in tuned.trials if t.precision == "int8"]
    assert all(t.rel_l2 > 1e-4 for t in int8)  # quantized: close, not identical


def test_best_and_pareto_front(tuned):
    best = tuned.best
    assert best is not None and best.valid
    assert best.latency_ms == min(t.latency_ms for t in tuned.trials if t.valid)
    front = tuned.front
    assert front
    pts = {id(t): (t.latency_ms, t.metric_drop) for t in tuned.trials}
    for t in tuned.trials:
        dominated = any(o is not t and pts[id(o)][0] <= pts[id(t)][0] and pts[id(o)][1] <= pts[id(t)][1]
                        and pts[id(o)] != pts[id(t)] for o in tuned.trials)
        assert t.on_front == (not dominated)


def test_reports(tuned, tmp_path):
    frame = tuned.to_frame()
    assert len(frame) == len(tuned.trials) and {"latency_ms", "metric_drop", "valid", "on_front"} <= set(frame.columns)
    doc = json.loads(tuned.to_json())
    assert doc["schema"] == "workbench.autotune" and doc["best"]["label"] == tuned.best.label
    page = tuned.to_html(tmp_path / "tune.html")
    assert "<svg" in page and "Pareto" in page
    assert len(tuned.plot().data) == 3


def test_script_reproduces_the_best(tuned):
    script = tuned.script
    assert tuned.best.backend in script and "wb.benchmark" in script
    namespace: dict = {}
    exec(compile(script, "autotune-script", "exec"), namespace)  # noqa: S102 - our own generated script
    report = namespace["report"]
    assert report and report[0].backend == tuned.best.backend
    assert report[0].options == {**tuned.best.options}


def test_impossible_budget_has_no_best(fresh_workspace):
    result = wb.autotune("digits-cnn", max_error=0.0, space={**SPACE, "precisions": ["int8"],
                                                               "backends": ["onnxruntime"]},
                         include_torch=False, duration_s=0.1, confirm=0, calibration_samples=8)
    assert result.best is None and result.script.startswith("# no configuration")
    assert all(not t.valid and "max_error" in t.reason for t in result.trials)


def test_pareto_unit():
    assert _pareto([(1.0, 0.5), (2.0, 0.1), (3.0, 0.2), (1.0, 0.5)]) == [True, True, False, True]

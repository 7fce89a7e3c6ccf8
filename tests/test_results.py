"""The one JSON encoding of results (workbench.core.results) and the round trip of every result type."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workbench.core import results
from workbench.core.results import from_json, plain, result_type, to_json


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Point:
    x: float
    y: float = math.nan
    tag: str | None = None


@dataclass
class Inner:
    name: str
    points: list[Point] = field(default_factory=list)
    shape: tuple[int, ...] | None = None


@result_type("test_outer", version=2)
@dataclass
class Outer:
    title: str
    inner: Inner
    by_name: dict[str, Point]
    maybe: Inner | None = None
    values: list[float] = field(default_factory=list)
    color: Color = Color.RED
    where: Path | None = None
    pair: tuple[str, int] = ("a", 1)
    counts: dict[int, int] = field(default_factory=dict)
    anything: dict[str, Any] = field(default_factory=dict)
    optional_score: float | None = None

    def json_extras(self) -> dict[str, Any]:
        return {"n_points": len(self.inner.points)}


def _outer() -> Outer:
    return Outer(
        title="t",
        inner=Inner("in", [Point(1.0, 2.0, "a"), Point(np.float32(0.5), math.inf)], shape=(1, 3)),
        by_name={"p": Point(np.float64(3.0), -math.inf, None)},
        values=[1.0, math.nan, 2.5],
        color=Color.BLUE,
        where=Path("/tmp/model.onnx"),
        pair=("b", np.int64(7)),
        counts={3: 4},
        anything={"arr": np.arange(3, dtype=np.int32), "f": np.float16(1.5), "nested": {"k": (1, 2)}},
        optional_score=math.nan,
    )


def test_plain_rule():
    assert plain(math.nan) is None and plain(math.inf) is None and plain(-math.inf) is None
    assert plain(np.float32(math.nan)) is None
    assert plain(np.int64(3)) == 3 and type(plain(np.int64(3))) is int
    assert plain(np.bool_(True)) is True
    assert plain(np.array([[1.0, np.nan], [np.inf, 2.0]])) == [[1.0, None], [None, 2.0]]
    assert plain(Path("/a/b")) == "/a/b" and plain(Color.RED) == "red"
    assert plain((1, {2: {3}})) == [1, {"2": [3]}]
    assert plain(object).startswith("<class")  # anything else: its str(), never an exception
    assert plain(Point(np.float32(1.0))) == {"x": 1.0, "y": None, "tag": None}


def test_document_shape_is_strict_json():
    text = to_json(_outer())
    doc = json.loads(text)
    assert doc["schema"] == "workbench.test_outer" and doc["schema_version"] == 2
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}"))
    assert doc["values"] == [1.0, None, 2.5] and doc["inner"]["points"][1]["y"] is None
    assert doc["anything"]["arr"] == [0, 1, 2] and doc["color"] == "blue" and doc["where"] == "/tmp/model.onnx"
    assert doc["n_points"] == 2  # json_extras
    assert doc["counts"] == {"3": 4} and doc["pair"] == ["b", 7]


def test_round_trip_rebuilds_nested_dataclasses():
    original = _outer()
    back = from_json(to_json(original))
    assert isinstance(back, Outer) and isinstance(back.inner, Inner) and isinstance(back.inner.points[0], Point)
    assert isinstance(back.by_name["p"], Point) and back.maybe is None
    assert back.inner.shape == (1, 3) and back.pair == ("b", 7) and back.counts == {3: 4}
    assert back.color is Color.BLUE and back.where == Path("/tmp/model.onnx")
    # non-finite floats come back as NaN in float fields, None where the field allows None
    assert math.isnan(back.inner.points[1].y) and math.isnan(back.by_name["p"].y)
    assert back.values[0] == 1.0 and math.isnan(back.values[1])
    assert back.optional_score is None
    assert back.anything == {"arr": [0, 1, 2], "f": 1.5, "nested": {"k": [1, 2]}}  # Any: the JSON value
    # a second trip is the identity on the text
    assert to_json(back) == to_json(from_json(to_json(back)))
    assert Outer.from_json(original.to_json()) == back  # the methods the decorator adds


def test_reader_tolerates_extra_and_missing_fields():
    doc = json.loads(to_json(_outer()))
    doc["added_in_a_later_version"] = 1
    del doc["values"]  # a field with a default
    back = results.from_dict(doc)
    assert back.values == []


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="newer workbench"):
        results.from_dict({"schema": "workbench.test_outer", "schema_version": 3, "title": "t"})
    with pytest.raises(ValueError, match="unknown result kind 'nope'"):
        from_json('{"schema": "workbench.nope", "schema_version": 1}')
    with pytest.raises(ValueError, match="not a workbench result"):
        from_json('{"a": 1}')
    with pytest.raises(ValueError, match="cannot rebuild Outer"):
        from_json('{"schema": "workbench.test_outer", "schema_version": 1}')
    with pytest.raises(ValueError, match="not a Point"):  # the document holds another class
        from_json(to_json(_outer()), Point)
    with pytest.raises(TypeError, match="not a registered result type"):
        to_json(Point(1.0))
    with pytest.raises(TypeError, match="needs a dataclass"):
        result_type("x")(int)


def test_kind_is_owned_by_one_class():
    with pytest.raises(ValueError, match="already registered"):
        @result_type("test_outer")
        @dataclass
        class Other:
            a: int = 0

    assert results.registered()["test_outer"] == (Outer, 2)


def test_omit_leaves_fields_out():
    doc = json.loads(to_json(_outer(), omit={Point: {"tag"}}))
    assert "tag" not in doc["inner"]["points"][0] and "tag" in json.loads(to_json(_outer()))["inner"]["points"][0]


# -- the real result types ------------------------------------------------------------------------------


def _round_trip(obj: Any) -> Any:
    text = obj.to_json()
    back = type(obj).from_json(text)
    assert type(back) is type(obj)
    assert back.to_json() == text  # nothing lost, nothing added
    return back


def test_node_profile_round_trip():
    from workbench.analysis.profile import NodeProfile, NodeTime

    prof = NodeProfile([NodeTime("onnxruntime", "conv", "conv_kernel", "Conv", "CPU", np.float64(0.25), 0.5, True),
                        NodeTime("onnxruntime", "reorder", "reorder", "Reorder", "CPU", 0.25, 0.5, False)],
                       runs=5, backends=["onnxruntime"], model="digits-cnn")
    back = _round_trip(prof)
    assert back.rows[0] == NodeTime("onnxruntime", "conv", "conv_kernel", "Conv", "CPU", 0.25, 0.5, True)
    assert back.per_node() == prof.per_node()


def test_tune_result_round_trip():
    from workbench.analysis.autotune import Trial, TuneResult

    fast = Trial("openvino", "int8", {"hint": "LATENCY"}, "/a/model.xml", p50_ms=1.0, rel_l2=0.01, valid=True,
                 on_front=True, confirmed_p50_ms=0.9)
    broken = Trial("onnxruntime", "bf16", {}, "m.onnx", error="not supported")  # NaN figures
    tuned = TuneResult("digits-cnn", [fast, broken], fast, "rel_l2", {"max_rel_l2": 0.05}, "print(1)\n",
                       environment={"cpu": "x"}, skipped=["coreml: needs macOS"])
    doc = json.loads(tuned.to_json())
    assert doc["schema"] == "workbench.autotune" and doc["best"]["label"] == fast.label
    assert doc["trials"][1]["p50_ms"] is None
    back = _round_trip(tuned)
    assert back.best is back.trials[0] and back.best.label == fast.label  # the best is one of the trials
    assert math.isnan(back.trials[1].p50_ms) and back.trials[1].error == "not supported"
    assert back.summary() == tuned.summary()


def _comparison() -> Any:
    from workbench.core.metrics import compare_outputs

    ref = {"logits": np.array([[1.0, 2.0, 3.0], [0.5, 0.1, 0.2]], np.float32)}
    cand = {"logits": np.array([[1.0, np.nan, 3.0], [0.5, 0.1, np.inf]], np.float32)}
    return compare_outputs(ref, cand, label="int8")


def test_comparison_round_trip():
    c = _comparison()
    doc = json.loads(c.to_json())
    assert doc["schema"] == "workbench.comparison" and doc["passed"] is False
    assert doc["results"][0]["nan_count"] == 1 and doc["results"][0]["inf_count"] == 1
    back = _round_trip(c)
    assert bool(back) is bool(c) and back.result("int8", "logits").shape == c.result(0).shape
    assert back.summary() == c.summary()


def test_validation_round_trip():
    from workbench.steps.validate import Validation

    c = _comparison()
    v = Validation("quantize", "int8", vs_parent=c, vs_original=c, metrics={"accuracy": 0.9},
                   original_metrics={"accuracy": 0.95}, metric_drop={"accuracy": 0.05}, backend="onnxruntime",
                   figures={"passed": False, "rel_l2": math.inf, "top1": np.float32(1.0)})
    doc = json.loads(v.to_json())
    assert doc["schema"] == "workbench.validation" and doc["passed"] is False and doc["figures"]["rel_l2"] is None
    back = _round_trip(v)
    assert back.vs_original.result(0).nan_count == 1 and back.metric_drop == {"accuracy": 0.05}
    assert back.to_dict() == v.to_dict()  # the manifest's form agrees too
    # an infinite figure is kept as "no finite value": it reads back as NaN, and summary() still works
    assert Validation.from_dict(v.to_dict()).summary() == v.summary().replace("rel_l2=inf", "rel_l2=nan")


def test_bench_report_round_trip():
    from workbench.analysis.bench import BenchReport, BenchResult, LatencyStats

    ok = BenchResult("x.onnx", "x", "onnx", "onnxruntime", 1, "sync", {"threads": 1}, threads=1,
                     latency=LatencyStats.of([0.001, 0.002, 0.003]), throughput=np.float64(500.0),
                     latencies_ms=[1.0, 2.0, 3.0])
    failed = BenchResult("x.xml", "x", "openvino", "openvino", 1, "sync", error="cannot compile",
                         latency=LatencyStats.of([]))  # NaN statistics
    report = BenchReport([ok, failed], {"duration_s": 0.5}, {"cpu": "test", "libraries": {"numpy": "2"}})
    doc = json.loads(report.to_json())
    assert doc["schema"] == "workbench.benchmark" and "latencies_ms" not in doc["results"][0]
    assert doc["results"][1]["latency"]["p50"] is None
    back = BenchReport.from_json(report.to_json(latencies=True))
    assert back.to_json(latencies=True) == report.to_json(latencies=True)
    assert back.results[0].latency == ok.latency and back.results[0].latencies_ms == [1.0, 2.0, 3.0]
    assert math.isnan(back.results[1].latency.p50) and back.results[1].error == "cannot compile"
    assert BenchReport.from_json(report.to_json()).results[0].latencies_ms == []  # left out: the default
    assert back.summary() == report.summary()


def test_every_result_type_is_registered():
    import workbench.analysis.autotune  # noqa: F401 - registers on import
    import workbench.analysis.bench  # noqa: F401
    import workbench.analysis.layerwise  # noqa: F401
    import workbench.analysis.profile  # noqa: F401
    import workbench.core.metrics  # noqa: F401
    import workbench.steps.validate  # noqa: F401

    assert {"comparison", "benchmark", "node_profile", "autotune", "validation", "layer_report"} <= set(
        results.registered())


def test_layer_report_round_trip():
    from workbench.analysis.layerwise import LayerReport, LayerRow

    rows = [LayerRow("rt", 0, "conv", "Conv", "c0", "c0", "features.0", True, "fp32", rel_l2=1e-7, max_abs=2e-6),
            LayerRow("rt", 1, "relu", "Relu", "r0", "r0", "", False, "int8", rel_l2=0.4, max_abs=math.inf)]
    report = LayerReport(rows, ["rt"], "onnxruntime", "net", tolerances={"rt": "int8"}, errors={})
    doc = json.loads(report.to_json())
    assert doc["schema"] == "workbench.layer_report"
    assert doc["passed"] is False and doc["first_divergent"]["node"] == "relu"
    assert doc["rows"][1]["max_abs"] is None  # strict JSON: inf has no literal
    back = LayerReport.from_json(report.to_json())
    assert back.first_divergent.node == "relu" and back.rows[0] == rows[0]
    assert math.isnan(back.rows[1].max_abs) and not back

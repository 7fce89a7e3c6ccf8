"""wb.benchmark: every field present and sane, on real runtimes; settings honoured; noise detected."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import workbench as wb
from workbench.analysis.bench import MAX_KEPT_LATENCIES, environment
from workbench.core.errors import WorkbenchError
from workbench.steps import workspace


def _sane(r, batch):
    lat = r.latency
    assert r.ok, r.error
    assert r.batch == batch and lat.count == r.iterations >= 10
    assert 0 < lat.min <= lat.p50 <= lat.p90 <= lat.p95 <= lat.p99 <= lat.max
    assert lat.min <= lat.mean <= lat.max and lat.std >= 0
    assert r.throughput == pytest.approx(batch * r.iterations / r.duration_s, rel=1e-9)
    assert 0 < r.prepare_s <= r.first_inference_s and r.first_infer_s > 0
    assert r.peak_rss_bytes >= r.rss_before_bytes > 10 * 2**20
    assert r.threads is not None and r.threads >= 1
    assert r.precision in ("fp32", "bf16", "fp16", "int8")
    assert isinstance(r.noisy, bool) and (r.noisy == bool(r.noise))
    step = max(1, r.iterations // MAX_KEPT_LATENCIES)  # long runs keep an even subsample for the plots
    assert len(r.latencies_ms) == len(range(0, r.iterations, step))


def test_report_holds_every_field(digits_onnx):
    report = wb.benchmark([digits_onnx, (digits_onnx, "openvino")], batch_sizes=[1, 4], duration_s=0.2)
    assert report and len(report) == 4
    for r in report.results:
        _sane(r, r.batch)
        assert r.size_bytes == digits_onnx.path.stat().st_size
    env = report.environment
    assert env["cpu"] and env["logical_cores"] >= 1 and env["physical_cores"] >= 1
    assert "onnxruntime" in env["libraries"] and "openvino" in env["libraries"]
    assert isinstance(env["cpu_flags"], list)
    frame = report.to_frame()
    for col in ("latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms", "latency_mean_ms",
                "latency_min_ms", "latency_max_ms", "latency_std_ms", "throughput", "first_inference_s",
                "peak_rss_bytes", "size_bytes", "threads", "noisy", "precision"):
        assert col in frame.columns
    doc = json.loads(report.to_json())
    assert doc["schema"] == "workbench.benchmark" and doc["schema_version"] >= 1
    assert doc["environment"]["cpu"] == env["cpu"] and len(doc["results"]) == 4
    sp = report.speedups()
    assert sp.loc[(report[0].label, 1), "speedup"] == pytest.approx(1.0)


def test_iterations_threads_and_torch(digits_onnx):
    torch_model = wb.load("digits-cnn")
    report = wb.benchmark([digits_onnx, (digits_onnx, "openvino"), torch_model], iterations=25, warmup=2, threads=1)
    assert report, report.summary()
    for r in report.results:
        _sane(r, 1)
        assert r.iterations == 25 and r.threads == 1  # read back from the compiled model for OpenVINO
    assert report[2].backend == "torch_eager" and report[2].size_bytes is None


def test_async_throughput(digits_onnx):
    report = wb.benchmark([(digits_onnx, "openvino"), digits_onnx], mode="async", streams=2, duration_s=0.2)
    assert report, report.summary()
    ov, ort = report.results
    assert ov.mode == "async" and ov.options["hint"] == "THROUGHPUT" and ov.streams >= 1
    assert ort.streams == 2 and ort.threads == 1  # the cores are split between the two streams
    for r in (ov, ort):
        assert r.throughput > 0 and r.iterations > 0 and r.latency.p50 > 0


def test_bad_configurations_are_reported(digits_onnx, tmp_path):
    static = wb.export(wb.load("digits-cnn"), "onnx", dynamic=False, path=tmp_path / "static.onnx")
    report = wb.benchmark(static, batch_sizes=[1, 2], duration_s=0.1)
    assert not report
    assert report[0].ok and "fixed batch" in report.results[1].error
    with pytest.raises(WorkbenchError, match="mode"):
        wb.benchmark(digits_onnx, mode="fast")
    with pytest.raises(WorkbenchError, match="batch_sizes"):
        wb.benchmark(digits_onnx, batch_sizes=[0])


def test_busy_machine_is_flagged(digits_onnx):
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        report = wb.benchmark(digits_onnx, duration_s=0.5, threads=1)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    r = report[0]
    assert r.noisy and r.other_cpu_share > 0.25, (r.other_cpu_share, r.noise)


def test_html_report_is_standalone_and_never_overwrites(digits_onnx, tmp_path):
    report = wb.benchmark([digits_onnx, (digits_onnx, "openvino")], iterations=20)
    path = tmp_path / "bench.html"
    page = report.to_html(path)
    assert path.read_text() == page
    assert "<svg" in page and "<script" not in page and "Latency per call" in page
    with pytest.raises(WorkbenchError, match="already exists"):
        report.to_html(path)
    fig = report.plot("latency")
    assert len(fig.data) == 2


def test_environment_is_cheap_and_complete():
    env = environment()
    assert {"cpu", "cpu_flags", "logical_cores", "physical_cores", "memory_bytes", "os", "python",
            "libraries", "load_average"} <= set(env)


def test_dashboard_view(digits_onnx, tmp_path):
    from workbench.ui.bench_view import BenchView

    report = wb.benchmark([digits_onnx, (digits_onnx, "openvino")], iterations=15)
    comparison = wb.compare(digits_onnx, (digits_onnx, "openvino"))
    view = BenchView(report, comparison)
    rows = view.board.payload["rows"]  # one board: a row per candidate, both PASS
    assert len(rows) == 2 and rows[0]["reference"] and rows[1]["passed"] is True and view.tabs is None
    page = view.html()
    assert "<svg" in page and "Latency per call" in page and "<script" not in page and "PASS" in page
    with workspace.using_workspace(tmp_path):
        first, second = view.save(), view.save()
    assert first != second and "<svg" in open(first).read()  # a new file each time
    with pytest.raises(WorkbenchError, match="cannot show"):
        BenchView(object())

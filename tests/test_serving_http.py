"""The plain HTTP service (FastAPI + uvicorn), started for real on 127.0.0.1: answers that wb.compare accepts,
bad and oversized requests refused with the server still up, a bounded load test, stopping by itself."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

import workbench as wb
from tests.serving_common import artifact, feeds, group_gone


@pytest.fixture(scope="module")
def endpoint():
    ep = wb.serve(artifact("onnx"), "http", timeout=120)
    yield ep
    ep.stop()


def test_answers_match_the_original(endpoint):
    assert endpoint.url.startswith("http://127.0.0.1:") and endpoint.running
    result = wb.compare("digits-cnn", endpoint)
    assert result, result.summary()
    out = endpoint.infer(feeds(endpoint.model, batch=3))
    assert out["logits"].shape == (3, 10)


def test_json_request_gets_a_json_answer(endpoint):
    x = feeds(endpoint.model, batch=1)["pixels"]
    resp = httpx.post(endpoint.infer_url, json={"inputs": [{"name": "pixels", "shape": list(x.shape),
                                                            "datatype": "FP32", "data": x.ravel().tolist()}]})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    out = resp.json()["outputs"][0]
    want = endpoint.infer({"pixels": x})["logits"]
    assert out["shape"] == [1, 10] and out["datatype"] == "FP32"
    assert max(abs(a - b) for a, b in zip(out["data"], want.ravel().tolist(), strict=True)) < 1e-4


def test_the_package_smoke_client(endpoint):
    done = subprocess.run([sys.executable, str(endpoint.package.folder / "smoke_client.py"), endpoint.infer_url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "logits (1, 10) float32" in done.stdout


def test_untrusted_requests(endpoint):
    url = endpoint.infer_url
    bad = httpx.post(url, json={"inputs": [{"name": "pixels", "shape": [1, 1, 8, 9], "datatype": "FP32",
                                            "data": [0.0] * 72}]})
    assert bad.status_code == 400 and "axis 3" in bad.json()["error"]
    limit = endpoint.package.manifest["max_request_bytes"]
    big = httpx.post(url, content=b"0" * (limit + 100_000), headers={"Inference-Header-Content-Length": "10"})
    assert big.status_code == 413

    def chunks():  # no Content-Length: the body is still bounded while it streams in
        for _ in range(limit // 1_000_000 + 2):
            yield b"0" * 1_000_000

    assert httpx.post(url, content=chunks()).status_code == 413
    assert httpx.post(url, content=b"\x80\x04\x95junk", headers={"Inference-Header-Content-Length": "7"}).status_code == 400
    assert httpx.get(endpoint.url + "/v2/health/ready").status_code == 200  # still up
    assert wb.compare("digits-cnn", endpoint)


def test_load_test_is_bounded_and_compared_with_the_bare_runtime(endpoint):
    start = time.perf_counter()
    report = wb.load_test(endpoint, concurrency=2, duration=1.0, requests=40, shapes=[1, 4])
    assert time.perf_counter() - start < 30
    served, bare = report.served, report.bare
    assert served.requests + served.errors <= 40 and served.errors == 0 and served.requests > 0
    assert bare is not None and bare.requests > 0 and bare.latency.p50 > 0
    assert report and set(report.overhead()) == {"p50_added_ms", "p99_added_ms", "throughput_ratio"}
    back = wb.LoadTestReport.from_json(report.to_json())
    assert back.runs[0].requests == served.requests and json.loads(report.to_json())["passed"] is True


def test_a_server_stops_when_python_exits(tmp_path):
    code = textwrap.dedent(f"""
        import workbench as wb
        wb.set_workspace({str(tmp_path)!r})
        ep = wb.serve({str(artifact("onnx").path)!r}, "http")
        print("PID", ep.process.pid, flush=True)
    """)  # no stop(): the interpreter's exit must stop it
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    pid = int(next(x for x in done.stdout.splitlines() if x.startswith("PID")).split()[1])
    assert group_gone(pid)


def test_stop_ends_the_process_group(endpoint):
    pid = endpoint.process.pid
    with wb.serve(artifact("onnx"), "http") as other:
        other_pid = other.process.pid
        assert other.infer(feeds(other.model))["logits"].shape == (2, 10)
    assert group_gone(other_pid) and not group_gone(pid)

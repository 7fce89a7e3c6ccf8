"""Serving without a server: the request checks (untrusted input), Triton's config, the registry of targets,
package folders, the load-test report's JSON, and the Java-missing error."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.serving_common import artifact
from workbench.core.errors import BackendUnavailable, InputError
from workbench.core.model import TensorSpec
from workbench.serving import base

SPECS = [TensorSpec("pixels", ("batch", 1, 8, 8), "float32"), TensorSpec("mask", ("batch", 4), "int64")]


def _request(**override):
    x = np.ones((2, 1, 8, 8), np.float32)
    m = np.zeros((2, 4), np.int64)
    body, n = base.encode_request({"pixels": x, "mask": m})
    if override:
        header = json.loads(body[:n])
        for entry in header["inputs"]:
            entry.update(override.get(entry["name"], {}))
        head = json.dumps(header).encode()
        body, n = head + body[n:], len(head)
    return body, n


def test_round_trip():
    body, n = _request()
    feeds = base.decode_request(body, n, SPECS)
    assert feeds["pixels"].shape == (2, 1, 8, 8) and feeds["mask"].dtype == np.int64
    out, k = base.encode_response({"logits": np.arange(6, dtype=np.float32).reshape(2, 3)})
    back = base.decode_response(out, k)
    assert back["logits"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_large_and_deep_json_requests():
    big = [TensorSpec("x", ("batch", 3, 64, 64), "float32")]
    n = 2 * 3 * 64 * 64
    body = json.dumps({"inputs": [{"name": "x", "shape": [2, 3, 64, 64], "datatype": "FP32", "data": [0.25] * n}]})
    assert len(body) > base.MAX_HEADER_BYTES  # a JSON-only request is all header: taken up to max_bytes
    assert base.decode_request(body.encode(), None, big)["x"].shape == (2, 3, 64, 64)
    with pytest.raises(InputError, match="limit"):
        base.decode_request(body.encode(), None, big, max_bytes=1000)
    with pytest.raises(InputError, match="nested too deeply"):
        base.decode_request(b"[" * 30_000 + b"]" * 30_000, 60_000, SPECS)


def test_json_data_request():
    header = {"inputs": [{"name": "pixels", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0.5] * 64},
                         {"name": "mask", "shape": [1, 4], "datatype": "INT64", "data": [1, 0, 1, 0]}]}
    feeds = base.decode_request(json.dumps(header).encode(), None, SPECS)
    assert feeds["pixels"].sum() == 32.0 and feeds["mask"].tolist() == [[1, 0, 1, 0]]


@pytest.mark.parametrize("override, words", [
    ({"pixels": {"datatype": "FP64"}}, "datatype"),
    ({"pixels": {"shape": [2, 1, 8, 9]}}, "axis 3"),
    ({"pixels": {"shape": [2, 8, 8]}}, "dimensions"),
    ({"pixels": {"shape": [2, 1, 8, -8]}}, "non-negative"),
    ({"pixels": {"shape": [2, 1, 8, True]}}, "non-negative"),
    ({"pixels": {"name": "other"}}, "do not match"),
    ({"mask": {"name": "pixels"}}, "do not match"),
    ({"pixels": {"parameters": {"binary_data_size": 7}}}, "binary_data_size"),
    # a declared shape of 10^12 floats is refused from the header, before any allocation
    ({"pixels": {"shape": [10**6, 1, 8, 8 * 10**4]}}, "axis 3"),
    ({"mask": {"shape": [10**9, 4], "parameters": {"binary_data_size": 32 * 10**9}}}, "request limit"),
])
def test_bad_requests_are_refused(override, words):
    body, n = _request(**override)
    with pytest.raises(InputError, match=words):
        base.decode_request(body, n, SPECS)


def test_bad_framing_is_refused():
    body, n = _request()
    with pytest.raises(InputError, match="end of the request"):
        base.decode_request(body[:-8], n, SPECS)
    with pytest.raises(InputError, match="does not fit"):
        base.decode_request(body, len(body) + 5, SPECS)
    with pytest.raises(InputError, match="not JSON"):
        base.decode_request(b"\x80\x04\x95" + body, n + 3, SPECS)  # a pickle's opening bytes are not a header
    with pytest.raises(InputError, match="header of"):
        base.decode_request(b" " * 70_000 + body, n + 70_000, SPECS)
    with pytest.raises(InputError, match="limit"):
        base.decode_request(body, n, SPECS, max_bytes=100)
    with pytest.raises(InputError, match="list of float32"):
        base.decode_request(json.dumps({"inputs": [
            {"name": "pixels", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": ["__import__('os')"] * 64},
            {"name": "mask", "shape": [1, 4], "datatype": "INT64", "data": [0] * 4}]}).encode(), None, SPECS)


def test_registry_lists_targets_and_takes_a_new_one(tmp_path):
    import workbench as wb
    from workbench.core import registry
    from workbench.serving import targets

    assert {"triton", "torchserve", "ray_serve", "http"} <= set(targets())

    @registry.register_server
    class ToyServer(base.Server):
        name = "toy_server"

        def write_files(self, package, model, **options):
            (package.folder / "README.md").write_text("toy")

    try:
        assert "toy_server" in targets()
        pkg = wb.package(artifact("onnx"), "toy_server", path=tmp_path / "pkg")
        onnx_file = f"model/{os.path.basename(artifact('onnx').path)}"  # digits-cnn-2.onnx where a name was taken
        assert {"README.md", "package.json", "smoke_client.py", onnx_file} <= set(pkg.files)
        manifest = pkg.manifest
        assert manifest["inputs"][0]["shape"] == ["batch", 1, 8, 8] and manifest["runtime"] == "onnxruntime"
        # never written over: a non-empty folder is refused, the default folder gets a new name each time
        with pytest.raises(wb.WorkbenchError, match="not empty"):
            wb.package(artifact("onnx"), "toy_server", path=tmp_path / "pkg")
        a, b = wb.package(artifact("onnx"), "toy_server"), wb.package(artifact("onnx"), "toy_server")
        assert a.folder != b.folder and (a.folder / "package.json").exists()
        with pytest.raises(wb.WorkbenchError, match="toy_server"):
            wb.package(artifact("onnx"), "no_such_server")
        failed = copy.copy(artifact("onnx"))  # a step's result whose validation failed is not served by default
        failed.validation = type("FailedValidation", (), {"skipped": None, "__bool__": lambda self: False})()
        with pytest.raises(wb.WorkbenchError, match="failed its validation.*allow_failed=True"):
            wb.package(failed, "toy_server")
        assert wb.package(failed, "toy_server", allow_failed=True).folder.exists()
    finally:
        registry._servers.pop("toy_server", None)  # noqa: SLF001 - the test's own toy


def test_triton_configs_parse_as_model_config(tmp_path):
    from workbench.serving import triton

    pkg = triton.TritonServer().write(artifact("onnx"), tmp_path / "t")
    python_cfg = triton.check_config((pkg.folder / "model_repository/digits-cnn/config.pbtxt").read_text())
    native_cfg = triton.check_config((pkg.folder / "native_repository/digits-cnn/config.pbtxt").read_text())
    assert python_cfg.backend == "python" and native_cfg.backend == "onnxruntime"
    assert native_cfg.default_model_filename == "model.onnx" and (pkg.folder / "native_repository/digits-cnn/1/model.onnx").exists()
    assert python_cfg.max_batch_size == 8 and list(python_cfg.input[0].dims) == [1, 8, 8]
    assert python_cfg.input[0].data_type == 11 and python_cfg.dynamic_batching is not None  # TYPE_FP32
    assert python_cfg.instance_group[0].kind == 2  # KIND_CPU
    # a model without a dynamic first axis: no batching, full shapes
    fixed = type("M", (), {"inputs": [TensorSpec("x", (3, "h"), "int64")], "outputs": [TensorSpec("y", (3,), "bool")]})
    cfg = triton.check_config(triton.config_pbtxt(fixed, "fixed", "openvino", filename="model.xml"))
    assert cfg.max_batch_size == 0 and list(cfg.input[0].dims) == [3, -1] and cfg.output[0].data_type == 1
    assert not cfg.HasField("dynamic_batching")
    with pytest.raises(base.ServingError, match="not a valid Triton ModelConfig"):
        triton.check_config('name: "x"\nbogus_field: 3\n')
    # the bundled server has no ONNX Runtime backend: starting a native package says so and names the fix
    native = triton.TritonServer().write(artifact("onnx"), tmp_path / "n", backend="onnxruntime")
    if "onnxruntime" not in triton.bundled_backends():
        with pytest.raises(base.ServingError, match="no onnxruntime backend.*backend='python'"):
            native.start()


def test_load_test_report_json_round_trip():
    from workbench.analysis.bench import LatencyStats
    from workbench.core.results import from_json
    from workbench.serving.load_test import LoadRun, LoadTestReport

    runs = [LoadRun("http (served)", "server", 4, 100, 1, 2.0, LatencyStats.of([0.01, 0.02, 0.03]), 50.0, 50.0,
                    ["ServingError: boom"]),
            LoadRun("onnxruntime (bare)", "bare", 4, 400, 0, 2.0, LatencyStats.of([0.001, 0.002]), 200.0, 200.0)]
    report = LoadTestReport("digits-cnn", "http", "http://127.0.0.1:1", {"concurrency": 4}, runs)
    doc = json.loads(report.to_json())
    assert doc["schema"] == "workbench.load_test" and doc["passed"] is False  # one error
    assert doc["overhead"]["throughput_ratio"] == pytest.approx(0.25)
    back = from_json(report.to_json())
    assert isinstance(back, LoadTestReport) and back.runs[1].latency.p50 == pytest.approx(runs[1].latency.p50)
    assert "0.25x" in back.summary() and "<table" in back._repr_html_()


def test_missing_java_is_one_clear_line(tmp_path):
    """TorchServe without Java: a child interpreter whose PATH has no java (and no JAVA_HOME)."""
    empty = tmp_path / "bin"
    empty.mkdir()
    code = textwrap.dedent(f"""
        import workbench as wb
        try:
            wb.serve({str(artifact("onnx").path)!r}, "torchserve")
        except wb.WorkbenchError as err:
            print("ERROR:", type(err).__name__, err)
    """)
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(empty)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    line = [x for x in done.stdout.splitlines() if x.startswith("ERROR:")]
    assert line, done.stdout + done.stderr
    assert "BackendUnavailable" in line[0] and "Java" in line[0] and "openjdk-17-jre-headless" in line[0]
    assert BackendUnavailable.__name__ in line[0]


def test_package_records_the_artifacts_precision(tmp_path):
    """A package carries what its artifact computes in (its lineage stays behind), so an endpoint's
    comparison with the original applies that precision's tolerance, not fp32's."""
    import workbench as wb
    from workbench.core.precision import precision_of
    from workbench.serving import http

    int8 = wb.quantize(artifact("onnx"), "onnxruntime", "dynamic")
    for model, expected in ((artifact("onnx"), "fp32"), (int8, "int8")):
        pkg = http.HttpServer().write(model, tmp_path / expected)
        assert pkg.manifest["precision"] == expected
        assert precision_of(base.package_model(pkg)) == expected

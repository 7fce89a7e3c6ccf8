"""Triton Inference Server (the tritonserver of the nvidia-pytriton wheel) started for real on 127.0.0.1 with the
Python-backend model of a package; queried with tritonclient and through the Endpoint; answers compared."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

import workbench as wb
from tests.serving_common import artifact, feeds, group_gone


@pytest.fixture(scope="module")
def endpoint():
    ep = wb.serve(artifact("onnx"), "triton", timeout=150)
    yield ep
    pid = ep.process.pid
    ep.stop()
    assert group_gone(pid)


def test_answers_match_the_original(endpoint):
    files = set(endpoint.package.files)
    assert {"model_repository/digits-cnn/config.pbtxt", "model_repository/digits-cnn/1/model.py",
            "native_repository/digits-cnn/config.pbtxt", "README.md", "smoke_client.py"} <= files
    result = wb.compare("digits-cnn", endpoint)
    assert result, result.summary()


def test_tritonclient_and_dynamic_batching(endpoint):
    import tritonclient.http as triton_http

    client = triton_http.InferenceServerClient(endpoint.url.removeprefix("http://"), concurrency=4)
    try:
        meta = client.get_model_metadata("digits-cnn")
        assert meta["inputs"][0]["shape"] == [-1, 1, 8, 8]
        x = feeds(endpoint.model, batch=3)["pixels"]
        requests = []
        for i in range(4):  # in flight together: the dynamic batcher may hand them to the model as one batch
            inp = triton_http.InferInput("pixels", list(x.shape), "FP32")
            inp.set_data_from_numpy(x + i, binary_data=True)
            requests.append(client.async_infer("digits-cnn", [inp]))
        got = [r.get_result().as_numpy("logits") for r in requests]
        with wb.runner(artifact("onnx"), "onnxruntime") as r:
            want = [r.infer({"pixels": x + i})["logits"] for i in range(4)]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
        cfg = client.get_model_config("digits-cnn")
        assert cfg["max_batch_size"] == 8 and "dynamic_batching" in cfg
    finally:
        client.close()


def test_bad_requests_and_restricted_apis(endpoint):
    bad = httpx.post(endpoint.infer_url, json={"inputs": [{"name": "pixels", "shape": [1, 1, 8, 9],
                                                           "datatype": "FP32", "data": [0.0] * 72}]})
    assert bad.status_code == 400
    assert httpx.post(endpoint.infer_url, json={"inputs": [{"name": "pixels", "shape": [9, 1, 8, 8],
                                                            "datatype": "FP32", "data": [0.0] * 576}]}).status_code == 400
    # shared-memory registration and the repository API need the key the workbench never hands out
    assert httpx.get(endpoint.url + "/v2/systemsharedmemory/status").status_code != 200
    assert httpx.post(endpoint.url + "/v2/repository/index").status_code != 200
    assert wb.compare("digits-cnn", endpoint)

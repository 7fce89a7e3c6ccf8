"""Ray Serve started for real (a local Ray on 127.0.0.1 in the server's own process group): the @serve.batch
deployment's answers compared with the original, concurrent requests, bad requests refused, clean stop."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

import workbench as wb
from tests.serving_common import artifact, feeds, group_gone


@pytest.fixture(scope="module")
def endpoint():
    ep = wb.serve(artifact("onnx"), "ray_serve", timeout=240, max_batch_size=4, batch_wait_timeout_s=0.01,
                  start_options={"num_cpus": 1})
    yield ep
    pid = ep.process.pid
    ep.stop()
    assert group_gone(pid)  # raylet, GCS and the replicas went with it


def test_answers_match_the_original(endpoint):
    assert endpoint.package.manifest["ray_serve"]["max_batch_size"] == 4
    result = wb.compare("digits-cnn", endpoint)
    assert result, result.summary()


def test_concurrent_requests_are_batched_and_split_back(endpoint):
    inputs = [feeds(endpoint.model, batch=b) for b in (1, 2, 3, 1, 2, 3, 1, 2)]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(endpoint.infer, inputs))
    with wb.runner(artifact("onnx"), "onnxruntime") as r:
        for f, g in zip(inputs, got, strict=True):
            np.testing.assert_allclose(g["logits"], r.infer(f)["logits"], rtol=1e-4, atol=1e-4)


def test_bad_request_is_refused(endpoint):
    bad = httpx.post(endpoint.infer_url, json={"inputs": [{"name": "pixels", "shape": [1, 1, 8, 9],
                                                           "datatype": "FP32", "data": [0.0] * 72}]})
    assert bad.status_code == 400 and "axis 3" in bad.json()["error"]
    assert endpoint.infer(feeds(endpoint.model))["logits"].shape == (2, 10)

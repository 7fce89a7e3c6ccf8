"""TorchServe started for real on 127.0.0.1 (Java frontend, the workbench handler in a .mar) with token
authorization on; a TorchScript artifact's answers compared with the original over its REST API."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

import workbench as wb
from tests.serving_common import artifact, feeds, group_gone


@pytest.fixture(scope="module")
def endpoint():
    ep = wb.serve(artifact("torchscript"), "torchserve", timeout=180)
    yield ep
    pid = ep.process.pid
    ep.stop()
    assert group_gone(pid)


def test_answers_match_the_original(endpoint):
    assert {"model_store/digits-cnn.mar", "config.properties", "handler.py", "README.md"} <= set(endpoint.package.files)
    result = wb.compare("digits-cnn", endpoint)
    assert result, result.summary()
    assert endpoint.infer(feeds(endpoint.model, batch=5))["logits"].shape == (5, 10)


def test_every_api_on_localhost_and_tokens_required(endpoint):
    run = endpoint.log.parent
    config = (run / "config.properties").read_text()
    for api in ("inference_address", "management_address", "metrics_address"):
        assert f"{api}=http://127.0.0.1:" in config
    assert httpx.post(endpoint.infer_url, content=b"{}").status_code in (400, 401)  # no token
    bad = httpx.post(endpoint.infer_url, headers=endpoint._current_headers(),  # noqa: SLF001 - the live token
                     json={"inputs": [{"name": "pixels", "shape": [1, 1, 8, 9], "datatype": "FP32", "data": [0.0] * 72}]})
    assert bad.status_code == 400 and "axis 3" in bad.text
    assert wb.compare("digits-cnn", endpoint)  # the worker survived the bad request
    token = json.loads((run / "key_file.json").read_text())["inference"]["key"]
    smoke = [sys.executable, str(endpoint.package.folder / "smoke_client.py"), endpoint.infer_url]
    assert "logits (1, 10)" in subprocess.run(smoke + [token], capture_output=True, text=True, timeout=60).stdout
    assert subprocess.run(smoke, capture_output=True, text=True, timeout=60).returncode != 0  # no token: refused

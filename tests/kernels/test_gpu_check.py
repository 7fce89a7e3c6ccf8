"""benchmarks/gpu_check.py runs end to end here (interpreter, tiny sizes): every part reports, none
errors, no target is claimed without a GPU, and the JSON file has every record."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_runs_quick_in_the_interpreter(tmp_path, kernel_mode):
    if not kernel_mode.interpreted:
        pytest.skip("on a GPU run the script itself: python benchmarks/gpu_check.py")
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKBENCH_QUICK": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--quick", "--no-checks",
                           "--out", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = json.loads(out.read_text())
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines == json.loads(json.dumps(records))  # what was printed is what was written
    names = {r.get("name") for r in records}
    for expected in ("vector_add", "softmax_float32", "layernorm_float32", "matmul_float32", "attention_float32",
                     "int8_matmul", "wrap_triton_overhead", "triton_op_compile", "tiny_transformer"):
        assert expected in names, expected
    assert [r for r in records if r["kind"] == "error"] == []
    env_rec, summary = records[0], records[-1]
    assert env_rec["mode"] == "interpreter" and "timings mean nothing" in env_rec["note"]
    assert summary["kind"] == "summary" and summary["failed"] == [] and summary["errors"] == []
    assert not any("target" in r for r in records)  # no GPU: no target is evaluated
    benches = [r for r in records if r["kind"] == "bench" and "ms" in r]
    assert benches and all(r["interpreted"] for r in benches)
    int8 = next(r for r in records if r.get("name") == "int8_matmul")
    assert int8["ref_bytes"] > int8["bytes"]  # the fp16 reference reads twice the weight bytes
    model = next(r for r in records if r.get("name") == "tiny_transformer")
    assert model["passed"] and model["triton kernels max_abs_err"] < 1e-3
    assert model["replaced"]["is_qkv_attention"] == ["blocks.0.attn", "blocks.1.attn"]
    op = next(r for r in records if r.get("name") == "triton_op_compile")
    assert op["passed"] and op["op_kind"] == "custom_op (interpreter)"

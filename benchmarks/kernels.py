"""Benchmark the kernels_tutorials/ kernels and check every one of them, printing JSON lines.

    python benchmarks/kernels.py [--out results.json] [--quick]

On an NVIDIA GPU (compiled mode) it prints, besides a check of every tutorial kernel and exercise
solution compiled for the GPU:

* ``vector_add``: achieved GB/s as a share of the copy bandwidth measured in the same run (target ≥ 90 %);
* ``fused_softmax``: speed-up over ``torch.softmax`` (target ≥ 1.0×);
* ``matmul_fp16``: speed-up over ``torch.matmul``, i.e. cuBLAS (target ≥ 0.8×);
* ``fused_attention``: speed-up over ``torch.nn.functional.scaled_dot_product_attention``;
* layernorm, bias + GELU, row sum and the INT8 weight-only matmul against their torch equivalents.

Every time is a ``triton.testing.do_bench`` median; the ceilings (copy bandwidth, fp16 matmul rate)
are measured at the start of the same run. Without a GPU the kernels run in Triton's interpreter: the
checks are real, the timings are printed with ``"interpreted": true`` and mean nothing for speed, and no
target is evaluated.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from workbench.kernels.modes import setup  # noqa: E402  (light: no torch/triton until setup())

TARGETS = {"vector_add": ("share_of_copy_bandwidth", 0.90), "fused_softmax": ("speedup", 1.0),
           "matmul_fp16": ("speedup", 0.8)}


def emit(record: dict, sink: list) -> None:
    sink.append(record)
    print(json.dumps(record, default=float), flush=True)


def checks(sink: list) -> None:
    """Check every tutorial kernel and every exercise solution in this mode (compiled on a GPU)."""
    import importlib

    from workbench.kernels.checker import check
    from workbench.kernels.library import TOPICS
    from workbench.kernels.puzzles import EXERCISES

    launchers = {"vector_add": "add", "softmax": "softmax", "layernorm": "layer_norm", "matmul": "matmul",
                 "attention": "attention", "dequant_matmul": "int8_matmul", "bias_gelu": "bias_gelu",
                 "reduction": "row_sum"}
    for topic in TOPICS:
        module = importlib.import_module(f"workbench.kernels.library.{topic}")
        t0 = time.perf_counter()
        report = check(getattr(module, launchers[topic]), module.reference, **module.CHECK)
        emit({"kind": "check", "name": f"tutorial.{topic}", "passed": bool(report), "cases": len(report.cases),
              "mode": report.mode, "seconds": round(time.perf_counter() - t0, 2),
              "failures": [c.describe() for c in report.failures]}, sink)
    for key, ex in EXERCISES.items():
        t0 = time.perf_counter()
        report = ex.check(ex.solution(), quiet=True)
        emit({"kind": "check", "name": f"solution.{key}", "passed": bool(report), "cases": len(report.cases),
              "mode": report.mode, "seconds": round(time.perf_counter() - t0, 2),
              "failures": [c.describe() for c in report.failures]}, sink)


def benchmarks(sink: list, quick: bool, gpu: bool) -> None:
    import torch
    import torch.nn.functional as F

    from workbench.kernels.library import (
        attention,
        bias_gelu,
        dequant_matmul,
        layernorm,
        matmul,
        reduction,
        softmax,
        vector_add,
    )
    from workbench.kernels.timing import bench, device_peaks

    dev = "cuda" if gpu else "cpu"
    big = gpu and not quick
    if gpu:
        peaks = device_peaks()
        emit({"kind": "peaks", "device": peaks.device, "copy_gbps": peaks.copy_gbps,
              "matmul_fp16_tflops": peaks.matmul_tflops}, sink)

    def run(name, fn, args, reference, bytes=None, flops=None, ref_bytes=None, **extra):
        try:
            r = bench(fn, *args, reference=reference, bytes=bytes, flops=flops, name=name, ref_bytes=ref_bytes)
            rec = {"kind": "bench", **r.to_json(), **extra}
            if name in TARGETS and not r.interpreted:
                metric, target = TARGETS[name]
                rec["target"] = {"metric": metric, "min": target, "met": (rec[metric] or 0) >= target}
        except Exception as err:  # one failing benchmark must not hide the others
            rec = {"kind": "bench", "name": name, "error": f"{type(err).__name__}: {err}",
                   "traceback": traceback.format_exc(limit=3)}
        emit(rec, sink)

    g = torch.Generator(device=dev).manual_seed(0)

    def randn(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=g, device=dev, dtype=dtype)

    n = 2**28 if big else 2**12
    x, y = randn(n), randn(n)
    run("vector_add", vector_add.add, (x, y), torch.add, bytes=3 * n * 4, n=n, dtype="float32")
    del x, y

    rows, cols = (8192, 4096) if big else (16, 256)
    dt = torch.float16 if gpu else torch.float32
    s = randn(rows, cols, dtype=dt)
    run("fused_softmax", softmax.softmax, (s,), lambda t: torch.softmax(t, dim=-1),
        bytes=2 * s.numel() * s.element_size(), shape=[rows, cols], dtype=str(dt))

    w, b = randn(cols, dtype=dt), randn(cols, dtype=dt)
    run("layernorm", layernorm.layer_norm, (s, w, b), lambda t, w, b: F.layer_norm(t, (cols,), w, b),
        bytes=2 * s.numel() * s.element_size(), shape=[rows, cols], dtype=str(dt))
    run("bias_gelu", bias_gelu.bias_gelu, (s, b), lambda t, b: F.gelu(t + b),
        bytes=2 * s.numel() * s.element_size(), shape=[rows, cols], dtype=str(dt))
    s32 = randn(rows, cols)
    run("row_sum", reduction.row_sum, (s32,), lambda t: t.sum(dim=-1), bytes=s32.numel() * 4,
        shape=[rows, cols], dtype="float32")
    del s, s32

    m = 4096 if big else 64
    a, bm = randn(m, m, dtype=dt), randn(m, m, dtype=dt)
    matmul.matmul(a, bm)  # autotunes once on a GPU, outside the timing
    run("matmul_fp16" if gpu else "matmul", matmul.matmul, (a, bm), torch.matmul, flops=2 * m**3,
        bytes=3 * m * m * a.element_size(), shape=[m, m, m], dtype=str(dt))

    B, H, S, D = (4, 16, 2048, 64) if big else (1, 2, 64, 16)
    q, k, v = randn(B, H, S, D, dtype=dt), randn(B, H, S, D, dtype=dt), randn(B, H, S, D, dtype=dt)
    run("fused_attention", attention.attention, (q, k, v), F.scaled_dot_product_attention,
        flops=4 * B * H * S * S * D, shape=[B, H, S, D], dtype=str(dt))

    M, N, K = (16, 8192, 8192) if big else (8, 64, 64)
    xq = randn(M, K, dtype=dt)
    w_q = torch.randint(-127, 128, (N, K), device=dev, dtype=torch.int8)
    sc = torch.rand(N, device=dev, dtype=dt) * 0.01
    w_f = w_q.to(dt) * sc[:, None]
    run("int8_weight_only_matmul", dequant_matmul.int8_matmul, (xq, w_q, sc), lambda x, _w, _s: x @ w_f.T,
        flops=2 * M * N * K, bytes=N * K + xq.element_size() * (M * K + M * N + N),
        ref_bytes=xq.element_size() * (N * K + M * K + M * N), shape=[M, N, K],
        reference_is="float16 x @ W.T with W dequantized in advance" if gpu else "x @ W.T")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write every record to this JSON file")
    parser.add_argument("--quick", action="store_true", help="small sizes (the default without a GPU)")
    parser.add_argument("--no-checks", action="store_true", help="skip the correctness checks")
    args = parser.parse_args()
    mode = setup()
    import torch
    import triton

    sink: list = []
    emit({"kind": "environment", "mode": mode.name, "reason": mode.reason, "gpu": mode.gpu,
          "triton": triton.__version__, "torch": torch.__version__, "python": platform.python_version(),
          "note": None if not mode.interpreted else "interpreter mode: checks are real, timings mean nothing for speed"},
         sink)
    if not args.no_checks:
        checks(sink)
    benchmarks(sink, args.quick, gpu=not mode.interpreted)
    failed = [r["name"] for r in sink if r.get("kind") == "check" and not r["passed"]]
    missed = [r["name"] for r in sink if r.get("target") and not r["target"]["met"]]
    emit({"kind": "summary", "checks_failed": failed, "targets_missed": missed,
          "errors": [r["name"] for r in sink if "error" in r]}, sink)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(sink, indent=1, default=float) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

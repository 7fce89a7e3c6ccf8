"""Every compiled path of the Triton lab in one run, printing JSON lines (and a JSON file).

    python benchmarks/gpu_check.py                       # on an NVIDIA GPU: real sizes, < 5 minutes
    python benchmarks/gpu_check.py --quick               # tiny sizes (the default without a GPU)
    python benchmarks/gpu_check.py --out benchmarks/results/gpu_check-h100.json

On a GPU (compiled mode) it measures, each part guarded so one failure does not stop the rest:

* ``peaks``: device-to-device copy bandwidth and the fp16 and bf16 ``torch.matmul`` rate, measured here;
* ``vector_add``: GB/s as a share of that copy bandwidth (target ≥ 0.90);
* ``softmax`` and ``layernorm`` in fp16 and bf16 against torch (softmax target ≥ 1.0×);
* ``matmul`` fp16 (target ≥ 0.8× ``torch.matmul``) and bf16, autotuned;
* ``attention`` fp16 and bf16 against every SDPA backend that runs (flash, memory-efficient, cuDNN,
  math): the target is the best backend's time within 1.5× (``speedup`` ≥ 0.667);
* ``int8_matmul``: autotuned, against an fp16 ``x @ W.T`` with its own byte count (2 bytes per weight);
* ``wrap_triton``: the launch overhead of going through ``torch.library.wrap_triton``;
* ``triton_op_compile``: a ``triton_op`` under ``torch.compile``: Inductor's code must contain the kernel;
* ``model``: the tiny transformer with softmax, LayerNorm and fused attention kernels, on the GPU, against
  eager and ``torch.compile``: outputs compared, latency timed;
* ``check``: every library kernel and every exercise solution checked compiled.

Without a GPU everything runs through Triton's interpreter at tiny sizes: the checks and the
end-to-end comparisons are real; timings are recorded with ``"interpreted": true``, mean nothing for
speed, and no target is evaluated. CI runs it that way (tests/kernels/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import platform
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from workbench.kernels.modes import setup  # noqa: E402  (light: no torch/triton until setup())

#: metric, minimum (compiled mode only)
TARGETS = {
    "vector_add": ("share_of_copy_bandwidth", 0.90),
    "softmax_float16": ("speedup", 1.0),
    "matmul_float16": ("speedup", 0.8),
    "attention_float16": ("speedup", 1 / 1.5),
}


class Run:
    def __init__(self, out: Path | None) -> None:
        self.records: list[dict] = []
        self.out = out

    def emit(self, record: dict) -> None:
        self.records.append(record)
        print(json.dumps(record, default=_json_default), flush=True)

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        """One guarded part: an exception becomes an error record and the run goes on."""
        t0 = time.perf_counter()
        try:
            yield
        except Exception as err:  # noqa: BLE001 - one failing part must not hide the others
            self.emit({"kind": "error", "name": name, "error": f"{type(err).__name__}: {str(err)[:500]}",
                       "traceback": traceback.format_exc(limit=4), "seconds": round(time.perf_counter() - t0, 2)})

    def bench(self, name: str, result, **extra) -> dict:
        rec = {"kind": "bench", **result.to_json(), **extra, "name": name}
        if name in TARGETS and not result.interpreted:
            metric, minimum = TARGETS[name]
            value = rec.get(metric)
            rec["target"] = {"metric": metric, "min": round(minimum, 3), "value": value,
                             "met": value is not None and value >= minimum}
        self.emit(rec)
        return rec


def _json_default(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)


def peaks(run: Run, gpu: bool) -> None:
    from workbench.kernels.timing import device_peaks, time_ms

    if not gpu:
        run.emit({"kind": "peaks", "interpreted": True, "note": "no ceilings without a GPU"})
        return
    import torch

    pk = device_peaks()
    rec = {"kind": "peaks", "device": pk.device, "copy_gbps": pk.copy_gbps, "matmul_float16_tflops": pk.matmul_tflops}
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = time_ms(lambda: torch.matmul(a, a))[0]
    rec["matmul_bfloat16_tflops"] = 2 * 8192**3 / (ms * 1e-3) / 1e12
    run.emit(rec)


def kernels(run: Run, gpu: bool, quick: bool) -> None:
    import torch
    import torch.nn.functional as F

    from workbench.kernels.library import attention, dequant_matmul, layernorm, matmul, softmax, vector_add
    from workbench.kernels.timing import bench

    big = gpu and not quick
    dev = "cuda" if gpu else "cpu"
    g = torch.Generator(device=dev).manual_seed(0)

    def randn(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=g, device=dev, dtype=dtype)

    # bf16 runs on a GPU only: the interpreter computes bf16 wrongly (see wb.kernels.check)
    dtypes = [torch.float16, torch.bfloat16] if gpu else [torch.float32]

    with run.part("vector_add"):
        n = 2**28 if big else 2**12
        x, y = randn(n), randn(n)
        run.bench("vector_add", bench(vector_add.add, x, y, reference=torch.add, bytes=3 * n * 4, name="vector_add"),
                  n=n, dtype="float32")
        del x, y

    rows, cols = (8192, 4096) if big else (16, 256)
    for dt in dtypes:
        tag = str(dt).replace("torch.", "")
        with run.part(f"softmax_{tag}"):
            s = randn(rows, cols, dtype=dt)
            run.bench(f"softmax_{tag}", bench(softmax.softmax, s, reference=lambda t: torch.softmax(t, -1),
                                              bytes=2 * s.numel() * s.element_size()), shape=[rows, cols], dtype=tag)
        with run.part(f"layernorm_{tag}"):
            w, b = randn(cols, dtype=dt), randn(cols, dtype=dt)
            run.bench(f"layernorm_{tag}", bench(layernorm.layer_norm, s, w, b,
                                                reference=lambda t, w, b: F.layer_norm(t, (cols,), w, b),
                                                bytes=2 * s.numel() * s.element_size()), shape=[rows, cols], dtype=tag)

    m = 4096 if big else 64
    for dt in dtypes:
        tag = str(dt).replace("torch.", "")
        with run.part(f"matmul_{tag}"):
            a, b = randn(m, m, dtype=dt), randn(m, m, dtype=dt)
            matmul.matmul(a, b)  # autotunes once, outside the timing
            err = (matmul.matmul(a, b).float() - (a.float() @ b.float())).abs().max().item()
            run.bench(f"matmul_{tag}", bench(matmul.matmul, a, b, reference=torch.matmul, flops=2 * m**3,
                                             bytes=3 * m * m * a.element_size()), shape=[m, m, m], dtype=tag,
                      max_abs_err=err)

    B, H, S, D = (4, 16, 2048, 64) if big else (1, 2, 64, 16)
    for dt in dtypes:
        tag = str(dt).replace("torch.", "")
        with run.part(f"attention_{tag}"):
            q, k, v = (randn(B, H, S, D, dtype=dt) for _ in range(3))
            attention.attention(q, k, v)  # autotunes once
            sdpa = _sdpa_backends(q, k, v, gpu)
            best = min(sdpa.values()) if sdpa else None
            err = (attention.attention(q, k, v).float() - F.scaled_dot_product_attention(q.float(), k.float(), v.float())
                   ).abs().max().item()
            result = bench(attention.attention, q, k, v, flops=4 * B * H * S * S * D, name=f"attention_{tag}")
            result.ref_ms = best  # the best SDPA backend
            run.bench(f"attention_{tag}", result, shape=[B, H, S, D], dtype=tag, sdpa_ms=sdpa, max_abs_err=err)

    M, N, K = (16, 8192, 8192) if big else (8, 64, 64)
    for dt in dtypes[:1]:
        tag = str(dt).replace("torch.", "")
        with run.part("int8_matmul"):
            xq = randn(M, K, dtype=dt)
            w_q = torch.randint(-127, 128, (N, K), device=dev, dtype=torch.int8)
            sc = torch.rand(N, device=dev, dtype=dt) * 0.01 + 0.001
            w_f = w_q.to(dt) * sc[:, None]
            dequant_matmul.int8_matmul(xq, w_q, sc)  # autotunes once
            el = xq.element_size()
            run.bench("int8_matmul", bench(dequant_matmul.int8_matmul, xq, w_q, sc, reference=lambda x, _w, _s, w_f=w_f: x @ w_f.T,
                                           flops=2 * M * N * K, bytes=N * K + el * (M * K + M * N + N),
                                           ref_bytes=el * (N * K + M * K + M * N)),
                      shape=[M, N, K], dtype=tag, reference_is=f"{tag} x @ W.T with W dequantized in advance")


def _sdpa_backends(q, k, v, gpu: bool) -> dict[str, float]:
    """Milliseconds of torch's SDPA per backend that runs on these inputs."""
    import torch.nn.functional as F

    from workbench.kernels.timing import time_ms

    if not gpu:
        return {"default": time_ms(lambda: F.scaled_dot_product_attention(q, k, v))[0]}
    from torch.nn.attention import SDPBackend, sdpa_kernel

    out = {}
    for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"):
        backend = getattr(SDPBackend, name, None)
        if backend is None:
            continue
        try:
            with sdpa_kernel(backend):
                F.scaled_dot_product_attention(q, k, v)
                out[name.lower()] = time_ms(lambda: F.scaled_dot_product_attention(q, k, v))[0]
        except RuntimeError:  # this backend does not take these inputs here
            continue
    return out


def wrap_overhead(run: Run, gpu: bool) -> None:
    import torch
    import triton
    from torch.library import wrap_triton

    from workbench.kernels.library.vector_add import add_kernel
    from workbench.kernels.timing import time_ms

    dev = "cuda" if gpu else "cpu"
    x = torch.randn(1024, device=dev)
    out = torch.empty_like(x)
    grid = (triton.cdiv(1024, 1024),)
    direct = time_ms(lambda: add_kernel[grid](x, x, out, 1024, BLOCK_SIZE=1024))[0]
    wrapped = time_ms(lambda: wrap_triton(add_kernel)[grid](x, x, out, 1024, BLOCK_SIZE=1024))[0]
    run.emit({"kind": "bench", "name": "wrap_triton_overhead", "direct_ms": direct, "wrapped_ms": wrapped,
              "interpreted": not gpu})


def triton_op_compile(run: Run, gpu: bool) -> None:
    import torch

    from workbench.kernels.custom_op import register_op
    from workbench.kernels.library.softmax import softmax

    op = register_op("gpucheck::softmax", softmax, kind="triton_op")
    x = torch.randn(64, 1000, device="cuda" if gpu else "cpu")

    def f(t):
        return torch.ops.gpucheck.softmax(t * 2.0) + 1.0

    torch._dynamo.reset()
    rec = {"kind": "compile", "name": "triton_op_compile", "op_kind": op._workbench_kind}
    backend = "inductor" if gpu else "aot_eager"
    compiled = torch.compile(f, backend=backend, fullgraph=True)
    if gpu:
        from torch._inductor.utils import run_and_get_code

        got, codes = run_and_get_code(compiled, x)
        rec["inductor_sees_kernel"] = any("softmax_kernel" in c for c in codes)
    else:
        got = compiled(x)
    rec["backend"] = backend
    rec["max_abs_err"] = (got - (torch.softmax(x * 2.0, -1) + 1.0)).abs().max().item()
    rec["passed"] = rec["max_abs_err"] < 1e-5 and rec.get("inductor_sees_kernel", True)
    run.emit(rec)


def model_end_to_end(run: Run, gpu: bool, quick: bool) -> None:
    import numpy as np
    import torch

    import workbench as wb
    from workbench.kernels.custom_op import to_device, with_kernels
    from workbench.kernels.timing import time_ms

    original = wb.load("tiny-transformer")
    dev = "cuda" if gpu else "cpu"
    eager = to_device(original)
    fast = with_kernels(original, attention=True)
    batch, seq = (32, 128) if gpu and not quick else (2, 12)
    ids = torch.from_numpy(np.random.default_rng(0).integers(0, 1000, (batch, seq)).astype(np.int64))
    variants = {"eager": eager.native(), "triton kernels": fast.native()}
    with run.part("model_compile"):
        if gpu or not quick:
            variants["torch.compile"] = torch.compile(eager.native())
    rec = {"kind": "model", "name": "tiny_transformer", "device": dev, "batch": batch, "seq": seq,
           "replaced": fast.lineage[-1].options["replaced"], "interpreted": not gpu}
    with torch.no_grad():
        ref = variants["eager"](ids)
        for label, module in variants.items():
            out = module(ids)
            rec[f"{label} max_abs_err"] = (out - ref).abs().max().item()
            rec[f"{label} ms"] = time_ms(lambda module=module: module(ids))[0]
    rec["passed"] = rec["triton kernels max_abs_err"] < 1e-3
    run.emit(rec)


def checks(run: Run) -> None:
    import importlib

    from workbench.kernels.checker import check
    from workbench.kernels.library import TOPICS
    from workbench.kernels.puzzles import EXERCISES

    launchers = {"vector_add": "add", "softmax": "softmax", "layernorm": "layer_norm", "matmul": "matmul",
                 "attention": "attention", "dequant_matmul": "int8_matmul", "bias_gelu": "bias_gelu",
                 "reduction": "row_sum"}
    for topic in TOPICS:
        with run.part(f"check.tutorial.{topic}"):
            module = importlib.import_module(f"workbench.kernels.library.{topic}")
            t0 = time.perf_counter()
            report = check(getattr(module, launchers[topic]), module.reference, **module.CHECK)
            run.emit({"kind": "check", "name": f"tutorial.{topic}", "passed": bool(report), "cases": len(report.cases),
                      "mode": report.mode, "seconds": round(time.perf_counter() - t0, 2),
                      "failures": [c.describe() for c in report.failures]})
    for key, ex in EXERCISES.items():
        with run.part(f"check.solution.{key}"):
            t0 = time.perf_counter()
            report = ex.check(ex.solution(), quiet=True)
            run.emit({"kind": "check", "name": f"solution.{key}", "passed": bool(report), "cases": len(report.cases),
                      "mode": report.mode, "seconds": round(time.perf_counter() - t0, 2),
                      "failures": [c.describe() for c in report.failures]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write every record to this JSON file "
                        "(default on a GPU: benchmarks/results/gpu_check-<gpu>-<date>.json)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the default without a GPU)")
    parser.add_argument("--no-checks", action="store_true", help="skip the correctness checks")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    mode = setup()
    gpu = not mode.interpreted
    import torch
    import triton

    out = args.out
    if out is None and gpu:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M")
        slug = "".join(c if c.isalnum() else "-" for c in (mode.gpu or "gpu")).strip("-").lower()
        out = ROOT / "benchmarks" / "results" / f"gpu_check-{slug}-{stamp}.json"
    run = Run(out)
    run.emit({"kind": "environment", "mode": mode.name, "reason": mode.reason, "gpu": mode.gpu,
              "triton": triton.__version__, "torch": torch.__version__, "cuda": torch.version.cuda,
              "python": platform.python_version(), "quick": args.quick or not gpu,
              "note": None if gpu else "interpreter mode: checks are real, timings mean nothing for speed, "
                                       "no target is evaluated"})
    with run.part("peaks"):
        peaks(run, gpu)
    kernels(run, gpu, args.quick or not gpu)
    with run.part("wrap_triton_overhead"):
        wrap_overhead(run, gpu)
    with run.part("triton_op_compile"):
        triton_op_compile(run, gpu)
    with run.part("model"):
        model_end_to_end(run, gpu, args.quick or not gpu)
    if not args.no_checks:
        checks(run)
    failed = [r["name"] for r in run.records if r.get("passed") is False]
    missed = [r["name"] for r in run.records if r.get("target") and not r["target"]["met"]]
    errors = [r["name"] for r in run.records if r["kind"] == "error"]
    run.emit({"kind": "summary", "mode": mode.name, "failed": failed, "targets_missed": missed, "errors": errors,
              "targets_met": [r["name"] for r in run.records if r.get("target") and r["target"]["met"]],
              "seconds": round(time.perf_counter() - t_start, 1)})
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(run.records, indent=1, default=_json_default) + "\n")
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""resnet18 (FP32 and ONNX Runtime static INT8) served by each serving target vs the bare runtime, same run.

For each model: the ONNX artifact (``wb.export``; ``wb.quantize(..., "onnxruntime", "static")`` for INT8) is
packaged and started on 127.0.0.1 for every target (``http``: FastAPI + uvicorn; ``triton``: tritonserver's
Python backend; ``torchserve``; ``ray_serve``), then ``wb.load_test`` keeps ``--concurrency`` requests of batch 1
in flight for ``--seconds``; the bare runtime (ONNX Runtime in this process, same threads, same time) is
loaded the same way once per model. Each record: throughput (requests/s), p50/p99 latency (ms), errors, and
the server's start time. Every server's answers are checked with ``wb.compare`` against the original first.

    python benchmarks/serving.py                           # JSON lines
    python benchmarks/serving.py --seconds 5 --concurrency 4 --servers http,triton

The client (Python threads, one HTTP connection each) runs on the same CPU as the server: on a small machine
it takes a share of the cores the server would otherwise have, as a real client on the same host would.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any


def emit(**record: Any) -> None:
    print(json.dumps({"bench": "serving", **record}), flush=True)


def run_row(label: str, report: Any, run: Any, **extra: Any) -> None:
    lat = run.latency
    emit(model=label, target=run.label.split(" ")[0] if run.kind == "server" else "bare_onnxruntime",
         kind=run.kind, concurrency=run.concurrency, requests=run.requests, errors=run.errors,
         throughput_rps=round(run.throughput_rps, 2), p50_ms=round(lat.p50, 3) if lat else None,
         p99_ms=round(lat.p99, 3) if lat else None, **extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--servers", default="http,triton,torchserve,ray_serve")
    parser.add_argument("--models", default="fp32,int8")
    args = parser.parse_args()

    import workbench as wb
    from workbench.serving.load_test import drive

    wb.set_workspace(tempfile.mkdtemp(prefix="wb-serving-bench-"))
    fp32 = wb.export("resnet18", "onnx")
    models = {"fp32": fp32}
    if "int8" in args.models:
        models["int8"] = wb.quantize(fp32, "onnxruntime", "static")
    emit(setup={"cpu_count": os.cpu_count(), "python": sys.version.split()[0], "seconds": args.seconds,
                "concurrency": args.concurrency, "batch": 1})
    for name in args.models.split(","):
        model = models[name]
        label = f"resnet18-{name}"
        bare_done = False
        for target in args.servers.split(","):
            t0 = time.perf_counter()
            try:
                ep = wb.serve(model, target, timeout=300, **({"start_options": {"num_cpus": 2}} if target == "ray_serve" else {}))
            except wb.WorkbenchError as err:
                emit(model=label, target=target, error=str(err).splitlines()[0][:300])
                continue
            start_s = time.perf_counter() - t0
            try:
                check = wb.compare(model, ep)
                report = wb.load_test(ep, concurrency=args.concurrency, duration=args.seconds, shapes=[1],
                                      baseline=not bare_done)
                run_row(label, report, report.served, start_s=round(start_s, 1), compare_passed=bool(check))
                if report.bare is not None:
                    run_row(label, report, report.bare)
                    bare_done = True
            finally:
                ep.stop()
        if not bare_done:  # every server failed: still measure the bare runtime
            with wb.runner(model, "onnxruntime") as r:
                feeds = r.model.example_inputs(batch=1)
                run = drive(lambda f: r.infer(f, check=False), [feeds], concurrency=args.concurrency,
                            duration=args.seconds, requests=None, kind="bare", label="onnxruntime (bare)")
            emit(model=label, target="bare_onnxruntime", kind="bare", requests=run.requests,
                 throughput_rps=round(run.throughput_rps, 2), p50_ms=run.latency.p50 if run.latency else None,
                 p99_ms=run.latency.p99 if run.latency else None)


if __name__ == "__main__":
    main()

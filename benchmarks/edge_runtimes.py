"""The mobile/edge runtimes (ExecuTorch, LiteRT) on zoo models: every conversion validated, and the latency
of each next to ONNX Runtime's, all through ``wb.benchmark`` in the same run.

For each model: ExecuTorch fp32 (XNNPACK) and INT8 (PT2E XNNPACKQuantizer, calibrated), LiteRT fp32 and
INT8 (dynamic range, and full INT8 calibrated), and the ONNX export on ONNX Runtime. One JSON line per
artifact: validation (PASS/FAIL, precision, rel_l2, cosine, metric drop), size, p50 latency at batch 1 and
the ratio to ONNX Runtime's p50; a runtime that is not installed is one line saying why and the fix.
TensorRT is listed with its availability (it needs an NVIDIA GPU).

    python benchmarks/edge_runtimes.py                          # digits-cnn, resnet18
    python benchmarks/edge_runtimes.py --models digits-cnn,tiny-transformer,mobilenetv2,minilm
    WORKBENCH_QUICK=1 python benchmarks/edge_runtimes.py        # shorter timings

The CPU may be shared: latencies are medians of one run, each runtime timed right after the others.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from typing import Any

QUICK = os.environ.get("WORKBENCH_QUICK") == "1"


def emit(**row: Any) -> None:
    print(json.dumps(row, default=str), flush=True)


def artifacts(wb: Any, model: Any) -> list[tuple[str, str, Any]]:
    """(label, runtime, how to make it) for every artifact of ``model``."""
    return [
        ("onnx", "onnxruntime", lambda: wb.export(model, "onnx")),
        ("executorch-fp32", "executorch", lambda: wb.convert(model, "executorch")),
        ("executorch-int8", "executorch", lambda: wb.quantize(model, "executorch", "pt2e")),
        ("litert-fp32", "litert", lambda: wb.convert(model, "litert")),
        ("litert-int8-dynamic", "litert", lambda: wb.quantize(wb.convert(model, "litert"), "litert", "dynamic")),
        ("litert-int8", "litert", lambda: wb.quantize(wb.convert(model, "litert"), "litert", "static")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="digits-cnn,resnet18")
    parser.add_argument("--seconds", type=float, default=0.5 if QUICK else 2.0, help="timed seconds per artifact")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import workbench as wb

    for row in wb.backends(as_frame=False):
        if row.name in ("executorch", "litert", "tensorrt", "onnxruntime"):
            emit(kind="availability", runtime=row.name, available=row.available, version=row.version,
                 reason=row.reason, fix=row.fix)
    available = {r.name for r in wb.backends(as_frame=False) if r.available}
    for name in args.models.split(","):
        model = wb.load(name)
        made: list[tuple[str, str, Any]] = []
        for label, runtime, make in artifacts(wb, model):
            if runtime not in available:
                emit(kind="skipped", model=name, artifact=label, runtime=runtime, reason="runtime unavailable")
                continue
            start = time.perf_counter()
            try:
                artifact = make()
            except Exception as err:  # noqa: BLE001 - a failed conversion is a figure too
                emit(kind="failed", model=name, artifact=label, error=f"{type(err).__name__}: {err}"[:400])
                continue
            v = artifact.validation
            emit(kind="validation", model=name, artifact=label, runtime=runtime, seconds=round(time.perf_counter() - start, 1),
                 summary=v.summary() if v is not None else "not validated", passed=bool(v) if v is not None else None,
                 size_bytes=artifact.size_bytes)
            made.append((label, runtime, artifact))
        report = wb.benchmark([(a, r) for _, r, a in made], duration_s=args.seconds, warmup=10)
        ort = next((res for res in report.results if res.backend == "onnxruntime"), None)
        for (label, runtime, _), res in zip(made, report.results, strict=True):
            p50 = res.latency.p50 if res.latency else None
            emit(kind="latency", model=name, artifact=label, runtime=runtime, p50_ms=p50,
                 p90_ms=res.latency.p90 if res.latency else None, threads=res.threads, precision=res.precision,
                 vs_onnxruntime=(p50 / ort.latency.p50) if p50 and ort is not None and ort.latency else None,
                 error=res.error)


if __name__ == "__main__":
    main()

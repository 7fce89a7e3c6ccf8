"""INT8 schemes on a real ImageNet classifier: ``efficientnet-lite0`` (the zoo's real weights).

From an empty workspace: the ONNX export, then each scheme (ONNX Runtime dynamic; static per-tensor and
per-channel, MinMax; static per-channel with percentile calibration; NNCF PTQ on OpenVINO), each validated
like every step. Per scheme, one JSON line: the time to quantize, the validation figures against the
original (passed, rel_l2, cosine) and the task metric (top-1 / top-5 agreement with fp32 on 16 views of
scikit-learn's two photos), the file size, and the top-1 class on each photo; then ``wb.benchmark``'s p50 at
batch 1 for the fp32 export and every INT8 model (each on its natural runtime) in one run.

    python benchmarks/efficientnet_int8.py                       # 64 calibration samples, 2 s per timing
    WORKBENCH_QUICK=1 python benchmarks/efficientnet_int8.py     # 16 samples, 0.5 s per timing

The notebook ``notebooks/04_quantize.ipynb`` shows the same comparison with pictures; the figures are in
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agreement import emit  # noqa: E402

QUICK = os.environ.get("WORKBENCH_QUICK", "") not in ("", "0")

SCHEMES: dict[str, tuple[str, str, dict]] = {
    "ort-dynamic": ("onnxruntime", "dynamic", {}),
    "ort-static-per-tensor": ("onnxruntime", "static", {"per_channel": False}),
    "ort-static-per-channel": ("onnxruntime", "static", {"per_channel": True}),
    "ort-static-per-channel-percentile": ("onnxruntime", "static", {"per_channel": True, "calibrate": "percentile"}),
    "nncf-ptq": ("nncf", "ptq", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16 if QUICK else 64, help="calibration samples")
    parser.add_argument("--schemes", default=",".join(SCHEMES), help="comma-separated subset of " + ", ".join(SCHEMES))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WORKBENCH_ARTIFACTS"] = tmp
        import workbench as wb
        from workbench.zoo import efficientnet_lite0 as effnet

        def top1(model) -> dict[str, str]:
            backend = wb.registry.default_runtime(model.format)
            with wb.runner(model, backend) as r:
                return {photo: top[0][0] for photo, top in effnet.photo_top5(r.infer).items()}

        m = wb.load("efficientnet-lite0")
        t0 = time.perf_counter()
        x = wb.export(m, "onnx")
        emit(scheme="fp32-onnx", step_s=round(time.perf_counter() - t0, 1), size_mb=round(x.size_bytes / 1e6, 2),
             **figures(x), top1=top1(x))
        models = {"fp32-onnx": x}
        for name in args.schemes.split(","):
            tool, method, options = SCHEMES[name]
            t0 = time.perf_counter()
            try:
                q = wb.quantize(x, tool, method, samples=args.samples, **options)
            except wb.WorkbenchError as err:
                emit(scheme=name, error=str(err))
                continue
            models[name] = q
            emit(scheme=name, step_s=round(time.perf_counter() - t0, 1), size_mb=round(q.size_bytes / 1e6, 2),
                 **figures(q), top1=top1(q))
        report = wb.benchmark(list(models.values()), progress=False)
        base = report.results[0].latency.p50 if report.results[0].ok else None
        for name, r in zip(models, report.results, strict=True):
            p50 = r.latency.p50 if r.ok and r.latency else None
            emit(scheme=name, backend=r.backend, p50_ms=p50, speedup=(base / p50) if base and p50 else None,
                 error=r.error, noise=r.noise or None)


def figures(model) -> dict:
    v = model.validation.to_dict()
    return {"passed": v["passed"], "rel_l2": v.get("rel_l2"), "cosine": v.get("cosine"), **(v.get("metrics") or {})}


if __name__ == "__main__":
    main()

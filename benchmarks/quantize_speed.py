"""resnet18 at batch 1 on this CPU: the workbench's artifacts against the vendors' own tools, one run.

For each configuration the same model is made twice, by the workbench (``wb.export`` / ``wb.convert``
/ ``wb.quantize``) and by the vendor's API used directly (``torch.onnx.export``,
``onnxruntime.quantization.quantize_static``, ``openvino.convert_model``, ``nncf.quantize``), and both
artifacts are timed with the same plain loop over the runtime's own API (``InferenceSession.run``,
``CompiledModel`` infer request): median latency, and the speed-up over torch eager. The check: the
workbench's speed-up is at least 90% of the vendor's (faster is fine). The two artifacts of a
configuration are called alternately, call by call, and the check takes the median over rounds of
(vendor latency / workbench latency) in the same round, so a busy neighbour on the shared CPU slows
both alike. ``quiet_*`` figures use each configuration's quietest round.

Configurations: torch eager; ONNX Runtime FP32; ONNX Runtime static INT8 (QDQ); OpenVINO FP32
(inference precision f32); OpenVINO default (bf16 on CPUs with AMX / AVX-512 BF16, as here); NNCF INT8.

    python benchmarks/quantize_speed.py            # prints JSON lines
    WORKBENCH_QUICK=1 python benchmarks/quantize_speed.py   # fewer iterations and calibration samples

The CPU may be shared: repeat the run; the paired ratios are stable, absolute latencies less so.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

QUICK = os.environ.get("WORKBENCH_QUICK") == "1"
ROUNDS = 8 if QUICK else 30
ITERS = 5  # calls per artifact and round
WARMUP = 5 if QUICK else 10
SAMPLES = 8 if QUICK else 32
CONFIGS = ("ort_fp32", "ort_int8", "ov_fp32", "ov_default_bf16", "nncf_int8")


def emit(**record: Any) -> None:
    print(json.dumps({"bench": "quantize_speed", **record}), flush=True)


def _torch_runner(module: Any, x: np.ndarray) -> Any:
    import torch

    t = torch.from_numpy(x)

    def run() -> None:
        with torch.no_grad():
            module(t)

    return run


def _ort_runner(path: Path, feeds: dict[str, np.ndarray]) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    # Several sessions live in this process and are called in turn: an idle session's worker threads
    # would keep spinning for a while after each call and take the cores from the next one (on 2 cores
    # that doubles ONNX Runtime's latency). A plain loop over one session does not suffer this.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda: sess.run(None, feeds)


def _ov_runner(path_or_model: Any, feeds: dict[str, np.ndarray], precision: str | None) -> Any:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path_or_model)) if isinstance(path_or_model, str | Path) else path_or_model
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    values = list(feeds.values())
    return lambda: request.infer(values)


def vendor_artifacts(module: Any, x: np.ndarray, calibration: list[dict[str, np.ndarray]], folder: Path) -> dict[str, Any]:
    """The same models made with the vendors' APIs directly, with their default settings."""
    import nncf
    import openvino as ov
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32 = folder / "vendor_fp32.onnx"
    torch.onnx.export(module, (torch.from_numpy(x),), str(fp32), dynamo=True, input_names=["input"],
                      output_names=["logits"], opset_version=18, external_data=False)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    pre = folder / "vendor_pre.onnx"
    quant_pre_process(str(fp32), str(pre))
    int8 = folder / "vendor_int8.onnx"
    # ONNX Runtime's recommendation for x86 CPUs: uint8 activations, int8 weights (U8S8). quantize_static's
    # own default (S8S8) takes a slow path here (~3x slower on resnet18).
    quantize_static(str(pre), str(int8), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    ov_model = ov.convert_model(str(fp32))
    ov_int8 = nncf.quantize(ov.convert_model(str(fp32)), nncf.Dataset(calibration, lambda d: d["input"]),
                            subset_size=len(calibration))
    return {"ort_fp32": fp32, "ort_int8": int8, "ov": ov_model, "ov_int8": ov_int8}


def workbench_artifacts(model: Any, calibration: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    import workbench as wb

    onnx_fp32 = wb.export(model, "onnx")
    q = wb.quantize(onnx_fp32, "onnxruntime", "static", calibration=calibration)
    ir = wb.convert(onnx_fp32, "openvino")
    ov_int8 = wb.quantize(ir, "nncf", "ptq", calibration=calibration)
    for m in (onnx_fp32, q, ir, ov_int8):
        emit(kind="artifact", step=m.lineage[-1].step, path=str(m.path), size_bytes=m.size_bytes,
             seconds=round(m.lineage[-1].seconds, 2),
             validation=m.validation.summary() if m.validation is not None else None)
    return {"ort_fp32": onnx_fp32.path, "ort_int8": q.path, "ov": ir.path, "ov_int8": ov_int8.path}


def main() -> int:
    warnings.filterwarnings("ignore")
    import openvino as ov
    import torch

    import workbench as wb

    folder = Path(tempfile.mkdtemp(prefix="wb-quantize-speed-"))
    os.environ.setdefault("WORKBENCH_ARTIFACTS", str(folder / "artifacts"))
    model = wb.load("resnet18")
    module = model.native()
    feeds = model.example_inputs(batch=1)
    x = feeds["input"]
    calibration = model.calibration_data(n=SAMPLES)
    emit(kind="setup", torch=torch.__version__, onnxruntime=__import__("onnxruntime").__version__,
         openvino=ov.get_version(), nncf=__import__("nncf").__version__, threads=torch.get_num_threads(),
         cpu_count=os.cpu_count(), rounds=ROUNDS, iters=ITERS, calibration_samples=SAMPLES)

    ours = workbench_artifacts(model, calibration)
    theirs = vendor_artifacts(module, x, calibration, folder)

    runners: dict[tuple[str, str], Any] = {("torch_eager", "vendor"): _torch_runner(module, x)}
    for source, arts in (("workbench", ours), ("vendor", theirs)):
        runners[("ort_fp32", source)] = _ort_runner(arts["ort_fp32"], feeds)
        runners[("ort_int8", source)] = _ort_runner(arts["ort_int8"], feeds)
        runners[("ov_fp32", source)] = _ov_runner(arts["ov"], feeds, "f32")
        runners[("ov_default_bf16", source)] = _ov_runner(arts["ov"], feeds, None)
        runners[("nncf_int8", source)] = _ov_runner(arts["ov_int8"], feeds, None)

    times: dict[tuple[str, str], list[float]] = {k: [] for k in runners}
    round_medians: dict[tuple[str, str], list[float]] = {k: [] for k in runners}
    for run in runners.values():
        for _ in range(WARMUP):
            run()
    configs = ["torch_eager", *CONFIGS]
    for _ in range(ROUNDS):
        for config in configs:
            # the workbench's and the vendor's artifact alternate call by call, so a busy neighbour slows both
            sources = [s for s in ("workbench", "vendor") if (config, s) in runners]
            batch: dict[str, list[float]] = {s: [] for s in sources}
            for _ in range(ITERS):
                for source in sources:
                    start = time.perf_counter()
                    runners[(config, source)]()
                    batch[source].append(time.perf_counter() - start)
            for source in sources:
                times[(config, source)] += batch[source]
                round_medians[(config, source)].append(statistics.median(batch[source]))

    medians = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    # the best round's median: what the configuration does when the shared CPU is quiet
    quiet = {k: min(v) * 1e3 for k, v in round_medians.items()}
    eager, eager_quiet = medians[("torch_eager", "vendor")], quiet[("torch_eager", "vendor")]
    for (config, source), med in medians.items():
        ts = sorted(times[(config, source)])
        emit(kind="latency", config=config, source=source, median_ms=round(med, 3),
             quiet_median_ms=round(quiet[(config, source)], 3), p90_ms=round(ts[int(0.9 * (len(ts) - 1))] * 1e3, 3),
             n=len(ts), speedup_vs_torch=round(eager / med, 2),
             quiet_speedup_vs_torch=round(eager_quiet / quiet[(config, source)], 2))
    ok = True
    for config in CONFIGS:
        # workbench speed-up / vendor speed-up = vendor latency / workbench latency (torch eager cancels out);
        # taken per round from the paired calls, then the median over rounds
        paired = [v / w for w, v in zip(round_medians[(config, "workbench")], round_medians[(config, "vendor")],
                                        strict=True)]
        ratio = statistics.median(paired)
        within = ratio >= 0.9
        ok &= within
        emit(kind="check", config=config, workbench_speedup=round(eager / medians[(config, "workbench")], 2),
             vendor_speedup=round(eager / medians[(config, "vendor")], 2),
             quiet_workbench_speedup=round(eager_quiet / quiet[(config, "workbench")], 2),
             quiet_vendor_speedup=round(eager_quiet / quiet[(config, "vendor")], 2),
             ratio=round(ratio, 3), within_10pct=within)
    # the issue's reference: measured here with the vendors' own APIs, INT8 ran about 4.6x (ONNX Runtime)
    # and 4.9x (OpenVINO NNCF) faster than torch eager; the workbench's artifacts must reach that (-10%)
    for config, reference in (("ort_int8", 4.6), ("nncf_int8", 4.9)):
        speedup = eager / medians[(config, "workbench")]
        reached = speedup >= 0.9 * reference
        ok &= reached
        emit(kind="target", config=config, workbench_speedup=round(speedup, 2), reference_speedup=reference,
             reached=reached)
    emit(kind="summary", passed=ok, quick=QUICK,
         note="WORKBENCH_QUICK=1: too few rounds to judge 10% on a shared CPU; indicative only" if QUICK else "")
    return 0 if ok or QUICK else 1


if __name__ == "__main__":
    sys.exit(main())

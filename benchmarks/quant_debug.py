"""Accuracy-aware INT8: ``wb.quantize(..., accuracy_budget=)`` against NNCF's ``quantize_with_accuracy_control``.

For each case (a zoo model with real data and a task metric), in one run and from an empty workspace:

* FP32 and full static INT8 (ONNX Runtime QDQ; NNCF on OpenVINO): the task metric and its drop;
* ``wb.quantize(x, "onnxruntime", "static", accuracy_budget=B)`` and ``wb.quantize(x, "nncf",
  accuracy_budget=B)``: the time to reach the budget, the metric reached, the layers kept float and the
  fraction of quantized layers left in INT8;
* NNCF's ``quantize_with_accuracy_control`` (``max_drop=B``, absolute) with the same calibration data and
  the same metric: the same figures;
* the latency (median of batch-1 runs, interleaved rounds) of FP32, full INT8 and each result.

    python benchmarks/quant_debug.py                       # minilm, budget 0.01
    python benchmarks/quant_debug.py --model digits-mobilenet --per-tensor   # per-tensor INT8 weights, both tools
    WORKBENCH_QUICK=1 python benchmarks/quant_debug.py     # fewer calibration samples and timing runs

Every figure is a JSON line. The claim (issue 13): the workbench reaches the same budget at least as fast
as NNCF, with at least as many layers in INT8.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agreement import emit  # noqa: E402

QUICK = os.environ.get("WORKBENCH_QUICK", "") not in ("", "0")


def latency_ms(models: dict[str, Any], rounds: int, runs: int) -> dict[str, float]:
    """Median batch-1 latency of each model on its default runtime, in interleaved rounds."""
    import workbench as wb

    runners = {}
    for label, model in models.items():
        r = wb.runner(model, wb.registry.default_runtime(model.format))
        r.prepare()
        runners[label] = (r, model.example_inputs(batch=1))
    times: dict[str, list[float]] = {k: [] for k in runners}
    try:
        for r, feeds in runners.values():  # warm-up
            for _ in range(3):
                r.infer(feeds)
        for _ in range(rounds):
            for label, (r, feeds) in runners.items():
                for _ in range(runs):
                    t0 = time.perf_counter()
                    r.infer(feeds)
                    times[label].append((time.perf_counter() - t0) * 1e3)
    finally:
        for r, _ in runners.values():
            r.close()
    return {k: round(statistics.median(v), 3) for k, v in times.items()}


def fq_layers(path: str) -> tuple[int, int]:
    """(ops fed by a FakeQuantize, every op) of an OpenVINO IR: its quantized layers."""
    import openvino as ov

    model = ov.Core().read_model(path)
    fed = {p.get_node().get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "FakeQuantize"
           for out in op.outputs() for p in out.get_target_inputs() if p.get_node().get_type_name() != "FakeQuantize"}
    return len(fed), len(model.get_ordered_ops())


#: what NNCF's accuracy control does on MiniLM here (NNCF 3.4, OpenVINO 2026.4), and what to try
AAC_HINT = ("NNCF ranks layers by compiling the INT8 model with each group of quantizers removed; for MiniLM "
            "(default model type) OpenVINO's CPU plugin rejects those partly reverted models in constant "
            "folding ('convert->constant_fold' failed), with or without bias correction, weight compression "
            "or RestoreMode.ONLY_ACTIVATIONS; try --nncf-transformer (model_type=TRANSFORMER), or "
            "wb.quantize(x, 'nncf', accuracy_budget=B), which edits the FakeQuantize graph itself")


def nncf_accuracy_control(x: Any, budget: float, samples: int, folder: Path, metric: str,
                          per_tensor: bool = False, transformer: bool = False) -> tuple[Path, float]:
    """NNCF's own accuracy-aware quantization on the same float model, data and metric (``per_tensor``:
    per-tensor INT8 weights, as the workbench's ``--per-tensor`` run; ``transformer``: NNCF's
    ``model_type=TRANSFORMER``)."""
    import nncf
    import openvino as ov

    task = x.task
    ov_model = ov.convert_model(str(x.path))
    names = [p.get_any_name() for p in ov_model.inputs]
    calibration = x.calibration_data(n=samples)
    # NNCF runs validate() on single items; ours is the whole evaluation set, so the data set is one item
    validation = nncf.Dataset([0])

    def validate(compiled: Any, _data: Any) -> float:
        request = compiled.create_infer_request()
        outputs = [o.get_any_name() for o in compiled.outputs]

        def predict(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            res = request.infer({n: feeds[n] for n in names if n in feeds})
            return {outputs[i]: np.array(res[compiled.outputs[i]]) for i in range(len(outputs))}

        return float(task.evaluate(predict)[metric])

    t0 = time.perf_counter()
    advanced = nncf.AdvancedQuantizationParameters()
    if per_tensor:
        advanced.weights_quantization_params = nncf.quantization.advanced_parameters.QuantizationParameters(
            per_channel=False)
    q = nncf.quantize_with_accuracy_control(
        ov_model, nncf.Dataset(calibration, lambda f: {n: f[n] for n in names if n in f}), validation,
        validation_fn=validate, max_drop=budget, drop_type=nncf.DropType.ABSOLUTE, subset_size=samples,
        advanced_quantization_parameters=advanced, model_type=nncf.ModelType.TRANSFORMER if transformer else None)
    seconds = time.perf_counter() - t0
    path = folder / "nncf-aac.xml"
    ov.save_model(q, str(path), compress_to_fp16=False)
    return path, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--budget", type=float, default=0.01)
    ap.add_argument("--rounds", type=int, default=3 if QUICK else 5)
    ap.add_argument("--runs", type=int, default=10 if QUICK else 30)
    ap.add_argument("--metric", default=None, help="the task metric the budget is on (default: the task's main one)")
    ap.add_argument("--skip-nncf", action="store_true", help="no NNCF at all")
    ap.add_argument("--per-tensor", action="store_true",
                    help="per-tensor INT8 weights (ORT per_channel=False; NNCF's search with per-tensor weights)")
    ap.add_argument("--nncf-transformer", action="store_true",
                    help="NNCF's accuracy control with model_type=TRANSFORMER")
    ap.add_argument("--no-finer", action="store_true",
                    help="wb's search keeps layers float only (no per-channel / SmoothQuant / 16-bit schemes)")
    ap.add_argument("--tools", nargs="+", default=["onnxruntime", "nncf"],
                    help="the tools wb.quantize(..., accuracy_budget=) runs with (NNCF's own search runs unless --skip-nncf)")
    args = ap.parse_args()

    import workbench as wb

    samples = 16 if QUICK else 32
    with tempfile.TemporaryDirectory(prefix="wb-bench-quant-debug-") as tmp:
        wb.set_workspace(Path(tmp) / "artifacts")  # nothing cached from an earlier run
        x = wb.export(wb.load(args.model), "onnx")
        metric = args.metric or x.task.metric_name
        fp32 = x.evaluate()[metric]
        emit(case=args.model, what="fp32", metric=metric, value=fp32)
        models: dict[str, Any] = {"fp32-onnx": x}
        for tool in ("onnxruntime", "nncf"):
            if tool == "nncf" and args.skip_nncf:
                continue
            if tool not in args.tools:  # its full INT8 still runs: the reference for NNCF's own search
                if tool == "nncf":
                    models["nncf-int8"] = wb.quantize(x, tool, samples=samples, validate=False)
                continue
            opts = {"per_channel": False} if args.per_tensor and tool == "onnxruntime" else {}
            t0 = time.perf_counter()
            full = wb.quantize(x, tool, samples=samples, validate=False, **opts)
            t_full = time.perf_counter() - t0
            full_metric = full.evaluate()[metric]
            emit(case=args.model, what=f"{tool} full int8", metric=metric, value=full_metric, drop=fp32 - full_metric,
                 seconds=round(t_full, 2))
            t0 = time.perf_counter()
            q = wb.quantize(x, tool, samples=samples, accuracy_budget=args.budget, metric=metric, validate=False,
                            finer=not args.no_finer, **opts)
            seconds = time.perf_counter() - t0
            s = q.metadata["accuracy_budget"]
            emit(case=args.model, what=f"wb {tool} accuracy_budget", budget=args.budget, metric=metric,
                 value=s.result_metric, drop=s.float_metric - s.result_metric, met=s.met,
                 seconds=round(seconds, 2), layers=s.layers, kept_float=[k["node"] for k in s.kept_float],
                 int8_fraction=round(s.int8_fraction, 4), finer={f["node"]: f["scheme"] for f in s.finer},
                 steps=sum(1 for t in s.trials if t["kind"] == "step"),
                 predictions=sum(1 for t in s.trials if t["kind"] == "predicted"),
                 top5=s.report.top(5) if s.report else [])
            models[f"{tool}-int8"] = full
            models[f"{tool}-budget"] = q
        aac_error = None
        if not args.skip_nncf:
            t0 = time.perf_counter()
            try:
                path, seconds = nncf_accuracy_control(x, args.budget, samples, Path(tmp), metric, args.per_tensor,
                                                      args.nncf_transformer)
            except Exception as err:  # noqa: BLE001 - NNCF's search failing is a figure too
                aac_error = f"{type(err).__name__}: " + " ".join(str(err).split())[:300]
                emit(case=args.model, what="nncf quantize_with_accuracy_control", budget=args.budget,
                     error=aac_error, seconds=round(time.perf_counter() - t0, 2),
                     hint=AAC_HINT if "constant_fold" in aac_error else None)
        if not args.skip_nncf and aac_error is None:
            aac = wb.load(path)
            aac.task = x.task
            value = aac.evaluate()[metric]
            n_int8, _ = fq_layers(str(path))
            n_full, _ = fq_layers(str(models["nncf-int8"].path))
            emit(case=args.model, what="nncf quantize_with_accuracy_control", budget=args.budget, metric=metric,
                 value=value, drop=fp32 - value, met=fp32 - value <= args.budget, seconds=round(seconds, 2),
                 layers=n_full, int8_fraction=round(n_int8 / n_full, 4) if n_full else None)
            models["nncf-aac"] = aac
        if not args.skip_nncf:
            models["fp32-ir"] = wb.convert(x, "openvino", validate=False)
        emit(case=args.model, what="latency_ms_batch1", **latency_ms(models, args.rounds, args.runs))
        wb.set_workspace(None)


if __name__ == "__main__":
    main()

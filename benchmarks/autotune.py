"""Does ``wb.autotune`` find a configuration as fast as the vendors' tools reach by hand?

By hand, the fastest here is NNCF INT8 on OpenVINO: export to ONNX, ``ov.convert_model``,
``nncf.quantize`` with the same calibration data, save the IR, and time it with ``benchmark_app
-hint latency``. The script does that, runs ``wb.autotune`` on the same model, and then times the
autotuner's best configuration (``wb.benchmark``) and the hand-made IR (``benchmark_app``) in
interleaved rounds. The claim: the autotuner's best median latency is at most 1.05× the hand-made one.

    python benchmarks/autotune.py                    # resnet18, batch 1
    python benchmarks/autotune.py --model mobilenetv2 --rounds 7
    WORKBENCH_QUICK=1 python benchmarks/autotune.py  # a smoke run: small space, short timings

Every figure is a JSON line. On a shared machine the figures move with other people's load; each
round says how busy the CPUs were.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agreement import benchmark_app_binary, emit, run_benchmark_app, wait_for_quiet  # noqa: E402

QUICK = os.environ.get("WORKBENCH_QUICK", "") not in ("", "0")


def hand_made_int8(name: str, folder: Path, samples: int) -> tuple[Path, Path]:
    """What a user does with the vendors' tools: the fp32 IR and the NNCF INT8 IR (static shape)."""
    import nncf
    import openvino as ov

    import workbench as wb

    model = wb.load(name)
    onnx_model = wb.export(model, "onnx")
    shape = [1, *[d for d in model.inputs[0].concrete_shape(batch=1)[1:]]]
    ov_model = ov.convert_model(str(onnx_model.path), input=shape)
    fp32_ir = folder / f"{name}-fp32.xml"
    ov.save_model(ov_model, str(fp32_ir), compress_to_fp16=False)
    calibration = [feeds[model.input_names[0]] for feeds in model.calibration_data(n=samples)]
    with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars would break the JSON lines
        quantized = nncf.quantize(ov_model, nncf.Dataset(calibration), subset_size=samples)
    int8_ir = folder / f"{name}-nncf-int8.xml"
    ov.save_model(quantized, str(int8_ir), compress_to_fp16=False)
    return fp32_ir, int8_ir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--rounds", type=int, default=2 if QUICK else 5)
    parser.add_argument("--seconds", type=float, default=1.0 if QUICK else 3.0)
    parser.add_argument("--samples", type=int, default=8 if QUICK else 32, help="calibration samples")
    parser.add_argument("--limit", type=float, default=1.05)
    parser.add_argument("--quiet", type=float, default=0.10,
                        help="a round is quiet when other processes kept at most this share of the CPUs busy")
    parser.add_argument("--wait-quiet", type=float, default=0.0 if QUICK else 30.0,
                        help="before each final round, wait up to this many seconds for the CPUs to be quiet")
    args = parser.parse_args()

    import workbench as wb
    from workbench.analysis.bench import environment
    from workbench.steps import workspace

    emit(figure="environment", **environment())
    binary = benchmark_app_binary()
    with tempfile.TemporaryDirectory(prefix="wb-autotune-") as tmp:
        folder = Path(tmp)
        workspace.set_workspace(folder / "artifacts")
        start = time.perf_counter()
        fp32_ir, int8_ir = hand_made_int8(args.model, folder, args.samples)
        emit(figure="hand_made", model=args.model, seconds=round(time.perf_counter() - start, 1),
             fp32_ir=fp32_ir.name, int8_ir=int8_ir.name)
        for ir, what in ((fp32_ir, "openvino default precision (bf16 here)"), (int8_ir, "NNCF INT8")):
            emit(figure="benchmark_app", model=args.model, artifact=what,
                 **run_benchmark_app(binary, ir, "CPU", "latency", args.seconds))

        space = None
        if QUICK:
            space = {"threads": [None], "hint": ["LATENCY"], "graph_optimization_level": ["all"]}
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            tuned = wb.autotune(args.model, space=space, calibration_samples=args.samples,
                                duration_s=0.5 if QUICK else 1.5, include_torch=not QUICK)
        for t in sorted(tuned.trials, key=lambda t: t.latency_ms):
            emit(figure="autotune_trial", model=args.model, label=t.label, p50_ms=t.p50_ms,
                 confirmed_p50_ms=t.confirmed_p50_ms, rel_l2=t.rel_l2, cosine=t.cosine, top1=t.top1,
                 valid=t.valid, on_front=t.on_front, noisy=t.noisy, error=t.error, reason=t.reason)
        best = tuned.best
        emit(figure="autotune", model=args.model, seconds=round(time.perf_counter() - start, 1),
             trials=len(tuned.trials), best=best.label if best else None,
             best_p50_ms=best.latency_ms if best else None, skipped=tuned.skipped)
        if best is None:
            emit(figure="autotune_vs_hand", model=args.model, ok=False, reason="no valid configuration")
            return

        # the final race: interleaved rounds of the autotuner's best (wb.benchmark) and the hand-made IR
        artifact = best.model
        target = wb.load(artifact) if best.backend != "torch_eager" else wb.load(args.model)
        ratios, quiet, wb_p50, ba_p50 = [], [], [], []
        for rnd in range(args.rounds):
            order = ("benchmark_app", "workbench") if rnd % 2 == 0 else ("workbench", "benchmark_app")
            if args.wait_quiet > 0:
                wait_for_quiet(args.quiet, args.wait_quiet)
            got = {}
            for tool in order:
                if tool == "benchmark_app":
                    got[tool] = run_benchmark_app(binary, int8_ir, "CPU", "latency", args.seconds)
                else:
                    r = wb.benchmark((target, best.backend, best.options), duration_s=args.seconds, warmup=3)[0]
                    got[tool] = {"p50_ms": r.latency.p50, "mean_ms": r.latency.mean, "min_ms": r.latency.min,
                                 "other_cpu_share": round(r.other_cpu_share, 3), "noisy": r.noisy}
            ratio = got["workbench"]["p50_ms"] / got["benchmark_app"]["p50_ms"]
            busy = max(got["workbench"]["other_cpu_share"], got["benchmark_app"]["other_cpu_share"])
            ratios.append(ratio)
            wb_p50.append(got["workbench"]["p50_ms"])
            ba_p50.append(got["benchmark_app"]["p50_ms"])
            if busy <= args.quiet:
                quiet.append(ratio)
            emit(figure="autotune_vs_hand_round", model=args.model, round=rnd, best=best.label,
                 workbench=got["workbench"], benchmark_app_nncf_int8=got["benchmark_app"], ratio=round(ratio, 4),
                 other_cpu_share=busy)
        claim = statistics.median(quiet or ratios)
        emit(figure="autotune_vs_hand", model=args.model, best=best.label,
             best_p50_ms=round(statistics.median(wb_p50), 4), hand_nncf_int8_p50_ms=round(statistics.median(ba_p50), 4),
             ratio=round(claim, 4), basis="quiet rounds" if quiet else "all rounds (none was quiet)",
             quiet_rounds=len(quiet), rounds=args.rounds, limit=args.limit, ok=claim <= args.limit)


if __name__ == "__main__":
    main()

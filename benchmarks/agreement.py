"""Does ``wb.benchmark`` agree with OpenVINO's own ``benchmark_app``?

For each model (default ``resnet18`` and ``mobilenetv2``) the same OpenVINO IR (static 1×3×224×224) is
timed on the same device with the same hint by ``benchmark_app`` (a subprocess, the console script
installed with the openvino package) and by ``wb.benchmark`` (this process), in interleaved rounds
(A B, B A, …) so that a change in the machine's load hits both alike. Each round prints a JSON line
with both tools' figures and how busy the CPUs were with other processes meanwhile; the summary line
per model gives the ratio of the medians (workbench / benchmark_app) over the quiet rounds (other
processes ≤ 10% of the CPUs for both tools; all rounds if none was quiet): the claim is ±5%.

    python benchmarks/agreement.py                      # 5 rounds of 3 s per tool and model
    python benchmarks/agreement.py --rounds 9 --seconds 5 --hint throughput
    WORKBENCH_QUICK=1 python benchmarks/agreement.py    # 2 rounds of 1 s: a smoke run

Before each round it waits (up to ``--wait-quiet`` seconds) for other processes to leave the CPUs.

On a shared machine the figures move with other people's load; the lines say how busy the CPUs were.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUICK = os.environ.get("WORKBENCH_QUICK", "") not in ("", "0")


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def wait_for_quiet(threshold: float, max_wait_s: float, probe_s: float = 1.0) -> float:
    """Wait (at most ``max_wait_s``) until other processes keep at most ``threshold`` of the CPUs busy
    over ``probe_s``; return the share seen last. This process is idle meanwhile, so the load is theirs."""
    import psutil

    deadline = time.monotonic() + max_wait_s
    while True:
        busy = psutil.cpu_percent(interval=probe_s) / 100
        if busy <= threshold or time.monotonic() >= deadline:
            return busy


def build_ir(name: str, folder: Path) -> Path:
    """The zoo model as an OpenVINO IR with a static batch of 1 (benchmark_app needs no -shape then)."""
    import openvino as ov

    import workbench as wb
    from workbench.steps import workspace

    workspace.set_workspace(folder)
    onnx_model = wb.export(wb.load(name), "onnx")
    ir = folder / f"{name}.xml"
    ov.save_model(ov.convert_model(str(onnx_model.path), input=[1, 3, 224, 224]), str(ir), compress_to_fp16=False)
    return ir


def benchmark_app_binary() -> str:
    beside = Path(sys.executable).with_name("benchmark_app")
    found = str(beside) if beside.exists() else shutil.which("benchmark_app")
    if not found:
        sys.exit("benchmark_app not found: pip install openvino (it installs the benchmark_app console script)")
    return found


def run_benchmark_app(binary: str, ir: Path, device: str, hint: str, seconds: float) -> dict[str, float]:
    import resource

    import psutil

    cmd = [binary, "-m", str(ir), "-d", device, "-hint", hint, "-t", str(max(1, round(seconds)))]
    sys_before, child_before, t0 = psutil.cpu_times(), resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    sys_after, child_after, wall = psutil.cpu_times(), resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter() - t0
    # CPU time of everything but benchmark_app (and this idle parent) while it ran, as wb.benchmark reports it
    busy = (sum(sys_after) - sys_after.idle - sys_after.iowait) - (sum(sys_before) - sys_before.idle - sys_before.iowait)
    child = (child_after.ru_utime + child_after.ru_stime) - (child_before.ru_utime + child_before.ru_stime)
    other = max(0.0, busy - child) / (wall * (psutil.cpu_count() or 1))
    figures = {}
    # benchmark_app prints latencies in ms, or in us when they are under a millisecond
    for key, pattern in (("p50_ms", r"Median:\s+([\d.]+) (ms|us)"), ("mean_ms", r"Average:\s+([\d.]+) (ms|us)"),
                         ("min_ms", r"Min:\s+([\d.]+) (ms|us)"), ("max_ms", r"Max:\s+([\d.]+) (ms|us)"),
                         ("throughput", r"Throughput:\s+([\d.]+) (FPS)"), ("count", r"Count:\s+(\d+) (iterations)"),
                         ("first_inference_ms", r"First inference took ([\d.]+) (ms|us)")):
        match = re.search(pattern, out)
        if match:
            figures[key] = float(match.group(1)) / (1000.0 if match.group(2) == "us" else 1.0)
    if "p50_ms" not in figures:
        raise RuntimeError(f"could not read benchmark_app's output:\n{out[-2000:]}")
    figures["other_cpu_share"] = round(other, 3)
    return figures


def run_workbench(ir: Path, device: str, hint: str, seconds: float) -> dict[str, object]:
    import workbench as wb

    mode = "sync" if hint == "latency" else "async"
    report = wb.benchmark((wb.load(ir), "openvino", {"device": device, "hint": hint.upper()}),
                          duration_s=seconds, mode=mode, warmup=1)
    r = report[0]
    if not r.ok:
        raise RuntimeError(r.error)
    return {"p50_ms": r.latency.p50, "mean_ms": r.latency.mean, "min_ms": r.latency.min, "max_ms": r.latency.max,
            "throughput": r.throughput, "count": r.iterations, "first_inference_ms": r.first_inference_s * 1e3,
            "noisy": r.noisy, "other_cpu_share": round(r.other_cpu_share, 3), "precision": r.precision,
            "threads": r.threads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "mobilenetv2"])
    parser.add_argument("--rounds", type=int, default=2 if QUICK else 5)
    parser.add_argument("--seconds", type=float, default=1.0 if QUICK else 3.0)
    parser.add_argument("--device", default="CPU")
    parser.add_argument("--hint", default="latency", choices=["latency", "throughput"])
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--quiet", type=float, default=0.10,
                        help="a round is quiet when other processes kept at most this share of the CPUs busy")
    parser.add_argument("--wait-quiet", type=float, default=0.0 if QUICK else 30.0,
                        help="before each round, wait up to this many seconds for the CPUs to be quiet")
    args = parser.parse_args()

    from workbench.analysis.bench import environment

    emit(figure="environment", **environment())
    binary = benchmark_app_binary()
    with tempfile.TemporaryDirectory(prefix="wb-agreement-") as tmp:
        for name in args.models:
            ir = build_ir(name, Path(tmp) / name)
            wb_p50, ba_p50, ratios, quiet = [], [], [], []
            for rnd in range(args.rounds):
                order = ("benchmark_app", "workbench") if rnd % 2 == 0 else ("workbench", "benchmark_app")
                load_before = wait_for_quiet(args.quiet, args.wait_quiet) if args.wait_quiet > 0 else None
                got = {}
                for tool in order:
                    start = time.perf_counter()
                    got[tool] = (run_benchmark_app(binary, ir, args.device, args.hint, args.seconds)
                                 if tool == "benchmark_app" else run_workbench(ir, args.device, args.hint, args.seconds))
                    got[tool]["wall_s"] = round(time.perf_counter() - start, 2)
                ratio = got["workbench"]["p50_ms"] / got["benchmark_app"]["p50_ms"]
                wb_p50.append(got["workbench"]["p50_ms"])
                ba_p50.append(got["benchmark_app"]["p50_ms"])
                ratios.append(ratio)
                busy = max(got["workbench"]["other_cpu_share"], got["benchmark_app"]["other_cpu_share"])
                if busy <= args.quiet:
                    quiet.append(ratio)
                emit(figure="agreement_round", model=name, round=rnd, order=list(order), hint=args.hint,
                     device=args.device, workbench=got["workbench"], benchmark_app=got["benchmark_app"],
                     p50_ratio=round(ratio, 4), other_cpu_share=busy, load_before_round=load_before)
            wb_med, ba_med = statistics.median(wb_p50), statistics.median(ba_p50)
            # The claim rests on rounds where the machine was quiet for both tools, when there are any:
            # other people's load moves a median by far more than 5% within seconds.
            basis = quiet or ratios
            claim = statistics.median(basis)
            emit(figure="agreement", model=name, hint=args.hint, device=args.device, rounds=args.rounds,
                 seconds_per_run=args.seconds, workbench_p50_ms=round(wb_med, 4), benchmark_app_p50_ms=round(ba_med, 4),
                 ratio_of_medians=round(wb_med / ba_med, 4), median_round_ratio=round(statistics.median(ratios), 4),
                 quiet_rounds=len(quiet), quiet_round_ratio=round(statistics.median(quiet), 4) if quiet else None,
                 ratio=round(claim, 4), basis="quiet rounds" if quiet else "all rounds (none was quiet)",
                 within=args.tolerance, agrees=abs(claim - 1) <= args.tolerance)


if __name__ == "__main__":
    main()

"""wb.sweep on a local Ray vs the same grid run sequentially in this process.

The grid (default 2 models × 2 runtimes × 2 precisions × 3 thread settings = 24 trials) runs twice, each
time from an empty workspace of its own (so both make their artifacts: export, conversion, INT8) and
with the result cache off: once with ``executor="sequential"``, once with ``executor="ray"`` on a Ray
started here with ``--num-cpus`` CPUs. Printed as JSON lines: one per run (wall time, Ray's start-up
time, trials done/failed), one per trial whose validation figures differ between the runs (none
expected), and a summary (validation figures equal, the wall-time ratio sequential / Ray).

    python benchmarks/sweep.py                     # the 24-trial grid, Ray on every core here
    python benchmarks/sweep.py --models digits-cnn --threads 1 --num-cpus 2 --order ray,sequential

The same call on a cluster: ``wb.sweep(..., executor="ray", address="auto")`` on the head node (or
``address="ray://head:10001"`` from outside), with the workspace on storage every node sees; see
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WORKBENCH_QUICK", "1")

FIGURES = ("passed", "rel_l2", "cosine", "max_abs", "top1")


def emit(**row: object) -> None:
    print(json.dumps(row), flush=True)


def run(executor: str, args: argparse.Namespace) -> tuple[object, float]:
    import workbench as wb
    from workbench.analysis.sweep import ray_session
    from workbench.steps.workspace import using_workspace

    threads = [None if t == "auto" else int(t) for t in args.threads]
    grid = {"steps": [("export", "onnx")], "runtimes": args.runtimes, "precisions": args.precisions,
            "threads": threads, "duration_s": args.duration, "cache": False, "progress": False}
    with tempfile.TemporaryDirectory(prefix=f"sweep-{executor}-") as ws, using_workspace(ws):
        start = time.perf_counter()
        if executor == "sequential":
            result = wb.sweep(args.models, executor="sequential", **grid)
            return result, 0.0
        with ray_session(num_cpus=args.num_cpus) as (ray, _):
            ray_start = time.perf_counter() - start
            result = wb.sweep(args.models, executor="ray", **grid)
        result.wall_s = time.perf_counter() - start  # Ray's start and shutdown count
        return result, ray_start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["digits-cnn", "digits-mobilenet"])
    ap.add_argument("--runtimes", nargs="+", default=["onnxruntime", "openvino"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    ap.add_argument("--threads", nargs="+", default=["1", "2", "auto"], help="thread counts; auto: the runtime's choice")
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: every core here)")
    ap.add_argument("--duration", type=float, default=0.3, help="timing budget per trial (s)")
    ap.add_argument("--order", default="sequential,ray")
    args = ap.parse_args()

    import workbench as wb

    results, starts = {}, {}
    for executor in args.order.split(","):
        result, ray_start = run(executor, args)
        results[executor], starts[executor] = result, ray_start
        emit(bench="sweep", executor=executor, trials=len(result), done=len(result.ok), failed=len(result.failed),
             wall_s=round(result.wall_s, 2), ray_start_s=round(ray_start, 2) if executor == "ray" else None,
             cpus=os.cpu_count(), workbench=wb.__version__)
        for t in result.failed:
            emit(bench="sweep", executor=executor, failed=t.label, error=t.error)
    seq, on_ray = results["sequential"], results["ray"]
    ray_start = starts["ray"]
    differ = 0
    for a, b in zip(seq.trials, on_ray.trials, strict=True):
        assert a.key == b.key, (a.label, b.label)
        fa, fb = [getattr(a, f) for f in FIGURES], [getattr(b, f) for f in FIGURES]
        if fa != fb or a.status != b.status:
            differ += 1
            emit(bench="sweep", differs=a.label, sequential=dict(zip(FIGURES, fa, strict=True)),
                 ray=dict(zip(FIGURES, fb, strict=True)))
    emit(bench="sweep", summary=True, trials=len(seq), validation_equal=differ == 0, differing=differ,
         sequential_s=round(seq.wall_s, 2), ray_s=round(on_ray.wall_s, 2),
         ratio_sequential_over_ray=round(seq.wall_s / on_ray.wall_s, 3),
         ray_start_s=round(ray_start, 2),
         ratio_without_ray_start=round(seq.wall_s / (on_ray.wall_s - ray_start), 3),
         nodes=on_ray.cluster.get("nodes"), cpus_per_node=on_ray.cluster.get("cpus_per_node"))
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())

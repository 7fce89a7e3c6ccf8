"""Import time of ``workbench`` (target: 0.3 s or less), printed as one JSON line.

Each measurement is a fresh interpreter (``python -X importtime`` would count the same thing); the
median of several runs is reported, with ``import numpy`` alone as the floor for comparison.

    python benchmarks/import_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

SNIPPET = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def measure(module: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", SNIPPET.format(mod=module)], capture_output=True, text=True,
                             check=True)
        times.append(float(out.stdout.strip()))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    wb = measure("workbench", args.runs)
    np_ = measure("numpy", args.runs)
    heavy = subprocess.run(
        [sys.executable, "-c", "import sys, workbench; print(','.join(m for m in ('torch', 'onnxruntime', 'openvino', "
         "'coremltools', 'triton', 'ipywidgets') if m in sys.modules))"],
        capture_output=True, text=True, check=True).stdout.strip()
    print(json.dumps({
        "benchmark": "import_time", "module": "workbench", "runs": args.runs,
        "median_s": round(statistics.median(wb), 4), "min_s": round(min(wb), 4), "max_s": round(max(wb), 4),
        "numpy_median_s": round(statistics.median(np_), 4), "target_s": 0.3,
        "meets_target": statistics.median(wb) <= 0.3, "heavy_modules_imported": heavy.split(",") if heavy else [],
    }))


if __name__ == "__main__":
    main()

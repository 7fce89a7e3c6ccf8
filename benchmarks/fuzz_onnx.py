"""A longer run of the structure-aware ONNX fuzzer (``tests/security/onnx_fuzz.py``).

Mutates the zoo's ONNX exports field by field (shapes, element types, attributes, node inputs and
outputs, opsets, initializers, external data) and runs each case through load → describe → size →
graph → ONNX Runtime in a worker process with a time limit per case. Prints one JSON line per
failure that is not a WorkbenchError (``"kind": "finding"``), then the figures::

    {"benchmark": "fuzz_onnx", "cases": 12000, "ok": ..., "workbench_errors": ...,
     "non_workbench_exceptions": 0, "hangs": 0, "crashes": 0, "seconds": 600.0, "seed": 1}

Usage: ``python benchmarks/fuzz_onnx.py [--seconds 600] [--cases N] [--seed 1] [--timeout 20]
[--runtimes onnxruntime,openvino]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("WORKBENCH_QUICK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.security.onnx_fuzz import fuzz, zoo_onnx_sources  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--cases", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds one case may take")
    ap.add_argument("--models", default="digits-cnn,tiny-transformer", help="zoo models to export and mutate")
    ap.add_argument("--runtimes", default="onnxruntime", help="runtimes each case runs on (e.g. onnxruntime,openvino)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-fuzz-") as tmp:
        sources = zoo_onnx_sources(Path(tmp) / "sources", tuple(args.models.split(",")))

        def on_case(i: int, verdict: dict) -> None:
            if verdict["verdict"] in ("other", "hang", "crash"):
                print(json.dumps({"kind": "finding", **verdict}), flush=True)

        report = fuzz(sources, seed=args.seed, cases=args.cases, seconds=args.seconds, timeout=args.timeout,
                      workdir=Path(tmp) / "work", on_case=on_case, runtimes=tuple(args.runtimes.split(",")))
    print(json.dumps({"benchmark": "fuzz_onnx", **report.summary(), "seed": args.seed, "models": args.models,
                      "runtimes": args.runtimes}))


if __name__ == "__main__":
    main()

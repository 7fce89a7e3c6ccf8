"""Every tiny Hugging Face family of ``tests/hf_tiny.py`` through the workbench: load, ONNX export (validated),
OpenVINO conversion and ORT dynamic INT8, each with PASS / FAIL / SKIPPED and the reason. One JSON line per
family, then a line of counts::

    python benchmarks/hf_families.py [--families bert gpt2 ...] [--no-quantize]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import hf_tiny  # noqa: E402 - the corpus lives with the tests


def _status(result: Any) -> str:
    v = result.validation
    if v is None or v.skipped:
        return f"SKIPPED: {v.skipped if v is not None else 'no validation'}"
    return "PASS" if v.passed else f"FAIL: {v.summary()}"


def run(family: str, root: Path, quantize: bool) -> dict[str, Any]:
    import workbench as wb

    row: dict[str, Any] = {"family": family}
    start = time.perf_counter()
    try:
        m = wb.load(hf_tiny.save(family, root / family))
        row.update(load="PASS", inputs=m.input_names)
        x = wb.export(m, "onnx", isolate=False, cache=False)
        row["onnx"] = _status(x)
        row["exporter"] = x.metadata.get("exporter")
        row["openvino"] = _status(wb.convert(x, "openvino", isolate=False, cache=False))
        if quantize:
            row["int8"] = _status(wb.quantize(x, "onnxruntime", isolate=False, cache=False))
    except Exception as err:  # noqa: BLE001 - a failed stage is a figure here
        row.setdefault("load", "PASS" if "inputs" in row else "FAIL")
        row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=list(hf_tiny.FAMILIES))
    parser.add_argument("--no-quantize", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="wb-hf-families-") as tmp:
        for family in args.families:
            rows.append(run(family, Path(tmp), not args.no_quantize))
            print(json.dumps(rows[-1]), flush=True)
    stages = ("load", "onnx", "openvino", "int8")
    print(json.dumps({"families": len(rows), **{s: sum(r.get(s) == "PASS" for r in rows) for s in stages}}))


if __name__ == "__main__":
    main()

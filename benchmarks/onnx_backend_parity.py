"""ONNX's backend node test cases through plain ONNX Runtime and through ``wb.runner(m, "onnxruntime")``.

The cases are generated from the ``onnx`` package's case definitions (``onnx.backend.test.case``: the
wheel does not ship the data). A case passes when the runtime loads the model, runs it on the case's
inputs and its outputs match the expected ones (ONNX's own rtol/atol; strings, sequences and optionals
compared element by element). Prints one JSON line per runtime path, then one with the cases that plain
ORT passes and the workbench does not::

    python benchmarks/onnx_backend_parity.py [--limit N] [--pattern SUBSTRING] [--openvino]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np


def cases(pattern: str | None = None) -> Iterator[Any]:
    """ONNX's node test cases (``TestCase`` with ``model``, ``data_sets``, ``rtol``, ``atol``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases

        for case in collect_testcases(None):
            if pattern is None or pattern in case.name:
                yield case


def same(expected: Any, got: Any, rtol: float, atol: float) -> bool:
    """Outputs equal the way ONNX's backend test compares them: arrays within rtol/atol (strings and
    other objects exactly), sequences element by element, optionals both absent or equal."""
    if expected is None or got is None:
        return expected is None and got is None
    if isinstance(expected, list | tuple):
        return (isinstance(got, list | tuple) and len(got) == len(expected)
                and all(same(e, g, rtol, atol) for e, g in zip(expected, got, strict=True)))
    if isinstance(expected, dict):
        return isinstance(got, dict) and expected.keys() == got.keys() and all(
            same(expected[k], got[k], rtol, atol) for k in expected)
    e, g = np.asarray(expected), np.asarray(got)
    if e.shape != g.shape:
        return False
    if e.dtype.kind in "OSU" or g.dtype.kind in "OSU":
        return bool(np.array_equal(e.astype(object), g.astype(object)))
    try:
        ef, gf = e.astype(np.float64), g.astype(np.float64)
    except (TypeError, ValueError):
        return bool(np.array_equal(e, g))
    return bool(np.allclose(gf, ef, rtol=rtol, atol=atol, equal_nan=True))


def _feeds(model: Any, inputs: list[Any]) -> dict[str, Any]:
    names = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    return dict(zip(names, inputs, strict=False))


def _plain(value: Any) -> Any:
    """What ``onnxruntime.backend`` does to an input: a NumPy scalar becomes a 0-d array."""
    return np.asarray(value) if isinstance(value, np.generic) else value


def run_plain_ort(path: Path, case: Any) -> bool:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    for inputs, outputs in case.data_sets:
        got = sess.run(None, _feeds(case.model, [_plain(v) for v in inputs]))
        if len(got) != len(outputs) or not all(same(e, g, case.rtol, case.atol) for e, g in zip(outputs, got, strict=True)):
            return False
    return True


def run_workbench(path: Path, case: Any, backend: str = "onnxruntime") -> bool:
    import workbench as wb
    from workbench.core import registry

    m = wb.load(path)
    # as validation runs a runtime: OpenVINO at fp32 (the plain run's INFERENCE_PRECISION_HINT), not bf16
    with wb.runner(m, backend, **registry.get_runtime(backend).reference_options()) as r:
        for inputs, outputs in case.data_sets:
            got = list(r.infer(_feeds(case.model, inputs)).values())
            if len(got) != len(outputs) or not all(same(e, g, case.rtol, case.atol)
                                                   for e, g in zip(outputs, got, strict=True)):
                return False
    return True


def run_plain_openvino(path: Path, case: Any) -> bool:
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    for inputs, outputs in case.data_sets:
        res = compiled([_plain(v) for v in inputs])
        got = [res[o] for o in compiled.outputs]
        if len(got) != len(outputs) or not all(same(e, g, case.rtol, case.atol) for e, g in zip(outputs, got, strict=True)):
            return False
    return True


def passes(fn: Callable[[Path, Any], bool], path: Path, case: Any) -> tuple[bool, str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(path, case), ""
    except Exception as err:  # noqa: BLE001 - a failure to load or run is a failed case
        return False, f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"


def compare(selected: list[Any], paths: list[tuple[str, Callable, Callable]]) -> dict[str, Any]:
    """For each (label, plain runner, workbench runner): the cases each passes and those lost."""
    import onnx

    report: dict[str, Any] = {"cases": len(selected)}
    with tempfile.TemporaryDirectory(prefix="wb-onnx-cases-") as tmp:
        files = []
        for case in selected:
            path = Path(tmp) / f"{case.name}.onnx"
            onnx.save_model(case.model, str(path))
            files.append(path)
        for label, plain, ours in paths:
            plain_ok, ours_ok, lost = 0, 0, {}
            for case, path in zip(selected, files, strict=True):
                p, _ = passes(plain, path, case)
                o, why = passes(ours, path, case)
                plain_ok += p
                ours_ok += o
                if p and not o:
                    lost[case.name] = why
            report[label] = {"plain": plain_ok, "workbench": ours_ok, "lost": lost}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--pattern", default=None)
    parser.add_argument("--openvino", action="store_true", help="also OpenVINO (plain vs wb.runner)")
    args = parser.parse_args()
    selected = list(cases(args.pattern))[: args.limit]
    paths: list[tuple[str, Callable, Callable]] = [("onnxruntime", run_plain_ort, run_workbench)]
    if args.openvino:
        paths.append(("openvino", run_plain_openvino, lambda p, c: run_workbench(p, c, "openvino")))
    report = compare(selected, paths)
    for label, _, _ in paths:
        r = report[label]
        print(json.dumps({"runtime": label, "cases": report["cases"], "plain_passes": r["plain"],
                          "workbench_passes": r["workbench"], "lost": len(r["lost"])}))
    for label, _, _ in paths:
        print(json.dumps({"runtime": label, "lost_cases": report[label]["lost"]}))


if __name__ == "__main__":
    main()

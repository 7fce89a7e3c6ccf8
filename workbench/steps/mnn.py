"""MNN's step: ONNX → ``.mnn`` with MNN's converter (MNNConvert, shipped in the ``mnn`` wheel).

* ``wb.convert(model, "mnn")``: fp32 weights; ``fp16_weights=True`` stores them in fp16 (MNNConvert's
  ``--fp16``, half the size); ``weight_bits=8`` quantizes them to 8 bits (``--weightQuantBits 8``, about a
  quarter; MNN dequantizes at load and computes in float). A torch model is exported to ONNX first
  (the registry's route to ONNX, unvalidated: the result is validated against the original).

The converter is called as ``_tools.mnnconvert`` (MNN's C++ converter) in a child interpreter, not
through ``MNN.tools``: that package's logger sends usage data to Alibaba's servers and, when
``aliyun-log-python-sdk`` is missing, runs ``pip install`` on import (which downgrades protobuf).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from workbench.core.errors import StepError
from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.steps.base import StepSpec, as_model, offer, run_step
from workbench.steps.convert import TORCH_FORMATS, need_extra, need_format, via_onnx

TARGET = "mnn"
#: MNNConvert's own entry point, without MNN.tools' telemetry (see the module docstring)
_CONVERT = "import sys, _tools; _tools.mnnconvert(sys.argv)"  # its return value is no exit status


@register_step("convert", TARGET, accepts=("onnx", *TORCH_FORMATS), produces=TARGET, aliases=("mnnconvert",),
               requires=(TARGET,))
@offer("MNN", ticked=False)
def convert_mnn(model: Model, *, fp16_weights: bool = False, weight_bits: int | None = None,
                path: str | Path | None = None, isolate: bool = True, timeout: float | None = None,
                cache: bool = True, validate: bool = True) -> Model:
    """MNN from ONNX (``fp16_weights=True``: FP16 weights; ``weight_bits=8``: 8-bit weights)."""
    model = as_model(model)
    need_format(model, ("onnx", *TORCH_FORMATS), TARGET, "export it to ONNX first: wb.export(model, 'onnx')")
    model = via_onnx(model, isolate=isolate, timeout=timeout, cache=cache)
    need_extra("MNN", TARGET)
    if weight_bits is not None and (not isinstance(weight_bits, int) or not 2 <= weight_bits <= 8):
        raise StepError(f"weight_bits must be an integer from 2 to 8, not {weight_bits!r}",
                        "use weight_bits=8 (or leave it out for float weights)")
    if fp16_weights and weight_bits is not None:
        raise StepError("fp16_weights and weight_bits both compress the weights", "choose one of them")
    options: dict[str, Any] = {"fp16_weights": bool(fp16_weights), "weight_bits": weight_bits}
    # the tolerance class of the result: 5-8 bit weights as int8, 2-4 bit as int4
    precision = ("int8" if weight_bits >= 5 else "int4") if weight_bits else ("fp16" if fp16_weights else None)
    spec = StepSpec(f"convert:{TARGET}", options, ".mnn", _write_mnn, dict(options),
                    tag=f"w{weight_bits}" if weight_bits else ("fp16" if fp16_weights else ""),
                    precision=precision, tools=(TARGET,))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


# -- writer (runs in the worker) -------------------------------------------------------------------
def _write_mnn(model: Model, tmp: Path, *, fp16_weights: bool, weight_bits: int | None) -> dict[str, Any]:
    import importlib.metadata as md

    cmd = [sys.executable, "-c", _CONVERT, "-f", "ONNX", "--modelFile", str(model.path), "--MNNModel", str(tmp),
           "--bizCode", "workbench"]
    if fp16_weights:
        cmd.append("--fp16")
    if weight_bits is not None:
        cmd += ["--weightQuantBits", str(weight_bits)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    log = f"{done.stdout}\n{done.stderr}"
    if done.returncode != 0 or not tmp.is_file() or not tmp.stat().st_size or "Converted Success" not in log:
        lines = [ln.strip() for ln in log.splitlines() if ln.strip() and "device supports" not in ln]
        unsupported = [ln for ln in lines if "not support" in ln.lower() or "unsupported" in ln.lower()]
        detail = " ".join((unsupported or lines)[-4:])[:600]
        tmp.unlink(missing_ok=True)
        raise StepError(f"MNNConvert could not convert {model.name} (exit {done.returncode}): {detail or 'no message'}",
                        "MNN lacks an operator of this model: run it on ONNX Runtime / OpenVINO, or export "
                        "with another opset")
    return {"mnn_version": md.version("mnn")}

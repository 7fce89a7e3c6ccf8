"""ncnn's step: torch → ncnn (``.ncnn.param`` + ``.ncnn.bin``) with pnnx.

* ``wb.convert(model, "ncnn", fp16_weights=False)``: an ``nn.Module`` or ExportedProgram is traced to
  TorchScript at the example inputs' shapes (batch 1: ncnn runs one sample at a time), and pnnx
  (``pnnx`` on PyPI, a self-contained binary) lowers it to ncnn. ``fp16_weights=True`` stores the
  weights in fp16 (pnnx's default; half the size). The result's blobs take the source's input and output
  names, and its ``Input`` layers declare their shapes, so the files describe themselves.

INT8 is not offered: ncnn's INT8 needs its C++ tools ``ncnn2table`` (calibration) and ``ncnn2int8``,
which neither the ``ncnn`` nor the ``pnnx`` wheel ships (build ncnn from source with
``NCNN_BUILD_TOOLS=ON`` to get them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from workbench.core.errors import StepError
from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.formats.ncnn import parse_param
from workbench.steps.base import StepSpec, as_model, offer, run_step
from workbench.steps.convert import need_extra, need_format

TARGET = "ncnn"
SOURCES = ("torch", "exported_program")
#: pnnx's names for input element types
PNNX_DTYPES = {"float32": "f32", "float64": "f64", "float16": "f16", "int64": "i64", "int32": "i32",
               "int16": "i16", "int8": "i8", "uint8": "u8", "bool": "u8"}
#: a blob name ncnn reads back (its parser reads names with %255s: no whitespace, under 256 chars)
_BLOB_NAME = re.compile(r"^[^\s=,]{1,255}$")


@register_step("convert", TARGET, accepts=SOURCES, produces=TARGET, aliases=("pnnx",), requires=("pnnx", TARGET))
@offer("ncnn (pnnx)", ticked=False)
def convert_ncnn(model: Model, *, fp16_weights: bool = False, optlevel: int = 2, path: str | Path | None = None,
                 isolate: bool = True, timeout: float | None = None, cache: bool = True,
                 validate: bool = True) -> Model:
    """ncnn .param + .bin from torch through pnnx (``fp16_weights=True``: weights stored in fp16)."""
    model = as_model(model)
    need_format(model, SOURCES, TARGET, "load the PyTorch model (pnnx traces TorchScript), e.g. wb.load('resnet18')")
    need_extra("pnnx", TARGET)
    if optlevel not in (0, 1, 2):
        raise StepError(f"pnnx optlevel must be 0, 1 or 2, not {optlevel!r}", "leave it at 2 (all graph rewrites)")
    options: dict[str, Any] = {"fp16_weights": bool(fp16_weights), "optlevel": optlevel}
    spec = StepSpec(f"convert:{TARGET}", options, ".ncnn.param", _write_ncnn, dict(options),
                    tag="fp16" if fp16_weights else "", precision="fp16" if fp16_weights else None,
                    tools=("pnnx", TARGET, "torch"))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


# -- writer (runs in the worker) -------------------------------------------------------------------
def _write_ncnn(model: Model, tmp: Path, *, fp16_weights: bool, optlevel: int) -> dict[str, Any]:
    import numpy as np
    import pnnx
    import torch

    native = model.native()
    if model.format == "exported_program":
        native = native.module()
    feeds = model.example_inputs()
    arrays = [np.ascontiguousarray(feeds[n][:1]) for n in model.input_names]  # ncnn: one sample
    unknown = [str(a.dtype) for a in arrays if str(a.dtype) not in PNNX_DTYPES]
    if unknown:
        raise StepError(f"pnnx takes no inputs of type {', '.join(unknown)}", "give the model float or integer inputs")
    shapes = ",".join(f"[{','.join(str(d) for d in a.shape)}]{PNNX_DTYPES[str(a.dtype)]}" for a in arrays)
    with tempfile.TemporaryDirectory(prefix="wb-pnnx-") as work_dir, torch.no_grad():
        work = Path(work_dir)
        try:
            traced = torch.jit.trace(native, tuple(torch.from_numpy(a) for a in arrays), strict=False,
                                     check_trace=False)
        except Exception as err:  # noqa: BLE001 - tracing fails in many ways (control flow, dict outputs)
            raise StepError(f"TorchScript tracing of {model.name} failed (pnnx reads TorchScript): "
                            f"{type(err).__name__}: {str(err).strip()[:300]}",
                            "make the model traceable (tensor inputs and outputs, no data-dependent control flow)") from None
        traced.save(str(work / "model.pt"))
        cmd = [pnnx.EXEC_PATH, "model.pt", f"inputshape={shapes}", "device=cpu", f"optlevel={optlevel}",
               f"fp16={int(fp16_weights)}", "ncnnparam=model.ncnn.param", "ncnnbin=model.ncnn.bin"]
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        param, weights = work / "model.ncnn.param", work / "model.ncnn.bin"
        if done.returncode != 0 or not param.is_file() or not weights.is_file():
            tail = " ".join((done.stderr or done.stdout or "").strip().splitlines()[-4:])[:600]
            raise StepError(f"pnnx could not convert {model.name} (exit {done.returncode}): {tail or 'no message'}",
                            "pnnx lacks a conversion for an operator of this model: see pnnx's issues, or run it "
                            "on ONNX Runtime / OpenVINO")
        text = param.read_text(encoding="utf-8")
        layers = parse_param(text, "pnnx's .param")
        foreign = sorted({layer.type for layer in layers if "." in layer.type or "::" in layer.type})
        if foreign:  # pnnx keeps ops ncnn has no layer for under their torch names
            raise StepError(f"pnnx left operators ncnn cannot run: {', '.join(foreign)}",
                            "run this model on ONNX Runtime / OpenVINO, or replace those operators")
        text = _self_describing(text, layers, model, arrays)
        tmp.write_text(text, encoding="utf-8")
        shutil.move(str(weights), str(tmp.with_suffix(".bin")))
    return {"pnnx_version": str(getattr(pnnx, "__version__", "")) or None}


def _self_describing(text: str, layers: list[Any], model: Model, arrays: list[Any]) -> str:
    """The .param with the source's blob names (pnnx writes in0…, out0…) and shapes on its Input layers."""
    from workbench.formats.ncnn import outputs_of

    taken = {b for layer in layers for b in (*layer.inputs, *layer.outputs)}
    renames: dict[str, str] = {}
    ins = [layer.outputs[0] for layer in layers if layer.type == "Input" and layer.outputs]
    outs = outputs_of(layers)
    for old, new in [*zip(ins, model.input_names, strict=False), *zip(outs, model.output_names, strict=False)]:
        if old != new and _BLOB_NAME.match(new) and new not in taken and new not in renames.values():
            renames[old] = new
    shapes = dict(zip(ins, [a.shape[1:] for a in arrays], strict=False))
    lines = text.splitlines()
    for i, line in enumerate(lines[2:], start=2):
        parts = line.split()
        if len(parts) < 4:
            continue
        n_blobs = int(parts[2]) + int(parts[3])
        blobs = parts[4:4 + n_blobs]
        if parts[0] == "Input" and len(parts) == 4 + n_blobs and blobs and blobs[0] in shapes:
            dims = list(shapes[blobs[0]])[::-1]  # ncnn: w, h, (d,) c
            keys = ["0", "1", "11", "2"] if len(dims) == 4 else ["0", "1", "2"][:len(dims)]
            parts += [f"{k}={d}" for k, d in zip(keys, dims, strict=False)] if len(dims) <= 4 else []
        parts[4:4 + n_blobs] = [renames.get(b, b) for b in blobs]
        lines[i] = " ".join(parts)
    return "\n".join(lines) + "\n"

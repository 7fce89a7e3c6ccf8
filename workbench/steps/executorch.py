"""ExecuTorch's steps: a torch model → an ExecuTorch program (``.pte``), lowered to XNNPACK.

* ``wb.convert(model, "executorch", delegate="xnnpack" | "portable")``: ``torch.export`` → Edge dialect →
  XNNPACK partition (``to_edge_transform_and_lower``) → ``.pte``; ``"portable"`` keeps ExecuTorch's own
  portable kernels (no delegate: slower, every operator visible in the graph).
* ``wb.quantize(model, "executorch", method)``: ``pt2e`` (INT8 weights and activations with the PT2E
  ``XNNPACKQuantizer``, calibrated on the model's data; the default) or ``dynamic`` (INT8 weights,
  activations quantized at run time), then lowered to XNNPACK the same way.

The program is specialised to the example inputs' shapes (batch included), as a mobile app's is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.core.errors import StepError
from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.formats.executorch import INSTALL, IO_METHOD
from workbench.steps.base import StepSpec, as_model, offer, run_step
from workbench.steps.convert import TORCH_FORMATS, need_extra, need_format
from workbench.steps.quantize import QuantizeMethods, check_options, need, need_module

TARGET = "executorch"
DELEGATES = ("xnnpack", "portable")


@register_step("convert", TARGET, accepts=TORCH_FORMATS, produces=TARGET, aliases=("pte", "et"),
               requires=(TARGET,))
@offer("ExecuTorch (XNNPACK)", ticked=False)
def convert_executorch(model: Model, *, delegate: str = "xnnpack", path: str | Path | None = None,
                       isolate: bool = True, timeout: float | None = None, cache: bool = True,
                       validate: bool = True) -> Model:
    """An ExecuTorch program (.pte) from torch, lowered to XNNPACK (``delegate="portable"``: not lowered)."""
    model = as_model(model)
    need_format(model, TORCH_FORMATS, TARGET,
                "ExecuTorch exports from PyTorch: load the torch model (wb.load(module, example_inputs=...))")
    need_extra(TARGET, TARGET)
    if delegate not in DELEGATES:
        raise StepError(f"unknown ExecuTorch delegate {delegate!r}", f"use one of {', '.join(DELEGATES)}")
    opts = {"delegate": delegate}
    spec = StepSpec(f"convert:{TARGET}", opts, ".pte", write_pte, {"delegate": delegate},
                    tag="" if delegate == "xnnpack" else delegate, precision="fp32", tools=(TARGET, "torch"))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


@register_step("quantize", TARGET, accepts=TORCH_FORMATS, produces=TARGET, aliases=("xnnpack", "pte"),
               methods=("pt2e", "dynamic"), requires=(TARGET, "torchao"))
@offer("ExecuTorch XNNPACK INT8", ticked=False)
def quantize_executorch(model: Model, method: str | None = None, **options: Any) -> Model:
    """PT2E INT8 with ExecuTorch's XNNPACKQuantizer, lowered to a .pte: ``pt2e`` (default) or ``dynamic``."""
    return METHODS.run(model, method, **options)


def _plan(method: str) -> Any:
    def plan(model: Model, options: dict[str, Any]) -> StepSpec:
        need(model, TORCH_FORMATS, "ExecuTorch quantization",
             "quantize the PyTorch model (wb.load(module, example_inputs=...)), before it is exported")
        need_module(TARGET, INSTALL)
        need_module("torchao", f"pip install torchao (PT2E quantization lives there), or {INSTALL}")
        opts = check_options(options, {"per_channel": True}, f"executorch {method}")
        return StepSpec(f"quantize:{TARGET}", {"method": method, "quantizer": "XNNPACKQuantizer", **opts}, ".pte",
                        write_pte, {"delegate": "xnnpack", "quantize": method, "per_channel": opts["per_channel"]},
                        tag="int8" if method == "pt2e" else "int8-dynamic", precision="int8",
                        tools=(TARGET, "torch", "torchao"))

    return plan


METHODS = QuantizeMethods(TARGET, {"pt2e": _plan("pt2e"), "dynamic": _plan("dynamic")}, default="pt2e",
                          calibrated=("pt2e",))


# -- the writer (runs in the worker) ----------------------------------------------------------------
def write_pte(model: Model, tmp: Path, *, delegate: str, quantize: str | None = None, per_channel: bool = True,
              calibration: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """torch → (PT2E INT8) → ``torch.export`` → Edge → XNNPACK → ``.pte`` at ``tmp``."""
    import warnings

    import executorch
    import numpy as np
    import torch
    from executorch.exir import to_edge_transform_and_lower

    def args_of(feeds: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names)

    native = model.native()
    module = native.module() if model.format == "exported_program" else native
    example = args_of(model.example_inputs())
    failed = "torch.export"
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if quantize is not None:
                failed = "PT2E quantization"
                module = _quantized(module, example, quantize, per_channel,
                                    [args_of(f) for f in calibration or []])
                failed = "torch.export"
            ep = torch.export.export(module, example)
            failed = "lowering to ExecuTorch"
            partitioners = []
            if delegate == "xnnpack":
                from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

                partitioners.append(XnnpackPartitioner())
            io = {"inputs": model.input_names, "outputs": [s.name for s in model.outputs],
                  "precision": "int8" if quantize else "fp32",
                  "producer": f"workbench via executorch {getattr(executorch, '__version__', '')}".strip()}
            edge = to_edge_transform_and_lower(ep, partitioner=partitioners,
                                               constant_methods={IO_METHOD: json.dumps(io)})
            program = edge.to_executorch()
    except StepError:
        raise
    except Exception as err:  # noqa: BLE001 - torch.export / ExecuTorch raise many types
        text = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        fixes = {"PT2E quantization": "the XNNPACKQuantizer could not quantize this model: try method='dynamic', "
                                      "or the fp32 program (wb.convert(m, 'executorch'))",
                 "torch.export": "torch.export must capture the whole model (no data-dependent Python control "
                                 "flow): check torch.export.export(module, example_inputs) alone",
                 "lowering to ExecuTorch": "an operator has no ExecuTorch kernel or XNNPACK support: try "
                                           "delegate='portable', or another runtime"}
        raise StepError(f"ExecuTorch: {failed} of {model.name} failed: {type(err).__name__}: {text}",
                        fixes[failed]) from err
    tmp.write_bytes(program.buffer)
    delegated = sorted({d.id for p in program.executorch_program.execution_plan for d in p.delegates})
    return {"executorch_delegates": delegated,
            **({"calibration_samples": len(calibration)} if calibration else {})}


def _quantized(module: Any, example: tuple[Any, ...], method: str, per_channel: bool,
               calibration: list[tuple[Any, ...]]) -> Any:
    """The module after PT2E quantization with ExecuTorch's XNNPACKQuantizer (observers calibrated on
    ``calibration`` for ``pt2e``; weights only observed for ``dynamic``)."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    graph = torch.export.export(module, example).module()
    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=per_channel,
                                                           is_dynamic=method == "dynamic"))
    prepared = prepare_pt2e(graph, quantizer)
    for args in calibration or [example]:
        prepared(*args)
    return convert_pt2e(prepared)

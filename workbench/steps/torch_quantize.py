"""PyTorch's own quantization: ``wb.quantize(model, "torch", method)``.

* ``dynamic``: ``torch.ao`` dynamic INT8 for ``nn.Linear``, saved as TorchScript;
* ``pt2e``: PyTorch 2 export quantization with the X86 Inductor quantizer (needs ``torchao``), calibrated,
  saved as an ExportedProgram.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.formats.torchscript import TorchScriptFormat
from workbench.steps.base import StepSpec
from workbench.steps.quantize import QuantizeMethods, check_options, need, need_module

TOOL = "torch"


def _result_format(options: dict[str, Any]) -> str:
    return "exported_program" if options.get("method") == "pt2e" else TorchScriptFormat.name


@register_step("quantize", TOOL, accepts=("torch", "hf", "exported_program"), produces=_result_format,
               aliases=("pytorch",), methods=("dynamic", "pt2e"), requires=(TOOL,))
def quantize_torch(model: Model, method: str | None = None, **options: Any) -> Model:
    """torch quantization: ``dynamic`` (default; TorchScript out) or ``pt2e`` (ExportedProgram out)."""
    return METHODS.run(model, method, **options)


# -- plans: validate options, name the result ------------------------------------------------------
def _plan_dynamic(model: Model, options: dict[str, Any]) -> StepSpec:
    need(model, ("torch", "hf"), "torch dynamic quantization", "load the PyTorch model")
    opts = check_options(options, {"dtype": "qint8"}, "torch dynamic")
    return StepSpec(f"quantize:{TOOL}", {"method": "dynamic", **opts}, ".pt", _write_torch_dynamic, dict(opts),
                    tag="int8-dynamic", precision="int8", tools=("torch",))


def _plan_pt2e(model: Model, options: dict[str, Any]) -> StepSpec:
    need(model, ("torch", "exported_program"), "PyTorch 2 export quantization", "load the PyTorch model")
    need_module("torchao", "pip install torchao (pt2e quantization moved from torch.ao to torchao), "
                               "or use method='dynamic'")
    opts = check_options(options, {"dynamic": False}, "torch pt2e")
    return StepSpec(f"quantize:{TOOL}", {"method": "pt2e", "quantizer": "X86InductorQuantizer", **opts}, ".pt2",
                    _write_torch_pt2e, dict(opts), tag="int8-pt2e", precision="int8", tools=("torch", "torchao"))


METHODS = QuantizeMethods(TOOL, {"dynamic": _plan_dynamic, "pt2e": _plan_pt2e}, default="dynamic",
                          calibrated=("pt2e",))


# -- writers (run in the worker) -------------------------------------------------------------------
def _write_torch_dynamic(model: Model, tmp: Path, *, dtype: str) -> dict[str, Any]:
    import warnings

    import numpy as np
    import torch

    from workbench.formats.torchscript import SPEC_FILE, specs_to_json

    module = model.native()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=getattr(torch, dtype))
        feeds = model.example_inputs()
        args = tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names)
        with torch.no_grad():
            traced = torch.jit.trace(q, args, strict=False, check_trace=False)
    torch.jit.save(traced, str(tmp), _extra_files={SPEC_FILE: specs_to_json(model.inputs, model.outputs)})
    return {}


def _write_torch_pt2e(model: Model, tmp: Path, *, calibration: list[dict[str, Any]], dynamic: bool) -> dict[str, Any]:
    import warnings

    import numpy as np
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    from workbench.formats.torchscript import SPEC_FILE, specs_to_json

    def args_of(feeds: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names)

    native = model.native()
    module = native.module() if model.format == "exported_program" else native
    example = args_of(model.example_inputs())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = torch.export.export(module, example).module()
        quantizer = X86InductorQuantizer()
        quantizer.set_global(get_default_x86_inductor_quantization_config(is_dynamic=dynamic))
        prepared = prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            for feeds in calibration:
                prepared(*args_of(feeds))
        converted = convert_pt2e(prepared)
        ep = torch.export.export(converted, example)
    # the graph is specialised to the example's shapes: record those, not the dynamic ones
    from workbench.core.model import TensorSpec

    fixed = [TensorSpec(s.name, tuple(a.shape), s.dtype) for s, a in zip(model.inputs, example, strict=True)]
    torch.export.save(ep, str(tmp), extra_files={SPEC_FILE: specs_to_json(fixed, model.outputs)})
    return {"calibration_samples": len(calibration)}

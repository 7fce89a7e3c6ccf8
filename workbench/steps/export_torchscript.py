"""Export a torch model to TorchScript (``torch.jit.trace`` or ``torch.jit.script``), saved as ``.pt``
with the input and output specs beside the code (``workbench.formats.torchscript``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.errors import StepError
from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.steps.base import StepSpec, as_model, run_step
from workbench.steps.export import (
    TORCH_FORMATS,
    example_args,
    explain_export_error,
    module_of,
    need_torch_model,
)

METHODS = ("trace", "script")


@register_step("export", "torchscript", accepts=TORCH_FORMATS, produces="torchscript")
def export_torchscript(model: Model, *, path: str | Path | None = None, method: str = "trace", isolate: bool = True,
                       timeout: float | None = None, cache: bool = True, validate: bool = True) -> Model:
    """TorchScript, traced (``method="trace"``, the default) or scripted (``method="script"``)."""
    model = as_model(model)
    need_torch_model(model)
    if method not in METHODS:
        raise StepError(f"unknown TorchScript method {method!r}", "use 'trace' or 'script'")
    spec = StepSpec("export:torchscript", {"method": method}, ".pt", _write_torchscript, {"method": method},
                    tools=("torch",))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


def _write_torchscript(model: Model, tmp: Path, *, method: str) -> dict[str, Any]:
    import torch

    from workbench.formats.torchscript import SPEC_FILE, specs_to_json

    module = module_of(model)
    args = example_args(model)
    try:
        if method == "script":
            scripted = torch.jit.script(module)
        else:
            with torch.no_grad():
                scripted = torch.jit.trace(module, args, strict=False, check_trace=False)
    except Exception as err:  # noqa: BLE001
        other = "trace" if method == "script" else "script"
        base = explain_export_error(err, module, args, exporter=f"TorchScript {method}", opset=None)
        raise StepError(base.problem, f"try method={other!r}, or export to ONNX / ExportedProgram instead") from None
    torch.jit.save(scripted, str(tmp), _extra_files={SPEC_FILE: specs_to_json(model.inputs, model.outputs)})
    return {}

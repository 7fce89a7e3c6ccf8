"""``wb.convert(model, "onnx-simplified")``: ONNX → a simplified ONNX (constant folding, dead-node removal,
fusions) with ``tool="onnxslim"`` (default; installed with the ``optimize`` extra) or ``tool="onnxsim"``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from workbench.core.errors import StepError
from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.steps.base import StepSpec, as_model, run_step
from workbench.steps.convert import need_extra, need_format

TOOLS = ("onnxslim", "onnxsim")


@register_step("convert", "onnx-simplified", accepts=("onnx",), produces="onnx",
               aliases=("onnxslim", "onnxsim", "simplify"))
def convert_simplified(model: Model, *, target: str = "onnx-simplified", tool: str | None = None,
                       path: str | Path | None = None, isolate: bool = True, timeout: float | None = None,
                       cache: bool = True, validate: bool = True) -> Model:
    """A simplified ONNX graph (onnxslim or onnxsim); ``target="onnxsim"`` picks that tool."""
    model = as_model(model)
    if target in TOOLS and tool is None:
        tool = target
    need_format(model, ("onnx",), "onnx-simplified", "export it first: wb.export(model, 'onnx')")
    tool = tool or _default_simplifier()
    if tool not in TOOLS:
        raise StepError(f"unknown ONNX simplifier {tool!r}", "use tool='onnxslim' or tool='onnxsim'")
    need_extra(tool, "optimize")
    spec = StepSpec("convert:onnx-simplified", {"tool": tool}, ".onnx", _write_simplified, {"tool": tool},
                    tag="simplified", tools=(tool, "onnx"))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


def _default_simplifier() -> str:
    for tool in TOOLS:
        if importlib.util.find_spec(tool) is not None:
            return tool
    return TOOLS[0]  # need_module then says how to install it


# -- the writer (runs in the worker) ------------------------------------------------------------
def _write_simplified(model: Model, tmp: Path, *, tool: str) -> dict[str, Any]:
    import onnx

    before = len(model.native().graph.node)
    if tool == "onnxslim":
        import onnxslim

        slim = onnxslim.slim(str(model.path))
        onnx.save_model(slim, str(tmp))
    else:
        import onnxsim

        simplified, ok = onnxsim.simplify(model.native())
        if not ok:
            raise StepError("onnxsim could not verify the simplified model", "use tool='onnxslim'")
        onnx.save_model(simplified, str(tmp))
    after = len(onnx.load_model(str(tmp), load_external_data=False).graph.node)
    return {"nodes_before": before, "nodes_after": after}

"""torch.export ExportedProgram models (``.pt2`` archives written by ``torch.export.save``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import ModelFormatError
from workbench.core.registry import Format, register_format

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.graph import Graph
from workbench.core.model import Model, TensorSpec


def _dim(d: Any, i: int) -> int | str:
    from torch.fx.experimental.symbolic_shapes import is_concrete_int

    if is_concrete_int(d):
        return int(d)
    return "batch" if i == 0 else str(d)  # a SymInt: dynamic


def specs_of(ep: Any) -> tuple[list[TensorSpec], list[TensorSpec]]:
    from workbench.formats.torch_module import torch_dtype_name

    user_inputs = set(ep.graph_signature.user_inputs)
    inputs, outputs = [], []
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            val = node.meta.get("val")
            if val is not None and hasattr(val, "shape"):
                inputs.append(TensorSpec(node.name, tuple(_dim(d, i) for i, d in enumerate(val.shape)),
                                         torch_dtype_name(val.dtype)))
    user_outputs = list(ep.graph_signature.user_outputs)
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    vals = out_node.args[0] if isinstance(out_node.args[0], tuple | list) else (out_node.args[0],)
    n_user = len(user_outputs)
    vals = list(vals)[-n_user:] if n_user else list(vals)
    single = len(vals) == 1
    for i, v in enumerate(vals):
        val = getattr(v, "meta", {}).get("val")
        if val is not None and hasattr(val, "shape"):
            name = "output" if single else f"output_{i}"
            outputs.append(TensorSpec(name, tuple(_dim(d, j) for j, d in enumerate(val.shape)),
                                      torch_dtype_name(val.dtype)))
    return inputs, outputs


def _load_torchao_ops() -> bool:
    """Register torchao's quantized ops (used by pt2e-quantized programs), if torchao is installed."""
    import importlib.util

    if importlib.util.find_spec("torchao") is None:
        return False
    try:
        import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken torchao install: the original error is the one to show
        return False
    return True


def load(path: Path, **_: Any) -> Model:
    import torch

    from workbench.formats.torchscript import SPEC_FILE, specs_from_json

    extra = {SPEC_FILE: ""}
    try:
        try:
            ep = torch.export.load(str(path), extra_files=extra)
        except Exception:
            if not _load_torchao_ops():
                raise
            ep = torch.export.load(str(path), extra_files=extra)  # a pt2e-quantized program: its ops now exist
    except Exception as err:  # noqa: BLE001
        first = str(err).strip().splitlines()[0][:200]
        raise ModelFormatError(f"{path} could not be loaded as an ExportedProgram: {first}",
                               "save it again with torch.export.save (same torch version)") from None
    inputs, outputs = specs_of(ep)
    if extra[SPEC_FILE]:  # written by wb.export: the original input/output names
        saved_in, saved_out = specs_from_json(extra[SPEC_FILE])
        if len(saved_out) == len(outputs):
            outputs = [TensorSpec(s.name, o.shape, o.dtype) for s, o in zip(saved_out, outputs, strict=True)]
        if [s.name for s in saved_in] == [s.name for s in inputs]:
            inputs = saved_in
    meta = {"nodes": sum(1 for n in ep.graph.nodes if n.op == "call_function")}
    return Model("exported_program", name=path.stem, path=path, inputs=inputs, outputs=outputs, native=ep,
                 metadata=meta)


@register_format
class ExportedProgramFormat(Format):
    name = "exported_program"
    description = "torch.export ExportedProgram (.pt2)"
    suffixes = (".pt2",)

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def graph(cls, model: Model) -> Graph:
        from workbench.core.graph import Graph

        return Graph.from_model(model)

"""Export a torch model: TorchScript (trace or script), torch.export ExportedProgram, ONNX.

ONNX uses the dynamo-based exporter (``torch.onnx.export(dynamo=True)``) with the TorchScript-based
exporter as an explicit fallback (``exporter="torchscript"``). Dynamic axes follow the model's input
specs (``batch``, ``sequence``) unless ``dynamic=False``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from workbench.errors import StepError
from workbench.model import LineageEntry, Model
from workbench.workspace import commit, tmp_sibling, unique_path

TARGETS = ("onnx", "torchscript", "exported_program")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "exported_program": ".pt2"}
TORCH_FORMATS = ("torch", "hf", "exported_program")
DEFAULT_OPSET = 18


def _example_args(model: Model, dynamic: bool = False) -> tuple[Any, ...]:
    """Example tensors in input order. With dynamic axes, a batch of 2: torch.export specialises
    dimensions of size 0 or 1, so a batch of 1 would come out static."""
    import numpy as np
    import torch

    batch_dynamic = dynamic and any(s.shape and isinstance(s.shape[0], str) for s in model.inputs)
    feeds = model.example_inputs(batch=2) if batch_dynamic else model.example_inputs()
    return tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names)


def _module_of(model: Model) -> Any:
    if model.format not in TORCH_FORMATS:
        raise StepError(f"export takes a torch model; this one is {model.format}",
                        "load the PyTorch model (wb.load(module, example_inputs=...)) and export that")
    native = model.native()
    return native.module() if model.format == "exported_program" else native


def _dynamic_shapes(model: Model, dynamic: bool) -> dict[str, dict[int, Any]] | None:
    import torch

    if not dynamic:
        return None
    return {s.name: {i: torch.export.Dim.DYNAMIC for i in s.dynamic_axes} for s in model.inputs}


def _tool_versions() -> dict[str, str]:
    import torch

    versions = {"torch": torch.__version__}
    try:
        import onnx

        versions["onnx"] = onnx.__version__
    except ImportError:
        pass
    return versions


def export(
    model: Model,
    target: str,
    *,
    path: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic: bool = True,
    exporter: str = "dynamo",
    method: str = "trace",
) -> Model:
    """Export ``model`` (a torch model) to ``target`` in the workspace, and return the new Model.

    Args:
        target: ``"onnx"``, ``"torchscript"`` or ``"exported_program"``.
        path: where to write (must not exist); default a fresh name in the workspace.
        opset: ONNX opset (default 18).
        dynamic: keep the model's dynamic axes (batch, sequence) dynamic in the artifact.
        exporter: ONNX exporter, ``"dynamo"`` (default) or ``"torchscript"`` (the older tracer).
        method: TorchScript ``"trace"`` (default) or ``"script"``.
    """
    if target not in TARGETS:
        raise StepError(f"unknown export target {target!r}", f"choose one of {', '.join(TARGETS)}")
    module = _module_of(model)
    out = Path(path) if path is not None else unique_path(model.name, SUFFIX[target])
    if path is not None and out.exists():
        raise StepError(f"{out} already exists and would be overwritten", "pass a new path, or leave path out")
    options = {"opset": opset, "dynamic": dynamic, "exporter": exporter, "method": method}
    start = time.perf_counter()
    tmp = tmp_sibling(out)
    try:
        if target == "onnx":
            _export_onnx(model, module, tmp, opset=opset, dynamic=dynamic, exporter=exporter)
            _move_onnx(tmp, out)
        elif target == "torchscript":
            _export_torchscript(model, module, tmp, method)
            commit(tmp, out)
        else:
            _export_program(model, module, tmp, dynamic)
            commit(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if path is None:
            out.unlink(missing_ok=True)  # drop the reserved placeholder
        raise
    seconds = time.perf_counter() - start
    from workbench.formats import load_path

    loaded = load_path(out)
    entry = LineageEntry(f"export:{target}", options, model, _tool_versions(), seconds, None)
    result = model.derive(target, out, entry, inputs=loaded.inputs, outputs=loaded.outputs,
                          native=loaded._native, native_loader=loaded._native_loader, metadata=loaded.metadata)
    entry.size_bytes = result.size_bytes
    return result


def _export_onnx(model: Model, module: Any, path: Path, *, opset: int, dynamic: bool, exporter: str) -> None:
    import torch

    args = _example_args(model)
    kwargs: dict[str, Any] = dict(input_names=model.input_names, output_names=model.output_names,
                                  opset_version=opset)
    try:
        if exporter == "dynamo":
            torch.onnx.export(module, args, str(path), dynamo=True, dynamic_shapes=_dynamic_shapes(model, dynamic),
                              external_data=False, optimize=True, verbose=False, **kwargs)
        elif exporter == "torchscript":
            axes = {s.name: {i: str(s.shape[i]) for i in s.dynamic_axes} for s in [*model.inputs, *model.outputs]}
            torch.onnx.export(module, args, str(path), dynamo=False, dynamic_axes=axes if dynamic else None, **kwargs)
        else:
            raise StepError(f"unknown ONNX exporter {exporter!r}", "use 'dynamo' or 'torchscript'")
    except StepError:
        raise
    except Exception as err:  # noqa: BLE001 - the exporters raise many types; explain and suggest
        raise _explain_export_error(err, exporter, opset) from err
    if dynamic:
        _name_dynamic_dims(path, model)


def _explain_export_error(err: Exception, exporter: str, opset: int) -> StepError:
    text = str(err)
    first = next((line for line in text.splitlines() if line.strip()), type(err).__name__)[:300]
    other = "torchscript" if exporter == "dynamo" else "dynamo"
    fix = (f"try the other exporter (exporter={other!r}), another opset (opset={opset + 1 if opset < 21 else 17}), "
           "or dynamic=False if a dynamic dimension is the problem")
    return StepError(f"ONNX export ({exporter}) failed: {first}", fix)


def _name_dynamic_dims(path: Path, model: Model) -> None:
    """Give the exporter's symbolic dims (``s27``) the model's axis names (``batch``, ``sequence``)."""
    import onnx

    proto = onnx.load_model(str(path))
    mapping: dict[str, str] = {}
    for spec, vi in zip(model.inputs, proto.graph.input, strict=False):
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if d.dim_param and i < len(spec.shape) and isinstance(spec.shape[i], str):
                mapping.setdefault(d.dim_param, spec.shape[i])
    if not mapping:
        return
    for vi in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in mapping:
                d.dim_param = mapping[d.dim_param]
    onnx.save_model(proto, str(path))


def _move_onnx(tmp: Path, out: Path) -> None:
    """Move an exported ONNX into place; a model over 2 GB keeps its weights in ``<name>.data``."""
    import onnx

    proto = onnx.load_model(str(tmp))
    if proto.ByteSize() > 1_800_000_000:
        onnx.save_model(proto, str(tmp), save_as_external_data=True, location=f"{out.name}.data")
        commit(tmp.parent / f"{out.name}.data", out.parent / f"{out.name}.data")
    commit(tmp, out)


def _export_torchscript(model: Model, module: Any, path: Path, method: str) -> None:
    import torch

    from workbench.formats.torchscript import SPEC_FILE, specs_to_json

    try:
        if method == "script":
            scripted = torch.jit.script(module)
        elif method == "trace":
            with torch.no_grad():
                scripted = torch.jit.trace(module, _example_args(model), strict=False, check_trace=False)
        else:
            raise StepError(f"unknown TorchScript method {method!r}", "use 'trace' or 'script'")
    except StepError:
        raise
    except Exception as err:  # noqa: BLE001
        first = str(err).strip().splitlines()[0][:300]
        other = "trace" if method == "script" else "script"
        raise StepError(f"TorchScript {method} failed: {first}",
                        f"try method={other!r}, or export to ONNX / ExportedProgram instead") from err
    torch.jit.save(scripted, str(path), _extra_files={SPEC_FILE: specs_to_json(model.inputs, model.outputs)})


def _export_program(model: Model, module: Any, path: Path, dynamic: bool) -> None:
    import torch

    from workbench.formats.torchscript import SPEC_FILE, specs_to_json

    args = _example_args(model, dynamic)
    try:
        ep = torch.export.export(module, args, dynamic_shapes=_dynamic_shapes(model, dynamic))
    except Exception as err:  # noqa: BLE001
        first = " ".join(str(err).strip().splitlines()[:2])[:400]
        raise StepError(f"torch.export failed: {first}",
                        "try dynamic=False, or mark data-dependent code with torch._check; "
                        "TorchScript tracing (wb.export(m, 'torchscript')) is an alternative") from err
    torch.export.save(ep, str(path), extra_files={SPEC_FILE: specs_to_json(model.inputs, model.outputs)})

"""Export a torch model: ``wb.export(model, target)`` and the torch export targets.

``export`` is generic: it finds the step registered as ``("export", target)`` (``workbench.core.registry``)
and calls it. This module registers the ONNX and ExportedProgram targets; TorchScript lives in
``export_torchscript.py``. Another distribution adds a target with one decorated function::

    @register_step("export", "tflite", accepts=("torch",), produces="tflite")
    def export_tflite(model, *, path=None, isolate=True, timeout=None, cache=True, validate=True): ...

ONNX uses the dynamo-based exporter (``torch.onnx.export(dynamo=True)``) and, when it fails, the
TorchScript-based exporter (``exporter="auto"``, the default; ``"dynamo"`` or ``"torchscript"`` pick one).
When both fail the error gives both reasons, and never sends the user from one exporter to the other. Dynamic axes follow the model's input
specs (``batch``, ``sequence``) unless ``dynamic=False``.

Like every step, the export runs in the worker subprocess (``isolate=True``), is cached by content
hash, lands atomically in the workspace, and is validated against the original (``result.validation``).
When an export fails, the error names the operator and the module path (``blocks.0.attn``) that
caused it, and what to try instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from workbench.core import settings
from workbench.core.errors import StepError
from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.formats.torchscript import TorchScriptFormat
from workbench.steps.base import StepSpec, as_model, call_step, offer, resolve_step, run_step

TORCH_FORMATS = ("torch", "hf", "exported_program")
DEFAULT_OPSET = 18
#: the ONNX exporters: torch's dynamo exporter, and the older one that traces through TorchScript (named so)
TORCHSCRIPT_EXPORTER = TorchScriptFormat.name
EXPORTERS = ("auto", "dynamo", TORCHSCRIPT_EXPORTER)


def export(
    model: Model,
    target: str,
    *,
    path: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic: bool = True,
    exporter: str = "auto",
    method: str = "trace",
    isolate: bool = True,
    timeout: float | None = None,
    cache: bool = True,
    validate: bool = True,
    **options: Any,
) -> Model:
    """Export ``model`` (a torch model) to ``target`` in the workspace, and return the new Model.

    Args:
        target: a registered export target: ``"onnx"``, ``"torchscript"``, ``"exported_program"``, ….
        path: where to write (must not exist); default a fresh name in the workspace.
        opset: ONNX opset (default 18).
        dynamic: keep the model's dynamic axes (batch, sequence) dynamic in the artifact.
        exporter: ONNX exporter: ``"auto"`` (default: dynamo, then the TorchScript-based one if dynamo
            fails), ``"dynamo"`` or ``"torchscript"`` (the older tracer).
        method: TorchScript ``"trace"`` (default) or ``"script"``.
        isolate, timeout, cache, validate: see ``workbench.steps.base.run_step``.
        **options: options of other registered targets.

    The keywords a target does not use are ignored. The result's ``validation`` compares it with the
    original on the same inputs.
    """
    model = as_model(model)
    plugin = resolve_step("export", target, "export target")
    common = dict(path=path, opset=opset, dynamic=dynamic, exporter=exporter, method=method, isolate=isolate,
                  timeout=timeout, cache=cache, validate=validate)
    return call_step(plugin, model, common, options)


def need_torch_model(model: Model) -> None:
    """Raise the StepError every export target gives for a model that is not a torch model."""
    if model.format not in TORCH_FORMATS:
        raise StepError(f"export takes a torch model; this one is {model.format}",
                        "load the PyTorch model (wb.load(module, example_inputs=...)) and export that, "
                        "or use wb.convert for ONNX / OpenVINO / Core ML")


@register_step("export", "onnx", accepts=TORCH_FORMATS, produces="onnx")
@offer("ONNX export")
def export_onnx(model: Model, *, path: str | Path | None = None, opset: int = DEFAULT_OPSET, dynamic: bool = True,
                exporter: str = "auto", isolate: bool = True, timeout: float | None = None, cache: bool = True,
                validate: bool = True) -> Model:
    """ONNX, with the dynamo exporter, else the TorchScript-based one (``exporter=`` picks one)."""
    model = as_model(model)
    need_torch_model(model)
    if exporter not in EXPORTERS:
        raise StepError(f"unknown ONNX exporter {exporter!r}", f"use one of {list(EXPORTERS)}")
    options: dict[str, Any] = {"opset": opset, "dynamic": dynamic, "exporter": exporter}
    spec = StepSpec("export:onnx", options, ".onnx", _write_onnx, dict(options), tools=("torch", "onnx", "onnxscript"))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


@register_step("export", "exported_program", accepts=TORCH_FORMATS, produces="exported_program")
def export_exported_program(model: Model, *, path: str | Path | None = None, dynamic: bool = True,
                            isolate: bool = True, timeout: float | None = None, cache: bool = True,
                            validate: bool = True) -> Model:
    """A ``torch.export`` ExportedProgram (``.pt2``)."""
    model = as_model(model)
    need_torch_model(model)
    spec = StepSpec("export:exported_program", {"dynamic": dynamic}, ".pt2", _write_exported, {"dynamic": dynamic},
                    tools=("torch",))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


# -- writers (run in the worker) -----------------------------------------------------------------
def example_args(model: Model, dynamic: bool = False) -> tuple[Any, ...]:
    """Example tensors in input order. With dynamic axes, a batch of 2: torch.export specialises
    dimensions of size 0 or 1, so a batch of 1 would come out static."""
    import numpy as np
    import torch

    batch_dynamic = dynamic and any(s.shape and isinstance(s.shape[0], str) for s in model.inputs)
    feeds = model.example_inputs(batch=2) if batch_dynamic else model.example_inputs()
    return tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names)


def module_of(model: Model) -> Any:
    native = model.native()
    return native.module() if model.format == "exported_program" else native


def dynamic_shapes(model: Model, dynamic: bool) -> tuple[dict[int, Any], ...] | dict[str, Any] | None:
    """The dynamic axes of the model's inputs for ``torch.export``, by position: the inputs are passed
    positionally (``example_args``) and their names need not be ``forward``'s parameter names (an input
    named ``input`` for ``forward(self, x)`` made torch.export refuse a dict keyed by input name)."""
    import torch

    if not dynamic:
        return None
    shapes = tuple({i: torch.export.Dim.DYNAMIC for i in s.dynamic_axes} for s in model.inputs)
    if _takes_var_args(module_of(model)):  # forward(*args): a Hugging Face KeywordModule
        return {"args": shapes}
    return shapes


def _takes_var_args(module: Any) -> bool:
    import inspect

    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError, AttributeError):
        return False
    return any(p.kind == p.VAR_POSITIONAL for p in params)


def _write_onnx(model: Model, tmp: Path, *, opset: int, dynamic: bool, exporter: str) -> dict[str, Any]:
    import logging
    import warnings

    import torch

    module = module_of(model)
    args = example_args(model)
    kwargs: dict[str, Any] = dict(input_names=model.input_names, output_names=model.output_names,
                                  opset_version=opset)
    # protobuf stops at 2 GB: bigger models keep their weights in "<file>.data" beside the .onnx
    weight_bytes = sum(p.numel() * p.element_size() for p in module.parameters()) if hasattr(module, "parameters") else 0
    external = weight_bytes > settings.onnx_external_bytes()  # weights above it go to an external data file
    quiet = logging.getLogger("torch.onnx")  # "torchvision is not installed" and such, once per process
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    failures: list[tuple[str, BaseException]] = []
    used: str | None = None
    try:
        for name in ("dynamo", TORCHSCRIPT_EXPORTER) if exporter == "auto" else (exporter,):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if name == "dynamo":
                        torch.onnx.export(module, args, str(tmp), dynamo=True,
                                          dynamic_shapes=dynamic_shapes(model, dynamic), external_data=external,
                                          optimize=True, verbose=False, **kwargs)
                    else:
                        axes = {s.name: {i: str(s.shape[i]) for i in s.dynamic_axes}
                                for s in [*model.inputs, *model.outputs]}
                        torch.onnx.export(module, args, str(tmp), dynamo=False,
                                          dynamic_axes=axes if dynamic else None, **kwargs)
                used = name
                break
            except Exception as err:  # noqa: BLE001 - the exporters raise many types; explain and suggest
                failures.append((name, err))
                for partial in (tmp, Path(f"{tmp}.data")):
                    partial.unlink(missing_ok=True)
                if _data_dependent(err):  # tracing would silently keep one branch: not without asking
                    break
        if used is None:
            raise _explain_failures(failures, module, args, opset) from None
    finally:
        quiet.setLevel(level)
    if external and not Path(f"{tmp}.data").exists():  # the TorchScript exporter inlines: move the weights out
        import onnx

        proto = onnx.load_model(str(tmp))
        onnx.save_model(proto, str(tmp), save_as_external_data=True, location=f"{tmp.name}.data")
    if dynamic:
        _name_dynamic_dims(tmp, model)
    return {"exporter": used}


def _explain_failures(failures: list[tuple[str, BaseException]], module: Any, args: tuple[Any, ...],
                      opset: int) -> StepError:
    """One StepError for the exporters that failed: with one, its explanation; with both, both reasons,
    and tips that do not suggest an exporter that was already tried."""
    tried = tuple(name for name, _ in failures)
    errors = [explain_export_error(err, module, args, exporter=name, opset=opset, tried=tried)
              for name, err in failures]
    if len(errors) == 1:
        return errors[0]
    problem = "both ONNX exporters failed: " + "; then ".join(e.problem for e in errors)
    tips = list(dict.fromkeys(t for e in errors for t in e.fix.split("; ") if t))
    return StepError(problem, "; ".join(tips))


def _name_dynamic_dims(path: Path, model: Model) -> None:
    """Give the exporter's symbolic dims (``s27``) the model's axis names (``batch``, ``sequence``)."""
    import onnx

    proto = onnx.load_model(str(path), load_external_data=False)  # the weights stay where they are
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


def _write_exported(model: Model, tmp: Path, *, dynamic: bool) -> dict[str, Any]:
    import torch

    from workbench.formats.torchscript import SPEC_FILE, specs_to_json

    module = module_of(model)
    args = example_args(model, dynamic)
    try:
        ep = torch.export.export(module, args, dynamic_shapes=dynamic_shapes(model, dynamic))
    except Exception as err:  # noqa: BLE001
        base = explain_export_error(err, module, args, exporter="torch.export", opset=None)
        raise StepError(base.problem, f"{base.fix}; TorchScript tracing (wb.export(m, 'torchscript')) is an "
                                      "alternative") from None
    torch.export.save(ep, str(tmp), extra_files={SPEC_FILE: specs_to_json(model.inputs, model.outputs)})
    return {}


# -- errors that teach -----------------------------------------------------------------------------
_OP_PATTERNS = (
    r"OpOverload\(op='([\w.]+)'",
    r"target=torch\.ops\.([\w]+\.[\w]+)",
    r"operator '?([\w]+::[\w]+)'?",
    r"namespace ([\w]+::[\w]+)",
    r"\b(aten::[\w]+)",
    r"\b(aten\.[\w]+)\.(?:default|Tensor|Scalar|int)",
)
_SHAPE_WORDS = ("Constraints violated", "specializ", "guard", "data-dependent", "Dim.", "dynamic_shapes",
                "symbolic", "GuardOnDataDependentSymNode")


def explain_export_error(err: BaseException, module: Any, args: tuple[Any, ...], *, exporter: str,
                         opset: int | None, tried: tuple[str, ...] = ()) -> StepError:
    """A StepError naming the operator and the module path that made an export fail, and what to try.

    The operator comes from the exporter's message; the module path from running the model once
    eagerly and watching which submodule calls that operator (or, for errors in Python code, which
    submodule's ``forward`` holds the line the exporter points at).
    """
    text = str(err)
    op = next((m.group(1) for p in _OP_PATTERNS if (m := re.search(p, text))), None)
    where = locate_operator(module, args, op) if op else None
    line = _user_code_line(text)
    if where is None and line is not None:
        where = _module_for_line(module, *line)
    summary = _first_meaningful_line(text, type(err).__name__)
    parts = [f"{exporter} export failed"]
    if op:
        parts.append(f"on operator {op.replace('.', '::', 1) if '::' not in op else op}")
    if where:
        parts.append(f"in module {where[0]!r} ({where[1]})")
    elif line is not None:
        parts.append(f"at {line[0]}:{line[1]}")
    problem = " ".join(parts) + f": {summary}"
    tips = []
    # never send the user to an exporter that already failed on this model (``tried``)
    if exporter == "dynamo" and TORCHSCRIPT_EXPORTER not in tried:
        tips.append("try the TorchScript-based exporter (exporter='torchscript')")
    elif exporter == TORCHSCRIPT_EXPORTER and "dynamo" not in tried:
        tips.append("try the dynamo exporter (exporter='dynamo')")
    needed = re.search(r"added in (?:opset )?version (\d+)", text)  # the TorchScript exporter names it
    if opset is not None and needed and int(needed.group(1)) > opset:
        tips.append(f"opset={needed.group(1)} (the operator needs it)")
    elif opset is not None and not _data_dependent(err):  # an `if` on data fails at every opset
        tips.append(f"another opset (opset={opset + 1 if opset < 21 else 17})")
    if _data_dependent(err):
        tips.append("the model branches on a tensor's value (an `if` on data): rewrite it with torch.where or "
                    "torch.cond" + ("" if TORCHSCRIPT_EXPORTER in tried else
                                    ", or trace one branch with exporter='torchscript'"))
    elif any(w in text for w in _SHAPE_WORDS):
        tips.append("dynamic=False (a dynamic dimension was specialised; give the model fixed shapes or mark "
                    "sizes with torch._check)")
    else:
        tips.append("dynamic=False if a dynamic dimension is the problem")
    if op and where:
        tips.append(f"or replace {where[0]!r} with ONNX-exportable ops (or register a translation for {op})")
    return StepError(problem, "; ".join(tips))


def _data_dependent(err: BaseException) -> bool:
    """The export failed on Python control flow that depends on a tensor's value."""
    return any(w in str(err) for w in ("data-dependent", "GuardOnDataDependent"))


def _first_meaningful_line(text: str, default: str) -> str:
    clean = re.sub(r"\x1b\[[0-9;]*m", "", text)
    for pattern in (r"<class '[\w.]+(?:DispatchError|UnsupportedOperatorError)'>: (.+)",
                    r"(No ONNX function found for .+)", r"(Exporting the operator .+)",
                    r"(ONNX export failed on an operator .+)", r"(Could not guard on data-dependent .+)",
                    r"(Constraints violated .+)"):
        m = re.search(pattern, clean)
        if m:
            return m.group(1).strip()[:300]
    for ln in clean.splitlines():
        if ln.strip() and not ln.startswith(("Traceback", "  File")):
            return ln.strip()[:300]
    return default


def _user_code_line(text: str) -> tuple[str, int] | None:
    hits = re.findall(r'File "([^"]+)", line (\d+), in (\w+)', text)
    hits = [h for h in hits if "site-packages" not in h[0] and "/torch/" not in h[0]]
    return (hits[-1][0], int(hits[-1][1])) if hits else None


def _module_for_line(module: Any, filename: str, lineno: int) -> tuple[str, str] | None:
    """The submodule whose ``forward`` contains ``filename:lineno``."""
    best = None
    for name, sub in module.named_modules():
        code = getattr(type(sub).forward, "__code__", None)
        if code is None or code.co_filename != filename:
            continue
        lines = [ln for _, _, ln in code.co_lines() if ln is not None]
        if lines and min(lines) - 1 <= lineno <= max(lines):
            best = (name or "<root>", type(sub).__name__)
    return best


def locate_operator(module: Any, args: tuple[Any, ...], op: str) -> tuple[str, str] | None:
    """Run ``module`` once and return (module path, class name) of the first submodule that calls ``op``
    (``"aten::softmax"``, ``"wbdemo.mystery"``, …), or None."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    wanted = op.replace("::", ".").split(".default")[0]
    stack: list[tuple[str, str]] = []
    found: list[tuple[str, str]] = []
    names = {id(m): n for n, m in module.named_modules()}

    def pre(mod: Any, _inputs: Any) -> None:
        stack.append((names.get(id(mod), "?") or "<root>", type(mod).__name__))

    def post(_mod: Any, _inputs: Any, _out: Any) -> None:
        if stack:
            stack.pop()

    class Spy(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            name = str(func)  # "aten.softmax.int", "wbdemo.mystery.default"
            if not found and stack and (name == wanted or name.startswith(wanted + ".")):
                found.append(stack[-1])
            return func(*args, **(kwargs or {}))

    handles = [m.register_forward_pre_hook(pre) for m in module.modules()]
    handles += [m.register_forward_hook(post) for m in module.modules()]
    try:
        with torch.no_grad(), Spy():
            module(*args)
    except Exception:  # noqa: BLE001 - best effort: the error message stands without the path
        pass
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else None



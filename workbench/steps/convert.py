"""Convert a model to another format or an optimized graph.

Targets:

* ``"onnx-optimized"``: ONNX → the graph after ONNX Runtime's optimizations (``level="basic" |
  "extended" | "all"``), saved to a file; the level is recorded in the file's metadata
  (``workbench.ort_graph_optimization_level``). ``"all"`` adds layout changes for this CPU, so keep
  such a file on the machine that made it; ``"extended"`` (the default) is portable across CPUs.
* ``"onnx-simplified"``: ONNX → a simplified ONNX (constant folding, dead-node removal, fusions) with
  ``tool="onnxslim"`` (default; installed with the ``optimize`` extra) or ``tool="onnxsim"``.
* ``"openvino"``: ONNX or torch (``nn.Module``, ExportedProgram) → OpenVINO IR (``.xml`` + ``.bin``);
  ``fp16_weights=True`` compresses the weights to FP16 (half the size; computed in the device's precision).
* ``"coreml"``: torch → Core ML ML Program (``.mlpackage``), ``precision="fp32" | "fp16"``. Converting
  works on Linux; running a Core ML model needs macOS, so its validation is skipped here (and says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.errors import BackendUnavailable, StepError
from workbench.core.model import Model
from workbench.steps.base import StepSpec, run_step, source_model

TARGETS = ("onnx-optimized", "onnx-simplified", "openvino", "coreml")
ALIASES = {"ort-optimized": "onnx-optimized", "onnxruntime": "onnx-optimized", "ort": "onnx-optimized",
           "onnxslim": "onnx-simplified", "onnxsim": "onnx-simplified", "simplify": "onnx-simplified",
           "ov": "openvino", "ir": "openvino", "mlpackage": "coreml"}
ORT_LEVELS = ("basic", "extended", "all")
TORCH_FORMATS = ("torch", "exported_program", "hf")


def convert(
    model: Model | Any,
    target: str,
    *,
    path: str | Path | None = None,
    level: str = "extended",
    tool: str | None = None,
    fp16_weights: bool = False,
    precision: str = "fp32",
    minimum_deployment_target: str = "iOS16",
    isolate: bool = True,
    timeout: float | None = None,
    cache: bool = True,
    validate: bool = True,
) -> Model:
    """Convert ``model`` to ``target`` (see the module docstring) and return the new Model.

    Args:
        target: ``"onnx-optimized"``, ``"onnx-simplified"``, ``"openvino"`` or ``"coreml"``.
        level: ONNX Runtime graph optimization level for ``"onnx-optimized"``.
        tool: ``"onnxslim"`` or ``"onnxsim"`` for ``"onnx-simplified"`` (default: the one installed,
            onnxslim first; also implied by ``target="onnxsim"``).
        fp16_weights: OpenVINO: store the weights in FP16.
        precision: Core ML compute precision, ``"fp32"`` or ``"fp16"``.
        minimum_deployment_target: Core ML target (``"iOS16"``, ``"macOS13"``, …; ML Programs need iOS15+).
        path, isolate, timeout, cache, validate: see ``workbench.steps.base.run_step``.
    """
    model = source_model(model)
    if target in ("onnxslim", "onnxsim") and tool is None:
        tool = target
    key = ALIASES.get(target, target)
    if key not in TARGETS:
        raise StepError(f"unknown conversion target {target!r}", f"choose one of {', '.join(TARGETS)}")
    if key == "onnx-optimized":
        _need_format(model, ("onnx",), key, "export it first: wb.export(model, 'onnx')")
        if level not in ORT_LEVELS:
            raise StepError(f"unknown graph optimization level {level!r}", f"use one of {', '.join(ORT_LEVELS)}")
        spec = StepSpec("convert:onnx-optimized", {"level": level}, ".onnx", _write_ort_optimized, {"level": level},
                        tag=f"ort-{level}", tools=("onnxruntime", "onnx"))
    elif key == "onnx-simplified":
        _need_format(model, ("onnx",), key, "export it first: wb.export(model, 'onnx')")
        tool = tool or _default_simplifier()
        if tool not in ("onnxslim", "onnxsim"):
            raise StepError(f"unknown ONNX simplifier {tool!r}", "use tool='onnxslim' or tool='onnxsim'")
        _need_module(tool, "optimize")
        spec = StepSpec("convert:onnx-simplified", {"tool": tool}, ".onnx", _write_simplified, {"tool": tool},
                        tag="simplified", tools=(tool, "onnx"))
    elif key == "openvino":
        _need_format(model, ("onnx", *TORCH_FORMATS), key, "load a torch or ONNX model")
        _need_module("openvino", "openvino")
        spec = StepSpec("convert:openvino", {"fp16_weights": fp16_weights}, ".xml", _write_openvino,
                        {"fp16_weights": fp16_weights}, tag="fp16" if fp16_weights else "",
                        precision="fp16" if fp16_weights else None, tools=("openvino", "torch"))
    else:
        _need_format(model, TORCH_FORMATS, key,
                     "convert from the PyTorch model (wb.load(module, example_inputs=...)), not from "
                     f"{model.format}: Core ML's converter takes torch models")
        _need_module("coremltools", "coreml")
        if precision not in ("fp32", "fp16"):
            raise StepError(f"unknown Core ML precision {precision!r}", "use 'fp32' or 'fp16'")
        opts = {"precision": precision, "minimum_deployment_target": minimum_deployment_target}
        spec = StepSpec("convert:coreml", opts, ".mlpackage", _write_coreml, opts,
                        tag="fp16" if precision == "fp16" else "", precision=precision, tools=("coremltools", "torch"))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


def _need_format(model: Model, formats: tuple[str, ...], target: str, fix: str) -> None:
    if model.format not in formats:
        raise StepError(f"convert to {target} takes a {' or '.join(formats)} model; this one is {model.format}", fix)


def _need_module(module: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise BackendUnavailable(f"{module} is not installed", f"pip install 'deployment-workbench[{extra}]'")


def _default_simplifier() -> str:
    import importlib.util

    if importlib.util.find_spec("onnxslim") is not None:
        return "onnxslim"
    if importlib.util.find_spec("onnxsim") is not None:
        return "onnxsim"
    return "onnxslim"  # _need_module then says how to install it


# -- writers (run in the worker) -----------------------------------------------------------------
def _write_ort_optimized(model: Model, tmp: Path, *, level: str) -> dict[str, Any]:
    import onnx
    import onnxruntime as ort

    from workbench.runtimes.onnxruntime import OPT_LEVELS

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[level])
    so.optimized_model_filepath = str(tmp)
    so.log_severity_level = 3
    ort.InferenceSession(str(model.path), so, providers=["CPUExecutionProvider"])
    proto = onnx.load_model(str(tmp))
    _set_meta(proto, {"workbench.ort_graph_optimization_level": level,
                      "workbench.ort_version": ort.__version__})
    onnx.save_model(proto, str(tmp))
    return {"ort_graph_optimization_level": level}


def _set_meta(proto: Any, values: dict[str, str]) -> None:
    keep = [p for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for k, v in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v


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


def _write_openvino(model: Model, tmp: Path, *, fp16_weights: bool) -> dict[str, Any]:
    import openvino as ov

    try:
        if model.format == "onnx":
            ov_model = ov.convert_model(str(model.path))
        else:
            ov_model = _ov_from_torch(model)
    except StepError:
        raise
    except Exception as err:  # noqa: BLE001 - OpenVINO's frontends raise with long C++ traces
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise StepError(f"OpenVINO could not convert {model.name} ({model.format}): {first}",
                        "export to ONNX first (wb.export(m, 'onnx')) and convert that, or try another opset") from None
    stable_names(ov_model)
    ov.save_model(ov_model, str(tmp), compress_to_fp16=fp16_weights)
    return {"openvino_version": ov.get_version()}


def stable_names(ov_model: Any) -> None:
    """Renumber OpenVINO's auto-generated op names (``Constant_5982``, from a process-wide counter) in
    graph order, so the same model gives the same IR bytes whatever the process did before."""
    import re

    auto = re.compile(r"^([A-Za-z]+)_\d+$")
    ops = list(ov_model.get_ordered_ops())
    taken = {op.get_friendly_name() for op in ops if not auto.match(op.get_friendly_name())}
    counters: dict[str, int] = {}
    for op in ops:
        m = auto.match(op.get_friendly_name())
        if not m:
            continue
        kind = m.group(1)
        while True:
            counters[kind] = counters.get(kind, 0) + 1
            name = f"{kind}_{counters[kind]}"
            if name not in taken:
                break
        taken.add(name)
        op.set_friendly_name(name)


def _ov_from_torch(model: Model) -> Any:
    import numpy as np
    import openvino as ov
    import torch

    native = model.native()
    if model.format == "exported_program":
        return ov.convert_model(native)
    feeds = model.example_inputs()
    example = tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names)
    shapes = [ov.PartialShape([-1 if isinstance(d, str) else d for d in s.shape]) for s in model.inputs]
    if model.format == "hf":
        example = dict(zip(model.input_names, example, strict=True))
    ov_model = ov.convert_model(native, example_input=example, input=shapes)
    for port, spec in zip(ov_model.inputs, model.inputs, strict=False):
        port.get_tensor().set_names({spec.name})
    for port, spec in zip(ov_model.outputs, model.outputs, strict=False):
        port.get_tensor().set_names({spec.name})
    return ov_model


def _write_coreml(model: Model, tmp: Path, *, precision: str, minimum_deployment_target: str) -> dict[str, Any]:
    """torch → Core ML: through ``torch.export`` first (what coremltools recommends for recent torch;
    the transformers convert only this way here), then a TorchScript trace if that fails."""
    import warnings

    import coremltools as ct
    import torch

    try:
        target = getattr(ct.target, minimum_deployment_target)
    except AttributeError:
        raise StepError(f"unknown Core ML deployment target {minimum_deployment_target!r}",
                        "use e.g. 'iOS16', 'iOS17', 'macOS13', 'macOS14'") from None
    common = dict(convert_to="mlprogram", minimum_deployment_target=target,
                  compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32)
    failures = []
    mlmodel, used = None, None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        for path in ("exported_program", "trace"):
            try:
                mlmodel = _coreml_via(path, model, ct, common)
                used = path
                break
            except StepError:
                raise
            except Exception as err:  # noqa: BLE001 - coremltools raises many types (unsupported ops, torch versions)
                first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
                failures.append(f"via {path}: {type(err).__name__}: {first}")
    if mlmodel is None:
        raise StepError(f"Core ML conversion of {model.name} failed ({'; '.join(failures)})",
                        f"coremltools {ct.__version__} is tested with older torch than {torch.__version__}: try "
                        "dynamic=False exports, or replace the operator the message names")
    _rename_features(mlmodel, model)
    mlmodel.save(str(tmp))
    return {"coremltools_version": ct.__version__, "coreml_source": used,
            **({"notes": [f"Core ML: {f}" for f in failures]} if failures else {})}


def _coreml_via(path: str, model: Model, ct: Any, common: dict[str, Any]) -> Any:
    import numpy as np
    import torch

    native = model.native()
    feeds = model.example_inputs()
    example = tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names)
    if path == "exported_program":
        if model.format == "exported_program":
            ep = native
        else:
            ep = torch.export.export(native, example)
        return ct.convert(ep.run_decompositions({}), **common)
    if model.format == "exported_program":
        native = native.module()
    traced = torch.jit.trace(native, example, strict=False, check_trace=False)
    inputs = [ct.TensorType(name=s.name, shape=tuple(feeds[s.name].shape), dtype=feeds[s.name].dtype)
              for s in model.inputs]
    return ct.convert(traced, inputs=inputs, outputs=[ct.TensorType(name=s.name) for s in model.outputs], **common)


def _rename_features(mlmodel: Any, model: Model) -> None:
    """Give the Core ML model the inputs' and outputs' names of the source (torch.export names them
    after the graph's placeholders)."""
    from coremltools.models.utils import rename_feature

    spec = mlmodel._spec
    for feature, spec_ in ((spec.description.input, model.inputs), (spec.description.output, model.outputs)):
        for f, s in zip(list(feature), spec_, strict=False):
            if f.name != s.name:
                rename_feature(spec, f.name, s.name)


def _register() -> None:
    from functools import partial

    from workbench.core.registry import register_step

    accepts = {"onnx-optimized": ("onnx",), "onnx-simplified": ("onnx",), "openvino": ("onnx", *TORCH_FORMATS),
               "coreml": TORCH_FORMATS}
    produces = {"onnx-optimized": "onnx", "onnx-simplified": "onnx", "openvino": "openvino", "coreml": "coreml"}
    for target in TARGETS:
        register_step("convert", target, accepts=accepts[target], produces=produces[target],
                      aliases=tuple(a for a, t in ALIASES.items() if t == target))(partial(convert, target=target))


_register()

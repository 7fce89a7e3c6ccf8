"""LiteRT's steps: a torch model → ``.tflite`` with LiteRT's torch converter, and LiteRT's quantizer.

* ``wb.convert(model, "litert")``: ``litert_torch.convert`` (``torch.export`` → StableHLO → TFLite
  flatbuffer), fp32. The signature's inputs and outputs get the source model's names.
* ``wb.quantize(model, "litert", method)`` on a ``.tflite`` (a torch model is converted first by
  ``wb.quantize``'s caller: pass the ``.tflite``): ``dynamic`` (dynamic-range INT8: int8 weights,
  activations quantized at run time, no calibration) or ``static`` (full INT8 weights and activations,
  calibrated on the model's data; int8 inputs and outputs, which the LiteRT runner converts), with
  ``ai-edge-quantizer`` (LiteRT's quantizer, which litert-torch uses).

The model is specialised to the example inputs' shapes (batch included), as a mobile app's is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.errors import StepError
from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.formats.tflite import INSTALL, TFLiteFormat
from workbench.steps.base import StepSpec, as_model, offer, run_step
from workbench.steps.convert import TORCH_FORMATS, need_format
from workbench.steps.quantize import QuantizeMethods, check_options, need, need_module

TARGET = "litert"
FORMAT = TFLiteFormat.name
CONVERTER_FIX = ("pip install --no-deps litert-torch litert-converter xdsl ai-edge-quantizer "
                 f"(see scripts/setup), after {INSTALL}")


@register_step("convert", TARGET, accepts=TORCH_FORMATS, produces=FORMAT, aliases=("tflite", "tensorflow-lite"),
               requires=("litert-torch", "ai-edge-litert"))
@offer("LiteRT (.tflite)", ticked=False)
def convert_litert(model: Model, *, path: str | Path | None = None, isolate: bool = True,
                   timeout: float | None = None, cache: bool = True, validate: bool = True) -> Model:
    """A LiteRT .tflite from torch (LiteRT's torch converter, fp32)."""
    model = as_model(model)
    need_format(model, TORCH_FORMATS, TARGET,
                "LiteRT's converter takes PyTorch models: load the torch model (wb.load(module, example_inputs=...))")
    need_module("litert_torch", CONVERTER_FIX)
    spec = StepSpec(f"convert:{TARGET}", {}, ".tflite", write_tflite, {}, precision="fp32",
                    tools=("litert-torch", "litert-converter", "ai-edge-litert", "torch"))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


@register_step("quantize", TARGET, accepts=(FORMAT,), produces=FORMAT, aliases=("tflite", "ai-edge-quantizer"),
               methods=("dynamic", "static"), requires=("ai-edge-quantizer",))
@offer("LiteRT INT8", ticked=False)
def quantize_litert(model: Model, method: str | None = None, **options: Any) -> Model:
    """ai-edge-quantizer on a .tflite: ``static`` (full INT8, calibrated; default) or ``dynamic`` (dynamic range)."""
    return METHODS.run(model, method, **options)


def _plan(method: str) -> Any:
    def plan(model: Model, options: dict[str, Any]) -> StepSpec:
        need(model, (FORMAT,), "LiteRT quantization", "convert it first: wb.convert(model, 'litert')")
        need_module("ai_edge_quantizer", CONVERTER_FIX)
        opts = check_options(options, {}, f"litert {method}")
        return StepSpec(f"quantize:{TARGET}", {"method": method, **opts}, ".tflite", write_quantized,
                        {"method": method}, tag="int8" if method == "static" else "int8-dynamic", precision="int8",
                        tools=("ai-edge-quantizer", "ai-edge-litert"))

    return plan


METHODS = QuantizeMethods(TARGET, {"static": _plan("static"), "dynamic": _plan("dynamic")}, default="static",
                          calibrated=("static",))


# -- writers (run in the worker) ---------------------------------------------------------------------
def write_tflite(model: Model, tmp: Path) -> dict[str, Any]:
    """torch → ``litert_torch.convert`` → ``.tflite`` at ``tmp``, with the source's input/output names."""
    import contextlib
    import io
    import warnings

    import litert_torch
    import numpy as np
    import torch

    native = model.native()
    module = native.module() if model.format == "exported_program" else native
    feeds = model.example_inputs()
    example = tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names)
    try:
        # the converter prints its progress on stdout: keep it out of the notebook's output
        with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            edge = litert_torch.convert(module.eval() if hasattr(module, "eval") else module, example)
            raw = Path(f"{tmp}.raw.tflite")
            edge.export(str(raw))
    except Exception as err:  # noqa: BLE001 - torch.export / the MLIR lowering raise many types
        text = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise StepError(f"LiteRT's converter failed on {model.name}: {type(err).__name__}: {text}",
                        "torch.export must capture the whole model and LiteRT must have each operator: check "
                        "torch.export.export(module, example_inputs) alone, or use another runtime") from err
    try:
        rename_io(raw, tmp, model.input_names, [s.name for s in model.outputs])
    finally:
        raw.unlink(missing_ok=True)
    return {}


def rename_io(src: Path, dst: Path, inputs: list[str], outputs: list[str]) -> None:
    """Copy the ``.tflite`` ``src`` to ``dst`` with the first signature's inputs and outputs (and their
    tensors) named ``inputs`` / ``outputs``, in the subgraph's order (the converter says ``args_0``)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(src.read_bytes(), 0)
    sg = m.subgraphs[0]
    # the converter names the k-th argument args_k and the k-th output output_k: map those by k, and any
    # other tensor by its position in the subgraph
    names = {int(i): n for i, n in zip(list(sg.inputs), inputs, strict=False)}
    names.update({int(i): n for i, n in zip(list(sg.outputs), outputs, strict=False)})
    for sig in m.signatureDefs or []:
        for maps, given, prefix in ((sig.inputs or [], inputs, "args_"), (sig.outputs or [], outputs, "output_")):
            for tm in maps:
                key = tm.name.decode() if isinstance(tm.name, bytes) else str(tm.name or "")
                k = key[len(prefix):]
                if key.startswith(prefix) and k.isdigit() and int(k) < len(given):
                    names[tm.tensorIndex] = given[int(k)]
    for index, name in names.items():
        sg.tensors[index].name = name
    for sig in m.signatureDefs or []:
        for tm in [*(sig.inputs or []), *(sig.outputs or [])]:
            if tm.tensorIndex in names:
                tm.name = names[tm.tensorIndex]
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))


def write_quantized(model: Model, tmp: Path, *, method: str,
                    calibration: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """ai-edge-quantizer's recipe for ``method`` on the ``.tflite`` (calibrated for ``static``)."""
    import contextlib
    import io
    import warnings

    import numpy as np
    from ai_edge_quantizer import quantizer, recipe

    from workbench.formats.tflite import TFLiteReader

    reader = TFLiteReader(model.path)
    signature = reader.signature_key() or "serving_default"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        qt = quantizer.Quantizer(str(model.path))
        qt.load_quantization_recipe(recipe.static_wi8_ai8() if method == "static" else recipe.dynamic_wi8_afp32())
        if method == "static":
            data = [{n: np.ascontiguousarray(f[n]) for n in model.input_names} for f in calibration or []]
            result = qt.quantize(qt.calibrate({signature: data}))
        else:
            result = qt.quantize()
        result.export_model(str(Path(f"{tmp}.q.tflite")), overwrite=True)
    Path(f"{tmp}.q.tflite").replace(tmp)
    return {"calibration_samples": len(calibration)} if calibration else {}

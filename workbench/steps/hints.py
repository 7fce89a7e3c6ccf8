"""What to try when a step fails: ``failure_hints(...)`` reads a failed step (its error, or its result's
validation) and returns ``Hint``s — a sentence, the line of Python that tries it, and the option changes
that try it in the same step (which the app's step options can apply with one click).

It knows what the workbench knows of its own steps:

* an INT8 result that fails validation: per-channel weights, SmoothQuant or 16-bit activations for the
  layers that need them (``layer_schemes``), a calibration that clips outliers, the dynamic method for a
  transformer, NNCF's transformer model type and mixed preset, and the accuracy-aware search
  (``wb.quantize(..., accuracy_budget=0.01)``) and the Quantization tab that ranks the layers to blame;
* a missing runtime or tool (``BackendUnavailable``): its install line, and that the other steps run
  without it;
* an export that fails: the other exporter, a fixed batch, another opset, ``torch.export`` to see where
  tracing stops;
* a conversion whose numbers differ: ``wb.compare_layers`` to find the first node that diverges.

The error's own fix (a ``WorkbenchError``'s ``— fix:`` part) is not repeated: ``split_error`` separates it
so a view shows it beside the problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.core import registry
from workbench.core.hardware import int8_sums_saturate
from workbench.core.model import Model
from workbench.steps.export import TORCHSCRIPT_EXPORTER

_FIX = " — fix: "
#: an install command inside a fix's text
_INSTALL = re.compile(r"(?:pip install|apt-get install|conda install)[^;,()]*")
#: input names of transformer models (text, vision and audio)
_TRANSFORMER_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "inputs_embeds", "pixel_values",
                       "input_values", "input_features", "decoder_input_ids")


@dataclass(frozen=True)
class Hint:
    """One thing to try: ``text`` (why and what), ``code`` (a line that tries it, using ``m`` for the
    step's input), and ``options`` (the same step's option changes that try it; empty if it needs more)."""

    text: str
    code: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "code": self.code, "options": dict(self.options)}


def split_error(message: str) -> tuple[str, str]:
    """``(problem, fix)`` of a ``WorkbenchError``'s text (``"<problem> — fix: <fix>"``); fix may be ""."""
    problem, _, fix = message.partition(_FIX)
    return problem.strip(), fix.strip()


def is_transformer(model: Model | None) -> bool:
    """Whether ``model`` (or the model it was made from) looks like a transformer: a Hugging Face model,
    or inputs named as transformers name them."""
    if model is None:
        return False
    origin = getattr(model, "original", None) or model
    if "hf" in (model.format, origin.format):
        return True
    names = {s.name for s in (*model.inputs, *origin.inputs)}
    return any(n in names for n in _TRANSFORMER_INPUTS)


def _call(kind: str, target: str, options: Mapping[str, Any]) -> str:
    fn = {"export": "wb.export", "convert": "wb.convert", "quantize": "wb.quantize"}.get(kind, "wb.convert")
    args = [repr(target)] + [f"{k}={v!r}" for k, v in options.items()]
    return f"{fn}(m, {', '.join(args)})"


def failure_hints(kind: str, target: str | None, options: Mapping[str, Any] | None = None, *,
                  error: str | None = None, error_type: str | None = None, result: Model | None = None,
                  model: Model | None = None) -> list[Hint]:
    """What to try after step ``(kind, target, options)`` failed.

    Args:
        error: the step's error text (the step raised), with ``error_type`` its class name if known.
        result: the step's result, when it ran but its validation failed (``result.validation``).
        model: the model the pipeline started from (its kind decides, e.g. a transformer's hints).
    """
    options = dict(options or {})
    target = target or ""
    if error is not None:
        return _error_hints(kind, target, options, error, error_type, model)
    validation = getattr(result, "validation", None) if result is not None else None
    if validation is None:
        return []
    if validation.skipped:
        return [Hint(f"The result could not be checked here ({validation.skipped}); install or enable its "
                     "runtime to validate it, or check it on the machine you deploy to with wb.compare.",
                     "wb.compare(original, result)")]
    if validation:
        return []
    if kind == "quantize":
        return _quantize_hints(target, options, result, model or getattr(result, "original", None))
    out = [Hint("A conversion should compute what its input computes: find the first node whose outputs "
                "differ from the original's with a per-layer comparison.",
                f"wb.compare_layers(m, [{registry.default_runtime('onnx')!r}, {target!r}])")]
    if options.get("fp16_weights"):
        out.insert(0, Hint("FP16 weights round every weight: keep them in FP32.",
                           _call(kind, target, {**options, "fp16_weights": False}), {"fp16_weights": False}))
    return out


def _error_hints(kind: str, target: str, options: dict[str, Any], error: str, error_type: str | None,
                 model: Model | None) -> list[Hint]:
    problem, fix = split_error(error)
    low = problem.lower()
    out: list[Hint] = []
    if error_type == "Cancelled" or "was cancelled" in low:
        return []
    if error_type == "BackendUnavailable" or "not installed" in low or "cannot run on this machine" in low \
            or "needs macos" in low or "needs an nvidia gpu" in low:
        install = _INSTALL.search(fix)
        out.append(Hint("The other steps do not need this toolchain: untick this step to run them, and run it "
                        "where its toolchain is installed (the fix above says how).",
                        install.group(0).rstrip(" .") if install else ""))
        return out
    if "unknown option" in low or "option '" in low:
        out.append(Hint("An option has a value this step does not take: reset the step's options to their "
                        "defaults, then change one at a time."))
        return out
    if "timed out" in low or "timeout" in low:
        out.append(Hint("The step ran past its time limit: run it in a notebook with a larger timeout.",
                        _call(kind, target, {**options, "timeout": 3600})))
    if "memory" in low or "memoryerror" in low or "cannot allocate" in low:
        out.append(Hint("The step ran out of memory: quantize with fewer calibration samples, or run it where "
                        "the worker may use more memory.", "", {"samples": 8} if kind == "quantize" else {}))
    if kind == "export":
        exporter = options.get("exporter", "auto")
        if exporter in ("auto", "dynamo"):
            out.append(Hint("torch's dynamo exporter failed on this model: the TorchScript-based exporter traces "
                            "it differently and takes some models dynamo cannot.",
                            _call(kind, target, {"exporter": TORCHSCRIPT_EXPORTER}), {"exporter": TORCHSCRIPT_EXPORTER}))
        if options.get("dynamic", True):
            out.append(Hint("Dynamic shapes are a frequent cause: export with a fixed batch.",
                            _call(kind, target, {"dynamic": False}), {"dynamic": False}))
        out.append(Hint("See where torch.export stops (the first unsupported operation, with its source line).",
                        "wb.export(m, 'exported_program')"))
    elif kind == "quantize" and "calibrat" in low:
        out.append(Hint("Calibration needs representative inputs: use the model's own data (the default) or "
                        "pass calibration= a list of input dicts in a notebook."))
    elif kind == "convert":
        out.append(Hint("Converters take some graphs others do not: convert from the ONNX export instead of "
                        "the torch model (or the other way round), and look at the graph tab for the "
                        "operation the error names."))
    if not out:
        out.append(Hint("Run the step alone in a notebook to see the whole traceback.",
                        _call(kind, target, options)))
    return out


def _quantize_hints(tool: str, options: dict[str, Any], result: Model | None, model: Model | None) -> list[Hint]:
    validation = getattr(result, "validation", None)
    drop = dict(getattr(validation, "metric_drop", None) or {})
    transformer = is_transformer(model)
    method = options.get("method")
    out: list[Hint] = []
    metric = getattr(getattr(model, "task", None), "metric_name", None)
    worse = {k: v for k, v in drop.items() if v > 0 and (metric not in drop or k == metric)}  # the task's metric
    lost = (", ".join(f"{k} dropped {v:.4f}" for k, v in worse.items()) + ". ") if worse else ""
    # ONNX's own runtime's quantizer (ONNX Runtime's): its static INT8 options
    if tool == registry.default_runtime("onnx") and method in (None, "static", "int8", "qdq"):
        if options.get("per_channel") is False:
            out.append(Hint(f"{lost}Per-tensor INT8 weights lose most in layers whose channels differ in range "
                            "(depthwise convolutions, attention projections): quantize weights per channel.",
                            _call("quantize", tool, {**options, "per_channel": True}), {"per_channel": True}))
        if transformer:
            # measured on the zoo's MiniLM here (benchmarks/app_hints.py): static INT8 cosine 0.934 (FAIL), with SmoothQuant 0.942,
            # percentile calibration 0.932; dynamic INT8 0.994 (PASS)
            out.append(Hint(f"{lost}A transformer's activations have outlier channels that static INT8 clips: "
                            "quantize the weights only and let activations be quantized at run time (dynamic "
                            "INT8 passes on MiniLM, cosine 0.994 where static gets 0.934).",
                            "wb.quantize(m, 'onnxruntime', 'dynamic')", {"method": "dynamic"}))
            if options.get("smooth_quant") is None:
                out.append(Hint("Or keep static INT8 and move the activations' outliers into the weights with "
                                "SmoothQuant (it helps, but alone is not enough for MiniLM).",
                                _call("quantize", tool, {**options, "smooth_quant": 0.5}), {"smooth_quant": 0.5}))
        elif options.get("calibrate", "minmax") == "minmax":
            out.append(Hint("Min-max calibration lets rare large activations stretch the range: a percentile "
                            "calibration clips them.", _call("quantize", tool, {**options, "calibrate": "percentile"}),
                            {"calibrate": "percentile"}))
        if int8_sums_saturate() and options.get("reduce_range") is False:  # the default there is True
            # measured on an AVX2 CPU without VNNI: per-channel INT8 of a depthwise block rel. L2 0.288 -> 0.021
            out.append(Hint("This CPU has no VNNI: ONNX Runtime adds its uint8 x int8 products in 16 bits, "
                            "which saturate for large weights; 7-bit weights keep the sums in range.",
                            _call("quantize", tool, {**options, "reduce_range": True}), {"reduce_range": True}))
        out.append(Hint("Keep the layers that hurt most in higher precision: layer_schemes={node: 'int16' | "
                        "'per_channel' | 'smooth_quant' | 'float'} per layer, or let the accuracy-aware search "
                        "choose the fewest such layers for a budget.",
                        "wb.quantize(m, 'onnxruntime', 'static', accuracy_budget=0.01)"))
    elif tool == "nncf" and method in (None, "ptq", "int8"):
        if transformer and not options.get("transformer"):
            # measured on the zoo's MiniLM (benchmarks/app_hints.py): NNCF's default preset cosine 0.106 (FAIL), transformer=True 0.997 (PASS)
            out.append(Hint(f"{lost}Tell NNCF it is a transformer: its transformer model type keeps the ops INT8 "
                            "hurts there (softmax, layer norm inputs) in float (on MiniLM: cosine 0.997 instead "
                            "of 0.106).", _call("quantize", tool, {**options, "transformer": True}),
                            {"transformer": True}))
        elif options.get("preset", "performance") == "performance":
            out.append(Hint(f"{lost}The mixed preset quantizes activations asymmetrically (better for ranges that "
                            "are not centred on zero, e.g. after GELU or ReLU6).",
                            _call("quantize", tool, {**options, "preset": "mixed"}), {"preset": "mixed"}))
        out.append(Hint("Compress only the weights (activations stay float).", "wb.quantize(m, 'nncf', 'weights')",
                        {"method": "weights"}))
        out.append(Hint("Keep the ops that hurt most float (ignored_scope), or let the accuracy-aware search choose "
                        "them for a budget.", "wb.quantize(m, 'nncf', accuracy_budget=0.01)"))
    else:
        out.append(Hint(f"{lost}Try the tool's weight-only or dynamic method, which keeps activations float.",
                        f"wb.quantize(m, {tool!r}, 'dynamic')"))
    out.append(Hint("The Quantization tab (wb.quantize_debug in a notebook) ranks the layers to blame and tries "
                    "the fix on each.", "wb.quantize_debug(original, result)"))
    return out

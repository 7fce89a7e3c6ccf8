"""The one rule for "what precision does this model compute in?" (used by compare, bench and validation).

A model's precision decides which tolerance its outputs are held to (``workbench/core/tolerances.py``).
It is the **loosest** of everything that says something about it:

* what the model records: ``metadata["precision"]``;
* what its lineage records: each step's options (``precision``, ``weights``, ``dtype``, ``weight_dtype``,
  ``mode``) and each parent's ``metadata["precision"]``; a quantize step that recorded none is int8;
* for a model no quantize step made, what its stored graph implies (the format plugin's
  ``Format.precision(model)``: a QDQ ONNX graph is int8, an IR with FakeQuantize int8, fp16 weights fp16);
* when it runs on a runner: the runner's ``precision``/``dtype`` option and what the runtime reports it
  really computes in (``Runner.effective_precision()``; OpenVINO's CPU plugin picks bf16 by itself on
  CPUs with AVX-512 BF16 or AMX).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.model import Model
    from workbench.core.runner import Runner

#: precisions from tightest to loosest; a model computed in several takes the loosest
PRECISION_ORDER = ("fp32", "fp16", "bf16", "int8", "int4")

#: lineage option keys that may name a precision
_OPTION_KEYS = ("precision", "weights", "dtype", "weight_dtype", "mode")

_NEEDLES = ((("bf16", "bfloat16"), "bf16"),
            (("int4", "nf4", "w4", "u4", "i4", "4bit", "4-bit"), "int4"),
            (("int8", "uint8", "qint8", "quint8", "i8", "u8", "w8", "8bit", "8-bit"), "int8"),
            (("fp16", "float16", "f16", "half"), "fp16"),
            (("fp32", "float32", "f32", "float"), "fp32"))


def normalize_precision(value: Any) -> str | None:
    """``"bfloat16"``, ``"<Type: 'bfloat16'>"``, ``"f16"``, ``"uint8"``, ``"w4a16"`` … → a key of
    ``PRECISION_ORDER``, or None when the text names no precision."""
    if value is None:
        return None
    text = str(value).lower()
    for needles, key in _NEEDLES:
        if any(n in text for n in needles):
            return key
    return None


def loosest(*precisions: str | None) -> str:
    """The loosest of the given precisions (``"fp32"`` when none is given)."""
    known = [p for p in precisions if p in PRECISION_ORDER]
    return max(known, key=PRECISION_ORDER.index) if known else "fp32"


def stored_precision(model: Model) -> str | None:
    """What the model's format says its stored graph computes in (``Format.precision``), if anything."""
    from workbench.core import registry

    try:
        return normalize_precision(registry.get_format(model.format).precision(model))
    except Exception:  # noqa: BLE001 - a graph we cannot read says nothing about precision
        return None


def runner_precision(runner: Runner) -> str | None:
    """What a runner computes in: its ``precision``/``dtype`` option, and what the runtime reports."""
    found = [normalize_precision(runner.options.get("precision") or runner.options.get("dtype"))]
    try:
        found.append(normalize_precision(runner.effective_precision()))
    except Exception:  # noqa: BLE001 - a runtime that cannot say leaves the option's word
        pass
    known = [p for p in found if p is not None]
    return loosest(*known) if known else None


def precision_of(model: Model, runner: Runner | None = None) -> str:
    """The precision ``model`` is computed in (on ``runner`` if given), by the rule in the module doc."""
    found: list[str | None] = [normalize_precision(model.metadata.get("precision"))]
    quantized = False
    for entry in model.lineage:
        options = entry.options or {}
        found += [normalize_precision(options[k]) for k in _OPTION_KEYS if options.get(k) is not None]
        if entry.parent is not None:
            found.append(normalize_precision(entry.parent.metadata.get("precision")))
        quantized = quantized or entry.step.startswith("quantize")
    if quantized and not any(p in ("int8", "int4", "fp16", "bf16") for p in found):
        found.append("int8")  # a quantizer that did not say what it made
    if not quantized:
        found.append(stored_precision(model))
    if runner is not None:
        found.append(runner_precision(runner))
    return loosest(*found)

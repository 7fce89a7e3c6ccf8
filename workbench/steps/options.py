"""A registered step's options as data: what an options form shows, and the check of what a form sends.

``step_options(plugin, method)`` lists the options of a step (``registry.StepPlugin``) a user may set:

* a step whose options are keyword parameters (exports, conversions) gives its signature: the type hint
  and default of each (``bool`` → a checkbox, ``Literal[...]`` → a choice, ``int``/``float`` → a number,
  ``X | None`` → optional), leaving out the options every step takes for running (``path``, ``isolate``,
  ``timeout``, ``cache``, ``validate``);
* a quantization tool gives its methods' declared options (``QuantizeMethods.options``, the defaults
  its plans check against), plus ``method`` and, for calibrated methods, ``samples``.

What a name means beyond its type (choices, bounds, a line of help) comes from ``KNOWN``, shared by
every step that takes an option of that name, and from a step's own ``option_info`` (``describe``).
An option whose value a form cannot hold safely (a dict, a free-form string without choices, a path) is
not offered: it stays at its default and the step's code says how to set it.

``check_values(options, values)`` turns what a form sent into keyword arguments: each value is checked
against its option (type, choices, bounds; lists of names are plain identifiers, bounded in number and
length) and a bad one is a ``StepError`` naming the option and what it takes. Nothing sent becomes code
or a path: values are booleans, numbers, strings from a fixed list, or lists of identifiers.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.core.errors import StepError
from workbench.core.registry import StepPlugin
from workbench.steps.export import EXPORTERS
from workbench.steps.quantize import RUN_OPTIONS, TABLES

#: options every step takes for running it, never shown as a step's own
RUN_ONLY = frozenset({*RUN_OPTIONS, "model", "method", "target", "tool"})
#: a name list's items: identifiers such as ONNX op types or node names (no paths, no spaces)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_./:\-]{0,199}$")
_MAX_NAMES = 200
KINDS = ("bool", "int", "float", "choice", "names")


@dataclass(frozen=True)
class Option:
    """One option of a step: ``kind`` is ``bool``, ``int``, ``float``, ``choice`` (one of ``choices``) or
    ``names`` (a list of identifiers, e.g. op types); ``optional``: None is allowed (shown as "auto" /
    "off", what None means for the step); ``minimum``/``maximum`` bound numbers (inclusive)."""

    name: str
    kind: str
    default: Any = None
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False
    help: str = ""
    none_label: str = "auto"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["choices"] = list(self.choices)
        return d

    def check(self, value: Any) -> Any:
        """``value`` if it fits this option (ints given as floats made ints), else a ``StepError``."""
        fix = self.describe_values()
        if value is None:
            if self.optional:
                return None
            raise StepError(f"option {self.name!r} needs a value", fix)
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
        elif self.kind in ("int", "float"):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise StepError(f"option {self.name!r} takes a number, not {value!r}", fix)
            if self.kind == "int":
                if float(value) != int(value):
                    raise StepError(f"option {self.name!r} takes a whole number, not {value!r}", fix)
                value = int(value)
            else:
                value = float(value)
            if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
                raise StepError(f"option {self.name!r} is {value}, out of its range", fix)
            return value
        elif self.kind == "choice":
            if any(value == c and type(value) is type(c) for c in self.choices):
                return value
        elif self.kind == "names":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if isinstance(value, list | tuple) and len(value) <= _MAX_NAMES and all(
                    isinstance(v, str) and _NAME.match(v) for v in value):
                return list(value) if value or not self.optional else None
        raise StepError(f"option {self.name!r} cannot be {value!r}", fix)

    def describe_values(self) -> str:
        """What this option takes, in words (the fix of a bad value)."""
        if self.kind == "bool":
            what = "true or false"
        elif self.kind == "choice":
            what = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "names":
            what = f"a list of up to {_MAX_NAMES} names (letters, digits, _ . / : -)"
        else:
            what = "a whole number" if self.kind == "int" else "a number"
            if self.minimum is not None and self.maximum is not None:
                what += f" from {self.minimum:g} to {self.maximum:g}"
            elif self.minimum is not None:
                what += f" ≥ {self.minimum:g}"
            elif self.maximum is not None:
                what += f" ≤ {self.maximum:g}"
        return f"{self.name} takes {what}" + (" (or none: " + self.none_label + ")" if self.optional else "")


@dataclass(frozen=True)
class Info:
    """What an option's name means beyond its type: its kind, choices, bounds and a line of help."""

    kind: str | None = None
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""
    none_label: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)


_INT8_TYPES = ("uint8", "int8")
#: options shared by several steps, by name (a step's own ``option_info`` overrides these)
KNOWN: dict[str, Info] = {
    # export
    "opset": Info("int", minimum=7, maximum=23, help="ONNX opset version"),
    "dynamic": Info("bool", help="a dynamic batch axis (and sequence axis for text)"),
    "exporter": Info("choice", EXPORTERS,
                     help="torch's ONNX exporter: auto tries dynamo, then the TorchScript-based one"),
    # conversions
    "fp16_weights": Info("bool", help="store weights as FP16 (half the size; computed in FP32 on CPU)"),
    "static_batch": Info("int", minimum=1, maximum=4096, help="fix the batch size (none: keep it dynamic)",
                         none_label="dynamic"),
    "level": Info("choice", ("basic", "extended", "all"), help="ONNX Runtime graph optimization level"),
    "precision": Info("choice", ("fp32", "fp16"), help="the precision the converted model computes in"),
    "optlevel": Info("int", minimum=0, maximum=2, help="pnnx optimization level"),
    "weight_bits": Info("choice", (8, 4, 2), help="quantize weights to this many bits", none_label="off"),
    "delegate": Info("choice", ("xnnpack", "none"), help="ExecuTorch backend delegate"),
    "schedule": Info("choice", ("parallel", "default"), help="TVM schedule"),
    "tune_trials": Info("int", minimum=0, maximum=2000, help="MetaSchedule tuning trials (0: no tuning)"),
    "max_batch": Info("int", minimum=1, maximum=4096, help="the largest batch the engine takes"),
    # quantization
    "samples": Info("int", minimum=1, maximum=1024, help="calibration samples (none: 32, 16 in quick mode)",
                    none_label="default"),
    "calibrate": Info("choice", ("minmax", "entropy", "percentile"), help="how activation ranges are calibrated"),
    "per_channel": Info("bool", help="one scale per output channel of each weight (per-tensor when off)"),
    "percentile": Info("float", minimum=90.0, maximum=100.0, help="the percentile kept by calibrate='percentile'"),
    "activation_type": Info("choice", _INT8_TYPES, help="activations' INT8 type (uint8: x86's fast path)"),
    "weight_type": Info("choice", _INT8_TYPES, help="weights' INT8 type"),
    "preprocess": Info("bool", help="ONNX Runtime's pre-processing (shape inference, graph optimization) first"),
    "reduce_range": Info("bool", help="7-bit weights (on by default on x86 CPUs without VNNI, "
                                       "where 8-bit weights' sums saturate)"),
    "op_types": Info("names", help="op types to quantize (none: read from the graph; 'all': every op)"),
    "nodes_to_exclude": Info("names", help="nodes kept float", none_label="none"),
    "smooth_quant": Info("float", minimum=0.05, maximum=0.95,
                         help="SmoothQuant's alpha for every MatMul/Gemm (transformers; 0.5 is the paper's)",
                         none_label="off"),
    "preset": Info("choice", ("performance", "mixed"), help="NNCF preset (mixed: asymmetric activations)"),
    "transformer": Info("bool", help="NNCF's transformer model type (keeps sensitive ops float)"),
    "fast_bias_correction": Info("bool", help="NNCF's fast bias correction"),
    "ignored_scope": Info("names", help="op names NNCF keeps float", none_label="none"),
    "mode": Info("choice", ("int8", "int8_sym", "int4", "int4_asym"), help="weight compression mode"),
    "group_size": Info("int", minimum=1, maximum=4096, help="weights per INT4 group", none_label="default"),
    "ratio": Info("float", minimum=0.0, maximum=1.0, help="share of layers compressed to INT4", none_label="default"),
    "keep_io_types": Info("bool", help="keep FP32 inputs and outputs"),
    "block_size": Info("choice", (16, 32, 64, 128, 256), help="weights per INT4 block"),
    "symmetric": Info("bool", help="symmetric INT4 (no zero point)"),
    "nbits": Info("choice", (2, 4, 6, 8), help="bits per palettized weight"),
    "dtype": Info("choice", ("qint8", "float16"), help="torch dynamic quantization dtype"),
}


def describe(**info: Info) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for a step function: what its options mean where ``KNOWN`` does not say (or differs),
    e.g. ``@describe(level=Info("choice", ("O1", "O2")))``."""

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        func.option_info = {**getattr(func, "option_info", {}), **info}  # type: ignore[attr-defined]
        return func

    return mark


def _hint_of(annotation: Any) -> tuple[str | None, tuple[Any, ...], bool]:
    """(kind, choices, optional) of a type hint."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) != 1:
            return None, (), optional
        annotation = args[0]
        origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "choice", tuple(typing.get_args(annotation)), optional
    kind = {bool: "bool", int: "int", float: "float"}.get(annotation)
    return kind, (), optional


def _option(name: str, default: Any, annotation: Any, own: Mapping[str, Info]) -> Option | None:
    info = own.get(name) or KNOWN.get(name) or Info()
    kind, choices, optional = _hint_of(annotation)
    if info.kind is not None:  # what the name is known to mean wins over a loose hint (``str``)
        kind, choices = info.kind, info.choices or choices
    if kind is None:  # no hint: from the default
        kind = {bool: "bool", int: "int", float: "float"}.get(type(default))
    if kind is None or kind not in KINDS or (kind == "choice" and not choices):
        return None  # nothing a form can hold safely (a dict, a path, free text): not offered
    optional = optional or default is None
    if kind == "choice" and default is not None and default not in choices:
        choices = (default, *choices)
    if kind == "float" and isinstance(default, int) and not isinstance(default, bool):
        default = float(default)
    return Option(name, kind, default, tuple(choices), info.minimum, info.maximum, optional, info.help,
                  info.none_label)


def methods_of(plugin: StepPlugin) -> tuple[str, ...]:
    """The methods a step offers (a quantization tool's), in the order it declares them."""
    table = _table(plugin)
    return table.names if table is not None else tuple(plugin.methods)


def _table(plugin: StepPlugin) -> Any:
    """A quantization tool's ``QuantizeMethods`` (None for other steps)."""
    return TABLES.get(plugin.target) if plugin.kind == "quantize" else None


def default_method(plugin: StepPlugin) -> str | None:
    table = _table(plugin)
    return table.default if table is not None else (plugin.methods[0] if plugin.methods else None)


def step_options(plugin: StepPlugin, method: str | None = None) -> list[Option]:
    """The options of ``plugin`` a form may offer (for a quantization tool: of ``method``, default its
    default method), each with its kind, default, choices, bounds and help."""
    own: Mapping[str, Info] = getattr(plugin.func, "option_info", {})
    out: list[Option] = []
    methods = methods_of(plugin)
    if plugin.kind == "quantize" or methods:
        table = _table(plugin)
        chosen = table.resolve(method) if table is not None else (method or default_method(plugin))
        if methods:
            out.append(Option("method", "choice", chosen, tuple(methods), help="the tool's method"))
        if table is not None and chosen in table.calibrated:
            out.append(_option("samples", None, int | None, own))  # type: ignore[arg-type]
        declared = table.options.get(chosen, {}) if table is not None else {}
        for name, default in declared.items():
            opt = _option(name, default, None, own)
            if opt is not None:
                out.append(opt)
        return [o for o in out if o is not None]
    try:
        hints = typing.get_type_hints(plugin.func)
    except Exception:  # noqa: BLE001 - an unresolvable hint: fall back to the defaults' types
        hints = {}
    for p in inspect.signature(plugin.func).parameters.values():
        if p.kind is not p.KEYWORD_ONLY or p.name in RUN_ONLY or p.default is p.empty:
            continue
        opt = _option(p.name, p.default, hints.get(p.name), own)
        if opt is not None:
            out.append(opt)
    return out


def check_values(options: list[Option], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` checked against ``options`` (see ``Option.check``); an unknown name is a ``StepError``."""
    by_name = {o.name: o for o in options}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise StepError(f"unknown option(s) {unknown}", f"this step's options are {sorted(by_name) or 'none'}")
    return {name: by_name[name].check(value) for name, value in values.items()}

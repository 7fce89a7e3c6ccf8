"""Quantize a model with the tools of its runtime: ``wb.quantize(model, tool, method=..., **options)``.

``quantize`` is generic: it finds the step registered as ``("quantize", tool)`` (or an alias) in
``workbench.core.registry`` and calls it. Each tool is a plugin file that declares its methods with a
``QuantizeMethods`` table (``steps/onnxruntime.py``, ``steps/openvino.py`` for NNCF, ``steps/coreml.py``,
``steps/torch_quantize.py``). The tools and their methods:

=============== ============== ==================================================================
tool            method         what it does
=============== ============== ==================================================================
``onnxruntime`` ``static``     INT8 QDQ with calibration (``calibrate="minmax" | "entropy" |
                               "percentile"``, ``per_channel=``), after ONNX Runtime's
                               pre-processing (shape inference, graph optimization)
``onnxruntime`` ``dynamic``    INT8 weights, activations quantized at run time (no calibration)
``onnxruntime`` ``fp16``       FP16 weights and compute, FP32 inputs/outputs kept
``onnxruntime`` ``int4``       weight-only INT4 for MatMuls with constant weights (MatMulNBits)
``nncf``        ``ptq``        OpenVINO post-training INT8 quantization with calibration
``nncf``        ``weights``    weight compression, ``mode="int8" | "int4" | "int4_asym"``
``coreml``      ``linear``     linear (symmetric) INT8 weight quantization
``coreml``      ``palettize``  k-means weight palettization (``nbits=`` 2, 4, 6 or 8)
``torch``       ``dynamic``    ``torch.ao`` dynamic INT8 for ``nn.Linear`` (saved as TorchScript)
``torch``       ``pt2e``       PyTorch 2 export quantization with the X86 Inductor quantizer
                               (needs ``torchao``; saved as an ExportedProgram)
=============== ============== ==================================================================

Calibration data (``calibration=``): see ``workbench.steps.calibration`` (the model's zoo data, an
iterable of inputs, or a folder of ``.npy`` files).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.core.errors import BackendUnavailable, StepError
from workbench.core.model import Model
from workbench.steps.base import StepSpec, as_model, resolve_step, run_step
from workbench.steps.calibration import calibration_feeds

#: method names any tool understands, mapped to the tool's own (None: its default calibrated INT8 method)
METHOD_ALIASES = {"int8": None, "matmulnbits": "int4", "weight_only_int4": "int4", "qdq": "static",
                  "compress_weights": "weights", "weight_compression": "weights", "static": None,
                  "post_training": "ptq", "palettization": "palettize", "linear_int8": "linear"}
CALIBRATE = ("minmax", "entropy", "percentile")
#: the options ``QuantizeMethods.run`` takes for itself; the rest are the method's
RUN_OPTIONS = ("calibration", "samples", "path", "isolate", "timeout", "cache", "validate")


def quantize(
    model: Model,
    tool: str,
    method: str | None = None,
    *,
    calibration: Any = None,
    samples: int | None = None,
    path: Any = None,
    isolate: bool = True,
    timeout: float | None = None,
    cache: bool = True,
    validate: bool = True,
    **options: Any,
) -> Model:
    """Quantize ``model`` with ``tool`` and ``method`` (see the table in the module docstring).

    Args:
        tool: a registered quantization tool or alias: ``"onnxruntime"`` (ONNX in, ONNX out), ``"nncf"``
            (OpenVINO IR or ONNX in, IR out), ``"coreml"`` (Core ML in and out) or ``"torch"`` (torch in;
            TorchScript / ExportedProgram out).
        method: the tool's method; default ``static``, ``ptq``, ``linear``, ``dynamic`` respectively.
        calibration: calibration data for static methods (default: the model's own data).
        samples: how many calibration samples to use (default 32; 16 with ``WORKBENCH_QUICK=1``).
        **options: the method's options:
            onnxruntime static: ``calibrate`` (``"minmax"``), ``per_channel`` (True), ``percentile``
            (99.999), ``activation_type`` (``"uint8"``) / ``weight_type`` (``"int8"``), ``preprocess``
            (True), ``reduce_range`` (7-bit weights; True on x86 CPUs without VNNI, where ONNX Runtime's
            16-bit sums of uint8 x int8 products saturate), ``op_types`` (default: read from the graph, ``steps/quant_scope.py``:
            a transformer's weight ops only, every op otherwise; ``"all"``: every op), ``nodes_to_exclude``
            (index arithmetic, nodes no float data reaches, is always kept float), ``layer_schemes``
            (``{node: "per_channel" | "int16" | "smooth_quant" | "float"}``) and ``smooth_quant`` (SmoothQuant's
            alpha for every MatMul/Gemm; ``steps/onnxruntime_schemes.py``);
            onnxruntime dynamic: ``weight_type``, ``per_channel`` (True), ``reduce_range`` (as for static);
            onnxruntime int4: ``block_size`` (32), ``symmetric`` (True);
            nncf ptq: ``preset`` (``"performance"`` | ``"mixed"``), ``transformer`` (False),
            ``fast_bias_correction`` (True), ``ignored_scope`` (op names kept float); nncf weights:
            ``mode``, ``group_size``, ``ratio``;
            coreml palettize: ``nbits`` (4); torch dynamic: ``dtype`` (``"qint8"``).
        path, isolate, timeout, cache, validate: see ``workbench.steps.base.run_step``.
    """
    model = as_model(model)
    plugin = resolve_step("quantize", tool, "quantization tool")
    return plugin.func(model, method, calibration=calibration, samples=samples, path=path, isolate=isolate,
                       timeout=timeout, cache=cache, validate=validate, **options)


Plan = Callable[[Model, dict[str, Any]], StepSpec]
#: every tool's ``QuantizeMethods`` by tool name (filled as the plugin files declare them)
TABLES: dict[str, QuantizeMethods] = {}


@dataclass(frozen=True)
class QuantizeMethods:
    """A quantization tool's methods: ``plans[method](model, options) -> StepSpec`` checks the model and
    the options and names the result; ``default`` is the method used when none is given; ``calibrated``
    are the methods that need calibration data (the first is what ``method="int8"`` means). ``options``
    declares each method's options with their defaults (``{method: {option: default}}``, the dict its plan
    passes to ``check_options``), so the app's option forms are derived from it (``steps/options.py``)."""

    tool: str
    plans: dict[str, Plan]
    default: str
    calibrated: tuple[str, ...] = ()
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        TABLES[self.tool] = self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.plans)

    def resolve(self, method: str | None) -> str:
        """The tool's own name for ``method`` (aliases such as ``"int8"`` or ``"qdq"`` included)."""
        if method is None:
            return self.default
        if method in self.plans:
            return method
        alias = METHOD_ALIASES.get(method, method)
        if alias is None:  # "int8" / "static" mean the tool's calibrated INT8 method
            alias = self.calibrated[0] if self.calibrated else self.default
        if alias not in self.plans:
            raise StepError(f"{self.tool} has no quantization method {method!r}",
                            f"choose one of {', '.join(self.plans)}")
        return alias

    def run(self, model: Model, method: str | None, **options: Any) -> Model:
        """Plan ``method`` with ``options``, attach the calibration data it needs, and run the step."""
        model = as_model(model)
        run = {k: options.pop(k) for k in RUN_OPTIONS if k in options}
        calibration = run.pop("calibration", None)
        samples = run.pop("samples", None)
        method = self.resolve(method)
        spec = self.plans[method](model, options)
        spec.options.setdefault("precision", spec.precision)  # read by wb.compare's precision_of
        if method in self.calibrated:
            feeds, desc, digest = calibration_feeds(model, calibration, samples)
            spec.writer_kwargs["calibration"] = feeds
            spec.options["calibration"] = desc
            spec.cache_extra = digest
        elif calibration is not None:
            raise StepError(f"{self.tool} {method} quantization takes no calibration data",
                            f"leave calibration out, or use a static method "
                            f"({', '.join(self.calibrated) or 'none for this tool'})")
        return run_step(model, spec, **run)


def need(model: Model, formats: tuple[str, ...], what: str, fix: str) -> None:
    """Raise the StepError of a quantizer handed a model of another format."""
    if model.format not in formats:
        raise StepError(f"{what} takes a {' or '.join(formats)} model; this one is {model.format}", fix)


def check_options(options: dict[str, Any], allowed: dict[str, Any], what: str) -> dict[str, Any]:
    """``allowed`` (the defaults) updated with ``options``; an option not in ``allowed`` is a StepError."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise StepError(f"unknown option(s) {unknown} for {what}", f"its options are {sorted(allowed)}")
    return {**allowed, **options}


def need_module(module: str, fix: str) -> None:
    """Raise BackendUnavailable with ``fix`` when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise BackendUnavailable(f"{module} is not installed", fix)

"""``wb.autotune``: which runtime, precision and settings run this model fastest, within an error budget?

Sweeps runtimes × precisions × the knobs that matter, and for each configuration measures latency
(``wb.benchmark``) and validates it: its outputs against the original's (``wb.compare``) and, where the
model has evaluation data, the task metric's drop. Returns a ``TuneResult``: every trial, the Pareto
front of latency against error (or metric drop), the best valid configuration, and the Python script
that reproduces it.

The space (override any key with ``space=``):

=============================== =====================================================================
``backends``                    ``["onnxruntime", "openvino"]`` (and ``"torch_eager"`` as the baseline)
``precisions``                  ``["fp32", "bf16", "fp16", "int8"]``: bf16 / fp16 only where the CPU
                                computes them natively (AVX-512 BF16 / AMX, AVX-512 FP16); INT8 by
                                post-training static quantization (ONNX Runtime QDQ, NNCF for OpenVINO)
``threads``                     ``[None, 1]`` (None: the runtime's choice)
``hint``                        OpenVINO ``["LATENCY", "THROUGHPUT"]``
``graph_optimization_level``    ONNX Runtime ``["all", "basic"]``
=============================== =====================================================================

Timings on a busy machine move; the fastest few valid configurations are timed again, interleaved,
before the best is chosen (``confirm=``).
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import sys
import time
import types
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core import settings
from workbench.core.errors import WorkbenchError
from workbench.core.results import result_type, to_json

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from workbench.core.model import Model

ORT_PRECISIONS = ("fp32", "int8")
OV_PRECISIONS = ("fp32", "bf16", "fp16", "int8")


@dataclass
class Trial:
    """One configuration: what ran, how fast, how far from the original, and whether it is valid."""

    backend: str
    precision: str
    options: dict[str, Any]
    model: str  # the artifact it ran (path or name)
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    throughput: float = math.nan
    rel_l2: float = math.nan
    cosine: float = math.nan
    top1: float | None = None
    metric: float | None = None
    metric_drop: float | None = None
    valid: bool = False
    reason: str = ""
    on_front: bool = False
    noisy: bool = False
    confirmed_p50_ms: float | None = None  # re-timed, interleaved with the other finalists
    error: str | None = None

    def json_extras(self) -> dict[str, Any]:
        """Derived figures a reader of the JSON wants (``workbench.core.results``)."""
        return {"label": self.label}

    @property
    def label(self) -> str:
        knobs = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.backend} {self.precision}" + (f" ({knobs})" if knobs else "")

    @property
    def latency_ms(self) -> float:
        return self.confirmed_p50_ms if self.confirmed_p50_ms is not None else self.p50_ms


@result_type("autotune")
@dataclass
class TuneResult:
    """The trials of ``wb.autotune``; ``best``, ``front`` (Pareto), ``script``, ``to_frame()``, ``plot()``."""

    model: str
    trials: list[Trial]
    best: Trial | None
    error_axis: str  # "metric_drop" or "rel_l2"
    budget: dict[str, Any]
    script: str
    environment: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # configurations that cannot run here, and why

    def __post_init__(self) -> None:
        # read back from JSON, ``best`` is a copy: make it the trial itself again (``t is self.best``)
        if self.best is not None and all(t is not self.best for t in self.trials):
            self.best = next((t for t in self.trials if (t.label, t.model) == (self.best.label, self.best.model)),
                             self.best)

    @property
    def front(self) -> list[Trial]:
        return sorted((t for t in self.trials if t.on_front), key=lambda t: t.latency_ms)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = []
        for t in self.trials:
            row = asdict(t)
            row["label"] = t.label
            row["latency_ms"] = t.latency_ms
            row["options"] = ", ".join(f"{k}={v}" for k, v in t.options.items())
            rows.append(row)
        return pd.DataFrame(rows).set_index("label").sort_values("latency_ms") if rows else pd.DataFrame()

    def summary(self) -> str:
        lines = [f"autotune {self.model}: {len(self.trials)} configurations, error axis {self.error_axis}, "
                 f"budget {self.budget}"]
        for t in sorted(self.trials, key=lambda t: (t.error is not None, t.latency_ms)):
            if t.error:
                lines.append(f"  ERROR {t.label}: {t.error}")
                continue
            err = t.metric_drop if self.error_axis == "metric_drop" else t.rel_l2
            mark = "*" if t is self.best else ("F" if t.on_front else " ")
            lines.append(f" {mark} {t.latency_ms:8.3f} ms  {self.error_axis}={err:.3g}  "
                         f"{'valid' if t.valid else 'INVALID: ' + t.reason}  {t.label}")
        for s in self.skipped:
            lines.append(f"  skipped: {s}")
        lines.append("  (* best, F on the Pareto front)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<TuneResult best={self.best.label if self.best else None}>\n{self.summary()}"

    def to_json(self, indent: int | None = 2) -> str:
        """JSON with ``schema: "workbench.autotune"``; ``TuneResult.from_json(text)`` reads it back."""
        return to_json(self, indent=indent)

    def _points(self) -> list[dict[str, Any]]:
        pts = []
        for t in self.trials:
            err = t.metric_drop if self.error_axis == "metric_drop" else t.rel_l2
            if t.error is None and err is not None:
                pts.append({"x": t.latency_ms, "y": err, "label": t.label, "front": t.on_front, "valid": t.valid})
        return pts

    def plot(self) -> Any:
        """A plotly scatter of latency against error, the Pareto front joined."""
        import plotly.graph_objects as go

        pts = self._points()
        fig = go.Figure()
        for valid in (True, False):
            sel = [p for p in pts if p["valid"] == valid]
            fig.add_trace(go.Scatter(x=[p["x"] for p in sel], y=[p["y"] for p in sel], mode="markers",
                                     text=[p["label"] for p in sel], name="valid" if valid else "invalid",
                                     marker={"symbol": "circle" if valid else "x", "size": 9}))
        front = sorted((p for p in pts if p["front"]), key=lambda p: p["x"])
        fig.add_trace(go.Scatter(x=[p["x"] for p in front], y=[p["y"] for p in front], mode="lines+text",
                                 text=[p["label"] for p in front], textposition="top right", name="Pareto front"))
        fig.update_layout(title=f"{self.model}: latency vs {self.error_axis}", xaxis_title="median latency (ms)",
                          yaxis_title=self.error_axis, height=450)
        return fig

    html_title = "Autotune"

    def html_sections(self) -> list[str]:
        from html import escape

        from workbench.analysis.report import svg_bars, svg_scatter

        ok = [t for t in self.trials if t.error is None]
        return [f"<pre>{escape(self.summary())}</pre>",
                svg_scatter(self._points(), f"Latency vs {self.error_axis} (orange: Pareto front)",
                            "median latency (ms)", self.error_axis, log_y=self.error_axis == "rel_l2"),
                svg_bars({t.label: t.latency_ms for t in sorted(ok, key=lambda t: t.latency_ms)},
                         "Median latency per configuration", "ms"),
                f"<h3>Reproduce the best configuration</h3><pre>{escape(self.script)}</pre>"]

    def to_html(self, path: str | os.PathLike | None = None) -> str:
        from workbench.analysis.report import html_report

        return html_report(self, path=path, title=f"Autotune {self.model}")


# -- quantization (the steps' wb.quantize where it exists, else the vendors' tools directly) ----------


def quantize_int8(model: Model, runtime: str, calibration: list[dict[str, Any]]) -> Model:
    """INT8 post-training static quantization for ``runtime``: ONNX Runtime QDQ (from an ONNX model) or
    NNCF (OpenVINO IR out). Uses ``wb.quantize`` when the steps provide it."""
    tool = "onnxruntime" if runtime == "onnxruntime" else "nncf"
    try:
        from workbench.steps.quantize import quantize
    except ImportError:
        quantize = None
    if quantize is not None:
        try:
            return quantize(model, tool, calibration=calibration, samples=len(calibration), validate=False)
        except TypeError:  # an older signature of the step: use the tools directly
            pass
    return _quantize_directly(model, tool, calibration)


def _quantize_directly(model: Model, tool: str, calibration: list[dict[str, Any]]) -> Model:
    from workbench.core.model import LineageEntry
    from workbench.core.detect import load_path
    from workbench.steps.workspace import unique_path

    start = time.perf_counter()
    if tool == "onnxruntime":
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.data = iter(calibration)

            def get_next(self) -> dict[str, Any] | None:
                return next(self.data, None)

        out = unique_path(f"{model.name}-int8", ".onnx")
        quantize_static(str(model.path), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        versions = {"onnxruntime": _version("onnxruntime")}
    else:
        import nncf
        import openvino as ov

        ov_model = ov.Core().read_model(str(model.path)) if model.format in ("onnx", "openvino") else None
        if ov_model is None:
            raise WorkbenchError(f"NNCF quantization here takes an ONNX or OpenVINO model, not {model.format}",
                                 "export it first: wb.export(model, 'onnx')")
        quantized = nncf.quantize(ov_model, nncf.Dataset(calibration), subset_size=len(calibration))
        out = unique_path(f"{model.name}-int8", ".xml")
        ov.save_model(quantized, str(out), compress_to_fp16=False)
        versions = {"nncf": _version("nncf"), "openvino": _version("openvino")}
    loaded = load_path(out)
    entry = LineageEntry(f"quantize:{tool}", {"method": "static" if tool == "onnxruntime" else "ptq",
                                              "precision": "int8", "samples": len(calibration)},
                         model, versions, time.perf_counter() - start, None)
    result = model.derive(loaded.format, out, entry, inputs=loaded.inputs, outputs=loaded.outputs,
                          native=loaded._native, native_loader=loaded._native_loader, metadata={**loaded.metadata, "precision": "int8"})
    entry.size_bytes = result.size_bytes
    return result


def static_openvino(model: Model, batch: int = 1) -> Model:
    """An OpenVINO IR of ``model`` (ONNX or IR) with every input shape fixed at ``batch`` — what
    ``benchmark_app -shape`` does: the CPU plugin then compiles for one shape, not a dynamic one."""
    import openvino as ov

    from workbench.core.model import LineageEntry
    from workbench.core.detect import load_path
    from workbench.steps.workspace import unique_path

    start = time.perf_counter()
    ov_model = ov.Core().read_model(str(model.path))
    shapes = {}
    for i, port in enumerate(ov_model.inputs):
        names = port.get_names()
        spec = next((s for s in model.inputs if s.name in names), model.inputs[i] if i < len(model.inputs) else None)
        if spec is None:
            raise WorkbenchError(f"cannot match OpenVINO input {port.get_any_name()!r} to {model.name}'s inputs",
                                 "give the model named inputs")
        shapes[port] = ov.PartialShape(list(spec.concrete_shape(batch=batch)))
    ov_model.reshape(shapes)
    out = unique_path(f"{model.name}-b{batch}", ".xml")
    ov.save_model(ov_model, str(out), compress_to_fp16=False)
    loaded = load_path(out)
    entry = LineageEntry("convert:openvino", {"static_batch": batch}, model,
                         {"openvino": _version("openvino")}, time.perf_counter() - start, None)
    result = model.derive("openvino", out, entry, inputs=loaded.inputs, outputs=loaded.outputs,
                          native=loaded._native, native_loader=loaded._native_loader,
                          metadata={**loaded.metadata, **({"precision": model.metadata["precision"]}
                                                          if "precision" in model.metadata else {})})
    entry.size_bytes = result.size_bytes
    return result


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


# -- the sweep ---------------------------------------------------------------------------------------


def _cpu_supports(precision: str) -> tuple[bool, str]:
    from workbench.analysis.bench import environment

    flags = set(environment()["cpu_flags"])
    if precision == "bf16" and not flags & {"avx512_bf16", "amx_bf16"}:
        return False, "bf16: this CPU has no AVX-512 BF16 or AMX (it would be emulated, slower than fp32)"
    if precision == "fp16" and not flags & {"avx512_fp16", "amx_fp16"}:
        return False, "fp16: this CPU has no AVX-512 FP16 or AMX-FP16 (OpenVINO CPU would fall back)"
    return True, ""


def default_space() -> dict[str, list[Any]]:
    return {"backends": ["onnxruntime", "openvino"], "precisions": ["fp32", "bf16", "fp16", "int8"],
            "threads": [None, 1], "hint": ["LATENCY", "THROUGHPUT"], "graph_optimization_level": ["all", "basic"]}


def _configs(space: dict[str, list[Any]], skipped: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    precisions = []
    for p in space["precisions"]:
        ok, why = _cpu_supports(p)
        if ok:
            precisions.append(p)
        else:
            skipped.append(why)
    for backend in space["backends"]:
        if backend == "onnxruntime":
            for p, level, threads in itertools.product([p for p in precisions if p in ORT_PRECISIONS],
                                                       space["graph_optimization_level"], space["threads"]):
                out.append((backend, p, _knobs(graph_optimization_level=level, threads=threads)))
        elif backend == "openvino":
            for p, hint, threads in itertools.product([p for p in precisions if p in OV_PRECISIONS],
                                                      space["hint"], space["threads"]):
                # the INT8 IR's quantized layers run in int8; its other layers in the CPU's default precision
                prec_opt = {} if p == "int8" else {"precision": p}
                out.append((backend, p, _knobs(hint=hint, threads=threads, **prec_opt)))
        elif backend.startswith("torch"):
            out.append((backend, "fp32", {}))
        else:
            skipped.append(f"{backend}: autotune sweeps onnxruntime, openvino and torch runtimes")
    return out


def _knobs(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


def _pareto(points: list[tuple[float, float]]) -> list[bool]:
    """Which (latency, error) points no other point beats on both (ties on both keep both)."""
    flags = []
    for i, (lat, err) in enumerate(points):
        dominated = any(
            (lat2 <= lat and err2 <= err) and (lat2 < lat or err2 < err)
            for j, (lat2, err2) in enumerate(points) if j != i)
        flags.append(not dominated)
    return flags


def autotune(
    model: Any,
    *,
    max_metric_drop: float | None = 0.01,
    max_error: float | None = None,
    space: dict[str, list[Any]] | None = None,
    batch: int = 1,
    duration_s: float | None = None,
    confirm: int = 3,
    confirm_rounds: int | None = None,
    calibration_samples: int | None = None,
    include_torch: bool = True,
    static_shapes: bool = True,
    progress: bool = False,
) -> TuneResult:
    """Find the fastest configuration of ``model`` whose accuracy stays within budget.

    Args:
        model: a torch model (or zoo name); it is exported to ONNX once, and quantized once per runtime.
        max_metric_drop: the largest allowed drop of the task metric (e.g. 0.01 = one point of
            accuracy) where the model has evaluation data.
        max_error: the largest allowed relative L2 error of the outputs against the original (default:
            the tolerance of each configuration's precision, ``tolerances.py``).
        space: override the swept values (keys as in ``default_space()``).
        batch: the batch size timed; duration_s: the timing budget per configuration (default 1 s;
            0.3 s with ``WORKBENCH_QUICK=1``).
        confirm, confirm_rounds: the fastest ``confirm`` valid configurations are timed again in
            ``confirm_rounds`` interleaved rounds (default 3; 1 when quick), and the best is chosen on
            the median of those.
        calibration_samples: INT8 calibration inputs (default 32; 8 when quick).
        include_torch: time the original on torch eager too (the baseline).
        static_shapes: give OpenVINO an IR with the inputs fixed at ``batch`` (as ``benchmark_app
            -shape`` does) rather than the dynamic-batch export.
    """
    from workbench.analysis.bench import benchmark, environment
    from workbench.analysis.compare import compare
    from workbench.api import load
    from workbench.core.model import Model

    original = model if isinstance(model, Model) else load(model)
    space = {**default_space(), **(space or {})}
    quick = settings.quick()
    duration_s = duration_s if duration_s is not None else (0.3 if quick else 1.0)
    confirm_rounds = confirm_rounds if confirm_rounds is not None else (1 if quick else 3)
    samples = calibration_samples or (8 if quick else 32)
    say = print if progress else (lambda *a, **k: None)

    onnx_model = original
    if original.format in ("torch", "hf", "exported_program"):
        from workbench.steps.export import export

        say("exporting to ONNX …")
        onnx_model = export(original, "onnx")
    elif original.format != "onnx":
        raise WorkbenchError(f"autotune starts from a torch or ONNX model, not {original.format}",
                             "pass the original model (wb.load('resnet18') or your nn.Module)")
    skipped: list[str] = []
    configs = _configs(space, skipped)
    if include_torch and original.format in ("torch", "hf", "exported_program"):
        configs.insert(0, ("torch_eager", "fp32", {}))
    if not configs:
        raise WorkbenchError("the search space is empty", f"check space= (supported: {default_space()})")

    # evaluation: the metric drop where there is evaluation data, else the output error
    task = original.task
    evaluates = task is not None and task.has_evaluation and max_metric_drop is not None
    base_metric = None
    if evaluates:
        base_metric = original.evaluate()
    calib = original.calibration_data(n=samples, batch=1) if any(p == "int8" for _, p, _ in configs) else []
    inputs = [original.example_inputs(batch=batch, seed=s) for s in range(3)]

    artifacts: dict[tuple[str, str], Model] = {}

    def artifact(backend: str, precision: str) -> Model:
        if backend.startswith("torch"):
            return original
        quantized = precision == "int8"
        key = (backend, quantized)
        if key not in artifacts:
            base = onnx_model
            if quantized:
                say(f"quantizing to INT8 for {backend} …")
                base = quantize_int8(onnx_model, backend, calib)
            if backend == "openvino" and static_shapes:
                base = static_openvino(base, batch)
            artifacts[key] = base
        return artifacts[key]

    trials: list[Trial] = []
    for backend, precision, options in configs:
        trial = Trial(backend, precision, dict(options), "")
        trials.append(trial)
        try:
            m = artifact(backend, precision)
            trial.model = str(m.path) if m.path is not None else m.name
            say(f"trial {trial.label} …")
            report = benchmark((m, backend, options), batch_sizes=batch, duration_s=duration_s, warmup=3)
            r = report[0]
            if not r.ok:
                raise WorkbenchError(r.error or "benchmark failed")
            trial.p50_ms, trial.p90_ms, trial.throughput, trial.noisy = (r.latency.p50, r.latency.p90,
                                                                         r.throughput, r.noisy)
            comparison = compare(original, (m, backend, options), inputs=inputs)
            res = comparison.results[0]
            trial.rel_l2 = max(x.rel_l2 for x in comparison.results)
            trial.cosine = min(x.cosine for x in comparison.results)
            trial.top1 = res.top1
            reasons = [] if comparison else [x.reason for x in comparison.results if not x.passed]
            if max_error is not None:
                reasons = [] if trial.rel_l2 <= max_error else [f"rel_l2 {trial.rel_l2:.3g} > max_error {max_error:g}"]
            if evaluates:
                metric = m.evaluate(backend, **options) if m is not original else base_metric
                name = task.metric_name if task.metric_name in metric else next(iter(metric))
                trial.metric = metric[name]
                drop = base_metric[name] - metric[name]
                trial.metric_drop = drop if task.higher_is_better else -drop
                if trial.metric_drop > max_metric_drop:
                    reasons.append(f"{name} drops by {trial.metric_drop:.4f} > {max_metric_drop:g}")
                elif max_error is None:
                    reasons = []  # within the metric budget: the metric decides, not the output tolerance
            trial.valid = not reasons
            trial.reason = "; ".join(reasons)
        except Exception as err:  # noqa: BLE001 - one configuration failing must not stop the sweep
            trial.error = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            trial.reason = "could not run"

    # re-time the fastest valid configurations, interleaved, so the choice is not one noisy sample
    finalists = sorted((t for t in trials if t.valid and t.error is None), key=lambda t: t.p50_ms)[:max(confirm, 0)]
    if len(finalists) > 1 and confirm_rounds > 0:
        samples_by: dict[int, list[float]] = {id(t): [] for t in finalists}
        for rnd in range(confirm_rounds):
            order = finalists if rnd % 2 == 0 else finalists[::-1]
            for t in order:
                m = artifact(t.backend, t.precision)
                say(f"confirming {t.label} (round {rnd + 1}) …")
                r = benchmark((m, t.backend, t.options), batch_sizes=batch, duration_s=duration_s, warmup=3)[0]
                if r.ok:
                    samples_by[id(t)].append(r.latency.p50)
        for t in finalists:
            if samples_by[id(t)]:
                t.confirmed_p50_ms = statistics.median(samples_by[id(t)])

    error_axis = "metric_drop" if evaluates else "rel_l2"
    ok = [t for t in trials if t.error is None]
    flags = _pareto([(t.latency_ms, (t.metric_drop if evaluates else t.rel_l2) or 0.0) for t in ok])
    for t, flag in zip(ok, flags, strict=True):
        t.on_front = flag
    valid = [t for t in ok if t.valid]
    best = min(valid, key=lambda t: t.latency_ms) if valid else None
    budget = {"max_metric_drop": max_metric_drop if evaluates else None,
              "max_error": max_error if max_error is not None else "tolerance of the precision",
              "batch": batch, "duration_s": duration_s}
    return TuneResult(original.name, trials, best, error_axis, budget,
                      _script(original, best, samples, batch, static_shapes), environment(), skipped)


def _script(original: Model, best: Trial | None, samples: int, batch: int, static_shapes: bool) -> str:
    if best is None:
        return "# no configuration met the budget"
    from workbench import zoo

    lines = ["import workbench as wb", "from workbench.analysis.autotune import quantize_int8, static_openvino", ""]
    if original.path is not None:
        lines.append(f"model = wb.load({str(original.path)!r})")
    elif original.name in zoo.names():
        lines.append(f"model = wb.load({original.name!r})")
    else:  # an nn.Module the user built: only they can rebuild it
        lines += ["# the original was an in-memory module: load it the same way again", "model = wb.load(module, example_inputs=example_inputs)"]
    if best.backend.startswith("torch"):
        target = "model"
    else:
        lines.append('onnx_model = wb.export(model, "onnx")' if original.format != "onnx" else "onnx_model = model")
        target = "onnx_model"
        if best.precision == "int8":
            lines.append(f"optimized = quantize_int8(onnx_model, {best.backend!r}, "
                         f"model.calibration_data(n={samples}))")
            target = "optimized"
        if best.backend == "openvino" and static_shapes:
            lines.append(f"optimized = static_openvino({target}, batch={batch})  # fixed input shapes")
            target = "optimized"
    opts = ", ".join(f"{k}={v!r}" for k, v in best.options.items())
    lines += ["", f"# best: {best.label}: median {best.latency_ms:.3f} ms at batch {batch}",
              f"report = wb.benchmark(({target}, {best.backend!r}, {{{', '.join(f'{k!r}: {v!r}' for k, v in best.options.items())}}}), "
              f"batch_sizes={batch})",
              "print(report)",
              f"with wb.runner({target}, {best.backend!r}{', ' + opts if opts else ''}) as r:",
              "    outputs = r.infer(model.example_inputs())"]
    return "\n".join(lines) + "\n"


class _CallableModule(types.ModuleType):
    """``wb.autotune`` names both this module and its function (see ``workbench.analysis.compare``): calling the
    module calls the function, so ``wb.autotune(...)`` works after ``import workbench.analysis.autotune`` too."""

    def __call__(self, *args: Any, **kwargs: Any) -> TuneResult:
        return autotune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

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

Progress: one event per trial and per confirmation run on the progress channel, named (``"openvino int8
(hint=LATENCY) — confirm round 2/3"``) and counted; ``progress="auto"`` shows a bar in a terminal or a view
with a Cancel button in a notebook (``workbench.core.progress``). A cancel — the button (with
``background=True``: the kernel must be free to take the click), a caller's ``CancelToken``, an interrupt —
stops between trials and inside a trial's timing loop, and raises ``progress.Cancelled`` whose ``partial``
is the ``TuneResult`` of the trials measured so far (``cancelled=True``; its best is the best of those).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import math
import os
import statistics
import sys
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core import progress as channel
from workbench.core import registry, settings
from workbench.core.errors import WorkbenchError
from workbench.core.model import Model
from workbench.core.registry import StepPlugin
from workbench.core.results import result_type, to_json
from workbench.steps.export import TORCH_FORMATS
from workbench.steps.pipeline import Pipeline
from workbench.steps.script import Code, StepCall, pipeline_script, source_expr

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd



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
    cancelled: bool = False  # a partial result: cancelled after these trials (``progress.Cancelled.partial``)

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
                 f"budget {self.budget}" + (" (CANCELLED: the trials measured before the cancel)"
                                            if self.cancelled else "")]
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


# -- the artifacts: registered steps, composed into Pipelines ------------------------------------------


def int8_step(runtime: str, fmt: str = "onnx") -> StepPlugin | None:
    """The quantization step that makes an INT8 model ``runtime`` runs from a ``fmt`` model: one that takes
    ``fmt`` and produces a format the runtime takes, its natural format first (NNCF's IR for OpenVINO)."""
    cls = registry.get_runtime(runtime)
    found = [s for s in registry.steps_accepting(fmt, "quantize")
             if any(f in cls.formats for f in s.possible_formats())]
    found.sort(key=lambda s: 0 if any(f in cls.default_for for f in s.possible_formats()) else 1)
    return found[0] if found else None


def static_shape_step(runtime: str) -> StepPlugin | None:
    """The conversion to ``runtime``'s natural format that can fix the input shapes (``static_batch=``)."""
    cls = registry.get_runtime(runtime)
    for s in registry.steps("convert"):
        if any(f in cls.default_for for f in s.possible_formats()) and \
                "static_batch" in inspect.signature(s.func).parameters:
            return s
    return None


def _int8_call(model: Model, runtime: str, calibration: Any, samples: int) -> StepCall:
    step = int8_step(runtime, model.format)
    if step is None:
        raise WorkbenchError(f"no registered quantization step makes an INT8 model {runtime} runs from {model.format}",
                             f"quantization steps: {', '.join(registry.step_targets('quantize'))}")
    return StepCall("quantize", step.target, {"method": "int8", "calibration": calibration, "samples": samples,
                                               "validate": False})


def _static_call(runtime: str, batch: int) -> StepCall | None:
    step = static_shape_step(runtime)
    return None if step is None else StepCall("convert", step.target, {"static_batch": batch, "validate": False})


def _run_calls(model: Model, calls: list[StepCall]) -> Model:
    """Run ``calls`` as a Pipeline of registered steps on ``model`` and return the last result."""
    if not calls:
        return model
    steps = [(c.kind, c.target, dict(c.options)) for c in calls]
    result = Pipeline(steps, name="autotune").run(model, progress=False).final
    assert result is not None  # a failed step raised
    return result


def quantize_int8(model: Model, runtime: str, calibration: list[dict[str, Any]]) -> Model:
    """INT8 post-training static quantization of ``model`` for ``runtime``, by the registered quantization
    step that makes what the runtime runs (ONNX Runtime's QDQ for an ONNX runtime, NNCF's IR for OpenVINO),
    unvalidated (autotune compares it itself)."""
    return _run_calls(model, [_int8_call(model, runtime, calibration, len(calibration))])


def static_openvino(model: Model, batch: int = 1, runtime: str | None = None) -> Model:
    """``model`` (ONNX or IR) in ``runtime``'s natural format with every input shape fixed at ``batch`` —
    what ``benchmark_app -shape`` does: the CPU plugin then compiles for one shape, not a dynamic one.
    ``runtime`` defaults to the one whose format's conversion can fix shapes (OpenVINO's)."""
    candidates = [runtime] if runtime else list(registry.runtimes())
    call = next((c for r in candidates if (c := _static_call(r, batch)) is not None), None)
    if call is None:
        raise WorkbenchError("no registered conversion fixes input shapes", "use the dynamic-shape model")
    return _run_calls(model, [call])


# -- the sweep ---------------------------------------------------------------------------------------


def _cpu_supports(precision: str) -> tuple[bool, str]:
    from workbench.analysis.bench import environment

    flags = set(environment()["cpu_flags"])
    if precision == "bf16" and not flags & {"avx512_bf16", "amx_bf16"}:
        return False, "bf16: this CPU has no AVX-512 BF16 or AMX (it would be emulated, slower than fp32)"
    if precision == "fp16" and not flags & {"avx512_fp16", "amx_fp16"}:
        return False, "fp16: this CPU has no AVX-512 FP16 or AMX-FP16 (OpenVINO CPU would fall back)"
    return True, ""


def reachable(runtime: str, sources: tuple[str, ...]) -> bool:
    """True when registered export/convert steps turn a model of one of ``sources`` into a format
    ``runtime`` takes (ncnn from torch, MNN and TVM from ONNX, …)."""
    cls = registry.get_runtime(runtime)
    for src in sources:
        for fmt in cls.formats:
            try:
                registry.route(src, fmt)
                return True
            except WorkbenchError:
                continue
    return False


def default_space() -> dict[str, list[Any]]:
    """The swept values: the runtimes that run ONNX, and the available ones a registered conversion
    reaches from ONNX or torch; every precision; the runtimes' tuning knobs."""
    direct = registry.runtimes_for("onnx")
    converted = [n for n, cls in registry.runtimes().items()  # the torch runtimes stay the baseline's business
                 if n not in direct and not set(cls.formats) & set(TORCH_FORMATS)
                 and reachable(n, ("onnx", "torch")) and cls.availability()]
    return {"backends": direct + converted, "precisions": ["fp32", "bf16", "fp16", "int8"],
            "threads": [None, 1], "hint": ["LATENCY", "THROUGHPUT"], "graph_optimization_level": ["all", "basic"]}


def _configs(space: dict[str, list[Any]], skipped: list[str], baseline_formats: tuple[str, ...] = ()
             ) -> list[tuple[str, str, dict[str, Any]]]:
    """(runtime, precision, options) for every runtime of the space, from what each runtime declares:
    its ``precisions``, and its ``tunable`` options (knobs of the space it takes; ``"precision"`` there
    means the runtime computes fp32/bf16/fp16 on request). INT8 needs a registered quantization step."""
    out = []
    precisions = []
    for p in space["precisions"]:
        ok, why = _cpu_supports(p)
        if ok:
            precisions.append(p)
        else:
            skipped.append(why)
    knobs = [k for k in space if k not in ("backends", "precisions")]
    for backend in space["backends"]:
        try:
            cls = registry.get_runtime(backend)
        except WorkbenchError as err:
            skipped.append(f"{backend}: {err}")
            continue
        if "onnx" not in cls.formats:
            if any(f in cls.formats for f in baseline_formats):
                out.append((backend, "fp32", {}))  # runs the original as it is
                continue
            if not reachable(backend, ("onnx", *baseline_formats)):
                skipped.append(f"{backend}: no registered conversion reaches it from ONNX or the original model")
                continue
        tunable = tuple(getattr(cls, "tunable", ()))
        mine = [k for k in knobs if k in tunable]
        for p in precisions:
            by_option = "precision" in tunable and p != "int8"
            if p not in cls.precisions or not (p == "fp32" or by_option or (p == "int8" and int8_step(backend))):
                continue
            for values in itertools.product(*(space[k] for k in mine)):
                # the INT8 model's quantized layers run in int8; its other layers in the runtime's default
                options = _knobs(**dict(zip(mine, values, strict=True)), **({"precision": p} if by_option else {}))
                out.append((backend, p, options))
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


def autotune(model: Any, *, progress: str | bool | Callable[[channel.Event], None] = "auto",
             background: bool = False, **options: Any) -> TuneResult | channel.Task:
    """Find the fastest configuration of ``model`` whose accuracy stays within budget (``options``: see
    ``tune``, which does the work).

    Args:
        progress: ``"auto"`` (nothing of its own when a view already listens; else a notebook view
            naming the running trial, with a Cancel button, or a tqdm bar), ``"tqdm"``, ``"widget"``, a
            callable receiving each ``progress.Event``, or False.
        background: run in a thread and return a ``progress.Task`` at once (``task.result()`` is the
            TuneResult; the view's Cancel button or ``task.cancel()`` stops it).

    A cancel raises ``progress.Cancelled`` carrying the partial TuneResult (module docstring).
    """
    title = f"autotune {getattr(model, 'name', '')}".strip()
    token = channel.CancelToken() if background else None
    view = channel.task_view(progress, title, token)

    def run() -> TuneResult:
        try:
            with channel.subscribe(view) if view is not None else contextlib.nullcontext():
                return tune(model, **options)
        finally:
            if view is not None and hasattr(view, "close"):
                view.close()

    if background:
        return channel.run_in_background(run, name="autotune", token=token)
    return run()


def tune(
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
    executor: str = "sequential",
    address: str | None = None,
    num_cpus: int | None = None,
    exclusive: bool = False,
) -> TuneResult:
    """Find the fastest configuration of ``model`` whose accuracy stays within budget (``autotune``
    adds its progress view; this reports on the channel to whoever listens).

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
        executor: ``"sequential"`` (each configuration timed here, one after another) or ``"ray"``: the
            artifacts are made here (registered steps, cached in the workspace), then each configuration
            is timed and validated as a Ray task asking for its ``threads`` CPUs (a whole node without a
            ``threads`` knob), pinned to cores no other trial holds (``workbench.analysis.sweep``). The
            finalists are re-timed here, one after another, interleaved.
        address, num_cpus, exclusive: for ``executor="ray"``: the cluster (None starts Ray here with
            ``num_cpus`` CPUs), and one trial per node at a time (see ``workbench.analysis.sweep``).
    """
    from workbench.analysis.bench import benchmark
    from workbench.analysis.compare import as_model
    from workbench.steps.export import export

    original = as_model(model)
    if executor not in ("sequential", "ray"):
        raise WorkbenchError(f"unknown executor {executor!r}", "use executor='sequential' or executor='ray'")
    if executor == "ray":
        from workbench.analysis.sweep import resolve_executor

        resolve_executor(executor)  # Ray missing: say so before any artifact is made
    space = {**default_space(), **(space or {})}
    quick = settings.quick()
    duration_s = duration_s if duration_s is not None else (0.3 if quick else 1.0)
    confirm_rounds = confirm_rounds if confirm_rounds is not None else (1 if quick else 3)
    samples = calibration_samples or (8 if quick else 32)
    counts: dict[str, Any] = {"done": 0, "total": None}  # trials and confirmation runs

    def say(label: str, status: str = "running", detail: str = "") -> None:
        channel.report(status, key="autotune", label=label, detail=detail, **counts)

    onnx_model = original
    if original.format in TORCH_FORMATS:
        say("exporting to ONNX …")
        with channel.silenced():
            onnx_model = export(original, "onnx")
    elif original.format != "onnx":
        raise WorkbenchError(f"autotune starts from a torch or ONNX model, not {original.format}",
                             "pass the original model (wb.load('resnet18') or your nn.Module)")
    skipped: list[str] = []
    baseline = registry.default_runtime(original.format) if original.format in TORCH_FORMATS else None
    configs = _configs(space, skipped, (original.format,) if original.format != "onnx" else ())
    if include_torch and baseline is not None and all(b != baseline for b, _, _ in configs):
        configs.insert(0, (baseline, "fp32", {}))
    if not configs:
        raise WorkbenchError("the search space is empty", f"check space= (supported: {default_space()})")
    counts["total"] = len(configs)

    # evaluation: the metric drop where there is evaluation data, else the output error
    task = original.task
    evaluates = task is not None and task.has_evaluation and max_metric_drop is not None
    base_metric = None
    if evaluates:
        base_metric = original.evaluate()
    calib = original.calibration_data(n=samples, batch=1) if any(p == "int8" for _, p, _ in configs) else []
    inputs = [original.example_inputs(batch=batch, seed=s) for s in range(3)]

    artifacts: dict[tuple[str, str], Model] = {}

    def calls(backend: str, precision: str, calibration: Any) -> list[StepCall]:
        """The registered steps that make the model ``backend`` runs at ``precision``, after the export."""
        out = []
        if precision == "int8":
            out.append(_int8_call(onnx_model, backend, calibration, samples))
        static = _static_call(backend, batch) if static_shapes else None
        if static is not None:
            out.append(static)
        return out

    def artifact(backend: str, precision: str) -> Model:
        formats = registry.get_runtime(backend).formats
        if original.format in formats and "onnx" not in formats:
            return original
        if "onnx" not in formats:  # its own format, by the registered conversions (from ONNX where they start)
            key = (backend, False)
            if key not in artifacts:
                say(f"preparing the model for {backend} …")
                source = onnx_model if reachable(backend, ("onnx",)) else original
                with channel.silenced():
                    artifacts[key] = registry.prepare_for(source, backend)
            return artifacts[key]
        key = (backend, precision == "int8")
        if key not in artifacts:
            say(f"preparing the model for {backend} {precision} …")
            with channel.silenced():  # the steps' own events would garble the trials' counts
                artifacts[key] = _run_calls(onnx_model, calls(backend, precision, calib))
        return artifacts[key]

    trials: list[Trial] = []
    measured: list[Trial] = []  # what a cancel keeps
    budget = {"max_metric_drop": max_metric_drop if evaluates else None,
              "max_error": max_error if max_error is not None else "tolerance of the precision",
              "batch": batch, "duration_s": duration_s}

    def finish(cancelled: bool = False) -> TuneResult:
        return _result(original, measured if cancelled else trials, evaluates, budget, samples, batch, calls,
                       skipped, cancelled)

    try:
        jobs: list[tuple[Trial, Model]] = []
        for backend, precision, options in configs:
            channel.check_cancelled("autotune")
            trial = Trial(backend, precision, dict(options), "")
            trials.append(trial)
            try:
                m = artifact(backend, precision)
            except channel.Cancelled:
                raise
            except Exception as err:  # noqa: BLE001 - one configuration failing must not stop the sweep
                trial.error, trial.reason = _one_line(err), "could not run"
                measured.append(trial)
                counts["done"] += 1
                say(trial.label, "failed", trial.error)
                continue
            trial.model = str(m.path) if m.path is not None else m.name
            jobs.append((trial, m))
        budget_args = (inputs, batch, duration_s, max_error, max_metric_drop if evaluates else None, base_metric)
        if executor == "sequential":
            for i, (trial, m) in enumerate(jobs):
                channel.check_cancelled("autotune")
                say(trial.label, detail=f"(trial {i + 1}/{len(jobs)})")
                with channel.silenced():
                    measure_trial(trial, original, None if m is original else m, *budget_args)
                measured.append(trial)
                counts["done"] += 1
                say(trial.label, "failed" if trial.error else "done", trial.error or f"{trial.p50_ms:.3f} ms")
        else:
            def on_ray(trial: Trial) -> None:
                measured.append(trial)
                counts["done"] += 1
                say(trial.label, "failed" if trial.error else "done", trial.error or f"{trial.p50_ms:.3f} ms")
                channel.check_cancelled("autotune")  # leaving ray_map cancels the tasks still pending

            _measure_on_ray(jobs, original, budget_args, address=address, num_cpus=num_cpus,
                            exclusive=exclusive, say=on_ray)

        # re-time the fastest valid configurations, interleaved, so the choice is not one noisy sample
        finalists = sorted((t for t in trials if t.valid and t.error is None),
                           key=lambda t: t.p50_ms)[:max(confirm, 0)]
        if len(finalists) > 1 and confirm_rounds > 0:
            counts["total"] += confirm_rounds * len(finalists)
            samples_by: dict[int, list[float]] = {id(t): [] for t in finalists}
            for rnd in range(confirm_rounds):
                order = finalists if rnd % 2 == 0 else finalists[::-1]
                for t in order:
                    channel.check_cancelled("autotune")
                    m = artifact(t.backend, t.precision)
                    say(f"{t.label} — confirm round {rnd + 1}/{confirm_rounds}")
                    with channel.silenced():
                        r = benchmark((m, t.backend, t.options), batch_sizes=batch, duration_s=duration_s,
                                      warmup=3, progress=False)[0]
                    counts["done"] += 1
                    if r.ok:
                        samples_by[id(t)].append(r.latency.p50)
            for t in finalists:
                if samples_by[id(t)]:
                    t.confirmed_p50_ms = statistics.median(samples_by[id(t)])
    except (channel.Cancelled, KeyboardInterrupt) as err:
        what = f"autotune of {original.name} (after {len(measured)} of {len(configs)} trials)"
        say(what, "cancelled")
        raise channel.Cancelled(what, finish(cancelled=True), interrupted=isinstance(err, KeyboardInterrupt)) from None
    return finish()


def _result(original: Model, trials: list[Trial], evaluates: bool, budget: dict[str, Any], samples: int,
            batch: int, calls: Callable[[str, str, Any], list[StepCall]], skipped: list[str],
            cancelled: bool) -> TuneResult:
    """The TuneResult of ``trials``: the Pareto front, the best valid trial and its script."""
    from workbench.analysis.bench import environment

    error_axis = "metric_drop" if evaluates else "rel_l2"
    ok = [t for t in trials if t.error is None]
    flags = _pareto([(t.latency_ms, (t.metric_drop if evaluates else t.rel_l2) or 0.0) for t in ok])
    for t, flag in zip(ok, flags, strict=True):
        t.on_front = flag
    valid = [t for t in ok if t.valid]
    best = min(valid, key=lambda t: t.latency_ms) if valid else None
    script = "# no configuration met the budget"
    if best is not None:
        takes_original = "onnx" not in registry.get_runtime(best.backend).formats
        steps = [] if takes_original else calls(best.backend, best.precision,
                                                 Code(f"m0.calibration_data(n={samples}, batch=1)"))
        script = _script(original, best, steps, batch)
    return TuneResult(original.name, trials, best, error_axis, budget, script, environment(), skipped, cancelled)


def _one_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]


def measure_trial(trial: Trial, original: Model, m: Model | None, inputs: list[dict[str, Any]], batch: int,
                  duration_s: float, max_error: float | None, max_metric_drop: float | None,
                  base_metric: dict[str, float] | None, pin: bool = False) -> Trial:
    """Time ``m`` (None: the original itself) on the trial's runtime and validate it against ``original``
    (its outputs, and the task metric's drop when ``max_metric_drop`` is given); fill ``trial`` in and return it. An error is recorded
    on the trial, never raised. ``pin``: claim and pin the trial's ``threads`` cores while it runs (as a
    Ray task; ``workbench.analysis.sweep.pinned_cores``)."""
    from workbench.analysis.bench import benchmark
    from workbench.analysis.compare import compare
    from workbench.analysis.sweep import pinned_cores

    backend, options = trial.backend, trial.options
    m = original if m is None else m
    try:
        with pinned_cores(options.get("threads") if pin else None):
            report = benchmark((m, backend, options), batch_sizes=batch, duration_s=duration_s, warmup=3,
                               progress=False)
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
            task = original.task
            if max_metric_drop is not None and base_metric is not None and task is not None:
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
    except channel.Cancelled:
        raise
    except Exception as err:  # noqa: BLE001 - one configuration failing must not stop the sweep
        trial.error = _one_line(err)
        trial.reason = "could not run"
    return trial


def _measure_on_ray(jobs: list[tuple[Trial, Model]], original: Model, budget_args: tuple[Any, ...], *,
                    address: str | None, num_cpus: int | None, exclusive: bool, say: Any) -> None:
    """``measure_trial`` for every job as a Ray task (``workbench.analysis.sweep``: its CPUs are the trial's
    threads, pinned; a trial whose worker dies is recorded as an error). The trials are filled in place."""
    from workbench.analysis.sweep import one_line, ray_map, ray_session
    from workbench.steps.base import portable

    source = portable(original)
    calls = [((trial, source, None if m is original else portable(m), *budget_args, True),
              trial.options.get("threads")) for trial, m in jobs]
    with ray_session(address, num_cpus) as (ray, _):
        for i, result in ray_map(ray, measure_trial, calls, exclusive=exclusive):
            trial = jobs[i][0]
            if isinstance(result, BaseException):
                trial.error, trial.reason = one_line(result), "could not run"
            else:
                vars(trial).update(vars(result))  # the same Trial object, with the task's figures
            say(trial)


def _script(original: Model, best: Trial, steps: list[StepCall], batch: int) -> str:
    """The best configuration as a script (the one script generator, ``workbench.steps.script``): load,
    export, the registered steps that made its model, then time it and run it."""
    exported = original.format != "onnx" and "onnx" in registry.get_runtime(best.backend).formats
    calls = ([StepCall("export", "onnx")] if exported else []) + steps
    final = f"m{len(calls)}"
    options = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in best.options.items()) + "}"
    keywords = "".join(f", {k}={v!r}" for k, v in best.options.items())
    footer = ["", f"# best: {best.label}: median {best.latency_ms:.3f} ms at batch {batch}",
              f"report = wb.benchmark(({final}, {best.backend!r}, {options}), batch_sizes={batch})",
              "print(report)",
              f"with wb.runner({final}, {best.backend!r}{keywords}) as r:",
              "    outputs = r.infer(m0.example_inputs())"]
    source = source_expr(original)
    if source is None:  # an nn.Module the user built: only they can rebuild it
        source = "wb.load(module, example_inputs=example_inputs)  # the original was an in-memory module"
    return pipeline_script(calls, source, title=f"Generated by wb.autotune: the fastest valid configuration of "
                           f"{original.name}.", footer=footer)


class _CallableModule(types.ModuleType):
    """``wb.autotune`` names both this module and its function (see ``workbench.analysis.compare``): calling the
    module calls the function, so ``wb.autotune(...)`` works after ``import workbench.analysis.autotune`` too."""

    def __call__(self, *args: Any, **kwargs: Any) -> TuneResult:
        return autotune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

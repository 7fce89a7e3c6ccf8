"""The timing harness: ``wb.benchmark`` (after OpenVINO's ``benchmark_app`` and optimum-benchmark).

For every model × runtime × batch size: load and compile (timed: the *first-inference time* is load +
compile + the first call), warm up, then time calls until a time budget or a count is reached.
Reported: latency mean / p50 / p90 / p95 / p99 / min / max / std, throughput, the peak resident memory
of this process while the model was loaded and run, the model's size on disk, the thread count, the
precision it computed in, and a **noise flag** when the spread (or the CPU time other processes took
during the run) says the machine was busy. Every report carries the environment: CPU model and flags,
core counts, memory, library versions.

``mode="async"`` measures throughput with several requests in flight: OpenVINO's ``AsyncInferQueue``
(with the ``THROUGHPUT`` hint and its streams), and for the other runtimes ``streams`` threads sharing
the session (ONNX Runtime sessions are thread-safe; the intra-op threads are split between them).

The timed call is, by default, the runtime's inference alone (inputs bound once, as ``benchmark_app``
does); ``inference_only=False`` times the Runner's whole ``infer`` instead (copying inputs and outputs),
what a Python serving loop sees.

Progress and cancel: each configuration is reported on the progress channel (``workbench.core.progress``)
with its name and ``done``/``total`` counts; ``progress="auto"`` shows a tqdm bar in a terminal and, in a
notebook, a view with the running configuration's name and a Cancel button. A cancel (the button, a
``CancelToken`` of the caller's, an Interrupt of the kernel) takes effect within a fraction of a second,
also inside a configuration's timing loop: the runner is closed and ``progress.Cancelled`` is raised,
its ``partial`` the ``BenchReport`` of the configurations that finished (``settings["cancelled"]`` True).
A notebook kernel busy with a cell cannot take a button's click: ``background=True`` runs the benchmark
in a thread and returns a ``progress.Task`` at once (``task.result()`` is the report), so Cancel works;
in the foreground, Interrupt the kernel (or Ctrl-C) instead.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.analysis.compare import as_target, target_label
from workbench.core import progress as channel
from workbench.core import registry
from workbench.core import settings as env_settings  # `settings` is the benchmark's own dict here
from workbench.core.data import batch_feeds, batch_of, feeds_for
from workbench.core.errors import WorkbenchError
from workbench.core.hardware import cpu_info
from workbench.core.precision import precision_of
from workbench.core.results import plain, result_type, to_json

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


#: the noise flag is raised when one of these is exceeded
NOISE_SPREAD = 0.10  # robust coefficient of variation: 1.4826 · MAD / median
NOISE_TAIL = 2.0  # p99 / p50
NOISE_OTHER_CPU = 0.25  # share of all CPUs busy with other processes during the timed runs
MAX_KEPT_LATENCIES = 4000  # latencies kept per result for plots (evenly subsampled)
CANCEL_CHECK_S = 0.2  # how often the timing loop asks whether it was cancelled (a float compare per call)
AUTO_PROGRESS_S = 2.0  # progress="auto" shows a view when the timed runs alone take at least this long


# -- environment -----------------------------------------------------------------------------------

INTERESTING_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                     "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile", "neon", "asimd")
#: libraries whose versions a report records, besides each registered runtime's (``Runner.distributions``)
LIBRARIES = ("numpy", "onnx", "nncf", "triton", "transformers", "deployment-workbench")


@functools.lru_cache(maxsize=1)
def _static_environment() -> dict[str, Any]:
    from importlib import metadata

    import psutil

    model, flags = cpu_info()
    versions = {}
    runtimes = [d for cls in registry.runtimes().values() for d in cls.distributions]
    for lib in dict.fromkeys([*runtimes, *LIBRARIES]):
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": model,
        "cpu_flags": [f for f in INTERESTING_FLAGS if f in flags],
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": versions,
    }


def environment() -> dict[str, Any]:
    """Where the numbers were measured: CPU model and flags, cores, memory, OS, library versions,
    thread-related environment variables and the load average now."""
    env = dict(_static_environment())
    env["thread_env"] = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
                         if k in os.environ}
    try:
        env["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        env["load_average"] = None
    return env


# -- memory and CPU accounting ---------------------------------------------------------------------


class _ResourceMeter:
    """Peak RSS of this process (Linux: VmHWM, reset through /proc/self/clear_refs; elsewhere sampled)
    and the CPU time other processes used while it was running."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self._psutil = psutil
        self._hwm = _reset_hwm()
        self._peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not self._hwm:  # no resettable high-water mark: sample every 20 ms
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self.rss_before = self._peak

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def _cpus(self) -> list[int]:
        """The CPUs this process may run on (a container's cpuset), whose load is what matters."""
        try:
            return sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return list(range(self._psutil.cpu_count() or 1))

    def cpu_mark(self) -> tuple[float, float, float]:
        per_cpu = self._psutil.cpu_times(percpu=True)
        cpus = [i for i in self._cpus() if i < len(per_cpu)] or range(len(per_cpu))
        busy = sum(sum(per_cpu[i]) - per_cpu[i].idle - getattr(per_cpu[i], "iowait", 0.0) for i in cpus)
        mine = sum(self._proc.cpu_times()[:2])
        return time.perf_counter(), busy, mine

    def other_cpu_share(self, start: tuple[float, float, float]) -> float:
        wall, busy, mine = (b - a for a, b in zip(start, self.cpu_mark(), strict=True))
        cores = len(self._cpus()) or 1
        return max(0.0, (busy - mine) / (wall * cores)) if wall > 0 else 0.0

    def peak_rss(self) -> int:
        self._stop.set()
        if self._hwm:
            hwm = _read_hwm()
            if hwm:
                return hwm
        return max(self._peak, self._proc.memory_info().rss)


def _read_hwm() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # "5" resets the peak RSS (Linux 4.0+)
        return _read_hwm() is not None
    except OSError:
        return False


# -- results ---------------------------------------------------------------------------------------


@dataclass
class LatencyStats:
    """Latency statistics in milliseconds."""

    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float
    std: float
    count: int

    @classmethod
    def of(cls, seconds: Sequence[float] | np.ndarray) -> LatencyStats:
        ms = np.asarray(seconds, np.float64) * 1e3
        if ms.size == 0:
            return cls(*([math.nan] * 8), 0)
        p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
        return cls(float(ms.mean()), float(p50), float(p90), float(p95), float(p99), float(ms.min()),
                   float(ms.max()), float(ms.std()), int(ms.size))


@dataclass
class BenchResult:
    """One model on one runtime at one batch size."""

    label: str
    model: str
    format: str
    backend: str
    batch: int
    mode: str  # "sync" or "async"
    options: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    streams: int | None = None
    precision: str = ""
    latency: LatencyStats | None = None
    throughput: float = math.nan  # samples (batch items) per second
    iterations: int = 0
    duration_s: float = 0.0
    prepare_s: float = math.nan  # load + compile
    first_infer_s: float = math.nan  # the first call after compiling
    first_inference_s: float = math.nan  # prepare + first call: the wait before the first answer
    peak_rss_bytes: int | None = None
    rss_before_bytes: int | None = None
    size_bytes: int | None = None
    other_cpu_share: float = 0.0
    noisy: bool = False
    noise: list[str] = field(default_factory=list)
    error: str | None = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    path: str | None = None  # the model's file, where it has one (so a report's code can load it again)

    @property
    def ok(self) -> bool:
        return self.error is None

    def row(self) -> dict[str, Any]:
        """A flat dict: latency fields become ``latency_<stat>_ms``."""
        row = {k: v for k, v in asdict(self).items() if k not in ("latency", "latencies_ms", "path")}
        row["options"] = ", ".join(f"{k}={v}" for k, v in self.options.items())
        row["noise"] = "; ".join(self.noise)
        lat = self.latency or LatencyStats.of([])
        for key, value in asdict(lat).items():
            row["iterations_timed" if key == "count" else f"latency_{key}_ms"] = value
        row["peak_rss_mb"] = self.peak_rss_bytes / 2**20 if self.peak_rss_bytes else None
        row["size_mb"] = self.size_bytes / 2**20 if self.size_bytes else None
        return row


@result_type("benchmark")
@dataclass
class BenchReport:
    """Results of ``wb.benchmark``: one ``BenchResult`` per model × runtime × batch size, the settings and
    the environment. ``to_frame()``, ``to_json()``, ``speedups()``, ``plot()``, ``to_html(path)``."""

    results: list[BenchResult]
    settings: dict[str, Any]
    environment: dict[str, Any]
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def __bool__(self) -> bool:  # every configuration ran
        return bool(self.results) and all(r.ok for r in self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i: int | str) -> BenchResult:
        if isinstance(i, int):
            return self.results[i]
        for r in self.results:
            if r.label == i:
                return r
        raise KeyError(f"no result {i!r}; results: {[r.label for r in self.results]}")

    @property
    def noisy(self) -> bool:
        return any(r.noisy for r in self.results)

    @property
    def cancelled(self) -> bool:
        """A partial report: the benchmark was cancelled after these results (``progress.Cancelled.partial``)."""
        return bool(self.settings.get("cancelled"))

    def to_frame(self) -> pd.DataFrame:
        """One row per result (index: label, batch) with every field."""
        import pandas as pd

        frame = pd.DataFrame([r.row() for r in self.results])
        return frame.set_index(["label", "batch"]) if len(frame) else frame

    def speedups(self, baseline: int | str = 0) -> pd.DataFrame:
        """Median-latency speed-up of every result over ``baseline`` (index or label) at the same batch."""
        import pandas as pd

        base_label = self[baseline].label
        rows = []
        for r in self.results:
            base = next((b for b in self.results if b.label == base_label and b.batch == r.batch and b.ok), None)
            if base is None or not r.ok or r.latency is None or base.latency is None:
                continue
            rows.append({"label": r.label, "batch": r.batch, "p50_ms": r.latency.p50,
                         "speedup": base.latency.p50 / r.latency.p50,
                         "throughput_gain": r.throughput / base.throughput})
        return pd.DataFrame(rows).set_index(["label", "batch"]) if rows else pd.DataFrame()

    def summary(self) -> str:
        env = self.environment
        lines = [f"{env.get('cpu', '?')}, {env.get('logical_cores')} logical cores; "
                 f"{', '.join(f'{k} {v}' for k, v in env.get('libraries', {}).items() if k != 'deployment-workbench')}"]
        for r in self.results:
            if not r.ok:
                lines.append(f"  {r.label} b={r.batch}: ERROR {r.error}")
                continue
            lat = r.latency
            assert lat is not None
            lines.append(
                f"  {r.label} b={r.batch} {r.mode}: p50 {lat.p50:.3f} ms  p90 {lat.p90:.3f}  p99 {lat.p99:.3f}  "
                f"{r.throughput:.1f}/s  first {r.first_inference_s * 1e3:.0f} ms  "
                f"rss {((r.peak_rss_bytes or 0) / 2**20):.0f} MB  threads {r.threads}  [{r.precision}]"
                + (f"  NOISY: {'; '.join(r.noise)}" if r.noisy else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<BenchReport {len(self.results)} result(s){', cancelled' if self.cancelled else ''}>\n"
                f"{self.summary()}")

    def _repr_html_(self) -> str:
        from workbench.analysis.report import bench_table_html

        return bench_table_html(self)

    def to_dict(self, latencies: bool = True) -> dict[str, Any]:
        """The report as plain JSON-ready data (``workbench.core.results.plain``)."""
        return plain(self, omit=None if latencies else {BenchResult: ("latencies_ms",)})

    def to_json(self, indent: int | None = 2, latencies: bool = False) -> str:
        """JSON with ``schema: "workbench.benchmark"`` and a schema version (``latencies=True`` adds
        every kept latency); ``BenchReport.from_json(text)`` reads it back."""
        return to_json(self, indent=indent, omit=None if latencies else {BenchResult: ("latencies_ms",)})

    def plot(self, kind: str = "latency") -> Any:
        """A plotly figure: ``"latency"`` (distributions), ``"speedup"``, ``"throughput"`` or ``"memory"``."""
        from workbench.analysis.report import bench_figure

        return bench_figure(self, kind)

    def to_html(self, path: str | os.PathLike | None = None) -> str:
        """A standalone HTML report (static SVG plots, no JavaScript needed); written to ``path`` if given."""
        from workbench.analysis.report import html_report

        return html_report(self, path=path)


# -- running ---------------------------------------------------------------------------------------


def _sync_loop(call: Any, warmup: int, duration_s: float, iterations: int | None,
               min_iterations: int) -> tuple[list[float], float]:
    perf = time.perf_counter
    check_at = perf() + CANCEL_CHECK_S
    for _ in range(warmup):
        call()
        if perf() >= check_at:
            channel.check_cancelled("the benchmark")
            check_at = perf() + CANCEL_CHECK_S
    times: list[float] = []
    start = perf()
    deadline = start + duration_s
    while True:
        t0 = perf()
        call()
        t1 = perf()
        times.append(t1 - t0)
        if t1 >= check_at:  # a cancel stops a long configuration too, at a bounded cost per call
            channel.check_cancelled("the benchmark")
            check_at = t1 + CANCEL_CHECK_S
        n = len(times)
        if iterations is not None:
            if n >= iterations:
                break
        elif t1 >= deadline and n >= min_iterations:
            break
    return times, perf() - start


def _noise(latencies_s: Sequence[float], latency: LatencyStats, other_cpu: float) -> list[str]:
    """Why the numbers may not be trusted. The spread is measured robustly (median absolute deviation),
    so one garbage-collection pause does not flag a run, but a busy machine does."""
    reasons = []
    ms = np.asarray(latencies_s) * 1e3
    if ms.size >= 5 and latency.p50 > 0:
        spread = 1.4826 * float(np.median(np.abs(ms - latency.p50))) / latency.p50
        if spread > NOISE_SPREAD:
            reasons.append(f"latencies spread by {100 * spread:.0f}% around the median (> {100 * NOISE_SPREAD:.0f}%)")
    if latency.count >= 20 and latency.p50 > 0 and latency.p99 / latency.p50 > NOISE_TAIL:
        reasons.append(f"p99 is {latency.p99 / latency.p50:.1f}x p50")
    if other_cpu > NOISE_OTHER_CPU:
        reasons.append(f"other processes kept {100 * other_cpu:.0f}% of the CPUs busy")
    return reasons


def _benchmark_options(backend: str, options: dict[str, Any], mode: str, streams: int | None,
                       threads: int | None) -> dict[str, Any]:
    """The runner options of one configuration: ``threads`` for every runtime, then the runtime's own
    adjustments for the mode (``Runner.benchmark_options``: OpenVINO's THROUGHPUT hint, …)."""
    opts = dict(options)
    if threads is not None:
        opts.setdefault("threads", threads)
    return registry.get_runtime(backend).benchmark_options(opts, mode, streams)


def benchmark(
    models_or_runners: Any,
    *,
    backends: str | Sequence[str] | None = None,
    batch_sizes: int | Sequence[int] = 1,
    duration_s: float | None = None,
    iterations: int | None = None,
    warmup: int = 5,
    min_iterations: int = 10,
    threads: int | None = None,
    mode: str = "sync",
    streams: int | None = None,
    inputs: dict[str, np.ndarray] | None = None,
    inference_only: bool = True,
    progress: str | bool | Callable[[channel.Event], None] = "auto",
    background: bool = False,
) -> BenchReport | channel.Task:
    """Time models on runtimes and return a BenchReport.

    Args:
        models_or_runners: a Model (or anything ``wb.load`` takes), a ``(model, backend)`` or
            ``(model, backend, {options})`` tuple, a Runner, or a list of these. A Model runs on its
            natural runtime unless ``backends`` is given.
        backends: run every model on each of these runtimes (e.g. ``["onnxruntime", "openvino"]``).
        batch_sizes: one batch size or a sweep (``[1, 4, 16]``); inputs come from the model's task.
        duration_s: time budget of the timed runs per configuration (default 2 s; 0.5 s with
            ``WORKBENCH_QUICK=1``); ``iterations``: a fixed count instead. At least ``min_iterations``.
        warmup: untimed calls before timing.
        threads: intra-op threads for every runtime (default: each runtime's own choice; the
            count used is recorded either way).
        mode: ``"sync"`` (one call at a time: latency) or ``"async"`` (``streams`` calls in flight:
            throughput; OpenVINO uses AsyncInferQueue with the THROUGHPUT hint).
        inputs: fixed inputs instead of the task's (then ``batch_sizes`` is ignored).
        inference_only: time the runtime's inference alone, with inputs bound once and outputs left
            in its buffers, as ``benchmark_app`` does (OpenVINO, ONNX Runtime). False times the
            Runner's whole ``infer`` (copying inputs in and outputs out), as a serving loop sees it.
        progress: ``"auto"`` (nothing of its own when a view already listens, as the app's does, or when
            the timed runs take under 2 s in all, e.g. one quick configuration in a loop; else a notebook
            view with the running configuration's name and a Cancel button, or a tqdm bar),
            ``"tqdm"``, ``"widget"``, a callable receiving each ``progress.Event``, or False.
        background: run in a thread and return a ``progress.Task`` at once (``task.result()`` is the
            report; ``task.cancel()`` or the view's Cancel button stops it).

    A cancel raises ``progress.Cancelled`` whose ``partial`` is the report of the configurations that
    finished (module docstring); so does an interrupt (KeyboardInterrupt), after closing the runner.
    A configuration that cannot run (a fixed batch size, a missing runtime) is recorded with its
    error, and the others still run; ``bool(report)`` says whether all ran.
    """
    if mode not in ("sync", "async"):
        raise WorkbenchError(f"unknown mode {mode!r}", "use mode='sync' (latency) or mode='async' (throughput)")
    if duration_s is None:
        duration_s = 0.5 if env_settings.quick() else 2.0
    if duration_s <= 0 and iterations is None:
        raise WorkbenchError("duration_s must be positive", "pass duration_s=2.0 or iterations=100")
    sizes = [batch_sizes] if isinstance(batch_sizes, int) else list(batch_sizes)
    if not sizes or any((not isinstance(b, int | np.integer)) or b < 1 for b in sizes):
        raise WorkbenchError(f"bad batch_sizes {batch_sizes!r}", "pass a positive int or a list of them")
    if inputs is not None:
        sizes = [0]  # 0: "the given inputs"
    items = list(models_or_runners) if isinstance(models_or_runners, list) else [models_or_runners]
    if not items:
        raise WorkbenchError("nothing to benchmark", "pass a model, a (model, backend) pair or a list of them")
    targets = []
    for item in items:
        if backends is not None and not isinstance(item, tuple):
            names = [backends] if isinstance(backends, str) else list(backends)
            targets += [as_target(item, b) for b in names]
        else:
            targets.append(as_target(item))
    settings = {"duration_s": duration_s, "iterations": iterations, "warmup": warmup, "mode": mode,
                "streams": streams, "threads": threads, "batch_sizes": sizes if inputs is None else "given",
                "min_iterations": min_iterations, "inference_only": inference_only}
    used: set[str] = set()
    configs = [(t, target_label(t, used), batch) for t in targets for batch in sizes]
    options = {"duration_s": duration_s, "iterations": iterations, "warmup": warmup,
               "min_iterations": min_iterations, "threads": threads, "mode": mode, "streams": streams,
               "inference_only": inference_only}
    title = f"benchmark: {len(configs)} configuration{'s' * (len(configs) != 1)}"
    if progress == "auto" and not background and iterations is None and len(configs) * duration_s < AUTO_PROGRESS_S:
        progress = False  # over before a view would say anything
    if background:  # the view is made here, in the caller's cell; its Cancel button cancels the task's token
        token = channel.CancelToken()
        view = channel.task_view(progress, title, token)
        return channel.run_in_background(_run_configs, configs, inputs, settings, options, view,
                                         name="benchmark", token=token)
    return _run_configs(configs, inputs, settings, options, channel.task_view(progress, title))


def _config_name(label: str, batch: int, options: dict[str, Any]) -> str:
    mode = options["mode"]
    return f"{label} batch {batch or 'given'}" + (f" {mode}" if mode != "sync" else "")


def _run_configs(configs: list[tuple[Any, str, int]], inputs: dict[str, np.ndarray] | None,
                 settings: dict[str, Any], options: dict[str, Any], view: Any) -> BenchReport:
    """Time every configuration, reporting each on the progress channel (``view`` listens while it runs)."""
    results: list[BenchResult] = []
    torch_threads = _torch_threads()
    total = len(configs)
    with channel.subscribe(view) if view is not None else contextlib.nullcontext():
        try:
            for i, (t, label, batch) in enumerate(configs):
                name = _config_name(label, batch, options)
                channel.check_cancelled("the benchmark")
                channel.report("running", key=i, label=name, detail=f"({i + 1}/{total})", done=i, total=total)
                try:
                    res = _bench_one(t, label, batch, inputs, **options)
                finally:
                    _restore_torch_threads(torch_threads)
                results.append(res)
                channel.report("done" if res.ok else "failed", key=i, label=name, detail=res.error or "",
                               done=i + 1, total=total, payload=res)
        except (channel.Cancelled, KeyboardInterrupt) as err:
            what = f"the benchmark (after {len(results)} of {total} configurations)"
            channel.report("cancelled", key=len(results), label=what, done=len(results), total=total)
            partial = BenchReport(results, {**settings, "cancelled": True}, environment())
            raise channel.Cancelled(what, partial, interrupted=isinstance(err, KeyboardInterrupt)) from None
        finally:
            if view is not None and hasattr(view, "close"):
                view.close()
    return BenchReport(results, settings, environment())


def _bench_one(t: Any, label: str, batch: int, inputs: dict[str, np.ndarray] | None, *, duration_s: float,
               iterations: int | None, warmup: int, min_iterations: int, threads: int | None, mode: str,
               streams: int | None, inference_only: bool) -> BenchResult:
    from workbench.steps.routing import runner as make_runner

    res = BenchResult(label, t.model.name, t.model.format, t.backend, batch or batch_of(inputs), mode,
                      path=(str(t.model.path) if t.model.path is not None else None))
    own = t.runner is None
    r = None
    meter = _ResourceMeter()
    res.rss_before_bytes = meter.rss_before
    try:
        opts = _benchmark_options(t.backend, t.options, mode, streams, threads)
        res.options = {k: v if isinstance(v, bool | int | float | str | type(None)) else str(v) for k, v in opts.items()}
        r = t.runner or make_runner(t.model, t.backend, **opts)
        feeds = feeds_for(r.model, inputs) if inputs is not None else batch_feeds(r.model, batch, t.model)
        start = time.perf_counter()
        if not r.is_prepared:
            r.prepare()
        res.prepare_s = time.perf_counter() - start
        t0 = time.perf_counter()
        r.infer(feeds)  # checked: a wrong input fails here with a clear message, not in the loop
        res.first_infer_s = time.perf_counter() - t0
        res.first_inference_s = res.prepare_s + res.first_infer_s
        res.threads = r.effective_threads()
        res.precision = precision_of(r.model, r)
        res.size_bytes = r.model.size_bytes if r.model.path is not None else t.model.size_bytes
        mark = meter.cpu_mark()
        if mode == "sync":
            # inference alone (inputs bound once, as benchmark_app does), or what a Python serving loop sees
            call = r.inference_call(feeds) if inference_only else (lambda: r.infer(feeds, check=False))
            times, wall = _sync_loop(call, warmup, duration_s, iterations, min_iterations)
            in_flight = 1
        else:
            times, wall, in_flight = r.throughput_loop(feeds, warmup=warmup, duration_s=duration_s,
                                                       iterations=iterations, jobs=streams)
            channel.check_cancelled("the benchmark")  # the loops end early on a cancel: not a result
        res.other_cpu_share = meter.other_cpu_share(mark)
        res.streams = r.effective_streams(mode, in_flight if mode == "async" else None)
        res.duration_s = wall
        res.iterations = len(times)
        res.latency = LatencyStats.of(times)
        items = res.batch or 1
        res.throughput = items * len(times) / wall if wall > 0 else math.nan
        res.noise = _noise(times, res.latency, res.other_cpu_share)
        res.noisy = bool(res.noise)
        step = max(1, len(times) // MAX_KEPT_LATENCIES)
        res.latencies_ms = [x * 1e3 for x in times[::step]]
    except channel.Cancelled:
        raise
    except Exception as err:  # noqa: BLE001 - one configuration failing must not lose the others
        res.error = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
    finally:
        res.peak_rss_bytes = meter.peak_rss()
        if own and r is not None:
            r.close()
    return res


def _torch_threads() -> int | None:
    import sys

    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def _restore_torch_threads(n: int | None) -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)  # a torch runner's threads= must not outlive its benchmark

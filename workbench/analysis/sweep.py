"""``wb.sweep``: a grid of trials (model × steps × runtime × precision × threads), each one loaded,
stepped, validated and timed, as Ray tasks on this machine or on a cluster, or one after another here.

    res = wb.sweep(["digits-cnn", "mobilenetv2"], runtimes=["onnxruntime", "openvino"],
                   precisions=["fp32", "int8"], threads=[1, 2])
    res.to_frame()            # one row per trial: status, p50/p90, throughput, rel_l2, cosine, error, …
    res.failed                # the trials that could not run, each with its one-line error

A trial (``run_trial``) loads its model, runs the ``steps`` (a ``Pipeline`` of registered steps: their
artifacts are cached by content hash in the workspace, so the same export is made once), makes the
requested precision (INT8: the registered quantization step that makes what the runtime runs; fp16 /
bf16: the runtime's own ``precision=`` option, where it has one), validates the result against the
original (``compare``) and times it (``benchmark``) with ``threads`` intra-op threads.

Executors (``executor=``):

``"ray"``        each trial is a Ray task asking for ``num_cpus = threads`` (a trial with
                 ``threads=None``, the runtime's choice, asks for a whole node). Inside the task the
                 trial claims that many cores of its node (a lock file per core, so tasks of one or
                 of several sweeps on a node never share a core) and pins every thread of the worker
                 process to them (``sched_setaffinity``) while it runs; the runtime gets the same
                 count as its intra-op threads. With ``address=None`` Ray is started here
                 (``num_cpus`` CPUs, no dashboard, no usage statistics, the workers' logs kept out of
                 the notebook) and shut down afterwards; with ``address="auto"`` or ``"ray://host:10001"``
                 the same call runs on that cluster (see "On a cluster" below).
``"local"``      the same, always on a Ray started on this machine (``RAY_ADDRESS`` is ignored).
``"sequential"`` one trial after another in this process (no Ray needed): the reference a Ray run is
                 checked against, and the fallback of ``"auto"`` (the default) when Ray is not installed.

Benchmarks that must not share a machine with another benchmark (memory bandwidth, caches, turbo):
``exclusive=True`` runs one trial per node at a time. Each trial then also asks for one unit of the
custom resource ``workbench_bench``: a local Ray is started with one per node; on a cluster, start each
node with ``ray start ... --resources='{"workbench_bench": 1}'``. Where no node declares it, each trial
asks for the CPUs of the smallest node instead, with ``SPREAD`` scheduling (one per node on a cluster of
equal nodes).

Failure: a trial that raises (an impossible precision, a step that fails, a runtime that cannot load the
model) or whose worker dies is a row with ``status="failed"`` and the error's first line; the others run on.

Cache: a trial is keyed by the sha256 of the model's content, the steps and their options, the runtime,
precision, threads, batch, timing budget and the versions of the runtime's distributions. A finished
trial's row is stored in the workspace (``sweep-results/<key>.json``) and a later sweep with the same
trial reads it back (``status="cached"``) instead of running it again (``cache=False`` re-runs).

Progress goes to the one channel (``workbench.core.progress``): an event per trial (``planned`` first,
``running`` as the sequential executor starts it, then ``done`` / ``cached`` / ``failed`` as results stream
back), shown by default as one bar. A precision the runtime cannot compute fails its trials at once.
A cancel (``progress.cancellable`` and its token: the app's or a view's Cancel button) stops the sweep
between sequential trials, or at once on Ray (its pending tasks are cancelled), and raises ``Cancelled``
carrying a ``SweepResult`` of the trials that finished.

On a cluster: every node needs the workbench and the runtimes installed (the same versions:
``pip install -c constraints.txt 'deployment-workbench[all]'``, or pass ``runtime_env={"pip": [...]}``),
and the workspace (``wb.set_workspace`` / ``WORKBENCH_ARTIFACTS``) should be a folder every node sees
(NFS): the artifacts and the result cache live there. Models are sent by name or path (each node loads
them) or, for an in-memory ``nn.Module``, as the module itself.

Security note: Ray's own gRPC services listen on every interface of the node (Ray 2.60 has no
loopback-only option); they require Ray's session token (``RAY_AUTH_MODE=token`` is Ray's default;
leave it on), so nothing reaching the ports can submit work without it.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import gc
import hashlib
import itertools
import logging
import math
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core import progress as channel
from workbench.core import registry, settings
from workbench.core.errors import BackendUnavailable, WorkbenchError
from workbench.core.model import Model
from workbench.core.results import from_json, result_type, to_json

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: the custom Ray resource a node offers once: ``exclusive=True`` trials take it (one per node at a time)
BENCH_RESOURCE = "workbench_bench"
EXECUTORS = ("auto", "ray", "local", "sequential")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
_CACHE_FOLDER = "sweep-results"
#: environment for a Ray started here: no usage statistics, no Ray log lines in the notebook
_QUIET_RAY = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0",
              # no idle workers started with the node: on a busy small machine they slow the node's own
              # start past Ray's fixed 30 s limit; a task's worker starts when the task is submitted
              "RAY_enable_worker_prestart": "0", "RAY_prestart_worker_first_driver": "0"}


# -- the results --------------------------------------------------------------------------------------


@result_type("sweep_trial")
@dataclass
class SweepTrial:
    """One trial of a sweep: what ran, where, how fast, how far from the original, or why it failed."""

    index: int
    model: str
    steps: str  # the name of the steps variant ("" for none)
    runtime: str
    precision: str
    threads: int | None
    status: str = "planned"  # done | cached | failed
    passed: bool | None = None  # validation against the original (None: not validated)
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    throughput: float = math.nan
    rel_l2: float = math.nan
    cosine: float = math.nan
    max_abs: float = math.nan
    top1: float | None = None
    artifact: str = ""  # the file the runtime ran
    seconds: float = 0.0  # the trial's wall time (load, steps, validation, timing)
    node: str = ""  # host name of the machine that ran it
    cores: list[int] | None = None  # the cores it was pinned to (None: not pinned)
    noisy: bool = False  # the benchmark saw other load on its cores
    error: str | None = None
    key: str = ""  # the trial's content hash (the result cache's key)
    started: float = math.nan  # when it started and finished (seconds since the epoch, its node's clock)
    finished: float = math.nan

    @property
    def label(self) -> str:
        parts = [self.model] + ([self.steps] if self.steps else []) + [self.runtime, self.precision]
        return " · ".join(parts) + f" · threads={self.threads if self.threads is not None else 'auto'}"

    @property
    def ok(self) -> bool:
        return self.status in ("done", "cached")

    def json_extras(self) -> dict[str, Any]:
        return {"label": self.label}


@result_type("sweep")
@dataclass
class SweepResult:
    """Every trial of ``wb.sweep``: ``to_frame()``, ``failed``, ``ok``, ``summary()``, ``to_json()``."""

    trials: list[SweepTrial]
    executor: str  # "ray" or "sequential"
    address: str | None  # the Ray cluster ("local": started here for this sweep)
    wall_s: float
    grid: dict[str, list[Any]] = field(default_factory=dict)
    cluster: dict[str, Any] = field(default_factory=dict)  # nodes and CPUs Ray offered

    @property
    def failed(self) -> list[SweepTrial]:
        return [t for t in self.trials if t.status == "failed"]

    @property
    def ok(self) -> list[SweepTrial]:
        return [t for t in self.trials if t.ok]

    def __len__(self) -> int:
        return len(self.trials)

    def __bool__(self) -> bool:
        """Every trial ran (a failed validation is a result, not a failure)."""
        return bool(self.trials) and not self.failed

    def to_frame(self) -> pd.DataFrame:
        """One row per trial (index: the trial number), sorted by trial number."""
        import pandas as pd

        rows = []
        for t in self.trials:
            row = asdict(t)
            row["label"] = t.label
            row["cores"] = ",".join(map(str, t.cores)) if t.cores else ""
            rows.append(row)
        return pd.DataFrame(rows).set_index("index") if rows else pd.DataFrame()

    def summary(self) -> str:
        counts = {s: sum(t.status == s for t in self.trials) for s in ("done", "cached", "failed")}
        where = f" ({self.address})" if self.address else (" (this process)" if self.executor == "sequential" else "")
        lines = [f"sweep of {len(self.trials)} trials on {self.executor}{where} in {self.wall_s:.1f} s: "
                 + ", ".join(f"{n} {s}" for s, n in counts.items() if n)]
        for t in self.trials:
            if t.status == "failed":
                lines.append(f"  FAILED  {t.label}: {t.error}")
                continue
            check = "?" if t.passed is None else ("PASS" if t.passed else "FAIL")
            lines.append(f"  {t.p50_ms:8.3f} ms  {check:4}  rel_l2={t.rel_l2:.2e}  {t.label}"
                         + ("  (cached)" if t.status == "cached" else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<SweepResult>\n{self.summary()}"

    def _repr_html_(self) -> str:
        frame = self.to_frame()
        keep = [c for c in ("label", "status", "passed", "p50_ms", "p90_ms", "throughput", "rel_l2", "cosine",
                            "node", "cores", "seconds", "error") if c in frame]
        from html import escape

        head = escape(self.summary().splitlines()[0])
        return f"<p>{head}</p>" + (frame[keep]._repr_html_() if len(frame) else "")

    def to_json(self, indent: int | None = 2) -> str:
        """JSON with ``schema: "workbench.sweep"``; ``SweepResult.from_json(text)`` reads it back."""
        return to_json(self, indent=indent)


# -- one trial ----------------------------------------------------------------------------------------


@dataclass
class TrialSpec:
    """What a trial runs; sent to the Ray task (so: plain data, a path or zoo name, or a Model)."""

    index: int
    source: Any  # what ``loader`` loads (zoo name, path), or a Model
    model: str
    steps_name: str
    steps: list[Any]
    runtime: str
    precision: str
    threads: int | None
    batch: int
    duration_s: float
    calibration_samples: int
    key: str = ""
    exclusive: bool = False  # timed alone on its node

    def row(self) -> SweepTrial:
        return SweepTrial(self.index, self.model, self.steps_name, self.runtime, self.precision, self.threads,
                          key=self.key)


def one_line(err: BaseException) -> str:
    """The first line of an error's message (its type when it has none), at most 300 characters."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    return first[:300]


def _core_lock_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / f"workbench-cores-{os.getuid() if hasattr(os, 'getuid') else 0}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _set_process_affinity(cores: set[int]) -> None:
    """Pin every thread of this process (the runtimes' existing pools too) to ``cores``; new threads inherit."""
    tids = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    for tid in tids:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cores)


#: this process's affinity before any pinning, and the claims now pinned (a nested claim picks among the base)
_base_affinity: set[int] | None = None
_pinned: list[list[int]] = []


@contextlib.contextmanager
def pinned_cores(count: int | None) -> Iterator[list[int] | None]:
    """Claim ``count`` cores of this machine that no other trial holds and pin this process to them.

    Each core is claimed by an exclusive ``flock`` on a file per core (released when the block ends or
    the process dies), so concurrent trials (Ray tasks, other sweeps) on one machine never pin to the
    same core. Yields the cores, or None where pinning is not possible (no ``sched_setaffinity``, not
    enough free cores: Ray was told of more CPUs than the machine gives this process); the trial then
    runs unpinned with its thread count only. The previous affinity is restored afterwards."""
    if not count or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    import fcntl

    global _base_affinity
    before = os.sched_getaffinity(0)
    if _base_affinity is None or not _pinned:  # the cores this process may use when nothing is pinned
        _base_affinity = set(before)
    allowed = sorted(_base_affinity)
    folder = _core_lock_folder()
    held: list[tuple[int, int]] = []
    try:
        for core in allowed:
            fd = os.open(folder / f"cpu{core}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            held.append((core, fd))
            if len(held) == count:
                break
        if len(held) < count:
            yield None
            return
        cores = [c for c, _ in held]
        _set_process_affinity(set(cores))
        _pinned.append(cores)
        try:
            yield cores
        finally:
            _pinned.remove(cores)
            _set_process_affinity(before)
    finally:
        for _, fd in held:
            os.close(fd)  # closing the descriptor releases its lock


def precision_problem(runtime: str, precision: str) -> WorkbenchError | None:
    """Why ``runtime`` cannot compute at ``precision`` whatever the model (None: it may)."""
    cls = registry.get_runtime(runtime)
    if precision == "fp32":
        return None
    if precision not in cls.precisions:
        return WorkbenchError(f"{runtime} does not compute in {precision} (it offers {', '.join(cls.precisions)})",
                              f"drop {precision} for {runtime} from precisions=")
    if precision != "int8" and "precision" not in getattr(cls, "tunable", ()):
        return WorkbenchError(f"{runtime} has no precision option to compute in {precision}",
                              "use fp32 or int8 on this runtime")
    return None


def _precision_model(model: Model, spec: TrialSpec, options: dict[str, Any]) -> tuple[Model, dict[str, Any]]:
    """The model and runner options that make ``spec.runtime`` compute at ``spec.precision``."""
    from workbench.analysis.autotune import int8_step
    from workbench.steps.pipeline import Pipeline

    cls = registry.get_runtime(spec.runtime)
    p = spec.precision
    problem = precision_problem(spec.runtime, p)
    if problem is not None:
        raise problem
    if p == "fp32":
        return model, options
    if p == "int8":
        steps: list[Any] = []
        fmt = model.format
        if int8_step(spec.runtime, fmt) is None and "onnx" in cls.formats and fmt != "onnx":
            steps.append(("export", "onnx"))  # quantization steps start from ONNX
            fmt = "onnx"
        step = int8_step(spec.runtime, fmt)
        if step is None:
            raise WorkbenchError(f"no registered quantization step makes an INT8 model {spec.runtime} runs from "
                                 f"{model.format}", f"quantization steps: {', '.join(registry.step_targets('quantize'))}")
        calib = model.calibration_data(n=spec.calibration_samples, batch=1)
        steps.append(("quantize", step.target, {"method": "int8", "calibration": calib,
                                                "samples": spec.calibration_samples, "validate": False}))
        final = Pipeline(steps, name="sweep int8").run(model, progress=False).final
        assert final is not None  # a failed step raised
        return final, options
    return model, {**options, "precision": p}


def run_trial(spec: TrialSpec, loader: Callable[[Any], Model] | None = None, workspace: str | None = None,
              pin: bool = True) -> SweepTrial:
    """Run one trial (load → steps → precision → validate → benchmark) and return its row; any exception
    becomes a failed row with the error's first line. This is the body of a Ray task and of the
    sequential executor alike."""
    from workbench.analysis.bench import benchmark
    from workbench.analysis.compare import compare
    from workbench.steps.pipeline import Pipeline
    from workbench.steps.workspace import using_workspace

    row = spec.row()
    row.node = socket.gethostname()
    row.started = time.time()
    start = time.perf_counter()
    try:
        with contextlib.ExitStack() as stack:
            if workspace is not None:
                stack.enter_context(using_workspace(workspace))
            row.cores = stack.enter_context(pinned_cores(spec.threads if pin else None))
            source = spec.source
            original = source if isinstance(source, Model) else _load(source, loader)
            model = original
            if spec.steps:
                model = Pipeline(spec.steps, name=f"sweep {spec.steps_name}").run(model, progress=False).final
            options: dict[str, Any] = {"threads": spec.threads} if spec.threads else {}
            model, options = _precision_model(model, spec, options)
            row.artifact = str(model.path) if model.path is not None else model.name
            target = (model, spec.runtime, options)
            comparison = compare(original, target, batch=spec.batch)
            results = comparison.results
            row.passed = bool(comparison)
            row.rel_l2 = max(r.rel_l2 for r in results)
            row.cosine = min(r.cosine for r in results)
            row.max_abs = max(r.max_abs for r in results)
            row.top1 = results[0].top1
            bench = benchmark(target, batch_sizes=spec.batch, duration_s=spec.duration_s, warmup=3,
                              progress=False)[0]
            if not bench.ok:
                raise WorkbenchError(bench.error or "the benchmark failed")
            row.p50_ms, row.p90_ms, row.throughput, row.noisy = (bench.latency.p50, bench.latency.p90,
                                                                 bench.throughput, bench.noisy)
            row.status = "done"
    except Exception as err:  # noqa: BLE001 - one trial failing must not stop the sweep
        row.status, row.error = "failed", one_line(err)
    row.seconds = time.perf_counter() - start
    row.finished = time.time()
    return row


def _load(source: Any, loader: Callable[[Any], Model] | None) -> Model:
    if loader is None:
        raise WorkbenchError(f"cannot load {source!r} here: the sweep was given no loader",
                             "call wb.sweep (it loads names and paths), or pass loaded Models")
    return loader(source)


# -- the grid and its cache ---------------------------------------------------------------------------


def _digest(value: Any, h: Any) -> None:
    """Feed ``value`` (nested dicts/lists of plain data and arrays) into the hash ``h``, arrays by content."""
    if isinstance(value, dict):
        for k in sorted(value, key=str):
            h.update(repr(k).encode())
            _digest(value[k], h)
    elif isinstance(value, list | tuple):
        h.update(b"[")
        for v in value:
            _digest(v, h)
        h.update(b"]")
    elif hasattr(value, "tobytes") and hasattr(value, "dtype"):
        h.update(f"{value.dtype}{getattr(value, 'shape', ())}".encode())
        h.update(value.tobytes())
    elif callable(value):
        h.update(f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}".encode())
    else:
        h.update(repr(value).encode())


def trial_key(model_hash: str, spec: TrialSpec) -> str:
    """The content hash of a trial: the model's content and everything that decides its figures."""
    from workbench.steps.base import tool_versions

    cls = registry.get_runtime(spec.runtime)
    h = hashlib.sha256()
    _digest({"model": model_hash, "steps": spec.steps, "runtime": cls.name, "precision": spec.precision,
             "threads": spec.threads, "batch": spec.batch, "duration_s": spec.duration_s,
             "samples": spec.calibration_samples if spec.precision == "int8" else None,
             "versions": tool_versions("deployment-workbench", *getattr(cls, "distributions", ())),
             "exclusive": spec.exclusive, "sweep": 1}, h)
    return h.hexdigest()


def _cache_path(key: str) -> Path:
    from workbench.steps.workspace import workspace

    return workspace() / _CACHE_FOLDER / f"{key}.json"


def cached_trial(key: str) -> SweepTrial | None:
    """The stored row of the trial keyed ``key``, or None (missing or unreadable: simply not a hit)."""
    path = _cache_path(key)
    try:
        return from_json(path.read_text(), SweepTrial)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def store_trial(row: SweepTrial) -> None:
    """Store a finished trial's row (written to a temporary name, then renamed: readers never see half)."""
    from workbench.steps.workspace import tmp_sibling

    path = _cache_path(row.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(path)
    tmp.write_text(to_json(row))
    os.replace(tmp, path)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return [None]
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def _steps_variants(steps: Any) -> dict[str, list[Any]]:
    """``steps`` as ``{name: [step, …]}``: None (no steps), one list of steps, or a dict of named lists."""
    if steps is None:
        return {"": []}
    if isinstance(steps, dict):
        return {str(k): list(v or []) for k, v in steps.items()}
    if isinstance(steps, str | tuple) or callable(steps):
        steps = [steps]
    variant = list(steps)
    return {" → ".join(_step_name(s) for s in variant): variant}


def _step_name(step: Any) -> str:
    if isinstance(step, str):
        return step
    if isinstance(step, tuple | list) and len(step) >= 2:
        return f"{step[0]}:{step[1]}"
    return getattr(step, "label", None) or getattr(step, "__name__", None) or str(step)


def _model_name(source: Any, model: Model) -> str:
    """A zoo name as it is, a file by its name (two artifacts of one model stay apart), else the model's name."""
    if isinstance(source, Model):
        source = source.path
    if isinstance(source, str | os.PathLike):
        return Path(source).name if os.path.sep in str(source) else str(source)
    return model.name


def plan(models: Any, *, steps: Any = None, runtimes: Sequence[str] | str | None = None,
         precisions: Sequence[str] | str = ("fp32",), threads: Sequence[int | None] | int | None = (1,),
         batch: int = 1, duration_s: float | None = None, calibration_samples: int | None = None,
         loader: Callable[[Any], Model] | None = None, exclusive: bool = False) -> list[TrialSpec]:
    """The grid as TrialSpecs, each keyed by its content hash (the models are loaded once here to hash them)."""
    quick = settings.quick()
    duration = duration_s if duration_s is not None else (0.1 if quick else 1.0)
    samples = calibration_samples or (8 if quick else 32)
    runtimes = _as_list(runtimes) if runtimes is not None else registry.runtimes_for("onnx")
    for r in runtimes:
        registry.get_runtime(r)  # an unknown name is an error now, naming the registered ones
    for p in _as_list(precisions):
        if p not in PRECISIONS:
            raise WorkbenchError(f"unknown precision {p!r}", f"use one of {', '.join(PRECISIONS)}")
    thread_counts = _as_list(threads)
    for n in thread_counts:
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise WorkbenchError(f"threads={n!r} is not a positive whole number",
                                 "pass thread counts such as threads=[1, 2, 4] (None: the runtime's choice)")
    sources = models if isinstance(models, list | tuple) else [models]
    if not sources:
        raise WorkbenchError("the sweep has no models", "pass a model or a list of models")
    from workbench.steps.base import content_hash

    loaded = []  # (what a trial is sent, display name, content hash)
    for src in sources:
        m = src if isinstance(src, Model) else _load(src, loader)
        send = src
        if isinstance(src, Model) and src.path is not None and loader is not None and not src.metadata.get("trusted"):
            send = str(src.path)  # a file travels as its path (the trial reloads it, lineage from the manifest)
        loaded.append((send, _model_name(src, m), content_hash(m)))
    specs = []
    variants = _steps_variants(steps)
    for (send, name, digest), (vname, vsteps), runtime, precision, n in itertools.product(
            loaded, variants.items(), runtimes, _as_list(precisions), thread_counts):
        spec = TrialSpec(len(specs), send, name, vname, vsteps, runtime, precision, n, batch, duration, samples,
                         exclusive=exclusive)
        spec.key = trial_key(digest, spec)
        specs.append(spec)
    return specs


# -- progress -----------------------------------------------------------------------------------------


class SweepBar:
    """The default view of a sweep: one ``tqdm.auto`` bar over its trials (done, cached, failed counts)."""

    def __init__(self, total: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc="sweep", file=sys.stderr, leave=True)
        self.counts = {"done": 0, "cached": 0, "failed": 0}

    def __call__(self, event: channel.Event) -> None:
        if event.status not in self.counts:
            return
        self.counts[event.status] += 1
        self.bar.update(1)
        self.bar.set_postfix_str(", ".join(f"{n} {s}" for s, n in self.counts.items() if n)
                                 + f" | {event.label[:50]}", refresh=True)

    def close(self) -> None:
        self.bar.close()


def _report(row: SweepTrial) -> None:
    detail = (f"{row.p50_ms:.3f} ms, rel_l2 {row.rel_l2:.2e}" if row.ok else (row.error or ""))
    channel.report(row.status, key=row.index, label=row.label, detail=detail, payload=row)


# -- executors ----------------------------------------------------------------------------------------


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BackendUnavailable("Ray is not installed, so the sweep cannot run as Ray tasks",
                                 "pip install 'deployment-workbench[ray]', or pass executor='sequential'") from None
    return ray


def start_ray(address: str | None = None, num_cpus: int | None = None,
              runtime_env: dict[str, Any] | None = None) -> Any:
    """Connect this process to Ray and return the ``ray`` module: the cluster at ``address`` (``"auto"``,
    ``"ray://host:10001"``), or (``address=None``) a Ray started here with ``num_cpus`` CPUs (default: the
    cores this process may use), one ``workbench_bench`` resource, no dashboard, no usage statistics, and
    the workers' output kept out of the notebook. Sweeps and autotune use a Ray already connected as it is
    (so a notebook starts it once: ``start_ray(num_cpus=2)`` … ``ray.shutdown()``)."""
    for k, v in _QUIET_RAY.items():  # before Ray is imported: some are read at import time
        os.environ.setdefault(k, v)
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR, "namespace": "workbench",
             "runtime_env": runtime_env}
    if address is None or address == "local":
        cpus = num_cpus or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
        for attempt in (1, 2):
            try:
                ray.init(address="local", num_cpus=cpus, resources={BENCH_RESOURCE: 1}, include_dashboard=False,
                         object_store_memory=200 * 1024 * 1024, **quiet)
                break
            except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception when its node starts too slowly
                ray.shutdown()
                if attempt == 2 or "timed out during startup" not in str(err):
                    load = f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)" \
                        if hasattr(os, "getloadavg") else ""
                    raise WorkbenchError(f"Ray could not start on this machine{load}: {one_line(err)}",
                                         "try again when the machine is less busy, or pass executor='sequential'"
                                         ) from None
    else:
        try:
            ray.init(address=address, **quiet)
        except Exception as err:  # noqa: BLE001 - Ray's connection errors have many types
            raise WorkbenchError(f"cannot connect to the Ray cluster at {address}: {one_line(err)}",
                                 "check the address (ray status on the head node shows it), or leave address "
                                 "out to start Ray on this machine") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                runtime_env: dict[str, Any] | None = None) -> Iterator[tuple[Any, str]]:
    """``start_ray`` for the block: yields ``(ray, where)`` (``"local"``, the address, or for a Ray this process
    was connected to before, its GCS address); what this block connected is shut down when it ends."""
    already = _import_ray().is_initialized()
    ray = start_ray(address, num_cpus, runtime_env)
    where = address if address not in (None, "local") else "local"
    if already:  # connected before: name the cluster by its GCS address
        where = str(getattr(ray.get_runtime_context(), "gcs_address", None) or "running")
    try:
        yield ray, where
    finally:
        if not already:
            ray.shutdown()


def _cluster(ray: Any) -> dict[str, Any]:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = [int(n.get("Resources", {}).get("CPU", 0)) for n in nodes]
    bench = sum(int(n.get("Resources", {}).get(BENCH_RESOURCE, 0)) for n in nodes)
    return {"nodes": len(nodes), "cpus_per_node": cpus, "bench_slots": bench}


def task_options(threads: int | None, cluster: dict[str, Any], exclusive: bool) -> dict[str, Any]:
    """The Ray task options of a trial with ``threads`` intra-op threads: that many CPUs (None: a whole
    node), and for ``exclusive`` the node's bench slot (or, where no node declares one, its CPUs, spread)."""
    cpus = cluster["cpus_per_node"] or [1]
    need = threads or min(cpus)
    if need > max(cpus):
        raise WorkbenchError(f"threads={threads} needs {need} CPUs; the largest Ray node has {max(cpus)}",
                             "use fewer threads, or a cluster with larger nodes")
    opts: dict[str, Any] = {"num_cpus": need, "max_retries": 0}
    if exclusive:
        if cluster["bench_slots"]:
            opts["resources"] = {BENCH_RESOURCE: 1}
        else:
            opts["num_cpus"] = max(need, min(cpus))
            opts["scheduling_strategy"] = "SPREAD"
    return opts


def _release_after(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a Ray worker, then stop the step worker subprocess the call may have started there
    (``workbench.steps.worker``) and hand the task's freed heap back to the system: Ray keeps its workers
    alive between tasks, and an idle one holding a step worker and the last trial's heap takes hundreds of
    MB (on a 2 GB Binder machine, the difference between fitting and not)."""
    from workbench.steps import worker

    try:
        return fn(*args)
    finally:
        worker.shutdown()
        gc.collect()
        with contextlib.suppress(OSError, AttributeError):  # glibc only: elsewhere the allocator keeps it
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def ray_map(ray: Any, fn: Callable[..., Any], calls: Sequence[tuple[tuple[Any, ...], int | None]], *,
            exclusive: bool = False, submitted: Callable[[int], None] | None = None,
            stop: Callable[[], bool] | None = None) -> Iterator[tuple[int, Any]]:
    """Run ``fn(*args)`` for each ``(args, threads)`` of ``calls`` as a Ray task with ``task_options``;
    yield ``(index, result)`` as each finishes, the result being the exception where the task could not
    be placed or its worker died. Interrupted (the generator closed) or stopped (``stop()`` true, asked
    every 0.25 s), the tasks still pending are cancelled."""
    cluster = _cluster(ray)
    remote, name = ray.remote(_release_after), getattr(fn, "__name__", "task")  # the task keeps fn's name
    pending: dict[Any, int] = {}
    try:
        for i, (args, threads) in enumerate(calls):
            try:
                opts = task_options(threads, cluster, exclusive)
            except WorkbenchError as err:
                yield i, err
                continue
            pending[remote.options(name=name, **opts).remote(fn, *args)] = i
            if submitted is not None:
                submitted(i)
        while pending:
            if stop is not None and stop():
                return
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.25 if stop is not None else None)
            for ref in ready:
                i = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as err:  # noqa: BLE001 - a dead worker or lost node fails this call only
                    result = err
                yield i, result
    finally:
        for ref in pending:  # interrupted: stop what is still queued or running
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)


def _run_ray(specs: list[TrialSpec], loader: Any, workspace: str, ray: Any, exclusive: bool,
             done: Callable[[SweepTrial], None]) -> None:
    calls = [((spec, loader, workspace, True), spec.threads) for spec in specs]
    for i, row in ray_map(ray, run_trial, calls, exclusive=exclusive, stop=channel.cancel_requested):
        if isinstance(row, BaseException):
            err, row = row, specs[i].row()
            row.status, row.error = "failed", one_line(err)
        done(row)


def sweep(
    models: Any,
    *,
    steps: Any = None,
    runtimes: Sequence[str] | str | None = None,
    precisions: Sequence[str] | str = ("fp32",),
    threads: Sequence[int | None] | int | None = (1,),
    executor: str = "auto",
    address: str | None = None,
    num_cpus: int | None = None,
    exclusive: bool = False,
    batch: int = 1,
    duration_s: float | None = None,
    calibration_samples: int | None = None,
    cache: bool = True,
    progress: str | bool | Callable[[channel.Event], None] = "auto",
    runtime_env: dict[str, Any] | None = None,
    loader: Callable[[Any], Model] | None = None,
) -> SweepResult:
    """Run every trial of the grid models × steps × runtimes × precisions × threads (module docstring).

    Args:
        models: one model or a list (Models; zoo names and paths through ``wb.sweep``).
        steps: registered steps run on each model first (``[("export", "onnx")]``; a ``Pipeline``'s
            steps), or ``{name: steps}`` to sweep several variants; None: none (the runtime's route).
        runtimes: runtime names (default: every registered runtime that runs ONNX).
        precisions: ``fp32``, ``bf16``, ``fp16`` (the runtime's ``precision=`` option), ``int8``
            (post-training static quantization by the registered step for the runtime).
        threads: intra-op thread counts; each is also the trial's CPUs and pinned cores (None: the
            runtime's choice, on a whole node, not pinned).
        executor: ``"auto"`` (Ray when installed, else sequential), ``"ray"``, ``"local"`` or ``"sequential"``.
        address: the Ray cluster (``"auto"``, ``"ray://head:10001"``); None starts Ray here.
        num_cpus: the CPUs of a Ray started here (default: this process's cores).
        exclusive: one trial per node at a time (benchmarks that must not share a machine).
        batch, duration_s: the batch timed and the timing budget per trial (default 1 s; 0.1 s quick).
        calibration_samples: INT8 calibration inputs (default 32; 8 quick).
        cache: read back trials already run (by content hash) and store new ones.
        progress: ``"auto"`` (one bar unless a view already listens), ``"tqdm"``, a callable receiving
            each ``Event``, or False.
        runtime_env: Ray's runtime environment for the tasks (e.g. ``{"pip": [...]}`` on a cluster).
        loader: loads a name or path into a Model on the machine running the trial (``wb.sweep``
            passes ``wb``'s own loader).
    """
    if executor not in EXECUTORS:
        raise WorkbenchError(f"unknown executor {executor!r}", f"use one of {', '.join(EXECUTORS)}")
    if executor == "sequential" and address is not None:
        raise WorkbenchError("address= is for Ray; the sequential executor runs in this process",
                             "pass executor='ray' to use the cluster, or leave address out")
    if executor == "local" and address not in (None, "local"):
        raise WorkbenchError("executor='local' starts Ray on this machine; it takes no address",
                             "pass executor='ray' with address=")
    executor = resolve_executor(executor, address)
    from workbench.steps.workspace import workspace

    specs = plan(models, steps=steps, runtimes=runtimes, precisions=precisions, threads=threads, batch=batch,
                 duration_s=duration_s, calibration_samples=calibration_samples, loader=loader, exclusive=exclusive)
    grid = {"models": sorted({s.model for s in specs}), "steps": list(_steps_variants(steps)),
            "runtimes": sorted({s.runtime for s in specs}), "precisions": list(_as_list(precisions)),
            "threads": list(_as_list(threads))}
    rows: dict[int, SweepTrial] = {}
    start = time.perf_counter()

    def done(row: SweepTrial) -> None:
        rows[row.index] = row
        if cache and row.status == "done":
            with contextlib.suppress(OSError):
                store_trial(row)
        _report(row)

    with contextlib.ExitStack() as stack:
        view = _view(progress, len(specs))
        if view is not None:
            stack.enter_context(channel.subscribe(view))
            if hasattr(view, "close"):
                stack.callback(view.close)
        for spec in specs:
            channel.report("planned", key=spec.index, label=spec.row().label)
        todo = []
        for spec in specs:
            problem = precision_problem(spec.runtime, spec.precision)
            hit = cached_trial(spec.key) if cache and problem is None else None
            if problem is not None:  # known before anything runs: no need to start a task for it
                row = spec.row()
                row.status, row.error = "failed", one_line(problem)
                done(row)
            elif hit is not None and hit.status == "done":
                hit.index, hit.model, hit.steps, hit.status = spec.index, spec.model, spec.steps_name, "cached"
                done(hit)
            else:
                todo.append(spec)
        cluster: dict[str, Any] = {}
        where: str | None = None
        def partial() -> SweepResult:
            return SweepResult([rows[i] for i in sorted(rows)], "sequential" if executor == "sequential" else "ray",
                               where, time.perf_counter() - start, grid, cluster)

        if executor == "sequential":
            for spec in todo:
                channel.check_cancelled("the sweep", partial())  # between trials: each runs to its end
                channel.report("running", key=spec.index, label=spec.row().label)
                # in a context of its own: the trial's steps report to nobody, not to the sweep's listeners
                done(contextvars.Context().run(run_trial, spec, loader, None, True))
        elif todo:
            with ray_session(None if executor == "local" else address, num_cpus, runtime_env) as (ray, where):
                cluster = _cluster(ray)
                _run_ray(todo, loader, str(workspace()), ray, exclusive, done)
                channel.check_cancelled("the sweep", partial())  # the trials still running were cancelled
    return SweepResult([rows[i] for i in sorted(rows)], "sequential" if executor == "sequential" else "ray",
                       where, time.perf_counter() - start, grid, cluster)


def resolve_executor(executor: str, address: str | None = None) -> str:
    """``"auto"`` as ``"ray"`` where Ray is installed (or an address is given), else ``"sequential"``; a Ray
    executor without Ray installed is a ``BackendUnavailable`` error now, before any model is loaded."""
    if executor == "auto":
        try:
            _import_ray()
        except BackendUnavailable:
            if address is not None:
                raise
            return "sequential"
        return "ray"
    if executor in ("ray", "local"):
        _import_ray()
    return executor


def _view(progress: Any, total: int) -> Any:
    if callable(progress):
        return progress
    if progress in (False, None, "none"):
        return None
    if progress in ("auto", True) and channel.subscribed():
        return None
    return SweepBar(total)

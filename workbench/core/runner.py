"""The one Runner interface every backend implements (after Polygraphy's ``backend/base/runner.py``).

Public methods validate and time; subclasses implement ``_prepare_impl``, ``_infer_impl`` and
``_close_impl``. A runner is usable as a context manager::

    with wb.runner(model, "onnxruntime") as r:
        outputs = r.infer(model.example_inputs())

Hooks: what analysis code asks of a runtime, so that nothing above the runtimes special-cases one by
name. The base class gives a generic default where one exists, or says "not supported"; a runtime
overrides what it knows better, in its own file. ``registry.runtimes_with(hook)`` lists the runtimes
that override an optional hook.

============================ ======================================== =====================================
hook                         what for                                 base
============================ ======================================== =====================================
``reference_options()``      full declared precision (validation)     ``{}``
``as_written_options()``     run the graph as written (layerwise ref) ``{}``
``benchmark_options(...)``   options for a benchmark mode             the options unchanged
``effective_precision()``    what the prepared runtime computes in    the ``precision``/``dtype`` option
``effective_threads()``      intra-op threads really used             the ``threads`` option, else None
``effective_streams(...)``   concurrent streams really used           ``streams`` in async mode, else None
``inference_call(feeds)``    the benchmark's timed call               ``infer(feeds, check=False)``
``throughput_loop(...)``     several requests in flight               one thread per request
``profile_nodes(...)``       per-kernel times                         not supported
``layer_tensors(...)``       intermediate tensors of its own format   not supported
``run_with_outputs(...)``    run with intermediate tensors as outputs not supported
============================ ======================================== =====================================
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.core import progress
from workbench.core.errors import (
    BackendUnavailable,
    IncompatibleModel,
    InferenceError,
    InputError,
    WorkbenchError,
    one_line,
)

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.model import Model, TensorSpec


@dataclass(frozen=True)
class Availability:
    """Whether a runtime can be used here, and if not, why and how to fix it."""

    name: str
    available: bool
    version: str | None = None
    reason: str | None = None
    fix: str | None = None
    formats: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.available


@dataclass
class Timing:
    """Wall-clock times a runner recorded."""

    prepare_s: float | None = None
    first_infer_s: float | None = None
    last_infer_s: float | None = None
    infer_count: int = 0
    infer_times_s: list[float] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class KernelTime:
    """One kernel's time in one profiled run (``Runner.profile_nodes``)."""

    kernel: str  # the name the runtime reported
    op_type: str
    exec_type: str  # the implementation (e.g. OpenVINO's "brgconv_avx512_bf16"), or the provider
    time_ms: float


@dataclass(frozen=True)
class LayerTensor:
    """An intermediate tensor a runtime can add as an output of a model in its own format
    (``Runner.layer_tensors``), for the layer-wise comparison."""

    index: int  # position of the op in graph order
    node: str  # the op's name
    op_type: str
    names: tuple[str, ...]  # tensor names whose reference twin it is compared with
    key: Any  # what ``run_with_outputs`` takes to fetch it
    nbytes: int  # estimated size at the given batch
    note: str = ""  # e.g. "FakeQuantize": shown after the tensor's name


def physical_cores() -> int:
    """Physical CPU cores of this machine (at least 1)."""
    import psutil

    return int(psutil.cpu_count(logical=False) or 1)


def default_in_flight() -> int:
    """Requests in flight in a throughput run when none is asked for: one per physical core, at least 2."""
    return max(2, physical_cores())


def timed_in_threads(calls: Sequence[Callable[[], Any]], *, duration_s: float,
                     iterations: int | None) -> tuple[list[float], float]:
    """Run each of ``calls`` in a loop on its own thread until ``iterations`` calls in all (split evenly) or
    ``duration_s`` seconds (at least one call each); return (every call's latency in s, wall time in s).
    A cancel of the caller's context (``progress.cancellable``) ends the loops early (the caller checks it)."""
    jobs = len(calls)
    per_thread: list[list[float]] = [[] for _ in range(jobs)]
    quota = None if iterations is None else [iterations // jobs + (i < iterations % jobs) for i in range(jobs)]
    start = time.perf_counter()
    deadline = start + duration_s

    def work(i: int) -> None:
        times, perf, call = per_thread[i], time.perf_counter, calls[i]
        check_at = perf() + 0.2
        while (len(times) < quota[i]) if quota is not None else (perf() < deadline or not times):
            t0 = perf()
            call()
            t1 = perf()
            times.append(t1 - t0)
            if t1 >= check_at:
                if progress.cancel_requested():
                    break
                check_at = t1 + 0.2

    # each thread in a copy of the caller's context: it sees the caller's cancel tokens
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(work, i)) for i in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for times in per_thread for x in times], time.perf_counter() - start


class Runner:
    """Base class of every backend runner.

    Class attributes declare capabilities: ``name`` (the backend name used by ``wb.runner``),
    ``formats`` (model formats accepted directly), ``devices`` and ``precisions``.
    """

    name: ClassVar[str] = "base"
    formats: ClassVar[tuple[str, ...]] = ()
    devices: ClassVar[tuple[str, ...]] = ("CPU",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    #: short names ``wb.runner`` also accepts (``"ort"``, ``"ov"``)
    aliases: ClassVar[tuple[str, ...]] = ()
    #: formats for which this is the natural runtime (``wb.runner``'s and validation's default)
    default_for: ClassVar[tuple[str, ...]] = ()
    #: the Python distributions it runs on (their versions go into benchmark reports)
    distributions: ClassVar[tuple[str, ...]] = ()
    #: keep up to this many per-call times in ``timing.infer_times_s``
    max_recorded_times: ClassVar[int] = 100_000

    def __init__(self, model: Model, **options: Any):
        if model.format not in self.formats:
            raise IncompatibleModel(
                f"{self.name} cannot run a {model.format} model directly",
                f"use wb.runner(model, {self.name!r}), which converts it, or convert it first "
                f"(accepted formats: {', '.join(self.formats)})",
            )
        self.model = model
        self.options = options
        self.timing = Timing()
        self.is_prepared = False

    # -- capabilities --------------------------------------------------------------------------
    @classmethod
    def availability(cls) -> Availability:
        """Whether this runtime can run here; subclasses override ``_check_available``."""
        try:
            version = cls._check_available()
        except BackendUnavailable as err:
            return Availability(cls.name, False, None, err.problem, err.fix, cls.formats, cls.devices, cls.precisions)
        return Availability(cls.name, True, version, None, None, cls.formats, cls.devices, cls.precisions)

    @classmethod
    def _check_available(cls) -> str | None:
        """Return the runtime's version, or raise BackendUnavailable with the reason and the fix."""
        raise NotImplementedError

    @classmethod
    def reference_options(cls) -> dict[str, Any]:
        """Options that make this runtime compute at its full declared precision, used when a step's
        result is validated (OpenVINO's CPU plugin defaults to bf16 on some CPUs; validation wants fp32)."""
        return {}

    # -- hooks (see the module doc) ------------------------------------------------------------
    @classmethod
    def as_written_options(cls) -> dict[str, Any]:
        """Options that run the graph as written, without the runtime's graph rewrites (fusions), so
        every intermediate tensor exists: the reference of a layer-wise comparison."""
        return {}

    @classmethod
    def benchmark_options(cls, options: dict[str, Any], mode: str, streams: int | None) -> dict[str, Any]:
        """``options`` adjusted for a benchmark in ``mode`` (``"sync"``: latency, ``"async"``: throughput
        with ``streams`` requests in flight, None for the runtime's choice). Options given win."""
        return dict(options)

    def effective_precision(self) -> str | None:
        """The precision the prepared runtime really computes in, in its own words (``"bf16"``,
        ``"<Type: 'float32'>"``), or None when it cannot say. Base: the ``precision``/``dtype`` option."""
        value = self.options.get("precision") or self.options.get("dtype")
        return str(value) if value else None

    def effective_threads(self) -> int | None:
        """The intra-op threads the prepared runtime uses. Base: the ``threads`` option, else None."""
        threads = self.options.get("threads")
        return int(threads) if threads else None

    def effective_streams(self, mode: str, streams: int | None) -> int | None:
        """The concurrent streams (requests in flight) the runtime used for a run of ``mode`` where
        ``streams`` were asked for. Base: ``streams`` in async mode, None in sync mode."""
        return streams if mode == "async" else None

    def inference_call(self, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
        """The call a benchmark's timed loop repeats: inference alone, with ``feeds`` (already checked)
        bound once where the runtime allows it, and outputs left in its buffers (as ``benchmark_app``
        does). Base: the whole ``infer`` without input checks."""
        return lambda: self.infer(feeds, check=False)

    def throughput_loop(self, feeds: dict[str, np.ndarray], *, warmup: int, duration_s: float,
                        iterations: int | None, jobs: int | None) -> tuple[list[float], float, int]:
        """Keep ``jobs`` requests in flight (None: the runtime's choice) until ``iterations`` calls or
        ``duration_s`` seconds; return (per-request latencies in s, wall time in s, requests in flight).

        Base: ``jobs`` threads calling ``_infer_impl`` on the shared runner (the runtime's call must be
        thread-safe; ``infer``'s bookkeeping is not, so it is bypassed)."""
        jobs = jobs or default_in_flight()
        for _ in range(warmup):
            self.infer(feeds, check=False)
        impl = self._infer_impl
        latencies, wall = timed_in_threads([lambda: impl(feeds)] * jobs, duration_s=duration_s, iterations=iterations)
        return latencies, wall, jobs

    @classmethod
    def profile_nodes(cls, model: Model, feeds: dict[str, np.ndarray], runs: int, warmup: int,
                      **options: Any) -> tuple[list[KernelTime], Model]:
        """Run ``model`` ``warmup`` + ``runs`` times with the runtime's profiler on; return the kernels'
        mean time per profiled run, and the model the runtime ran (whose graph names the kernels).
        Optional: ``registry.runtimes_with("profile_nodes")`` lists the runtimes that have it."""
        raise WorkbenchError(f"{cls.name} has no per-node profiler",
                             "profile on a runtime that has one: workbench.core.registry.runtimes_with('profile_nodes')")

    @classmethod
    def layer_tensors(cls, model: Model, batch: int) -> list[LayerTensor]:
        """The intermediate float tensors of ``model`` (in this runtime's own format) that
        ``run_with_outputs`` can fetch. Optional, with ``run_with_outputs``."""
        raise WorkbenchError(f"{cls.name} cannot list the intermediate tensors of a {model.format} model",
                             "compare the layers of an ONNX model instead")

    @classmethod
    def run_with_outputs(cls, model: Model, keys: Sequence[Any], feeds: dict[str, np.ndarray],
                         **options: Any) -> tuple[list[np.ndarray], str | None]:
        """Run ``model`` with the tensors ``keys`` (``LayerTensor.key``) added as outputs; return their
        values in order and the precision the runtime computed in. Optional, with ``layer_tensors``."""
        raise WorkbenchError(f"{cls.name} cannot add intermediate outputs to a {model.format} model",
                             "compare the layers of an ONNX model instead")

    # -- lifecycle -----------------------------------------------------------------------------
    def prepare(self) -> Runner:
        """Load and compile the model. Called by ``infer`` and ``__enter__`` if not called before."""
        if self.is_prepared:
            return self
        avail = self.availability()
        if not avail:
            raise BackendUnavailable(avail.reason or f"{self.name} is unavailable", avail.fix)
        start = time.perf_counter()
        try:
            self._prepare_impl()
        except WorkbenchError:
            raise
        except Exception as err:  # a runtime's own exception type: one line with the problem and a fix
            raise InferenceError(f"{self.name} could not load {self.model.name}: {type(err).__name__}: "
                                 f"{one_line(err)}",
                                 "the model file may be damaged or use what this runtime does not support: "
                                 "check it with wb.load(...).describe(), or try another runtime") from err
        self.timing.prepare_s = time.perf_counter() - start
        self.is_prepared = True
        return self

    def infer(self, feeds: dict[str, Any] | None = None, *, check: bool = True) -> dict[str, np.ndarray]:
        """Run the model on ``feeds`` (``{input name: array}``; default: the model's example inputs).

        Returns ``{output name: numpy array}`` in the model's output order. ``check=False`` skips
        input validation (the benchmark's hot loop does this after one checked call).
        """
        if not self.is_prepared:
            self.prepare()
        if feeds is None:
            feeds = self.model.example_inputs()
        if check:
            feeds = self.validate_feeds(feeds)
            self._record_unknown_shapes(feeds)
        start = time.perf_counter()
        try:
            outputs = self._infer_impl(feeds)
        except WorkbenchError:
            raise
        except Exception as err:  # ONNX Runtime's Fail / InvalidArgument, OpenVINO's RuntimeError, …
            shapes = ", ".join(f"{k}: {getattr(v, 'dtype', type(v).__name__)}{list(getattr(v, 'shape', ()))}"
                               for k, v in feeds.items())
            raise InferenceError(f"{self.name} failed to run {self.model.name} on inputs ({shapes}): "
                                 f"{type(err).__name__}: {one_line(err)}",
                                 "check the inputs against model.inputs (shapes, dtypes, a batch of at least "
                                 "1); if they match, the model is damaged or hits a runtime bug: try another "
                                 "runtime") from err
        elapsed = time.perf_counter() - start
        t = self.timing
        if t.first_infer_s is None:
            t.first_infer_s = elapsed
        t.last_infer_s = elapsed
        t.infer_count += 1
        if len(t.infer_times_s) < self.max_recorded_times:
            t.infer_times_s.append(elapsed)
        return outputs

    def close(self) -> None:
        """Release the runtime's resources. Safe to call twice."""
        if self.is_prepared:
            self._close_impl()
        self.is_prepared = False

    def __enter__(self) -> Runner:
        return self.prepare()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "prepared" if self.is_prepared else "not prepared"
        return f"<{type(self).__name__} {self.model.name!r} ({self.model.format}) {state} {self.options}>"

    # -- validation ----------------------------------------------------------------------------
    def validate_feeds(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        """Check names, dtypes and fixed dimensions against ``model.inputs``; return numpy arrays."""
        if not isinstance(feeds, dict):
            raise InputError(
                f"feeds must be a dict of input name -> array, got {type(feeds).__name__}",
                f"pass {{{', '.join(repr(n) for n in self.model.input_names)}: array}}",
            )
        specs = {s.name: s for s in self.model.inputs}
        missing = [n for n in specs if n not in feeds]
        extra = [n for n in feeds if n not in specs]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing input(s) {missing}")
            if extra:
                parts.append(f"unknown input(s) {extra}")
            raise InputError("; ".join(parts), f"the model's inputs are {list(specs)}")
        return {name: checked_value(feeds[name], spec) for name, spec in specs.items()}

    def _record_unknown_shapes(self, feeds: dict[str, np.ndarray]) -> None:
        """Inputs whose rank the model did not know take the shape and dtype of the first run's arrays
        (axis 0 dynamic): later runs are checked against them. Only for a model that asks for it
        (``metadata["shapes_from_first_run"]``: a TorchScript file that records nothing); a model that
        declares an input of any rank (ONNX without a shape) keeps taking any rank."""
        if all(s.rank_known for s in self.model.inputs) or not self.model.metadata.get("shapes_from_first_run"):
            return
        from workbench.core.model import TensorSpec

        self.model.inputs = [s if s.rank_known or s.kind != "tensor" else
                             TensorSpec(s.name, tuple("batch" if i == 0 else int(d)
                                                      for i, d in enumerate(feeds[s.name].shape)),
                                        str(feeds[s.name].dtype))
                             for s in self.model.inputs]

    # -- to implement --------------------------------------------------------------------------
    def _prepare_impl(self) -> None:
        raise NotImplementedError

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _close_impl(self) -> None:
        pass


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch
        return value.detach().cpu().numpy()
    return np.asarray(value)


def checked_value(value: Any, spec: TensorSpec) -> Any:
    """``value`` checked against ``spec`` and made what the runtimes take: a NumPy array for a tensor
    (strings as an object or str array), a list of them for a sequence, None or the value for an
    optional, a dict for a map. Raises InputError naming the input and the fix."""
    kind = spec.kind
    if kind == "optional":
        return None if value is None else checked_value(value, spec.element)
    if kind == "sequence":
        if not isinstance(value, list | tuple):
            raise InputError(f"input {spec.name!r} is a sequence ({spec.dtype}), got {type(value).__name__}",
                             f"pass a list of arrays: feeds[{spec.name!r}] = [array, array, ...]")
        return [checked_value(v, spec.element) for v in value]
    if kind == "map":
        if not isinstance(value, dict):
            raise InputError(f"input {spec.name!r} is a map ({spec.dtype}), got {type(value).__name__}",
                             f"pass a dict: feeds[{spec.name!r}] = {{key: value, ...}}")
        return value
    if value is None:
        raise InputError(f"input {spec.name!r} is None, the model expects a {spec.dtype} tensor",
                         "pass an array (only optional inputs take None)")
    arr = _to_numpy(value)
    _check_spec(arr, spec)
    return arr


def _check_spec(arr: np.ndarray, spec: TensorSpec) -> None:
    from workbench.core.model import numpy_dtype

    if not spec.rank_known and spec.dtype == "unknown":  # nothing known yet: the first run records it
        return
    if spec.dtype == "string":
        if arr.dtype.kind not in "OUS":
            raise InputError(f"input {spec.name!r} has dtype {arr.dtype}, the model expects strings",
                             f"pass an array of str: feeds[{spec.name!r}] = np.array([...], dtype=object)")
    elif arr.dtype != numpy_dtype(spec.dtype):
        raise InputError(
            f"input {spec.name!r} has dtype {arr.dtype}, the model expects {spec.dtype}",
            f"cast it: feeds[{spec.name!r}] = x.astype({spec.dtype!r})",
        )
    if not spec.rank_known:  # any rank (or nothing known yet: the first run records it)
        return
    if arr.ndim != len(spec.shape):
        raise InputError(
            f"input {spec.name!r} has {arr.ndim} dimensions {arr.shape}, the model expects {len(spec.shape)} {spec.shape}",
            "reshape the array to the model's input shape",
        )
    for axis, (got, want) in enumerate(zip(arr.shape, spec.shape, strict=True)):
        if isinstance(want, int) and want >= 0 and got != want:
            raise InputError(
                f"input {spec.name!r} has size {got} on axis {axis}, the model expects {want} (shape {spec.shape})",
                "resize the input, or export the model with that axis dynamic",
            )

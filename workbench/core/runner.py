"""The one Runner interface every backend implements (after Polygraphy's ``backend/base/runner.py``).

Public methods validate and time; subclasses implement ``_prepare_impl``, ``_infer_impl`` and
``_close_impl``. A runner is usable as a context manager::

    with wb.runner(model, "onnxruntime") as r:
        outputs = r.infer(model.example_inputs())
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.core.errors import BackendUnavailable, IncompatibleModel, InputError

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

    # -- lifecycle -----------------------------------------------------------------------------
    def prepare(self) -> Runner:
        """Load and compile the model. Called by ``infer`` and ``__enter__`` if not called before."""
        if self.is_prepared:
            return self
        avail = self.availability()
        if not avail:
            raise BackendUnavailable(avail.reason or f"{self.name} is unavailable", avail.fix)
        start = time.perf_counter()
        self._prepare_impl()
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
        start = time.perf_counter()
        outputs = self._infer_impl(feeds)
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
        out = {}
        for name, spec in specs.items():
            arr = _to_numpy(feeds[name])
            _check_spec(arr, spec)
            out[name] = arr
        return out

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


def _check_spec(arr: np.ndarray, spec: TensorSpec) -> None:
    if arr.dtype != np.dtype(spec.dtype):
        raise InputError(
            f"input {spec.name!r} has dtype {arr.dtype}, the model expects {spec.dtype}",
            f"cast it: feeds[{spec.name!r}] = x.astype(np.{spec.dtype})",
        )
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

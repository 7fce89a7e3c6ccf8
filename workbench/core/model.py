"""``Model``: one handle over every format, and ``load()``, the entry point that makes one.

A Model is light: it holds the format, the path (or the in-memory object for a ``torch.nn.Module``),
the input and output specs, the task data it inherited (example inputs, calibration and evaluation
data from the zoo) and its lineage. The native object (an ``onnx.ModelProto``, an ``ov.Model``, …)
is loaded on demand by ``Model.native()``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import ModelFormatError

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.graph import Graph
    from workbench.zoo.base import Task

Dim = int | str  # an int is a fixed size; a str names a dynamic axis ("batch", "sequence", "?")

#: the shape of an input whose rank is unknown too (a foreign TorchScript file): any array is accepted, and
#: the first run records the shape (``Runner.infer``)
UNKNOWN_SHAPE: tuple[str, ...] = ("...",)

# Sizes used for dynamic axes when example inputs are made up (no task data).
DEFAULT_DYNAMIC_SIZES = {"batch": 1, "batch_size": 1, "n": 1, "N": 1}
DEFAULT_OTHER_DYNAMIC = 16


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one model input or output.

    ``shape`` holds ints for fixed sizes and strings for dynamic axes (their symbolic name, or
    ``"?"`` when the format gives none). ``dtype`` is a NumPy dtype name (``"float32"``, ``"int64"``).
    """

    name: str
    shape: tuple[Dim, ...]
    dtype: str

    @property
    def dynamic_axes(self) -> list[int]:
        """Indices of the dynamic axes."""
        return [i for i, d in enumerate(self.shape) if not isinstance(d, int)]

    @property
    def is_dynamic(self) -> bool:
        return bool(self.dynamic_axes)

    @property
    def rank_known(self) -> bool:
        """False for ``UNKNOWN_SHAPE``: not even the number of dimensions is known."""
        return self.shape != UNKNOWN_SHAPE

    @property
    def kind(self) -> str:
        """``"tensor"``, or the ONNX value type the dtype names: ``"sequence"`` (a list of arrays),
        ``"optional"`` (a value or None), ``"map"`` (a dict)."""
        head = self.dtype.split("(", 1)[0]
        return head if head in ("sequence", "optional", "map") and "(" in self.dtype else "tensor"

    @property
    def element(self) -> TensorSpec:
        """What a sequence or optional holds, as a spec (the spec itself for a tensor)."""
        if self.kind not in ("sequence", "optional"):
            return self
        inner = self.dtype[self.dtype.index("(") + 1:-1]
        return TensorSpec(self.name, self.shape if self.kind == "optional" else UNKNOWN_SHAPE, inner)


    def concrete_shape(self, batch: int | None = None, sizes: dict[str, int] | None = None) -> tuple[int, ...]:
        """A fixed shape: dynamic axes get ``sizes[name]``, ``batch`` on axis 0, else a default."""
        out = []
        for i, d in enumerate(self.shape):
            if isinstance(d, int):
                out.append(d)
            elif sizes and d in sizes:
                out.append(sizes[d])
            elif i == 0 and batch is not None:
                out.append(batch)
            elif d in DEFAULT_DYNAMIC_SIZES or i == 0:
                out.append(DEFAULT_DYNAMIC_SIZES.get(d, 1))
            else:
                out.append(DEFAULT_OTHER_DYNAMIC)
        return tuple(out)

    def __str__(self) -> str:
        dims = ", ".join(str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]"


def numpy_dtype(name: str) -> np.dtype | None:
    """The NumPy dtype of a dtype name: NumPy's own, ``ml_dtypes``' (``bfloat16``, ``float8_e4m3fn``,
    ``float4_e2m1fn``, ``int4``), ``object`` for ``"string"``; None for a name no array type has."""
    if name == "string":
        return np.dtype(object)
    try:
        return np.dtype(name)
    except (TypeError, ValueError):
        pass
    try:
        import ml_dtypes
    except ImportError:
        return None
    alias = {"float8e4m3fn": "float8_e4m3fn", "float8e4m3fnuz": "float8_e4m3fnuz", "float8e5m2": "float8_e5m2",
             "float8e5m2fnuz": "float8_e5m2fnuz", "float8e8m0": "float8_e8m0fnu", "float4e2m1": "float4_e2m1fn"}
    found = getattr(ml_dtypes, alias.get(name, name), None)
    return np.dtype(found) if found is not None else None


@dataclass
class LineageEntry:
    """One step of a model's history: what made it from which parent."""

    step: str  # "load", "export:onnx", "convert:openvino", "quantize:onnxruntime", …
    options: dict[str, Any]
    parent: Model | None
    tool_versions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    size_bytes: int | None = None

    def __iter__(self):  # allows ``step, options, parent = entry``
        return iter((self.step, self.options, self.parent))


class Model:
    """A model in any format, with its interface, data and history.

    Attributes:
        format: one of ``FORMATS``.
        name: a short display name.
        path: the file or folder on disk (``None`` for an in-memory ``torch.nn.Module``).
        inputs, outputs: lists of ``TensorSpec``.
        task: the zoo task this model computes (example, calibration and evaluation data), or None.
        lineage: ``[LineageEntry]`` from the original model to this one (empty for an original).
        metadata: format-specific facts (opset, producer, precision, …).
        validation: for a step's result, how it compares with its parent and the original
            (``workbench.steps.validate.Validation``); None otherwise.
    """

    validation: Any = None

    def __init__(
        self,
        format: str,
        *,
        name: str,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        path: str | os.PathLike | None = None,
        native: Any = None,
        native_loader: Callable[[], Any] | None = None,
        task: Task | None = None,
        lineage: Iterable[LineageEntry] = (),
        metadata: dict[str, Any] | None = None,
        example_feeds: dict[str, np.ndarray] | None = None,
    ):
        from workbench.core import registry

        if format not in registry.formats():
            raise ValueError(f"unknown format {format!r}; expected one of {registry.format_names()}")
        self.format = format
        self.name = name
        self.path = Path(path) if path is not None else None
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.task = task
        self.lineage: list[LineageEntry] = list(lineage)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._native = native
        self._native_loader = native_loader
        self._example_feeds = example_feeds

    # -- native object -------------------------------------------------------------------------
    def native(self) -> Any:
        """The format's own object (nn.Module, ScriptModule, ExportedProgram, onnx.ModelProto,
        openvino.Model, coremltools MLModel spec, transformers model), loaded once on demand."""
        if self._native is None and self._native_loader is not None:
            self._native = self._native_loader()
        return self._native

    # -- data ----------------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]

    def example_inputs(self, batch: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Inputs to run the model on, as ``{name: array}``; the same for the same seed.

        From the task's data when the model has one (real digits, real sentences), else the example
        inputs given at load time, else seeded random arrays shaped by the input specs.
        """
        if self.task is not None:
            feeds = self.task.example_inputs(batch=batch, seed=seed)
            return {s.name: feeds[s.name] for s in self.inputs if s.name in feeds} or feeds
        if self._example_feeds is not None and batch is None and seed == 0:
            return {k: v.copy() for k, v in self._example_feeds.items()}
        return random_feeds(self.inputs, batch=batch, seed=seed, sizes=self._example_sizes())

    def _example_sizes(self) -> dict[str, int] | None:
        """The sizes of named dynamic axes (other than the batch) in the example inputs given at load time:
        made-up inputs keep them (a speech model needs its samples, a Whisper decoder its length)."""
        if not self._example_feeds:
            return None
        sizes: dict[str, int] = {}
        for spec in self.inputs:
            arr = self._example_feeds.get(spec.name)
            if arr is None or not spec.rank_known or np.ndim(arr) != len(spec.shape):
                continue
            for i, d in enumerate(spec.shape):
                if i > 0 and isinstance(d, str) and d != "?":
                    sizes.setdefault(d, int(np.shape(arr)[i]))
        return sizes or None

    def calibration_data(self, n: int = 32, batch: int = 1) -> list[dict[str, np.ndarray]]:
        """``n`` input dicts for post-training quantization (from the task's data where it has some)."""
        if self.task is not None:
            return self.task.calibration_data(n=n, batch=batch)
        sizes = self._example_sizes()  # the lengths the model needs (a speech model's samples)
        return [random_feeds(self.inputs, batch=batch, seed=1000 + i, sizes=sizes) for i in range(n)]

    def evaluate(self, backend: str | None = None, **runner_options: Any) -> dict[str, float]:
        """The task metric (e.g. digits accuracy) computed by running this model on ``backend``."""
        if self.task is None or not self.task.has_evaluation:
            raise ModelFormatError(
                f"model {self.name!r} has no evaluation data",
                "use a zoo model with a task (wb.zoo.list()) or compare outputs with wb.compare",
            )
        from workbench.core import registry

        first = self.inputs[0].shape if self.inputs else ()
        fixed_batch = first[0] if first and isinstance(first[0], int) else None  # e.g. exported with dynamic=False
        with registry.open_runner(self, backend or registry.default_runtime(self.format), **runner_options) as r:
            return self.task.evaluate(r.infer, batch_size=fixed_batch)

    # -- inspection ----------------------------------------------------------------------------
    @property
    def size_bytes(self) -> int | None:
        """Bytes on disk (every file of a multi-file model), or None for in-memory models."""
        if self.path is None:
            return None
        from workbench.core import registry

        return sum(f.stat().st_size for f in registry.get_format(self.format).files(self.path))

    @property
    def original(self) -> Model:
        """The model at the root of the lineage."""
        return self.lineage[0].parent if self.lineage and self.lineage[0].parent is not None else self

    def graph(self) -> Graph:
        """The model's graph (nodes, edges, shapes, params, MACs) as a ``workbench.core.graph.Graph``."""
        from workbench.core import registry

        return registry.get_format(self.format).graph(self)

    def describe(self) -> str:
        """A few lines: format, path, size, inputs, outputs, lineage."""
        lines = [f"{self.name} ({self.format})"]
        if self.path is not None:
            size = self.size_bytes
            lines.append(f"  path: {self.path}" + (f"  ({human_bytes(size)})" if size else ""))
        from workbench.core import registry

        facts = {k: self.metadata[k] for k in ("parameters", "precision", "architecture") if k in self.metadata}
        facts.update(registry.get_format(self.format).describe(self))  # the format's own facts (opset, producer…)
        for key, value in facts.items():
            lines.append(f"  {key}: {value}")
        lines.append("  inputs:")
        lines += [f"    {s}" for s in self.inputs]
        lines.append("  outputs:")
        lines += [f"    {s}" for s in self.outputs]
        if self.task is not None:
            lines.append(f"  task: {self.task.name} (metric: {self.task.metric_name})")
        if self.lineage:
            lines.append("  lineage: " + " → ".join(e.step for e in self.lineage))
        for note in self.metadata.get("notes", []):
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        ins = ", ".join(str(s) for s in self.inputs)
        return f"<Model {self.name!r} format={self.format} inputs=[{ins}]>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython
        p.text(self.describe())

    def derive(self, format: str, path: str | os.PathLike | None, entry: LineageEntry, **kw: Any) -> Model:
        """A model made from this one by a step: it keeps the task and extends the lineage."""
        kw.setdefault("task", self.task)
        kw.setdefault("name", self.name)
        kw.setdefault("inputs", self.inputs)
        kw.setdefault("outputs", self.outputs)
        if self._example_feeds is not None and set(self._example_feeds) == {s.name for s in kw["inputs"]}:
            kw.setdefault("example_feeds", self._example_feeds)  # and with them the lengths the model needs
        return Model(format, path=path, lineage=[*self.lineage, entry], **kw)


def random_feeds(
    specs: Sequence[TensorSpec], batch: int | None = None, seed: int = 0, sizes: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Seeded random arrays matching ``specs`` (normal floats, small non-negative ints, ones for masks).

    A shape a file declares is checked before anything is allocated (``$WORKBENCH_MAX_INPUT_BYTES``:
    an ``InputError`` with the size and the fix), and a dtype NumPy has no type for is a
    ``ModelFormatError``, not a ``TypeError``.
    """
    from workbench.core.safety import check_declared_bytes

    rng = np.random.default_rng(seed)
    feeds: dict[str, Any] = {}
    for spec in specs:
        if spec.kind != "tensor" or spec.dtype == "string":
            feeds[spec.name] = _random_value(spec, rng, batch, sizes)
            continue
        shape = spec.concrete_shape(batch=batch, sizes=sizes)
        dt = numpy_dtype(spec.dtype)
        if dt is None:
            raise ModelFormatError(f"input {spec.name!r} has the element type {spec.dtype!r}, which the workbench "
                                   "cannot make example data for",
                                   "pass inputs of your own (wb.load(..., example_inputs=...) or runner.infer(feeds))"
                                   )
        check_declared_bytes(spec.name, shape, dt.itemsize)
        if dt.kind == "f" or (dt.kind == "V" and "float" in dt.name):  # ml_dtypes floats: bfloat16, float8…
            arr = rng.standard_normal(shape).astype(np.float32).astype(dt)
        elif dt.kind in "iu":
            if "mask" in spec.name:
                arr = np.ones(shape, dt)
            elif "token_type" in spec.name:  # segment ids: a model may have a single segment
                arr = np.zeros(shape, dt)
            else:
                arr = rng.integers(0, 10, shape).astype(dt)
        elif dt.kind == "b":
            arr = rng.random(shape) > 0.5
        elif dt.kind == "V" and "int" in dt.name:  # ml_dtypes int4 / uint4 / int2
            arr = rng.integers(0, 4, shape).astype(np.int8).astype(dt)
        else:
            raise ModelFormatError(f"cannot make example data for input {spec.name} of dtype {spec.dtype}")
        feeds[spec.name] = arr
    return feeds


def _random_value(spec: TensorSpec, rng: np.random.Generator, batch: int | None,
                  sizes: dict[str, int] | None) -> Any:
    """A seeded example value of a non-numeric spec: strings, a list (sequence), the value (optional)."""
    if spec.kind == "sequence":
        item = spec.element
        item = TensorSpec(item.name, (3,) if item.kind == "tensor" and not item.rank_known else item.shape, item.dtype)
        return [_random_value(item, rng, batch, sizes) for _ in range(2)]
    if spec.kind == "optional":
        return _random_value(spec.element, rng, batch, sizes)
    if spec.kind == "map":
        raise ModelFormatError(f"cannot make example data for input {spec.name!r} of type {spec.dtype}",
                               "pass inputs of your own: runner.infer({name: {key: value, ...}})")
    if spec.dtype == "string":
        from workbench.core.safety import check_declared_bytes

        shape = spec.concrete_shape(batch=batch, sizes=sizes)
        check_declared_bytes(spec.name, shape, 8)
        words = np.array(["alpha", "beta", "gamma", "delta", ""], dtype=object)
        return words[rng.integers(0, len(words), shape)]
    return random_feeds([spec], batch=batch, seed=int(rng.integers(0, 2**31)), sizes=sizes)[spec.name]


def human_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KB"`` (binary units)."""
    for unit, div in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} B"

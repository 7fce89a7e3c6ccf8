"""``check``: test a kernel's launcher against a reference on fresh random inputs over many shapes.

What it catches, and how:

* wrong values: outputs are compared with the reference (computed in float32 from the same inputs)
  with a tolerance per output dtype; the worst element is reported with its index;
* elements never written: while the launcher runs, ``torch.empty``/``empty_like``/``empty_strided``
  return tensors filled with a poison (a NaN with a payload no arithmetic produces, or the integer
  minimum), so any output element still holding it was never stored to;
* out-of-bounds loads and stores: in interpreter mode every active lane is bounds-checked
  (``workbench.kernels.guard``), so a missing mask fails with the kernel line instead of crashing;
* out-of-bounds per tensor: an access must stay inside the one tensor argument (or view) it belongs to,
  so a store that runs past ``out`` into a neighbouring argument, or from ``q`` into ``k`` (two views of
  one fused projection), fails too, naming both tensors;
* races: in interpreter mode every launch is recorded (``workbench.kernels.access``): an element one
  program wrote and another read or wrote is a race on a GPU, where programs run concurrently. The
  largest case of each dtype is also re-run with the programs in reversed and shuffled order, and its
  outputs must not change;
* atomics on memory that was never initialised (``torch.empty`` then ``tl.atomic_add``): reported as
  the missing zero-init, at the atomic's line, rather than as elements never written;
* inputs changed by the kernel (a store to the wrong pointer);
* errors: a compile or run error fails that case with the message, the other cases still run.

bfloat16 cases are skipped in interpreter mode, with a note: Triton's interpreter computes on bfloat16
bit patterns as if they were another type (a known limitation), so its results are wrong for correct
kernels. They run on a GPU.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.kernels.guard import POISON_BITS
from workbench.kernels.modes import as_error, mode

#: (atol, rtol) per output dtype name; |got - expected| <= atol + rtol * |expected| passes.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-8, 1e-7),
    "float32": (1e-5, 1e-4),
    "float16": (1e-2, 1e-2),
    "bfloat16": (2e-2, 2e-2),
}



def dot_tolerance() -> tuple[float, float]:
    """(atol, rtol) for float32 outputs of kernels built on ``tl.dot``: exact-ish in the interpreter
    (NumPy float32), TF32 on a GPU, where ``tl.dot`` rounds float32 inputs to a 10-bit mantissa by
    default (as torch does with ``allow_tf32``)."""
    return (1e-4, 1e-4) if mode().interpreted else (1e-2, 1e-2)


#: shapes used when none are given: size 1, sizes that are not multiples of any block, and a power of two
DEFAULT_SHAPES: tuple[tuple[int, ...], ...] = ((1, 1), (1, 7), (3, 129), (17, 1000), (64, 64))

# bit patterns of a quiet NaN with a payload: arithmetic never produces these exact bits
_POISON_BITS = POISON_BITS

BF16_INTERPRETER_NOTE = (
    "bfloat16 cases were skipped: Triton's interpreter computes on bfloat16 bit patterns as if they were "
    "another type (a known Triton limitation), so correct kernels fail there; they run on a GPU"
)

#: re-run orders for race detection (besides the interpreter's grid order)
ORDERS: tuple[tuple[str, int], ...] = (("reverse", 0), ("shuffle", 1))


def tolerance_for(dtype: Any, overrides: dict[Any, tuple[float, float]] | None = None) -> tuple[float, float]:
    """(atol, rtol) for an output dtype; integers and booleans compare exactly."""
    name = str(dtype).replace("torch.", "")
    if overrides:
        for key, value in overrides.items():
            if str(key).replace("torch.", "") == name:
                return value
    return TOLERANCES.get(name, (0.0, 0.0))


@dataclass
class CaseResult:
    """The outcome of one (shape, dtype) case."""

    shape: Any
    dtype: str
    passed: bool
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0
    worst_index: tuple[int, ...] | None = None
    worst_output: int = 0
    got: float | str | None = None
    expected: float | None = None
    n_bad: int = 0
    n_unwritten: int = 0
    n_elements: int = 0
    atol: float = 0.0
    rtol: float = 0.0
    error: str | None = None
    skipped: str | None = None  # why the case did not run (bfloat16 in the interpreter)
    worst_writer: str | None = None  # which program and lane wrote the worst element (interpreter)
    orders: list[str] = field(default_factory=list)  # program orders the case was re-run in
    maps: list[Any] = field(default_factory=list, repr=False)  # AccessMap per launch (interpreter)

    def describe(self) -> str:
        head = f"shape {_fmt_shape(self.shape)} {self.dtype}"
        if self.skipped:
            return f"{head}: skipped ({self.skipped})"
        if self.error:
            return f"{head}: {self.error}"
        if self.passed:
            return f"{head}: ok (max abs err {self.max_abs_err:.3g})"
        out = f" output {self.worst_output}" if self.worst_output else ""
        parts = []
        if self.n_unwritten:
            parts.append(f"{self.n_unwritten} of {self.n_elements} elements never written")
        if self.n_bad - self.n_unwritten > 0:
            parts.append(
                f"{self.n_bad - self.n_unwritten} of {self.n_elements} elements off by more than "
                f"atol={self.atol:g} + rtol={self.rtol:g}·|expected|"
            )
        got = self.got if isinstance(self.got, str) else f"{self.got:.6g}"
        worst = (
            f"; worst{out} at index {list(self.worst_index)}: got {got}, expected {self.expected:.6g}"
            if self.worst_index is not None
            else ""
        )
        writer = f" ({self.worst_writer})" if self.worst_writer and self.worst_index is not None else ""
        return f"{head}: " + ", ".join(parts) + worst + writer


@dataclass
class CheckReport:
    """Every case of a ``check`` run. ``bool(report)`` is True when all cases passed."""

    name: str
    mode: str
    cases: list[CaseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        ran = [c for c in self.cases if not c.skipped]
        return bool(ran) and all(c.passed for c in ran)

    @property
    def passed(self) -> bool:
        return bool(self)

    @property
    def failures(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.passed and not c.skipped]

    @property
    def access_maps(self) -> list[Any]:
        """The access maps (one per launch, interpreter mode) of the worst failing case, else of the
        largest case."""
        pool = [c for c in (self.failures or self.cases) if c.maps]
        if not pool:
            return []
        if self.failures:
            return pool[0].maps
        return max(pool, key=lambda c: c.n_elements).maps

    @property
    def worst(self) -> CaseResult | None:
        """The failing case with the largest error (or the first error), else the largest-error case."""
        pool = self.failures or self.cases
        if not pool:
            return None
        errored = [c for c in pool if c.error]
        if errored:
            return errored[0]
        return max(pool, key=lambda c: (c.n_unwritten, c.max_abs_err if math.isfinite(c.max_abs_err) else math.inf))

    def summary(self) -> str:
        """A few lines: verdict, the worst case, notes."""
        ran = [c for c in self.cases if not c.skipped]
        n = len(ran)
        if self:
            lines = [f"✔ {self.name}: all {n} cases pass ({self.mode})"]
            worst = max(ran, key=lambda c: c.max_abs_err)
            lines.append(f"  largest error: {worst.describe()}")
        else:
            lines = [f"✘ {self.name}: {len(self.failures)} of {n} cases fail ({self.mode})"]
            if not ran:
                lines = [f"✘ {self.name}: no case ran ({self.mode})"]
            errors = {c.error for c in self.failures}
            if len(self.failures) > 1 and len(errors) == 1 and None not in errors:
                lines.append(f"  every failing case: {errors.pop()}")  # one cause, said once
            else:
                lines += [f"  {c.describe()}" for c in self.failures[:6]]
                if len(self.failures) > 6:
                    lines.append(f"  … and {len(self.failures) - 6} more")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<CheckReport {self.name!r} {'passed' if self else 'FAILED'} {len(self.cases)} cases>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())

    def _repr_html_(self) -> str:
        import html

        color = "#1a7f37" if self else "#cf222e"
        rows = "".join(
            f"<tr><td>{html.escape(_fmt_shape(c.shape))}</td><td>{c.dtype}</td>"
            f"<td style='color:{'#1a7f37' if c.passed else '#cf222e'}'>{'ok' if c.passed else 'FAIL'}</td>"
            f"<td>{c.max_abs_err:.3g}</td><td>{html.escape(c.describe() if not c.passed else '')}</td></tr>"
            for c in self.cases
        )
        head = html.escape(self.summary().splitlines()[0])
        notes = "".join(f"<div><i>note: {html.escape(n)}</i></div>" for n in self.notes)
        return (
            f"<div><b style='color:{color}'>{head}</b>{notes}<table><tr><th>shape</th><th>dtype</th>"
            f"<th>result</th><th>max abs err</th><th>detail</th></tr>{rows}</table></div>"
        )

    def to_frame(self):
        """One row per case, as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "shape": _fmt_shape(c.shape),
                    "dtype": c.dtype,
                    "passed": c.passed,
                    "max_abs_err": c.max_abs_err,
                    "max_rel_err": c.max_rel_err,
                    "n_bad": c.n_bad,
                    "n_unwritten": c.n_unwritten,
                    "worst_index": c.worst_index,
                    "error": c.error,
                }
                for c in self.cases
            ]
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode,
            "passed": bool(self),
            "cases": [{**{k: v for k, v in c.__dict__.items() if k != "maps"}, "shape": _fmt_shape(c.shape)}
                      for c in self.cases],
            "notes": list(self.notes),
        }


def _fmt_shape(shape: Any) -> str:
    if isinstance(shape, tuple) and shape and all(isinstance(s, tuple) for s in shape):
        return " · ".join("×".join(map(str, s)) for s in shape)
    if isinstance(shape, tuple):
        return "×".join(map(str, shape)) or "scalar"
    return str(shape)


@contextlib.contextmanager
def poisoned_allocations() -> Iterator[None]:
    """While active, ``torch.empty``/``empty_like``/``empty_strided``/``Tensor.new_empty`` fill what
    they return with a poison value, so elements a kernel never writes can be found afterwards."""
    import torch

    originals = {name: getattr(torch, name) for name in ("empty", "empty_like", "empty_strided")}
    orig_new_empty = torch.Tensor.new_empty

    def wrap(f):
        def poisoned(*args, **kwargs):
            return poison_(f(*args, **kwargs))

        return poisoned

    try:
        for name, f in originals.items():
            setattr(torch, name, wrap(f))
        torch.Tensor.new_empty = wrap(orig_new_empty)
        yield
    finally:
        for name, f in originals.items():
            setattr(torch, name, f)
        torch.Tensor.new_empty = orig_new_empty


def poison_(t: Any) -> Any:
    """Fill ``t`` in place with the poison for its dtype and return it."""
    import torch

    name = str(t.dtype).replace("torch.", "")
    if name in _POISON_BITS:
        int_dtype = {2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
        bits = _POISON_BITS[name]
        if bits >= 2 ** (8 * t.element_size() - 1):  # two's complement view of the pattern
            bits -= 2 ** (8 * t.element_size())
        t.view(int_dtype).fill_(bits)
    elif t.dtype == torch.bool:
        t.fill_(True)
    elif not t.is_floating_point() and not t.is_complex():
        t.fill_(torch.iinfo(t.dtype).min)
    return t


def _unwritten_mask(t: Any) -> Any:
    import torch

    name = str(t.dtype).replace("torch.", "")
    if name in _POISON_BITS:
        int_dtype = {2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
        bits = _POISON_BITS[name]
        if bits >= 2 ** (8 * t.element_size() - 1):
            bits -= 2 ** (8 * t.element_size())
        return t.contiguous().view(int_dtype) == bits
    if t.dtype == torch.bool or t.is_complex():
        return torch.zeros(t.shape, dtype=torch.bool, device=t.device)
    return t == torch.iinfo(t.dtype).min


def random_tensor(shape: Sequence[int], dtype: Any, generator: Any, device: str) -> Any:
    """A seeded random tensor: normal floats; for integers, values spanning the type (int8: -128..127)."""
    import torch

    if dtype.is_floating_point:
        return torch.randn(tuple(shape), generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)
    if dtype == torch.bool:
        return torch.rand(tuple(shape), generator=generator) > 0.5
    info = torch.iinfo(dtype)
    low, high = max(info.min, -(2**15)), min(info.max, 2**15 - 1)
    return torch.randint(low, high + 1, tuple(shape), generator=generator, dtype=torch.int64).to(device, dtype)


def n_tensor_params(fn: Callable) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    n = sum(
        1
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is inspect.Parameter.empty
    )
    return max(n, 1)


def _as_tuple(x: Any) -> tuple:
    return tuple(x) if isinstance(x, list | tuple) else (x,)


def _upcast(x: Any) -> Any:
    import torch

    if isinstance(x, torch.Tensor) and x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    return x


def _name_of(fn: Callable) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def check(
    fn: Callable,
    reference: Callable,
    shapes: Sequence[Any] | None = None,
    dtypes: Sequence[Any] | None = None,
    *,
    make_inputs: Callable[[Any, Any, Any], Sequence[Any]] | None = None,
    tolerances: dict[Any, tuple[float, float]] | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    name: str | None = None,
    races: bool | str = "largest",
) -> CheckReport:
    """Run ``fn`` (a kernel's launcher) and ``reference`` on the same fresh random inputs, for every
    shape × dtype, and compare their outputs.

    Args:
        fn: takes tensors and returns a tensor or a tuple of tensors; it allocates its outputs (with
            ``torch.empty``/``empty_like``, which are poisoned during the call).
        reference: a plain torch function with the same signature; it runs on float32 copies of
            float16/bfloat16 inputs.
        shapes: a list of cases; each is one shape for every input (``(M, N)``), or a tuple with one
            shape per input (``((M, K), (K, N))``), or anything ``make_inputs`` understands. Default:
            ``DEFAULT_SHAPES`` (size 1, sizes that are not multiples of any block, a power of two).
        dtypes: input dtypes (default ``[torch.float32]``).
        make_inputs: ``(shape, dtype, generator) -> tuple of tensors`` for inputs that are not all
            random floats (integer weights and scales, causal masks, …); create them on the CPU or on
            ``wb.kernels.device()``: check moves them where the kernel runs.
        tolerances, atol, rtol: override ``TOLERANCES`` per output dtype, or for every dtype.
        seed: the first case's seed; each case gets its own.
        races: in interpreter mode, which cases are re-run with the programs in other orders
            (``ORDERS``): ``"largest"`` (default: the largest case of each dtype), ``"all"``/``True``,
            or ``False``. Cross-program conflicts in the access maps are checked in every case
            unless ``races=False``.

    Returns a ``CheckReport``; ``bool(report)`` says whether every case passed. It does not raise on a
    failing kernel: the report names the case, the worst element, its index (and, in interpreter mode,
    the program and lane that wrote it), and the error.
    """
    import warnings

    import torch

    m = mode()
    dtypes = list(dtypes) if dtypes is not None else [torch.float32]
    shapes = list(shapes) if shapes is not None else list(DEFAULT_SHAPES)
    report = CheckReport(name or _name_of(fn), m.name)
    n_inputs = n_tensor_params(fn)
    case_seed = seed
    skipped_bf16 = False
    for dtype in dtypes:
        largest = max(range(len(shapes)), key=lambda i: _numel_of(shapes[i])) if shapes else -1
        for i, shape in enumerate(shapes):
            case_seed += 1
            if m.interpreted and dtype == torch.bfloat16:
                report.cases.append(CaseResult(shape=shape, dtype="bfloat16", passed=True,
                                               skipped="bfloat16 in the interpreter"))
                skipped_bf16 = True
                continue
            gen = torch.Generator().manual_seed(case_seed)
            reorder = m.interpreted and (races in (True, "all") or (races == "largest" and i == largest))
            report.cases.append(
                _run_case(fn, reference, shape, dtype, gen, n_inputs, make_inputs, tolerances, atol, rtol, m.device,
                          record=m.interpreted, conflicts=races is not False, reorder=reorder)
            )
    if skipped_bf16:
        report.notes.append(BF16_INTERPRETER_NOTE)
        warnings.warn(BF16_INTERPRETER_NOTE, stacklevel=2)
    report.notes += _coverage_notes(shapes, make_inputs is not None)
    if not m.interpreted:
        report.notes.append(
            "out-of-bounds accesses and races are only detected in interpreter mode "
            "(run with WORKBENCH_TRITON_MODE=interpreter to check them)"
        )
    return report


def _numel_of(shape: Any) -> int:
    parts = shape if isinstance(shape, tuple) and shape and isinstance(shape[0], tuple) else (shape,)
    total = 0
    for part in parts:
        if isinstance(part, tuple) and all(isinstance(d, int) for d in part):
            total += math.prod(part)
        elif isinstance(part, int):
            total += part
    return total


def _coverage_notes(shapes: Sequence[Any], custom: bool) -> list[str]:
    dims: list[int] = []
    for s in shapes:
        for part in s if isinstance(s, tuple) else (s,):
            if isinstance(part, int):
                dims.append(part)
            elif isinstance(part, tuple):
                dims += [d for d in part if isinstance(d, int)]
    if not dims:
        return []
    notes = []
    if 1 not in dims:
        notes.append("no shape has a size of 1")
    if all(d % 16 == 0 for d in dims):
        notes.append("every size is a multiple of 16: masks on partial blocks are not exercised")
    return notes


def _run_case(fn, reference, shape, dtype, gen, n_inputs, make_inputs, tolerances, atol, rtol, device,
              record=False, conflicts=True, reorder=False) -> CaseResult:
    import torch

    from workbench.kernels import guard
    from workbench.kernels.access import Recorder

    dname = str(dtype).replace("torch.", "")
    result = CaseResult(shape=shape, dtype=dname, passed=False)
    try:
        if make_inputs is not None:
            inputs = _as_tuple(make_inputs(shape, dtype, gen))
        else:
            per_input = shape if (isinstance(shape, tuple) and shape and isinstance(shape[0], tuple)) else None
            shapes_ = per_input or (shape,) * n_inputs
            inputs = tuple(random_tensor(s, dtype, gen, "cpu") for s in shapes_)
        inputs = tuple(x.to(device) if isinstance(x, torch.Tensor) else x for x in inputs)
        with torch.no_grad():
            expected = _as_tuple(reference(*[_upcast(x) for x in inputs]))
    except Exception as err:  # a broken reference or input maker is the test's problem: say so
        result.error = f"the reference or the inputs failed: {type(err).__name__}: {err}"
        return result
    saved = [x.clone() if isinstance(x, torch.Tensor) else None for x in inputs]
    record = record and guard.available()
    recorder = Recorder()
    atomics: list[dict[str, Any]] = []
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.no_grad())
            stack.enter_context(poisoned_allocations())
            if record:
                stack.enter_context(guard.record(recorder))
                atomics = stack.enter_context(guard.watch_atomics())
            got = _as_tuple(fn(*inputs))
    except Exception as err:
        where = user_frame(err)
        err = as_error(err)
        result.error = f"{type(err).__name__}: {_one_line(err)}" + (f" (at {where})" if where else "")
        result.maps = recorder.maps
        return result
    result.maps = recorder.maps
    for i, (before, x) in enumerate(zip(saved, inputs, strict=True)):
        if before is not None and not torch.equal(before, x) and not (before.isnan().any()):
            result.error = f"the kernel changed input {i} (a store through the wrong pointer?)"
            return result
    if len(got) != len(expected):
        result.error = f"returned {len(got)} outputs, the reference returns {len(expected)}"
        return result
    result.passed = True
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        if not isinstance(g, torch.Tensor):
            result.passed = False
            result.error = f"output {k} is a {type(g).__name__}, not a tensor"
            return result
        if tuple(g.shape) != tuple(e.shape):
            result.passed = False
            result.error = f"output {k} has shape {tuple(g.shape)}, the reference gives {tuple(e.shape)}"
            return result
        _compare(result, k, g, e, tolerances, atol, rtol)
    if atomics:
        ev = atomics[0]
        result.passed = False
        result.error = (
            f"an atomic in kernel `{ev['kernel']}` at line {ev['line']} (`{ev['text']}`) updates `{ev['tensor']}`, "
            f"whose memory was never initialised ({sum(e['elements'] for e in atomics)} atomic updates hit "
            "uninitialised elements): the launcher allocates it with torch.empty — fix: allocate it with "
            "torch.zeros (or call .zero_() before the launch)"
        )
    if result.worst_index is not None and record:
        result.worst_writer = _writer_of(got[result.worst_output], result.worst_index, recorder.maps)
    if conflicts and record:
        found = [r for amap in recorder.maps for r in amap.races]
        if found:
            result.passed = False
            result.error = result.error or found[0].describe()
    if reorder and record and result.passed and any(m.program_count > 1 for m in recorder.maps):
        _reorder(result, fn, inputs, got, tolerances, atol, rtol)
    return result


def _reorder(result: CaseResult, fn, inputs, got, tolerances, atol, rtol) -> None:
    """Re-run the launcher with the programs in other orders; its outputs must not change."""
    import torch

    from workbench.kernels import guard

    for kind, seed in ORDERS:
        result.orders.append(kind)
        try:
            with torch.no_grad(), poisoned_allocations(), guard.order(kind, seed):
                again = _as_tuple(fn(*inputs))
        except Exception as err:  # noqa: BLE001 - an error in another order is a finding too
            result.passed = False
            result.error = f"in {kind} program order the launcher fails: {type(err).__name__}: {_one_line(err)}"
            return
        for k, (a, b) in enumerate(zip(got, again, strict=False)):
            probe = CaseResult(shape=result.shape, dtype=result.dtype, passed=True)
            _compare(probe, k, b, a.to(torch.float64) if a.dtype in (torch.float16, torch.bfloat16) else a,
                     tolerances, atol, rtol)
            if not probe.passed:
                got_v = probe.got if isinstance(probe.got, str) else f"{probe.got:.6g}"
                result.passed = False
                result.error = (
                    f"race: the result depends on the order the programs run in — with the programs in {kind} "
                    f"order, output {k} differs in {probe.n_bad} of {probe.n_elements} elements, e.g. at index "
                    f"{list(probe.worst_index or ())}: {got_v} instead of {probe.expected:.6g} (grid order); on a GPU "
                    "programs run concurrently in no fixed order — a program must not read what another writes"
                )
                return


def _writer_of(out: Any, index: tuple[int, ...], maps: list[Any]) -> str | None:
    """Which program and lane wrote ``out[index]``, from the access maps (None if no map holds ``out``)."""
    try:
        stride = out.stride()
        addr = out.data_ptr() + sum(i * s for i, s in zip(index, stride, strict=True)) * out.element_size()
        storage = out.untyped_storage().data_ptr()
    except Exception:  # noqa: BLE001 - a tensor without storage
        return None
    import numpy as np

    for amap in reversed(maps):
        for t in amap.tensors:
            arg = getattr(t, "arg", None)
            if arg is None or arg.storage != storage:
                continue
            inside, flat = arg.locate(np.array([addr], dtype=np.int64), arg.elsize)
            if not inside[0]:
                continue
            logical = tuple(int(i) for i in np.unravel_index(int(flat[0]), t.shape)) if t.shape else ()
            info = amap.who_wrote(t.name, logical)
            if info is None:
                return f"no program of `{amap.kernel}` stored to it (`{t.name}`{list(logical)})"
            return f"{info.describe()} of `{amap.kernel}`, as `{t.name}`{list(logical)}"
    return None


def user_frame(err: BaseException) -> str | None:
    """Where in the user's code an error happened: the innermost frame outside Triton, torch and the
    lab itself, as ``line N of the cell (`text`)`` or ``file.py:N (`text`)``."""
    import linecache
    import os
    import traceback

    chain: list[BaseException] = []
    e: BaseException | None = err
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    lab_dir = os.path.dirname(os.path.abspath(__file__))
    found = None
    for exc in chain:
        for fs in traceback.extract_tb(exc.__traceback__):
            name = fs.filename
            if "site-packages" in name or os.path.dirname(os.path.abspath(name)) == lab_dir or name.startswith("<frozen"):
                continue
            found = (name, fs.lineno)
    if found is None:
        return None
    name, line = found
    text = linecache.getline(name, line or 0).strip()
    label = f"line {line} of the cell" if name.startswith("<triton-cell-") else f"{os.path.basename(name)}:{line}"
    return f"{label} (`{text}`)" if text else label


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    cause = err.__cause__
    if type(err).__name__ == "InterpreterError" and cause is not None:
        text = f"{type(cause).__name__}: {cause}"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[:3]) if lines else type(err).__name__


def _compare(result: CaseResult, k: int, got: Any, expected: Any, tolerances, atol, rtol) -> None:
    import torch

    a_tol, r_tol = tolerance_for(got.dtype, tolerances)
    a_tol = atol if atol is not None else a_tol
    r_tol = rtol if rtol is not None else r_tol
    unwritten = _unwritten_mask(got).cpu()
    g = got.detach().cpu().to(torch.float64)
    e = expected.detach().cpu().to(torch.float64)
    diff = (g - e).abs()
    both_nan = g.isnan() & e.isnan()
    same_inf = torch.isinf(g) & torch.isinf(e) & (g == e)
    diff = torch.where(both_nan | same_inf, torch.zeros_like(diff), diff)
    diff = torch.where(diff.isnan(), torch.full_like(diff, math.inf), diff)
    allowed = a_tol + r_tol * e.abs().nan_to_num(posinf=0.0, neginf=0.0)
    bad = (diff > allowed) | (unwritten & ~e.isnan())
    n_bad = int(bad.sum())
    max_abs = float(diff.max()) if diff.numel() else 0.0
    rel = diff / e.abs().clamp_min(1e-12)
    max_rel = float(rel.max()) if rel.numel() else 0.0
    result.n_elements += got.numel()
    result.atol, result.rtol = a_tol, r_tol
    if max_abs >= result.max_abs_err:
        result.max_abs_err = max_abs
    result.max_rel_err = max(result.max_rel_err, max_rel)
    if n_bad:
        result.passed = False
        result.n_bad += n_bad
        result.n_unwritten += int((unwritten & ~e.isnan()).sum())
        # the worst element: an unwritten one first, else the largest excess over the tolerance
        score = torch.where(unwritten, torch.full_like(diff, math.inf), diff - allowed)
        flat = int(torch.argmax(torch.where(bad, score, torch.full_like(score, -math.inf))))
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), got.shape)) if got.dim() else ()
        result.worst_index = index
        result.worst_output = k
        result.got = "never written" if bool(unwritten.reshape(-1)[flat]) else float(g.reshape(-1)[flat])
        result.expected = float(e.reshape(-1)[flat])

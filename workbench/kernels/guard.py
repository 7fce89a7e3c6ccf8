"""Memory checks for Triton's interpreter: bounds per tensor argument, program orders, access maps.

On a GPU an unmasked access past the end of a tensor reads garbage or corrupts a neighbour; in the
interpreter it reads or writes the process's own memory and can crash the Jupyter kernel. ``install()``
wraps the interpreter's memory operations (masked load and store, atomics) so that, before an access
happens, every address whose mask is true is looked up in the tensor arguments of the launch:

* **per tensor, per view.** An access must stay inside *one* argument: the one most of its lanes
  fall in. A membership test is per element, not per byte range: a strided view (``q`` of a fused
  ``qkv`` projection, ``qkv[..., :d]``) owns only its own elements, so an overrun from ``q`` into ``k``
  is caught even though both views share one storage and their byte ranges interleave. An unmasked
  store that runs past ``out`` into the argument allocated next to it (``x``) is caught as well, where a
  check against the union of all arguments would let it pass. Lanes outside every argument are
  reported too, with the nearest tensor.
* **per access site.** The same ``tl.load``/``tl.store`` (same line, same chain of ``@triton.jit``
  calls) must address the same argument in every program: the last program of a grid that is one
  block too large, writing entirely into the neighbouring tensor, is caught by this rule.

Errors are ``OutOfBoundsError``, naming the kernel's line, the number of bad lanes, the tensor the
access belongs to and the tensor (or no tensor) it hits.

``order(...)`` runs the programs of every launch in another order (reversed, shuffled): the
interpreter normally runs them one at a time in grid order, so a kernel in which program *i* reads what
program *i − 1* wrote passes there and fails on a GPU, where programs run concurrently in no fixed
order. ``record()`` keeps, per launch, which elements of each tensor argument each program read and
wrote (``AccessMap``, see ``workbench.kernels.access``): cross-program conflicts (races) are found
from it directly. Atomics on memory still holding the checker's poison (``torch.empty`` without a
zero-init) are recorded, so the report can name the missing initialisation.

This patches private parts of ``triton.runtime.interpreter`` (checked against Triton 3.9, the version
``constraints.txt`` pins); if they change, ``install()`` leaves the interpreter alone and
``available()`` says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import linecache
import os
import random
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.kernels.modes import KernelError


class OutOfBoundsError(KernelError, IndexError):
    """A load or store touched memory outside the tensor it belongs to (or outside every tensor)."""


#: bit patterns of a quiet NaN with a payload: arithmetic never produces these exact bits. Integer
#: outputs are poisoned with the type's minimum. (The checker fills fresh allocations with these.)
POISON_BITS = {"float32": 0x7FC0DEAD, "float16": 0x7E5D, "bfloat16": 0x7FDD, "float64": 0x7FF8DEADBEEFDEAD}

_INT_DTYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64, "uint8": np.uint8}
_UINT_OF_SIZE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


@dataclass
class _Arg:
    """One tensor argument of a launch (or one tensor of a tuple argument)."""

    name: str
    tensor: Any
    start: int  # byte address of element 0
    end: int  # one past the last byte of the extent
    elsize: int
    dtype: str
    shape: tuple[int, ...]
    storage: int  # the storage's data pointer: views of one buffer share it
    # (stride, size, row-major weight) of each dimension with size > 1, largest stride first; None when
    # the layout overlaps itself (expanded dims) and only the byte extent can be checked
    dims: list[tuple[int, int, int]] | None = None

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def locate(self, addr: np.ndarray, ptr_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(inside, logical flat index) of byte addresses: inside this tensor's own elements."""
        addr = addr.astype(np.int64, copy=False)
        off = addr - self.start
        inside = (off >= 0) & (addr + ptr_size <= self.end)
        index = np.full(addr.shape, -1, dtype=np.int64)
        if not inside.any():
            return inside, index
        if self.dims is None or ptr_size != self.elsize:  # reinterpreted pointer or overlapping layout
            index[inside] = off[inside] // self.elsize
            return inside, index
        aligned = inside & (off % self.elsize == 0)
        rem = np.where(aligned, off // self.elsize, 0)
        flat = np.zeros_like(rem)
        ok = aligned.copy()
        for stride, size, weight in self.dims:
            i = rem // stride
            ok &= i < size
            rem = rem - i * stride
            flat += i * weight
        ok &= rem == 0
        index[ok] = flat[ok]
        return ok, index


def _dims(t: Any) -> list[tuple[int, int, int]] | None:
    """A greedy decomposition of element offsets into indices, when the layout allows one."""
    shape, strides = tuple(t.shape), tuple(t.stride())
    weights = []
    w = 1
    for size in reversed(shape):
        weights.append(w)
        w *= size
    weights.reverse()
    dims = sorted(((st, sz, wt) for st, sz, wt in zip(strides, shape, weights, strict=True) if sz > 1),
                  key=lambda d: -d[0])
    reach = 0  # the largest offset reachable by the dimensions inside the current one
    for stride, size, _ in reversed(dims):
        if stride <= reach or stride == 0:
            return None  # overlapping (or expanded): several indices give one offset
        reach += (size - 1) * stride
    return dims


def _tensor_extent(t: Any) -> tuple[int, int]:
    start = t.data_ptr()
    if t.numel() == 0:
        return start, start
    last = sum((size - 1) * stride for size, stride in zip(t.shape, t.stride(), strict=True))
    return start, start + (last + 1) * t.element_size()


def _make_arg(name: str, t: Any) -> _Arg:
    start, end = _tensor_extent(t)
    try:
        storage = t.untyped_storage().data_ptr()
    except Exception:  # noqa: BLE001 - a tensor-like without storage
        storage = start
    return _Arg(name, t, start, end, t.element_size(), str(t.dtype).replace("torch.", ""), tuple(t.shape),
                storage, _dims(t))


@dataclass
class _Site:
    owners: frozenset[int]
    program: tuple[int, int, int]


@dataclass
class _Launch:
    fn: Any  # the kernel's Python function
    name: str
    args: list[_Arg]
    starts: np.ndarray  # merged, sorted extents [start, end) in bytes (a fast path for the common case)
    ends: np.ndarray
    executor: Any = None
    sites: dict[tuple, _Site] = field(default_factory=dict)
    recorder: Any = None  # an access.Recorder while recording
    grid: tuple[int, int, int] = (1, 1, 1)
    order: list[tuple[int, int, int]] | None = None


_state = threading.local()
_installed = False
_unavailable_reason: str | None = None


def available() -> bool:
    """Whether the interpreter's loads and stores are checked in this process."""
    return _installed


def unavailable_reason() -> str | None:
    return _unavailable_reason


def _make_launch(fn: Any, arg_names: list[str], args: list[Any], kwargs: dict[str, Any]) -> _Launch:
    named = list(zip(arg_names, args, strict=False)) + list(kwargs.items())
    out: list[_Arg] = []
    for name, value in named:
        values = value if isinstance(value, tuple) else (value,)
        for j, v in enumerate(values):
            # triton's TensorWrapper (reinterpret) keeps the tensor in .base; a torch view's .base is the
            # tensor it views, which must not replace the view (its elements are what it owns)
            base = v if _is_torch_tensor(v) else getattr(v, "base", v)
            if _is_torch_tensor(base):
                label = f"{name}[{j}]" if isinstance(value, tuple) else name
                out.append(_make_arg(label, base))
    spans = sorted((a.start, a.end) for a in out if a.end > a.start)
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    starts = np.array([m[0] for m in merged], dtype=np.int64)
    ends = np.array([m[1] for m in merged], dtype=np.int64)
    return _Launch(fn, getattr(fn, "__name__", "kernel"), out, starts, ends)


def _is_torch_tensor(v: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(v, torch.Tensor)


def _internal(filename: str) -> bool:
    return (f"{os.sep}triton{os.sep}" in filename or f"{os.sep}workbench{os.sep}kernels{os.sep}guard" in filename
            or f"{os.sep}torch{os.sep}" in filename or filename.startswith("<frozen"))


def _kernel_frames(fn: Any) -> list[Any]:
    """The frames from the kernel's body down to the access (nested @triton.jit calls included)."""
    code = getattr(fn, "__code__", None)
    frames = []
    frame = sys._getframe(2)
    while frame is not None:
        if not _internal(frame.f_code.co_filename):
            frames.append(frame)
        if frame.f_code is code:
            return frames[::-1]
        frame = frame.f_back
    return frames[::-1][-1:] if frames else []


def _site(fn: Any) -> tuple[tuple, int | None, str]:
    """(site key, line, text) of the access being made: the chain of kernel lines leading to it."""
    frames = _kernel_frames(fn)
    # the bytecode offset tells apart two accesses on one line (tl.store(o, tl.load(x)))
    key = tuple((f.f_code.co_filename, f.f_lineno, f.f_lasti) for f in frames)
    code = getattr(fn, "__code__", None)
    outer = next((f for f in frames if f.f_code is code), frames[0] if frames else None)
    if outer is None:
        return key, None, ""
    line = outer.f_lineno
    text = linecache.getline(outer.f_code.co_filename, line).strip()
    inner = frames[-1]
    if inner is not outer:  # the access is in a helper: show where the kernel called it and the helper line
        text += f"` → `{linecache.getline(inner.f_code.co_filename, inner.f_lineno).strip()}"
    return key, line, text


def _program() -> tuple[int, int, int]:
    from triton.runtime.interpreter import interpreter_builder

    return tuple(getattr(interpreter_builder, "grid_idx", (0, 0, 0)))  # type: ignore[return-value]


def _fmt_pid(pid: tuple[int, int, int], grid: tuple[int, int, int]) -> str:
    dims = 3 if grid[2] > 1 else 2 if grid[1] > 1 else 1
    return "(" + ", ".join(str(p) for p in pid[:dims]) + ("," if dims == 1 else "") + ")"


def _fail(launch: _Launch, kind: str, message: str, fix: str) -> None:
    _, line, text = _site(launch.fn)
    where = f" at line {line} (`{text}`)" if line is not None else ""
    raise OutOfBoundsError(f"out-of-bounds {kind} in kernel `{launch.name}`{where}: {message}", fix)


_MASK_FIX = "mask the access (e.g. mask=offsets < n_elements) and check the grid and the offsets"


def _check(kind: str, ptrs: Any, mask: Any, value: Any = None) -> None:
    stack = getattr(_state, "launches", None)
    if not stack:
        return
    launch: _Launch = stack[-1]
    raw = np.asarray(ptrs.data)
    addr_all = raw.astype(np.int64, copy=False).ravel()
    if mask is None:
        active = np.ones(addr_all.shape, dtype=bool)
    else:
        active = np.broadcast_to(np.asarray(mask.data, dtype=bool), raw.shape).ravel()
    lanes = np.nonzero(active)[0]
    addr = addr_all[lanes]
    if addr.size == 0:
        return
    elem = ptrs.get_element_ty()
    size = max(1, getattr(elem, "primitive_bitwidth", 8) // 8)
    pid = _program()
    # which argument each lane is in (per element of each tensor, views separately)
    n_args = len(launch.args)
    inside = np.zeros((n_args, addr.size), dtype=bool)
    index = np.full((n_args, addr.size), -1, dtype=np.int64)
    for j, arg in enumerate(launch.args):
        inside[j], index[j] = arg.locate(addr, size)
    counts = inside.sum(axis=1)
    full = frozenset(int(j) for j in np.nonzero(counts == addr.size)[0])
    key, _, _ = _site(launch.fn)
    site = launch.sites.get(key)
    if full:
        if site is not None and not (full & site.owners):
            owner = launch.args[min(site.owners)]
            now = launch.args[min(full)]
            _fail(launch, kind,
                  f"program {_fmt_pid(pid, launch.grid)} addresses `{now.name}` here, but program "
                  f"{_fmt_pid(site.program, launch.grid)} addressed `{owner.name}` with the same {kind}: "
                  f"all {addr.size} active lanes run past `{owner.name}`"
                  + (f" into `{now.name}`, {_relation(owner, now)}" if now is not owner else ""),
                  _MASK_FIX)
        owners = full if site is None else (full & site.owners)
        launch.sites[key] = _Site(owners, site.program if site else pid)
        owner_idx = min(owners)
    else:
        # some lanes leave the tensor. Its owner: the tensor this access site used in earlier programs,
        # else the one most lanes are in
        known = [j for j in sorted(site.owners) if counts[j]] if site is not None else []
        owner_idx = known[0] if known else int(max(range(n_args), key=lambda j: (counts[j], -j))) if n_args else -1
        bad = ~inside[owner_idx] if n_args and counts[owner_idx] else np.ones(addr.size, dtype=bool)
        n_bad = int(bad.sum())
        first_bad = int(addr[bad][0])
        if n_args == 0 or counts[owner_idx] == 0:
            _fail(launch, kind, f"{n_bad} of {addr.size} active lanes point outside every tensor argument"
                  + _nearest(launch, first_bad), _MASK_FIX)
        owner = launch.args[owner_idx]
        landed = [launch.args[j] for j in range(n_args) if j != owner_idx and inside[j][bad].any()]
        lane = int(lanes[np.nonzero(bad)[0][0]])
        if landed:
            other = landed[0]
            n_other = int((inside[launch.args.index(other)] & bad).sum())
            _fail(launch, kind,
                  f"{n_bad} of {addr.size} active lanes of this {kind} on `{owner.name}` fall outside it; "
                  f"{n_other} land in `{other.name}`, {_relation(owner, other)} (first bad lane {lane} "
                  f"of program {_fmt_pid(pid, launch.grid)}, {_offset_words(owner, first_bad)})",
                  _MASK_FIX)
        _fail(launch, kind,
              f"{n_bad} of {addr.size} active lanes of this {kind} on `{owner.name}` point outside every "
              f"tensor argument (first bad lane {lane} of program {_fmt_pid(pid, launch.grid)}, "
              f"{_offset_words(owner, first_bad)})", _MASK_FIX)
    if kind == "atomic":
        _note_uninitialised_atomic(launch, launch.args[owner_idx], index[owner_idx])
    rec = launch.recorder
    if rec is not None:
        rec.access(launch, kind, owner_idx, index[owner_idx], lanes, pid, key)


def _relation(owner: _Arg, other: _Arg) -> str:
    if owner.storage == other.storage:
        return "another view of the same storage"
    return "another argument (allocated next to it)" if abs(other.start - owner.end) < 4096 or \
        abs(owner.start - other.end) < 4096 else "another argument"


def _offset_words(arg: _Arg, address: int) -> str:
    if address >= arg.end:
        return f"{(address - arg.end) // arg.elsize + 1} element(s) past the end of `{arg.name}`"
    if address < arg.start:
        return f"{(arg.start - address + arg.elsize - 1) // arg.elsize} element(s) before the start of `{arg.name}`"
    return f"between the elements of the view `{arg.name}` (its strides skip this address)"


def _nearest(launch: _Launch, first: int) -> str:
    if not launch.args:
        return ""
    arg = min(launch.args, key=lambda a: (first - a.end) if first >= a.end else (a.start - first) if first < a.start else 0)
    if first >= arg.end:
        return f"; the first bad address is {first - arg.end} bytes past the end of `{arg.name}`"
    if first < arg.start:
        return f"; the first bad address is {arg.start - first} bytes before the start of `{arg.name}`"
    return ""


def _poison_of(arg: _Arg) -> tuple[Any, int] | None:
    """(numpy unsigned dtype, poison bits) for the tensor's dtype, or None."""
    if arg.dtype in POISON_BITS:
        return _UINT_OF_SIZE[arg.elsize], POISON_BITS[arg.dtype]
    if arg.dtype in _INT_DTYPES:
        info = np.iinfo(_INT_DTYPES[arg.dtype])
        return _UINT_OF_SIZE[arg.elsize], int(info.min) % (1 << (8 * arg.elsize))
    return None


def _note_uninitialised_atomic(launch: _Launch, arg: _Arg, index: np.ndarray) -> None:
    """Record atomics applied to elements still holding the poison: the memory was never initialised."""
    events = getattr(_state, "atomic_events", None)
    if events is None:
        return
    poison = _poison_of(arg)
    if poison is None or arg.dims is None:
        return
    udtype, bits = poison
    idx = index[index >= 0]
    if idx.size == 0:
        return
    # element addresses of the logical indices, read straight from memory (the atomic has not run yet)
    multi = np.unravel_index(idx, arg.shape) if arg.shape else ()
    strides = arg.tensor.stride()
    elem_off = sum(m * s for m, s in zip(multi, strides, strict=True)) if arg.shape else np.zeros_like(idx)
    buf = (ctypes.c_char * max(arg.end - arg.start, 1)).from_address(arg.start)
    values = np.frombuffer(buf, dtype=udtype)[np.asarray(elem_off, dtype=np.int64)]
    n = int((values == np.array(bits, dtype=udtype)).sum())
    if n:
        _, line, text = _site(launch.fn)
        events.append({"kernel": launch.name, "tensor": arg.name, "line": line, "text": text, "elements": n})


@contextlib.contextmanager
def watch_atomics() -> Iterator[list[dict[str, Any]]]:
    """Collect, while active, atomics applied to never-initialised (poisoned) memory."""
    previous = getattr(_state, "atomic_events", None)
    events: list[dict[str, Any]] = []
    _state.atomic_events = events
    try:
        yield events
    finally:
        _state.atomic_events = previous


@contextlib.contextmanager
def order(kind: str = "forward", seed: int = 0) -> Iterator[None]:
    """Run the programs of every launch inside this block in another order.

    ``kind``: ``"forward"`` (the interpreter's grid order), ``"reverse"``, or ``"shuffle"`` (a
    permutation drawn from ``seed``). Programs still run one at a time: a kernel whose programs depend
    on each other's writes gives other results in another order, which is what a GPU can do.
    """
    if kind not in ("forward", "reverse", "shuffle"):
        raise ValueError(f"unknown program order {kind!r}: use 'forward', 'reverse' or 'shuffle'")
    previous = getattr(_state, "order", None)
    _state.order = (kind, seed)
    try:
        yield
    finally:
        _state.order = previous


@contextlib.contextmanager
def record(recorder: Any) -> Iterator[Any]:
    """Give every launch inside this block to ``recorder`` (``workbench.kernels.access.Recorder``)."""
    previous = getattr(_state, "recorder", None)
    _state.recorder = recorder
    try:
        yield recorder
    finally:
        _state.recorder = previous


def _program_order(grid: tuple[int, int, int], kind: str, seed: int) -> list[tuple[int, int, int]]:
    pids = [(x, y, z) for x in range(grid[0]) for y in range(grid[1]) for z in range(grid[2])]
    if kind == "reverse":
        pids.reverse()
    elif kind == "shuffle":
        random.Random(seed).shuffle(pids)
    return pids


class _Deferred:
    """Stands in for the kernel function in the interpreter's grid loop: collects the programs, then
    runs them all, in the chosen order, when the loop reaches the last one."""

    def __init__(self, fn: Any, launch: _Launch, kind: str, seed: int) -> None:
        self.fn, self.launch, self.kind, self.seed = fn, launch, kind, seed
        self.seen = 0

    def __call__(self, **args: Any) -> None:
        from triton.runtime.interpreter import interpreter_builder

        grid = tuple(interpreter_builder.grid_dim)
        self.seen += 1
        if self.seen < grid[0] * grid[1] * grid[2]:
            return
        for pid in _program_order(grid, self.kind, self.seed):  # type: ignore[arg-type]
            interpreter_builder.set_grid_idx(*pid)
            self.fn(**args)


def install() -> bool:
    """Wrap the interpreter's memory operations with the checks (idempotent). Returns availability."""
    global _installed, _unavailable_reason
    if _installed:
        return True
    try:
        from triton.runtime import interpreter as ti
        from triton.runtime.errors import InterpreterError

        builder_cls = ti.InterpreterBuilder
        executor = ti.GridExecutor
        orig_load = builder_cls.create_masked_load
        orig_store = builder_cls.create_masked_store
        orig_rmw = getattr(builder_cls, "create_atomic_rmw", None)
        orig_cas = getattr(builder_cls, "create_atomic_cas", None)
        orig_grid_dim = builder_cls.set_grid_dim
        orig_init = executor._init_args_hst
        orig_call = executor.__call__
        _ = ti.interpreter_builder.set_grid_idx  # sets the program id the interpreter is running
    except (ImportError, AttributeError) as err:  # pragma: no cover - a Triton with other internals
        _unavailable_reason = f"this Triton's interpreter has other internals ({err})"
        return False

    def create_masked_load(self, ptrs, mask, other, *args, **kwargs):
        _check("load", ptrs, mask)
        return orig_load(self, ptrs, mask, other, *args, **kwargs)

    def create_masked_store(self, ptrs, value, mask, *args, **kwargs):
        _check("store", ptrs, mask)
        return orig_store(self, ptrs, value, mask, *args, **kwargs)

    def create_atomic_rmw(self, rmw_op, ptr, val, mask, *args, **kwargs):
        _check("atomic", ptr, mask)
        return orig_rmw(self, rmw_op, ptr, val, mask, *args, **kwargs)

    def create_atomic_cas(self, ptr, cmp, val, *args, **kwargs):
        _check("atomic", ptr, None)
        return orig_cas(self, ptr, cmp, val, *args, **kwargs)

    def set_grid_dim(self, nx, ny, nz):
        orig_grid_dim(self, nx, ny, nz)
        stack = getattr(_state, "launches", None)
        if not stack:
            return
        launch: _Launch = stack[-1]
        launch.grid = (nx, ny, nz)
        if launch.recorder is not None:
            launch.recorder.begin(launch)
        kind, seed = getattr(_state, "order", None) or ("forward", 0)
        if kind != "forward" and launch.executor is not None:
            launch.executor.fn = _Deferred(launch.fn, launch, kind, seed)

    def _init_args_hst(self, args_dev, kwargs):
        args_hst, kwargs_hst = orig_init(self, args_dev, kwargs)
        launch = _make_launch(self.fn, list(self.arg_names), list(args_hst), dict(kwargs_hst))
        launch.executor = self
        launch.recorder = getattr(_state, "recorder", None)
        _state.launches = [*getattr(_state, "launches", []), launch]
        return args_hst, kwargs_hst

    def __call__(self, *args, **kwargs):
        depth = len(getattr(_state, "launches", []))
        fn = self.fn
        try:
            return orig_call(self, *args, **kwargs)
        except InterpreterError as err:
            # The interpreter wraps every error as InterpreterError(repr(e)); give ours back as is.
            if isinstance(err.__cause__, OutOfBoundsError):
                raise err.__cause__.with_traceback(None) from None
            raise
        finally:
            self.fn = fn
            launches = getattr(_state, "launches", [])
            if len(launches) > depth and launches[depth].recorder is not None:
                launches[depth].recorder.end(launches[depth])
            _state.launches = launches[:depth]

    builder_cls.create_masked_load = create_masked_load
    builder_cls.create_masked_store = create_masked_store
    if orig_rmw is not None:
        builder_cls.create_atomic_rmw = create_atomic_rmw
    if orig_cas is not None:
        builder_cls.create_atomic_cas = create_atomic_cas
    builder_cls.set_grid_dim = set_grid_dim
    executor._init_args_hst = _init_args_hst
    executor.__call__ = __call__
    _installed = True
    return True

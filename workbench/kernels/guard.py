"""Bounds checks for Triton's interpreter: every active lane of a load or store must fall inside a
tensor the kernel was given.

On a GPU an unmasked access past the end of a tensor reads garbage or corrupts a neighbour; in the
interpreter it reads or writes the process's own memory and can crash the Jupyter kernel. ``install()``
wraps the interpreter's memory operations so that, before the access happens, each address whose mask
is true is looked up in the extents of the launch's tensor arguments. An access outside all of them
raises ``OutOfBoundsError`` naming the kernel's line, the number of bad lanes and the nearest tensor.

This patches private parts of ``triton.runtime.interpreter`` (checked against Triton 3.2-3.9); if they
change, ``install()`` leaves the interpreter alone and ``available()`` says so.
"""

from __future__ import annotations

import linecache
import sys
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.kernels.modes import KernelError


class OutOfBoundsError(KernelError, IndexError):
    """A load or store touched memory outside every tensor given to the kernel."""


@dataclass
class _Launch:
    fn: Any  # the kernel's Python function
    names: list[str]
    starts: np.ndarray  # merged, sorted extents [start, end) in bytes
    ends: np.ndarray
    raw: list[tuple[str, int, int]]  # (argument name, start, end) before merging


_state = threading.local()
_installed = False
_unavailable_reason: str | None = None


def available() -> bool:
    """Whether the interpreter's loads and stores are bounds-checked in this process."""
    return _installed


def _tensor_extent(t: Any) -> tuple[int, int]:
    start = t.data_ptr()
    if t.numel() == 0:
        return start, start
    last = sum((size - 1) * stride for size, stride in zip(t.shape, t.stride(), strict=True))
    return start, start + (last + 1) * t.element_size()


def _make_launch(fn: Any, arg_names: list[str], args: list[Any], kwargs: dict[str, Any]) -> _Launch:
    named = list(zip(arg_names, args, strict=False)) + list(kwargs.items())
    raw = []
    for name, value in named:
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            base = getattr(v, "base", v)  # triton's TensorWrapper (reinterpret) keeps the tensor in .base
            if hasattr(base, "data_ptr") and hasattr(base, "element_size"):
                start, end = _tensor_extent(base)
                raw.append((name, start, end))
    spans = sorted((s, e) for _, s, e in raw if e > s)
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    starts = np.array([m[0] for m in merged], dtype=np.uint64)
    ends = np.array([m[1] for m in merged], dtype=np.uint64)
    return _Launch(fn, arg_names, starts, ends, raw)


def _kernel_location(fn: Any) -> tuple[int | None, str]:
    """The line of ``fn`` (the kernel's Python body) currently executing, and its text."""
    code = getattr(fn, "__code__", None)
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code is code:
            line = frame.f_lineno
            return line, linecache.getline(code.co_filename, line).strip()
        frame = frame.f_back
    return None, ""


def _check(kind: str, ptrs: Any, mask: Any) -> None:
    stack = getattr(_state, "launches", None)
    if not stack:
        return
    launch: _Launch = stack[-1]
    addr = np.asarray(ptrs.data).astype(np.uint64, copy=False).ravel()
    active = np.broadcast_to(np.asarray(mask.data, dtype=bool), np.asarray(ptrs.data).shape).ravel()
    addr = addr[active]
    if addr.size == 0:
        return
    elem = ptrs.get_element_ty()
    size = max(1, getattr(elem, "primitive_bitwidth", 8) // 8)
    idx = np.searchsorted(launch.starts, addr, side="right").astype(np.int64) - 1
    ok = idx >= 0
    safe_idx = np.clip(idx, 0, None)
    ok &= addr + np.uint64(size) <= launch.ends[safe_idx] if launch.ends.size else np.zeros_like(ok)
    if ok.all():
        return
    bad = addr[~ok]
    first = int(bad[0])
    nearest = ""
    if launch.raw:
        name, start, end = min(
            launch.raw, key=lambda r: (first - r[2]) if first >= r[2] else (r[1] - first) if first < r[1] else 0
        )
        if first >= end:
            nearest = f"; the first bad address is {first - end} bytes past the end of `{name}`"
        elif first < start:
            nearest = f"; the first bad address is {start - first} bytes before the start of `{name}`"
    line, text = _kernel_location(launch.fn)
    name = getattr(launch.fn, "__name__", "kernel")
    where = f" at line {line} (`{text}`)" if line is not None else ""
    raise OutOfBoundsError(
        f"out-of-bounds {kind} in kernel `{name}`{where}: {bad.size} of {addr.size} active lanes "
        f"point outside every tensor argument{nearest}",
        "mask the access (e.g. mask=offsets < n_elements) and check the grid and the offsets",
    )


def install() -> bool:
    """Wrap the interpreter's memory operations with bounds checks (idempotent). Returns availability."""
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
        orig_init = executor._init_args_hst
        orig_call = executor.__call__
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

    def _init_args_hst(self, args_dev, kwargs):
        args_hst, kwargs_hst = orig_init(self, args_dev, kwargs)
        launch = _make_launch(self.fn, list(self.arg_names), list(args_hst), dict(kwargs_hst))
        _state.launches = [*getattr(_state, "launches", []), launch]
        return args_hst, kwargs_hst

    def __call__(self, *args, **kwargs):
        depth = len(getattr(_state, "launches", []))
        try:
            return orig_call(self, *args, **kwargs)
        except InterpreterError as err:
            # The interpreter wraps every error as InterpreterError(repr(e)); give ours back as is.
            if isinstance(err.__cause__, OutOfBoundsError):
                raise err.__cause__.with_traceback(None) from None
            raise
        finally:
            _state.launches = getattr(_state, "launches", [])[:depth]

    builder_cls.create_masked_load = create_masked_load
    builder_cls.create_masked_store = create_masked_store
    if orig_rmw is not None:
        builder_cls.create_atomic_rmw = create_atomic_rmw
    executor._init_args_hst = _init_args_hst
    executor.__call__ = __call__
    _installed = True
    return True

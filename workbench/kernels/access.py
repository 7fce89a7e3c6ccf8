"""Access maps: which elements of each tensor every program of a launch read and wrote.

Recorded in interpreter mode by the guard's hooks on the interpreter's loads, stores and atomics
(``workbench.kernels.guard``), for a launch run through ``trace`` or checked by ``wb.kernels.check``:

    maps = wb.kernels.trace(add, x, y).maps     # one AccessMap per kernel launch
    maps[0]                                     # a heat-map image: programs × elements, per tensor
    maps[0].who_wrote("out", (37,))             # WriteInfo(program=(2,), lane=5, line=8)
    maps[0].races                               # elements one program wrote and another touched

A GPU runs the programs of a launch concurrently, in no fixed order and with no synchronisation
between them: an element written by one program and read or written by another (without atomics) is
a race, whatever order the interpreter happened to use. The map finds those directly; the checker also
re-runs kernels in other orders (``guard.order``) and compares.

Triton-viz records the same kind of trace, but its release for this Triton (3.0 with Triton 3.9) fails
to import (``InterpreterBuilder`` has no ``create_make_block_ptr``) and pulls in Flask, z3 and
pre-commit; this module reuses the hooks the bounds checks already need.
"""

from __future__ import annotations

import base64
import html
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: tensors larger than this are not mapped element by element (their heat-map is still kept)
MAX_ELEMENTS = 1 << 24
PROGRAM_BINS = 64
ELEMENT_BINS = 128


@dataclass
class WriteInfo:
    """The last plain store to one element: which program, which lane of the access, which kernel line."""

    program: tuple[int, ...]
    lane: int
    line: int | None
    writes: int  # how many stores hit the element in the launch

    def describe(self) -> str:
        line = f" at line {self.line}" if self.line else ""
        more = f" ({self.writes} stores in all)" if self.writes > 1 else ""
        return f"written by program {_fmt(self.program)}, lane {self.lane}{line}{more}"


@dataclass
class Race:
    """Elements of one tensor that a program wrote and another program read or wrote."""

    tensor: str
    kind: str  # "write-write" or "read-write"
    elements: int
    index: tuple[int, ...]  # one such element
    writer: tuple[int, ...]
    other: tuple[int, ...]
    line: int | None

    def describe(self) -> str:
        what = "also wrote" if self.kind == "write-write" else "read"
        line = f" (store at line {self.line})" if self.line else ""
        return (f"race on `{self.tensor}`: {self.elements} element(s) written by one program and "
                f"{'written' if self.kind == 'write-write' else 'read'} by another, e.g. index {list(self.index)}: "
                f"program {_fmt(self.writer)} wrote it{line}, program {_fmt(self.other)} {what} it; programs run "
                "concurrently on a GPU, in no fixed order")


def _fmt(pid: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, pid)) + ("," if len(pid) == 1 else "") + ")"


@dataclass
class TensorAccess:
    """One tensor argument's accesses in a launch."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    reads: np.ndarray | None  # per element: loads that hit it
    writes: np.ndarray | None  # per element: plain stores
    atomics: np.ndarray | None  # per element: atomic updates
    heat_reads: np.ndarray  # [program bins, element bins]
    heat_writes: np.ndarray
    writer: np.ndarray | None = None  # flat program id of the first writer (-1: none)
    last_writer: np.ndarray | None = None
    writer_lane: np.ndarray | None = None
    writer_site: np.ndarray | None = None
    multi_writer: np.ndarray | None = None
    reader_min: np.ndarray | None = None
    reader_max: np.ndarray | None = None
    arg: Any = field(default=None, repr=False)  # the guard's view of the argument (address lookups)

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def counts(self) -> dict[str, int]:
        if self.reads is None:
            return {"read": int(self.heat_reads.sum()), "written": int(self.heat_writes.sum())}
        return {"elements": self.numel, "read": int((self.reads > 0).sum()), "written": int((self.writes > 0).sum()),
                "atomic": int((self.atomics > 0).sum()), "written twice": int((self.writes > 1).sum())}


@dataclass
class AccessMap:
    """One launch: the grid, and per tensor argument which program touched which elements."""

    kernel: str
    grid: tuple[int, int, int]
    tensors: list[TensorAccess]
    lines: list[int | None] = field(default_factory=list)  # site number -> kernel line
    races: list[Race] = field(default_factory=list)
    program_bins: int = 1
    program_count: int = 1

    def tensor(self, name: str) -> TensorAccess:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"kernel `{self.kernel}` has no tensor argument {name!r}: {[t.name for t in self.tensors]}")

    def program(self, flat: int) -> tuple[int, ...]:
        gy, gz = self.grid[1], self.grid[2]
        pid = (flat // (gy * gz), (flat // gz) % gy, flat % gz)
        dims = 3 if self.grid[2] > 1 else 2 if self.grid[1] > 1 else 1
        return pid[:dims]

    def who_wrote(self, name: str, index: tuple[int, ...] | int) -> WriteInfo | None:
        """The program, lane and line of the last plain store to ``tensor[index]`` (None: never stored)."""
        t = self.tensor(name)
        if t.writes is None:
            return None
        flat = int(np.ravel_multi_index(tuple(index), t.shape)) if isinstance(index, tuple) and t.shape else int(index)
        if t.writes[flat] == 0:
            return None
        site = int(t.writer_site[flat])
        line = self.lines[site] if 0 <= site < len(self.lines) else None
        return WriteInfo(self.program(int(t.last_writer[flat])), int(t.writer_lane[flat]), line, int(t.writes[flat]))

    def summary(self) -> str:
        grid = "×".join(str(g) for g in self.grid if g > 1) or "1"
        lines = [f"access map of `{self.kernel}`: grid {grid} ({self.program_count} programs)"]
        for t in self.tensors:
            c = t.counts()
            parts = [f"{k} {v}" for k, v in c.items() if k == "elements" or v]
            lines.append(f"  {t.name} {list(t.shape)} {t.dtype}: " + ", ".join(parts))
        lines += [f"  ✘ {r.describe()}" for r in self.races]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())

    def to_json(self) -> dict[str, Any]:
        """What the KernelLab draws: per tensor, the programs × elements heat-maps."""
        return {
            "kernel": self.kernel,
            "grid": list(self.grid),
            "programs": self.program_count,
            "program_bins": self.program_bins,
            "tensors": [
                {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "counts": t.counts(),
                 "reads": t.heat_reads.tolist(), "writes": t.heat_writes.tolist()}
                for t in self.tensors
            ],
            "races": [r.describe() for r in self.races],
        }

    def image(self) -> np.ndarray:
        """An RGB image (uint8): one panel per tensor, programs down, elements across; reads blue,
        writes red, both purple, untouched white."""
        panels = []
        for t in self.tensors:
            r = _norm(t.heat_reads)
            w = _norm(t.heat_writes)
            rgb = 255.0 - r[..., None] * np.array([190.0, 120.0, 0.0]) - w[..., None] * np.array([0.0, 170.0, 185.0])
            panel = np.clip(rgb, 0, 255).astype(np.uint8)
            panels.append(panel)
            panels.append(np.full((panel.shape[0], 2, 3), 120, dtype=np.uint8))  # a separator
        return np.concatenate(panels[:-1], axis=1) if panels else np.full((1, 1, 3), 255, np.uint8)

    def png(self) -> bytes:
        return _png(self.image())

    def svg(self, width: int = 260) -> str:
        """A static image for notebooks: each tensor's heat-map, labelled."""
        cells = []
        x = 10
        height = max(40, min(200, 6 * self.program_bins))
        for t in self.tensors:
            img = _png(np.clip(255.0 - _norm(t.heat_reads)[..., None] * np.array([190.0, 120.0, 0.0])
                               - _norm(t.heat_writes)[..., None] * np.array([0.0, 170.0, 185.0]), 0, 255).astype(np.uint8))
            data = base64.b64encode(img).decode()
            label = html.escape(f"{t.name} {list(t.shape)}")
            cells.append(
                f'<text x="{x}" y="14" font-size="12" font-family="sans-serif">{label}</text>'
                f'<image x="{x}" y="20" width="{width}" height="{height}" preserveAspectRatio="none" '
                f'style="image-rendering:pixelated" href="data:image/png;base64,{data}"/>'
                f'<rect x="{x}" y="20" width="{width}" height="{height}" fill="none" stroke="#888"/>'
            )
            x += width + 16
        foot = html.escape(f"{self.kernel}: programs ↓ ({self.program_count}), elements → · "
                           "blue read, red written, purple both")
        races = "".join(f'<text x="10" y="{height + 54 + 14 * i}" font-size="11" fill="#cf222e" '
                        f'font-family="sans-serif">{html.escape(r.describe()[:160])}</text>'
                        for i, r in enumerate(self.races[:3]))
        total_h = height + 44 + 14 * min(len(self.races), 3) + 10
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{x}" height="{total_h}">{"".join(cells)}'
                f'<text x="10" y="{height + 36}" font-size="11" fill="#555" font-family="sans-serif">{foot}</text>'
                f"{races}</svg>")

    def _repr_svg_(self) -> str:
        return self.svg()


def _norm(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    top = a.max() if a.size else 0.0
    return np.sqrt(a / top) if top > 0 else a  # square root: one touch stays visible beside many


def _png(rgb: np.ndarray) -> bytes:
    """A PNG file of an (H, W, 3) uint8 image (no imaging library needed)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[i].tobytes() for i in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


class Recorder:
    """Collects an ``AccessMap`` per launch (give it to ``guard.record``)."""

    def __init__(self) -> None:
        self.maps: list[AccessMap] = []
        self._live: dict[int, tuple[AccessMap, dict[tuple, int]]] = {}

    def begin(self, launch: Any) -> None:
        grid = tuple(launch.grid)
        n_prog = int(grid[0] * grid[1] * grid[2])
        pbins = min(n_prog, PROGRAM_BINS)
        tensors = []
        for arg in launch.args:
            numel = arg.numel
            ebins = max(1, min(numel, ELEMENT_BINS))
            detailed = numel <= MAX_ELEMENTS
            def z(dtype: Any, fill: Any = 0, numel: int = numel, detailed: bool = detailed) -> np.ndarray | None:
                return np.full(numel, fill, dtype=dtype) if detailed else None

            tensors.append(TensorAccess(
                arg.name, arg.shape, arg.dtype, z(np.int32), z(np.int32), z(np.int32),
                np.zeros((pbins, ebins), np.int64), np.zeros((pbins, ebins), np.int64),
                writer=z(np.int64, -1), last_writer=z(np.int64, -1), writer_lane=z(np.int32, -1),
                writer_site=z(np.int32, -1), multi_writer=z(np.bool_, False),
                reader_min=z(np.int64, np.iinfo(np.int64).max), reader_max=z(np.int64, -1), arg=arg,
            ))
        amap = AccessMap(launch.name, grid, tensors, program_bins=pbins, program_count=n_prog)  # type: ignore[arg-type]
        self._live[id(launch)] = (amap, {})

    def access(self, launch: Any, kind: str, arg_idx: int, index: np.ndarray, lanes: np.ndarray,
               pid: tuple[int, int, int], site_key: tuple) -> None:
        live = self._live.get(id(launch))
        if live is None or arg_idx < 0:
            return
        amap, sites = live
        t = amap.tensors[arg_idx]
        ok = index >= 0
        idx, lanes = index[ok], lanes[ok]
        if idx.size == 0:
            return
        g = amap.grid
        flat = (pid[0] * g[1] + pid[1]) * g[2] + pid[2]
        pbin = flat * amap.program_bins // amap.program_count
        ebins = t.heat_reads.shape[1]
        ebin = idx * ebins // max(t.numel, 1)
        heat = t.heat_reads if kind == "load" else t.heat_writes
        np.add.at(heat[pbin], ebin, 1)
        if t.reads is None:
            return
        if kind == "load":
            np.add.at(t.reads, idx, 1)
            np.minimum.at(t.reader_min, idx, flat)
            np.maximum.at(t.reader_max, idx, flat)
        elif kind == "atomic":
            np.add.at(t.atomics, idx, 1)
        else:
            site = sites.setdefault(site_key, len(sites))
            if site >= len(amap.lines):
                amap.lines.append(site_key[0][1] if site_key else None)
            prev = t.writer[idx]
            t.multi_writer[idx[(prev >= 0) & (prev != flat)]] = True
            first = prev < 0
            t.writer[idx[first]] = flat
            np.add.at(t.writes, idx, 1)
            t.last_writer[idx] = flat
            t.writer_lane[idx] = lanes
            t.writer_site[idx] = site

    def end(self, launch: Any) -> None:
        live = self._live.pop(id(launch), None)
        if live is None:
            return
        amap, _ = live
        amap.races = find_races(amap)
        self.maps.append(amap)


def find_races(amap: AccessMap) -> list[Race]:
    """Elements written by one program and read or written by another (atomics excepted)."""
    races = []
    for t in amap.tensors:
        if t.writes is None:
            continue
        written = t.writer >= 0
        ww = t.multi_writer
        other_reader = written & (t.reads > 0) & ((t.reader_min != t.writer) | (t.reader_max != t.writer))
        for kind, mask in (("write-write", ww), ("read-write", other_reader & ~ww)):
            n = int(mask.sum())
            if not n:
                continue
            flat = int(np.nonzero(mask)[0][0])
            writer = int(t.writer[flat])
            if kind == "write-write":
                other = int(t.last_writer[flat]) if t.last_writer[flat] != writer else writer
            else:
                other = int(t.reader_min[flat]) if t.reader_min[flat] != writer else int(t.reader_max[flat])
            index = tuple(int(i) for i in np.unravel_index(flat, t.shape)) if t.shape else ()
            site = int(t.writer_site[flat])
            line = amap.lines[site] if 0 <= site < len(amap.lines) else None
            races.append(Race(t.name, kind, n, index, amap.program(writer), amap.program(other), line))
    return races


@dataclass
class Trace:
    """What ``trace`` returns: the launcher's result and one ``AccessMap`` per launch."""

    result: Any
    maps: list[AccessMap]

    @property
    def races(self) -> list[Race]:
        return [r for m in self.maps for r in m.races]

    def summary(self) -> str:
        return "\n".join(m.summary() for m in self.maps) or "no kernel launch was recorded"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())

    def _repr_svg_(self) -> str | None:
        return self.maps[-1].svg() if self.maps else None


def trace(fn: Callable[..., Any], *args: Any, order: str = "forward", seed: int = 0, **kwargs: Any) -> Trace:
    """Run ``fn(*args, **kwargs)`` (a launcher) in interpreter mode, recording every kernel launch.

    ``order`` runs each launch's programs ``"forward"``, ``"reverse"`` or ``"shuffle"``d. Raises
    ``KernelError`` in compiled mode: the GPU runs programs where nothing can watch them.
    """
    from workbench.kernels import guard
    from workbench.kernels.modes import KernelError, mode

    if not mode().interpreted:
        raise KernelError("access maps are recorded by the interpreter, and kernels run compiled here",
                          "run with WORKBENCH_TRITON_MODE=interpreter (and CPU tensors) to record them")
    if not guard.available():
        raise KernelError(f"the interpreter's memory hooks are not available: {guard.unavailable_reason()}",
                          "use the Triton version constraints.txt pins")
    recorder = Recorder()
    with guard.record(recorder), guard.order(order, seed):
        result = fn(*args, **kwargs)
    return Trace(result, recorder.maps)

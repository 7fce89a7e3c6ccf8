"""Timing kernels: ``bench`` for one launcher against its torch reference, ``device_peaks`` for the
ceilings (measured copy bandwidth and matrix rate), ``sweep`` for a size sweep, ``roofline`` for the plot.

On a GPU, times are ``triton.testing.do_bench`` medians (warm-up, L2 flushed between runs). In
interpreter mode the kernel runs as NumPy on the CPU, one program at a time: the times are measured the
same way (``time.perf_counter`` medians) and returned, but every result says ``interpreted=True`` and
its text says they mean nothing about speed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.kernels.modes import mode

INTERPRETER_NOTE = "interpreter timing (NumPy on the CPU, one program at a time): no meaning for GPU speed"


@dataclass
class Peaks:
    """The device's measured ceilings."""

    device: str
    copy_gbps: float  # device-to-device copy, bytes read + written per second / 1e9
    matmul_tflops: float  # fp16 (or the given dtype) matrix product rate
    matmul_dtype: str = "float16"
    interpreted: bool = False


@dataclass
class BenchResult:
    """One kernel timed against its reference."""

    name: str
    ms: float  # median
    ref_ms: float | None = None
    ms_low: float | None = None  # 20th percentile
    ms_high: float | None = None  # 80th percentile
    bytes: float | None = None
    flops: float | None = None
    ref_bytes: float | None = None  # what the reference moves, when it differs (fp16 weights vs INT8)
    interpreted: bool = False
    device: str = ""
    peaks: Peaks | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        """Reference time / kernel time (>1: the kernel is faster)."""
        return self.ref_ms / self.ms if self.ref_ms and self.ms else None

    @property
    def gbps(self) -> float | None:
        return self.bytes / (self.ms * 1e-3) / 1e9 if self.bytes else None

    @property
    def tflops(self) -> float | None:
        return self.flops / (self.ms * 1e-3) / 1e12 if self.flops else None

    @property
    def ref_gbps(self) -> float | None:
        """The reference's bandwidth, from its own byte count (``ref_bytes``, else ``bytes``)."""
        moved = self.ref_bytes or self.bytes
        return moved / (self.ref_ms * 1e-3) / 1e9 if moved and self.ref_ms else None

    @property
    def ref_tflops(self) -> float | None:
        return self.flops / (self.ref_ms * 1e-3) / 1e12 if self.flops and self.ref_ms else None

    @property
    def share_of_copy_bandwidth(self) -> float | None:
        if self.peaks and self.gbps and not self.interpreted:
            return self.gbps / self.peaks.copy_gbps
        return None

    @property
    def share_of_matmul_rate(self) -> float | None:
        if self.peaks and self.tflops and not self.interpreted:
            return self.tflops / self.peaks.matmul_tflops
        return None

    @property
    def intensity(self) -> float | None:
        """Arithmetic intensity, FLOP per byte moved."""
        return self.flops / self.bytes if self.flops and self.bytes else None

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("peaks", "extra")}
        for key in ("speedup", "gbps", "tflops", "ref_gbps", "ref_tflops", "share_of_copy_bandwidth",
                    "share_of_matmul_rate", "intensity"):
            out[key] = getattr(self, key)
        out.update(self.extra)
        if self.interpreted:
            out["note"] = INTERPRETER_NOTE
        return out

    def summary(self) -> str:
        parts = [f"{self.name}: {self.ms:.4g} ms"]
        if self.ref_ms:
            parts.append(f"reference {self.ref_ms:.4g} ms ({self.speedup:.2f}× the reference)")
        if self.gbps:
            share = self.share_of_copy_bandwidth
            parts.append(f"{self.gbps:.3g} GB/s" + (f" = {share:.0%} of measured copy bandwidth" if share else ""))
        if self.tflops:
            share = self.share_of_matmul_rate
            parts.append(f"{self.tflops:.3g} TFLOP/s" + (f" = {share:.0%} of measured matmul rate" if share else ""))
        text = ", ".join(parts)
        return f"{text}\n  ⚠ {INTERPRETER_NOTE}" if self.interpreted else text

    def __str__(self) -> str:
        return self.summary()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())


def time_ms(fn: Callable[[], Any], *, reps: int | None = None, quantiles: Sequence[float] = (0.5, 0.2, 0.8)) -> list[float]:
    """Times of ``fn()`` in milliseconds at ``quantiles``: ``do_bench`` on a GPU, a wall-clock loop otherwise."""
    m = mode()
    if not m.interpreted:
        import triton.testing

        res = triton.testing.do_bench(fn, quantiles=list(quantiles))
        return [float(r) for r in (res if isinstance(res, list | tuple) else [res])]
    fn()  # warm-up
    n = reps or 3
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return [_quantile(times, q) for q in quantiles]


def _quantile(sorted_values: list[float], q: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


_PEAKS: Peaks | None = None


def device_peaks(refresh: bool = False) -> Peaks:
    """Measure the copy bandwidth and the fp16 matrix rate of this device once (a few seconds on a GPU).

    Copy: ``dst.copy_(src)`` on 1 GiB, counting bytes read and written. Matrix: an 8192³ fp16
    ``torch.matmul``. In interpreter mode nothing is measured (zeros, ``interpreted=True``).
    """
    global _PEAKS
    if _PEAKS is not None and not refresh:
        return _PEAKS
    m = mode()
    if m.interpreted:
        _PEAKS = Peaks("cpu (interpreter)", 0.0, 0.0, interpreted=True)
        return _PEAKS
    import torch
    import triton.testing

    n = 1 << 28  # 2**28 float32 = 1 GiB
    src = torch.empty(n, device="cuda", dtype=torch.float32).uniform_()
    dst = torch.empty_like(src)
    copy_ms = statistics.median(triton.testing.do_bench(lambda: dst.copy_(src), return_mode="all"))
    copy_gbps = 2 * src.numel() * src.element_size() / (copy_ms * 1e-3) / 1e9
    size = 8192
    a = torch.randn(size, size, device="cuda", dtype=torch.float16)
    b = torch.randn(size, size, device="cuda", dtype=torch.float16)
    mm_ms = statistics.median(triton.testing.do_bench(lambda: torch.matmul(a, b), return_mode="all"))
    tflops = 2 * size**3 / (mm_ms * 1e-3) / 1e12
    _PEAKS = Peaks(m.gpu or "cuda", copy_gbps, tflops, "float16")
    return _PEAKS


def bench(
    fn: Callable[..., Any],
    *args: Any,
    reference: Callable[..., Any] | None = None,
    bytes: float | None = None,
    flops: float | None = None,
    name: str | None = None,
    peaks: bool = True,
    ref_bytes: float | None = None,
) -> BenchResult:
    """Time ``fn(*args)`` and, if given, ``reference(*args)``; compute GB/s and TFLOP/s from the
    ``bytes`` moved and ``flops`` done per call, and their share of the device's measured ceilings.
    ``ref_bytes``: the bytes the reference moves when that differs (an fp16 weight matrix read by
    ``torch.matmul`` against the INT8 one the kernel reads); default: ``bytes``.

    On a GPU: ``triton.testing.do_bench`` medians. In interpreter mode: wall-clock medians of a few
    runs, labelled as interpreter timings (``result.interpreted``), and no ceilings.
    """
    m = mode()
    q = time_ms(lambda: fn(*args))
    ref = time_ms(lambda: reference(*args))[0] if reference is not None else None
    result = BenchResult(
        name or getattr(fn, "__name__", "kernel"),
        ms=q[0],
        ref_ms=ref,
        ms_low=q[1] if len(q) > 1 else None,
        ms_high=q[2] if len(q) > 2 else None,
        bytes=bytes,
        flops=flops,
        ref_bytes=ref_bytes,
        interpreted=m.interpreted,
        device=m.gpu or "cpu",
    )
    if peaks and not m.interpreted:
        result.peaks = device_peaks()
    return result


def sweep(
    fns: dict[str, Callable[..., Any]],
    make_args: Callable[[int], Sequence[Any]],
    sizes: Sequence[int],
    *,
    bytes: Callable[[int], float] | None = None,
    flops: Callable[[int], float] | None = None,
    x_name: str = "size",
):
    """Time every function of ``fns`` at every size; a DataFrame with ms, GB/s and TFLOP/s per row.

    ``make_args(size)`` builds the arguments; ``bytes(size)``/``flops(size)`` count the work per call.
    """
    import pandas as pd

    rows = []
    m = mode()
    for size in sizes:
        args = make_args(size)
        for label, fn in fns.items():
            ms = time_ms(lambda fn=fn, args=args: fn(*args))[0]
            row = {x_name: size, "provider": label, "ms": ms, "interpreted": m.interpreted}
            if bytes is not None:
                row["GB/s"] = bytes(size) / (ms * 1e-3) / 1e9
            if flops is not None:
                row["TFLOP/s"] = flops(size) / (ms * 1e-3) / 1e12
            rows.append(row)
    return pd.DataFrame(rows)


def plot_sweep(frame: Any, y: str = "ms", x: str | None = None, title: str = ""):
    """A plotly line chart of a ``sweep`` frame; interpreter runs say so in the title."""
    import plotly.express as px

    x = x or frame.columns[0]
    interpreted = bool(frame["interpreted"].any()) if "interpreted" in frame else mode().interpreted
    full_title = title + (" — interpreter timings, no meaning for GPU speed" if interpreted else "")
    fig = px.line(frame, x=x, y=y, color="provider", markers=True, title=full_title)
    fig.update_layout(height=360, margin=dict(l=40, r=20, t=50, b=40))
    return fig


def roofline(results: Sequence[BenchResult], peaks_: Peaks | None = None):
    """Two plots side by side (plotly), both under ceilings measured on this device:

    * compute roofline: achieved TFLOP/s against arithmetic intensity (results with ``flops`` and
      ``bytes``), under the copy-bandwidth slope and the matrix-rate ceiling;
    * bandwidth roofline (when there are any): achieved GB/s of the results with ``bytes`` and no
      ``flops`` (memory-bound kernels: vector add, softmax, LayerNorm, reductions), against the
      measured copy bandwidth; the reference's GB/s beside each, from its own byte count.

    Needs compiled-mode results (interpreter timings say nothing about speed)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pk = peaks_ or next((r.peaks for r in results if r.peaks), None)
    if pk is None or pk.interpreted:
        fig = go.Figure()
        fig.update_layout(title="Roofline: needs a GPU (interpreter timings have no meaning for speed)")
        return fig
    memory = [r for r in results if r.gbps and not r.flops]
    fig = (make_subplots(rows=1, cols=2, subplot_titles=("compute roofline", "bandwidth roofline (no FLOP count)"))
           if memory else make_subplots(rows=1, cols=1))
    ridge = pk.matmul_tflops * 1e12 / (pk.copy_gbps * 1e9)
    xs = [0.01, ridge, max(ridge * 100, 1e4)]
    ys = [min(x * pk.copy_gbps * 1e9, pk.matmul_tflops * 1e12) / 1e12 for x in xs]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#555"),
                             name=f"ceiling ({pk.copy_gbps:.0f} GB/s, {pk.matmul_tflops:.0f} TFLOP/s)"), row=1, col=1)
    for r in results:
        if r.intensity and r.tflops:
            fig.add_trace(go.Scatter(x=[r.intensity], y=[r.tflops], mode="markers+text", text=[r.name],
                                     textposition="top center", name=r.name), row=1, col=1)
    if memory:
        names = [r.name for r in memory]
        fig.add_trace(go.Bar(x=names, y=[r.gbps for r in memory], name="kernel GB/s",
                             text=[f"{r.gbps / pk.copy_gbps:.0%}" for r in memory], textposition="outside"), row=1, col=2)
        fig.add_trace(go.Bar(x=names, y=[r.ref_gbps or 0 for r in memory], name="reference GB/s"), row=1, col=2)
        fig.add_trace(go.Scatter(x=names, y=[pk.copy_gbps] * len(names), mode="lines", line=dict(dash="dash", color="#555"),
                                 name=f"measured copy bandwidth ({pk.copy_gbps:.0f} GB/s)"), row=1, col=2)
    fig.update_xaxes(type="log", title="arithmetic intensity (FLOP/byte)", row=1, col=1)
    fig.update_yaxes(type="log", title="TFLOP/s", row=1, col=1)
    if memory:
        fig.update_yaxes(title="GB/s", row=1, col=2)
    fig.update_layout(title=f"Roofline on {pk.device}", height=440, barmode="group")
    return fig

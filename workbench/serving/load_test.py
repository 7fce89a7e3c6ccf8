"""``wb.load_test``: a bounded load generator for a served endpoint, and the same load on the bare runtime.

``concurrency`` threads, each with its own HTTP connection, send requests back to back until ``duration``
seconds or ``requests`` requests in all, whichever comes first (both are capped: ``MAX_DURATION_S``,
``MAX_REQUESTS``, ``MAX_CONCURRENCY``). Request shapes cycle through ``shapes`` (batch sizes, or
``{input: shape}`` dicts). Every request's latency is kept; a failed request counts as an error (its first
messages are kept) and does not stop the others. With ``baseline=True`` the package's artifact then runs
in this process on the same runner the server uses, from the same number of threads, for the same time:
the difference is what the server adds (protocol, copies, queueing, batching).
"""

from __future__ import annotations

import html
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.analysis.bench import LatencyStats
from workbench.core.errors import WorkbenchError
from workbench.core.results import result_type
from workbench.core.runner import Runner

MAX_DURATION_S = 600.0
MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 256
MAX_ERROR_SAMPLES = 5


@dataclass
class LoadRun:
    """One load: on the server, or on the bare runtime."""

    label: str
    kind: str  # "server" or "bare"
    concurrency: int
    requests: int = 0  # answered without error
    errors: int = 0
    duration_s: float = 0.0
    latency: LatencyStats | None = None
    throughput_rps: float = math.nan  # answered requests per second
    items_per_s: float = math.nan  # batch items per second
    error_samples: list[str] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        total = self.requests + self.errors
        return self.errors / total if total else math.nan

    def row(self) -> dict[str, Any]:
        lat = self.latency
        return {"label": self.label, "kind": self.kind, "concurrency": self.concurrency, "requests": self.requests,
                "errors": self.errors, "p50_ms": lat.p50 if lat else math.nan, "p90_ms": lat.p90 if lat else math.nan,
                "p99_ms": lat.p99 if lat else math.nan, "mean_ms": lat.mean if lat else math.nan,
                "throughput_rps": self.throughput_rps, "items_per_s": self.items_per_s, "duration_s": self.duration_s}


@result_type("load_test")
@dataclass
class LoadTestReport:
    """Results of ``wb.load_test``: the served run, and (``baseline=True``) the bare runtime's under the same
    load. ``to_frame()``, ``overhead()``, ``summary()``, ``to_json()`` / ``LoadTestReport.from_json``."""

    model: str
    server: str
    url: str
    settings: dict[str, Any]
    runs: list[LoadRun]
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def __bool__(self) -> bool:  # the server answered every request
        served = self.served
        return served is not None and served.requests > 0 and served.errors == 0

    @property
    def served(self) -> LoadRun | None:
        return next((r for r in self.runs if r.kind == "server"), None)

    @property
    def bare(self) -> LoadRun | None:
        return next((r for r in self.runs if r.kind == "bare"), None)

    def overhead(self) -> dict[str, float]:
        """What the server adds over the bare runtime: p50/p99 ms added, and the throughput ratio (served/bare)."""
        s, b = self.served, self.bare
        if s is None or b is None or s.latency is None or b.latency is None:
            return {}
        return {"p50_added_ms": s.latency.p50 - b.latency.p50, "p99_added_ms": s.latency.p99 - b.latency.p99,
                "throughput_ratio": s.throughput_rps / b.throughput_rps if b.throughput_rps else math.nan}

    def json_extras(self) -> dict[str, Any]:
        return {"passed": bool(self), "overhead": self.overhead()}

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([r.row() for r in self.runs]).set_index("label")

    def summary(self) -> str:
        st = self.settings
        lines = [f"{self.model} on {self.server} ({self.url}): concurrency {st.get('concurrency')}, "
                 f"up to {st.get('duration')} s / {st.get('requests')} requests, shapes {st.get('shapes')}"]
        for r in self.runs:
            if r.latency is None or not r.requests:
                lines.append(f"  {r.label}: no request answered; {r.errors} error(s): {'; '.join(r.error_samples)}")
                continue
            lat = r.latency
            lines.append(f"  {r.label}: p50 {lat.p50:.2f} ms  p90 {lat.p90:.2f}  p99 {lat.p99:.2f}  "
                         f"{r.throughput_rps:.1f} req/s  {r.items_per_s:.1f} items/s  {r.requests} ok  "
                         f"{r.errors} error(s)" + (f" ({r.error_samples[0]})" if r.error_samples else ""))
        o = self.overhead()
        if o:
            lines.append(f"  server adds p50 {o['p50_added_ms']:+.2f} ms, p99 {o['p99_added_ms']:+.2f} ms; "
                         f"throughput {o['throughput_ratio']:.2f}x the bare runtime's")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<LoadTestReport {self.server} {self.model!r}>\n{self.summary()}"

    def _repr_html_(self) -> str:
        frame = self.to_frame()
        o = self.overhead()
        note = (f"<p>server adds p50 {o['p50_added_ms']:+.2f} ms, p99 {o['p99_added_ms']:+.2f} ms; throughput "
                f"{o['throughput_ratio']:.2f}× the bare runtime's</p>" if o else "")
        return (f"<h4>Load test: {html.escape(self.model)} on {html.escape(self.server)}</h4>"
                + frame.to_html(float_format=lambda x: f"{x:.2f}", escape=True) + note)


def _feeds_for(model: Any, shapes: list[Any], seed: int = 0) -> list[dict[str, np.ndarray]]:
    """One feeds dict per entry of ``shapes``: an int is a batch size, a dict gives each input's shape."""
    rng = np.random.default_rng(seed)
    out = []
    for entry in shapes:
        if isinstance(entry, int):
            out.append(model.example_inputs(batch=entry, seed=seed))
            continue
        if not isinstance(entry, dict):
            raise WorkbenchError(f"cannot make a request from shape {entry!r}",
                                 "pass shapes= as batch sizes ([1, 8]) or {input name: shape} dicts")
        feeds = {}
        for spec in model.inputs:
            if spec.name not in entry:
                raise WorkbenchError(f"shape for input {spec.name!r} missing in {entry!r}",
                                     f"give every input: {[s.name for s in model.inputs]}")
            shape, dtype = tuple(int(d) for d in entry[spec.name]), np.dtype(spec.dtype)
            if dtype.kind == "f":
                feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
            else:
                feeds[spec.name] = np.zeros(shape, dtype)
        out.append(feeds)
    return out


def _batch_of(feeds: dict[str, np.ndarray]) -> int:
    first = next(iter(feeds.values()), None)
    return int(first.shape[0]) if first is not None and getattr(first, "ndim", 0) else 1


def drive(call: Any, feeds_list: list[dict[str, np.ndarray]], *, concurrency: int, duration: float,
          requests: int | None, warmup: int = 1, label: str = "", kind: str = "server") -> LoadRun:
    """Call ``call(feeds)`` from ``concurrency`` threads until ``duration`` s or ``requests`` calls in all."""
    for i in range(warmup):
        try:
            call(feeds_list[i % len(feeds_list)])
        except Exception:  # noqa: BLE001 - the timed run reports errors
            pass
    lock = threading.Lock()
    issued = [0]
    lat: list[list[float]] = [[] for _ in range(concurrency)]
    items = [0] * concurrency
    errors: list[str] = []
    n_errors = [0]
    start = time.perf_counter()
    deadline = start + duration

    def work(t: int) -> None:
        perf = time.perf_counter
        while perf() < deadline:
            with lock:
                if requests is not None and issued[0] >= requests:
                    return
                k = issued[0]
                issued[0] += 1
            feeds = feeds_list[k % len(feeds_list)]
            t0 = perf()
            try:
                call(feeds)
            except Exception as err:  # noqa: BLE001 - counted, and the load goes on
                with lock:
                    n_errors[0] += 1
                    if len(errors) < MAX_ERROR_SAMPLES:
                        errors.append(f"{type(err).__name__}: {str(err)[:200]}")
                continue
            lat[t].append(perf() - t0)
            items[t] += _batch_of(feeds)

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(duration + 120.0)  # a request stuck past its client's timeout does not hang the caller
    wall = time.perf_counter() - start
    times = [x for per in lat for x in per]
    return LoadRun(label=label, kind=kind, concurrency=concurrency, requests=len(times), errors=n_errors[0],
                   duration_s=wall, latency=LatencyStats.of(times) if times else None,
                   throughput_rps=len(times) / wall if wall > 0 else math.nan,
                   items_per_s=sum(items) / wall if wall > 0 else math.nan, error_samples=errors)


def load_test(endpoint: Runner, *, concurrency: int = 4, duration: float = 10.0, requests: int | None = None,
              shapes: list[Any] | None = None, inputs: list[dict[str, np.ndarray]] | None = None,
              baseline: bool = True, warmup: int = 2) -> LoadTestReport:
    """Load ``endpoint`` (a running ``wb.serve`` Endpoint, or any Runner) and report latency percentiles,
    throughput and errors; with ``baseline`` the same load on the bare runtime the server runs.

    Args:
        concurrency: requests in flight (threads, each with its own connection), at most ``MAX_CONCURRENCY``.
        duration: seconds of load (at most ``MAX_DURATION_S``); ``requests``: stop after this many in all.
        shapes: batch sizes (``[1, 8]``) or ``{input: shape}`` dicts, cycled through (default ``[1]``).
        inputs: explicit feeds dicts to cycle through instead of ``shapes``.
        baseline: also run the package's artifact in this process on the server's runner, same load.
        warmup: untimed requests first.
    """
    if not isinstance(endpoint, Runner):
        raise WorkbenchError(f"cannot load-test a {type(endpoint).__name__}",
                             "pass the Endpoint wb.serve returned (or a Runner)")
    if not 1 <= int(concurrency) <= MAX_CONCURRENCY:
        raise WorkbenchError(f"concurrency {concurrency} is outside 1..{MAX_CONCURRENCY}", "pass a smaller concurrency=")
    if not 0 < float(duration) <= MAX_DURATION_S:
        raise WorkbenchError(f"duration {duration} s is outside (0, {MAX_DURATION_S:.0f}]", "pass a shorter duration=")
    if requests is not None and not 1 <= int(requests) <= MAX_REQUESTS:
        raise WorkbenchError(f"requests={requests} is outside 1..{MAX_REQUESTS}", "pass fewer requests=")
    model = endpoint.model
    feeds_list = list(inputs) if inputs else _feeds_for(model, list(shapes or [1]))
    if not endpoint.is_prepared:
        endpoint.prepare()
    for feeds in feeds_list:  # a malformed request is the caller's error, said before any load
        endpoint.validate_feeds(feeds)
    server = getattr(endpoint, "server", endpoint.name)
    runs = [drive(lambda f: endpoint.infer(f, check=False), feeds_list, concurrency=int(concurrency),
                  duration=float(duration), requests=requests, warmup=warmup, label=f"{server} (served)")]
    package = getattr(endpoint, "package", None)
    if baseline and package is not None:
        runs.append(_bare_run(package, feeds_list, concurrency=int(concurrency), duration=float(duration),
                              requests=requests, warmup=warmup))
    settings = {"concurrency": int(concurrency), "duration": float(duration), "requests": requests,
                "shapes": [{k: list(v.shape) for k, v in f.items()} for f in feeds_list], "warmup": warmup}
    return LoadTestReport(model=model.name, server=server, url=getattr(endpoint, "url", ""), settings=settings, runs=runs)


def _bare_run(package: Any, feeds_list: list[dict[str, np.ndarray]], **load: Any) -> LoadRun:
    from workbench.core.detect import load_path
    from workbench.steps import routing

    m = package.manifest
    runner = routing.runner(load_path(package.folder / m["artifact"]), m["runtime"], **m.get("runtime_options", {}))
    lock = threading.Lock() if m.get("serialize") else None

    def call(feeds: dict[str, np.ndarray]) -> Any:
        if lock is None:
            return runner.infer(feeds, check=False)
        with lock:
            return runner.infer(feeds, check=False)

    try:
        runner.prepare()
        return drive(call, feeds_list, label=f"{m['runtime']} (bare, in process)", kind="bare", **load)
    finally:
        runner.close()

"""Per-node latency: ONNX Runtime's profiler and OpenVINO's per-layer performance counters, one table.

``profile_nodes(model, ["onnxruntime", "openvino"])`` runs the model a few times on each runtime with
profiling on and returns a ``NodeProfile``: one row per executed kernel (backend, node, op type, time
per run, share of the run), ``by_op()`` to aggregate by op type, and ``per_node()`` — a plain
``{node name: ms}`` dict that ``GraphView.overlay`` takes.

Runtimes fuse and insert nodes, so kernel names are mapped back to the model's graph: ONNX Runtime's
``relu_nchwc`` (a Conv+Relu fused under the Relu's output name) and OpenVINO's
``node_conv2d/WithoutBiases`` resolve to the graph node that produced that name; kernels the runtime
inserted itself (layout reorders) keep their own name and ``in_graph=False``.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core import settings
from workbench.core.errors import WorkbenchError
from workbench.core.results import result_type, to_json

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from workbench.core.model import Model

QUICK_RUNS = 5


@dataclass
class NodeTime:
    """One kernel's time on one runtime, averaged over the profiled runs."""

    backend: str
    node: str  # the graph node it maps to (or the kernel's own name when it has none)
    kernel: str  # the name the runtime reported
    op_type: str
    exec_type: str  # the implementation (e.g. OpenVINO's "brgconv_avx512_bf16"), or the provider
    time_ms: float
    share: float  # of this backend's total time per run
    in_graph: bool


@result_type("node_profile")
@dataclass
class NodeProfile:
    """Per-node latency on one or more runtimes. ``per_node()`` feeds ``GraphView.overlay``."""

    rows: list[NodeTime]
    runs: int
    backends: list[str]
    model: str = ""

    def total_ms(self, backend: str | None = None) -> float:
        backend = backend or self.backends[0]
        return float(sum(r.time_ms for r in self.rows if r.backend == backend))

    def per_node(self, backend: str | None = None, runtime_kernels: bool = False) -> dict[str, float]:
        """``{graph node name: ms per run}`` on ``backend`` (default: the first), the kernels of one node
        summed; ``runtime_kernels=True`` adds the kernels the runtime inserted (reorders), by their own name."""
        backend = backend or self.backends[0]
        out: dict[str, float] = defaultdict(float)
        for r in self.rows:
            if r.backend == backend and (r.in_graph or runtime_kernels):
                out[r.node] += r.time_ms
        return dict(out)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.rows])

    def by_op(self, backend: str | None = None) -> pd.DataFrame:
        """Time per op type on ``backend`` (default: every backend as columns of one table)."""
        frame = self.to_frame()
        if frame.empty:
            return frame
        if backend is not None:
            frame = frame[frame["backend"] == backend]
        grouped = frame.groupby(["backend", "op_type"]).agg(time_ms=("time_ms", "sum"), kernels=("kernel", "count"))
        grouped["share"] = grouped["time_ms"] / grouped.groupby(level=0)["time_ms"].transform("sum")
        return grouped.sort_values(["backend", "time_ms"], ascending=[True, False])

    def top(self, n: int = 10, backend: str | None = None) -> pd.DataFrame:
        frame = self.to_frame()
        backend = backend or self.backends[0]
        return frame[frame["backend"] == backend].nlargest(n, "time_ms")

    def to_json(self, indent: int | None = 2) -> str:
        """JSON with ``schema: "workbench.node_profile"``; ``NodeProfile.from_json(text)`` reads it back."""
        return to_json(self, indent=indent)

    # used by report.html_report
    html_title = "Per-node latency"

    def html_sections(self) -> list[str]:
        from workbench.analysis.report import svg_bars

        parts = []
        for b in self.backends:
            top = self.top(15, b)
            parts.append(svg_bars(dict(zip(top["node"], top["time_ms"], strict=True)),
                                  f"Slowest nodes on {b} (total {self.total_ms(b):.3f} ms per run)", "ms"))
            ops = self.by_op(b)
            parts.append(svg_bars({op: t for (_, op), t in ops["time_ms"].items()}, f"Time per op type on {b}", "ms"))
        return parts

    def _repr_html_(self) -> str:
        return self.by_op().to_html()

    def __repr__(self) -> str:
        totals = ", ".join(f"{b} {self.total_ms(b):.3f} ms" for b in self.backends)
        return f"<NodeProfile {self.model!r} {len(self.rows)} kernels; per run: {totals}>"


# -- name mapping ------------------------------------------------------------------------------------


class _NameMap:
    """Maps a runtime's kernel name to a node of the model's graph: by node name, by the name of a
    tensor the node produced, or by the longest '/'-separated prefix of either."""

    def __init__(self, node_types: dict[str, str], producers: dict[str, str],
                 inputs: dict[str, list[str]] | None = None):
        self.node_types = node_types  # node name -> op type
        self.producers = producers  # tensor name -> node name
        self.inputs = inputs or {}  # node name -> its input tensor names
        self.op_types = set(node_types.values())

    @classmethod
    def of(cls, model: Model) -> _NameMap:
        try:
            if model.format == "onnx":
                graph = model.native().graph
                return cls({n.name: n.op_type for n in graph.node},
                           {o: n.name for n in graph.node for o in n.output},
                           {n.name: list(n.input) for n in graph.node})
            if model.format == "openvino":
                ops = model.native().get_ordered_ops()
                producers = {}
                for op in ops:
                    for out in op.outputs():
                        for name in out.get_names():
                            producers[name] = op.get_friendly_name()
                return cls({op.get_friendly_name(): op.get_type_name() for op in ops}, producers)
        except Exception:  # noqa: BLE001 - without a graph, kernels keep their own names
            pass
        return cls({}, {})

    def resolve(self, name: str, op_type: str | None = None) -> str | None:
        """The graph node behind kernel ``name``. A fused kernel named after the last node of the fusion
        (ONNX Runtime names Conv+Relu after the Relu) is given to the node of its own op type upstream."""
        node = self._resolve_name(name)
        if node is None or op_type is None or op_type not in self.op_types or self.node_types[node] == op_type:
            return node
        frontier = [node]
        for _ in range(3):  # a fusion spans a few nodes at most
            frontier = [self.producers[t] for n in frontier for t in self.inputs.get(n, []) if t in self.producers]
            for candidate in frontier:
                if self.node_types[candidate] == op_type:
                    return candidate
        return node

    def _resolve_name(self, name: str) -> str | None:
        candidates = [name]
        for suffix in ("_kernel_time", "_nchwc", "/WithoutBiases", "/sink_port_0"):
            candidates += [c[: -len(suffix)] for c in candidates if c.endswith(suffix)]
        candidates += [c[len("fused "):] for c in candidates if c.startswith("fused ")]
        for c in candidates:
            if c in self.node_types:
                return c
            if c in self.producers:
                return self.producers[c]
        for c in candidates:  # longest '/' prefix
            parts = c.split("/")
            for k in range(len(parts) - 1, 0, -1):
                prefix = "/".join(parts[:k])
                if prefix in self.node_types:
                    return prefix
                if prefix in self.producers:
                    return self.producers[prefix]
        return None


# -- runtimes ----------------------------------------------------------------------------------------


def _profile_onnxruntime(model: Model, feeds: dict[str, np.ndarray], runs: int, warmup: int,
                         options: dict[str, Any]) -> list[NodeTime]:
    from workbench.analysis.compare import _feeds_for
    from workbench.steps.routing import runner

    with tempfile.TemporaryDirectory(prefix="wb-ort-profile-") as tmp:
        r = runner(model, "onnxruntime", enable_profiling=True, profile_prefix=str(Path(tmp) / "ort"), **options)
        with r:
            feeds = _feeds_for(r.model, feeds)
            for _ in range(warmup + runs):
                r.infer(feeds)
            trace = json.loads(Path(r.end_profiling()).read_text())
            names = _NameMap.of(r.model)
    per_kernel: dict[str, list[float]] = defaultdict(list)
    meta: dict[str, tuple[str, str]] = {}
    for ev in trace:
        if ev.get("cat") != "Node" or not ev.get("name", "").endswith("_kernel_time"):
            continue
        kernel = ev["name"][: -len("_kernel_time")]
        per_kernel[kernel].append(ev.get("dur", 0) / 1e3)  # µs -> ms
        args = ev.get("args", {})
        meta[kernel] = (args.get("op_name", "?"), args.get("provider", ""))
    rows = []
    for kernel, times in per_kernel.items():
        last = times[-runs:]  # the profiled runs, after the warm-up ones
        op, provider = meta[kernel]
        node = names.resolve(kernel, op)
        rows.append(NodeTime("onnxruntime", node or kernel, kernel, op, provider, float(np.mean(last)), 0.0,
                             node is not None))
    return rows


def _profile_openvino(model: Model, feeds: dict[str, np.ndarray], runs: int, warmup: int,
                      options: dict[str, Any]) -> list[NodeTime]:
    from workbench.analysis.compare import _feeds_for
    from workbench.steps.routing import runner

    config = {**(options.pop("config", None) or {}), "PERF_COUNT": "YES"}
    with runner(model, "openvino", config=config, **options) as r:
        feeds = _feeds_for(r.model, feeds)
        for _ in range(warmup):
            r.infer(feeds)
        per_kernel: dict[str, list[float]] = defaultdict(list)
        meta: dict[str, tuple[str, str]] = {}
        for _ in range(runs):
            r.infer(feeds)
            for info in r.request.get_profiling_info():
                if str(info.status).endswith("NOT_RUN"):
                    continue  # fused into another kernel or optimised away
                per_kernel[info.node_name].append(info.real_time.total_seconds() * 1e3)
                meta[info.node_name] = (info.node_type, info.exec_type)
        # friendly names of the model OpenVINO read: the IR, or the ONNX graph it was read from
        names = _NameMap.of(r.model)
    rows = []
    for kernel, times in per_kernel.items():
        op, exec_type = meta[kernel]
        node = names.resolve(kernel, op)
        rows.append(NodeTime("openvino", node or kernel, kernel, op, exec_type, float(np.sum(times) / runs), 0.0,
                             node is not None))
    return rows


PROFILERS = {"onnxruntime": _profile_onnxruntime, "openvino": _profile_openvino}


def profile_nodes(
    model: Any,
    backends: str | Sequence[str] = ("onnxruntime", "openvino"),
    *,
    inputs: dict[str, np.ndarray] | None = None,
    runs: int | None = None,
    warmup: int = 3,
    **options: Any,
) -> NodeProfile:
    """Time every node of ``model`` on each of ``backends`` (``"onnxruntime"``, ``"openvino"``).

    Args:
        model: a Model (ONNX, OpenVINO IR, or a torch model: exported to ONNX once, and that graph
            profiled on every runtime) or a zoo name/path.
        inputs: the feeds (default: the model's example inputs).
        runs: profiled runs, averaged (default 20; 5 with ``WORKBENCH_QUICK=1``); ``warmup`` runs first.
        **options: runner options for both runtimes (e.g. ``threads=1``).
    """
    from workbench.api import load
    from workbench.core.model import Model

    model = model if isinstance(model, Model) else load(model)
    if model.format not in ("onnx", "openvino"):
        # profile one ONNX graph on every runtime, so node names agree between them and with the graph view
        from workbench.steps.routing import prepare_for

        model = prepare_for(model, "onnxruntime")
    names = [backends] if isinstance(backends, str) else list(backends)
    unknown = [b for b in names if b not in PROFILERS]
    if unknown or not names:
        raise WorkbenchError(f"no per-node profiler for {unknown or 'no backend'}",
                             f"profile on {' or '.join(PROFILERS)}")
    if runs is None:
        runs = QUICK_RUNS if settings.quick() else 20
    if runs < 1:
        raise WorkbenchError(f"runs must be at least 1, got {runs}", "pass runs=20")
    feeds = inputs if inputs is not None else model.example_inputs()
    rows: list[NodeTime] = []
    for b in names:
        got = PROFILERS[b](model, feeds, runs, warmup, dict(options))
        total = sum(r.time_ms for r in got) or 1.0
        for r in got:
            r.share = r.time_ms / total
        rows += sorted(got, key=lambda r: -r.time_ms)
    return NodeProfile(rows, runs, names, model.name)

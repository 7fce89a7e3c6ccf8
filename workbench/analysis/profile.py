"""Per-node latency from each runtime's own profiler (``Runner.profile_nodes``: ONNX Runtime's profiler,
OpenVINO's per-layer performance counters), in one table.

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

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.analysis.compare import as_model
from workbench.core import registry, settings
from workbench.core.errors import WorkbenchError
from workbench.core.model import Model
from workbench.core.results import result_type, to_json
from workbench.steps import routing

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: the format a model without a profiling runtime of its own is exported to
ONNX = "onnx"

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


class NameMap:
    """Maps a runtime's kernel name to a node of the model's graph: by node name, by the name of a
    tensor the node produced, or by the longest '/'-separated prefix of either."""

    def __init__(self, node_types: dict[str, str], producers: dict[str, str],
                 inputs: dict[str, list[str]] | None = None):
        self.node_types = node_types  # node name -> op type
        self.producers = producers  # tensor name -> node name
        self.inputs = inputs or {}  # node name -> its input tensor names
        self.op_types = set(node_types.values())

    @classmethod
    def of(cls, model: Model) -> NameMap:
        """The names of ``model``'s graph (``Model.graph()``, read by its format plugin)."""
        try:
            graph = model.graph()
        except Exception:  # noqa: BLE001 - without a graph, kernels keep their own names
            return cls({}, {})
        return cls({n.name: n.op for n in graph.nodes}, {t: n.name for n in graph.nodes for t in n.outputs},
                   {n.name: list(n.inputs) for n in graph.nodes})

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


# -- profiling ---------------------------------------------------------------------------------------


def profilers() -> list[str]:
    """The runtimes with a per-node profiler (``Runner.profile_nodes``)."""
    return registry.runtimes_with("profile_nodes")


def profile_nodes(
    model: Model,
    backends: str | Sequence[str] | None = None,
    *,
    inputs: dict[str, np.ndarray] | None = None,
    runs: int | None = None,
    warmup: int = 3,
    **options: Any,
) -> NodeProfile:
    """Time every node of ``model`` on each of ``backends`` (e.g. ``["onnxruntime", "openvino"]``).

    Args:
        model: a Model (ONNX, OpenVINO IR, or a torch model: exported to ONNX once, and that graph
            profiled on every runtime).
        backends: runtimes with a per-node profiler (default: every available one, ``profilers()``).
        inputs: the feeds (default: the model's example inputs).
        runs: profiled runs, averaged (default 20; 5 with ``WORKBENCH_QUICK=1``); ``warmup`` runs first.
        **options: runner options for every runtime (e.g. ``threads=1``).
    """
    available = profilers()
    chosen = backends
    if chosen is None:
        chosen = [b for b in available if registry.get_runtime(b).availability()]
    names = [chosen] if isinstance(chosen, str) else list(chosen)
    unknown = [b for b in names if b not in available]
    if unknown or not names:
        raise WorkbenchError(f"no per-node profiler for {unknown or 'no backend'}",
                             f"profile on {' or '.join(available)}")
    model = as_model(model)
    # formats some profiling runtime is natural for (ONNX, IR) are profiled as they are; any other model
    # is exported to ONNX once, so node names agree between the runtimes and with the graph view
    native = {f for b in available for f in getattr(registry.get_runtime(b), "default_for", ())}
    if model.format not in native:
        model = routing.prepare_for(model, registry.default_runtime(ONNX))
    if backends is None:  # by default, the profilers that can take this model (directly or converted)
        names = [b for b in names if registry.reachable(model.format, b)]
    if runs is None:
        runs = QUICK_RUNS if settings.quick() else 20
    if runs < 1:
        raise WorkbenchError(f"runs must be at least 1, got {runs}", "pass runs=20")
    feeds = inputs if inputs is not None else model.example_inputs()
    rows: list[NodeTime] = []
    for b in names:
        runtime = registry.get_runtime(b)
        kernels, ran = runtime.profile_nodes(routing.prepare_for(model, b), feeds, runs, warmup, **dict(options))
        names_map = NameMap.of(ran)  # the graph the runtime read: the IR, or the ONNX graph
        got = []
        for k in kernels:
            node = names_map.resolve(k.kernel, k.op_type)
            got.append(NodeTime(runtime.name, node or k.kernel, k.kernel, k.op_type, k.exec_type, k.time_ms, 0.0,
                                node is not None))
        total = sum(r.time_ms for r in got) or 1.0
        for r in got:
            r.share = r.time_ms / total
        rows += sorted(got, key=lambda r: -r.time_ms)
    return NodeProfile(rows, runs, names, model.name)

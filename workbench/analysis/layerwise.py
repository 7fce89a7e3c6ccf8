"""``wb.compare_layers``: the error of every intermediate tensor of a model on each runtime, against a
reference, and the first node that diverges.

An ONNX model (a torch model is exported first) is run with its intermediate tensors added as graph
outputs, on any runtime that takes ONNX; the reference is the float model run as written
(``Runner.as_written_options()`` of ONNX's natural runtime: graph optimisations off). A model in a
runtime's own format (an OpenVINO IR, e.g. NNCF's INT8) is read by that runtime's hooks
(``Runner.layer_tensors`` / ``Runner.run_with_outputs``; ``registry.runtimes_with("run_with_outputs")``),
against the float ONNX model it came from. Tensors are matched by name, a quantized copy to its float
twin. Large models run in bounded chunks of tensors.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.analysis.compare import as_model
from workbench.core import registry
from workbench.core.data import feeds_for
from workbench.core.errors import WorkbenchError
from workbench.core.metrics import Check, compare_arrays, criterion
from workbench.core.model import Model
from workbench.core.precision import loosest, normalize_precision, precision_of
from workbench.core.results import result_type, to_json
from workbench.steps import routing

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

Feeds = dict[str, np.ndarray]
#: the format whose graphs the generic path rewrites (the layer-wise lingua franca)
ONNX = "onnx"

#: suffixes quantizers give a tensor's quantized copy; stripping them finds its float twin
QDQ_SUFFIXES = ("_DequantizeLinear_Output", "_QuantizeLinear_Output", "_dequantized", "_quantized", "_output_0_DQ")
_FLOAT_TYPES = {1, 10, 11, 16}  # ONNX FLOAT, FLOAT16, DOUBLE, BFLOAT16
_ONNX_ITEMSIZE = {1: 4, 10: 2, 11: 8, 16: 2}


@dataclass
class LayerRow:
    """The error of one node's output on one runtime, against the reference's same (or twin) tensor."""

    backend: str
    index: int  # position of the node in the graph (topological order)
    node: str
    op_type: str
    tensor: str
    ref_tensor: str
    module: str  # the torch module the node came from, where the export kept it
    passed: bool
    precision: str
    rel_l2: float = math.nan
    max_abs: float = math.nan
    max_abs_rel: float = math.nan
    cosine: float = math.nan
    note: str = ""


@result_type("layer_report")
@dataclass
class LayerReport:
    """Per-node error of a model's intermediate tensors on each runtime, against a reference.

    ``first_divergent`` is the earliest node (graph order) whose error exceeds its runtime's tolerance;
    ``per_node(backend)`` gives ``{node: rel_l2}`` for ``GraphView.overlay``; ``bool(report)`` is True
    when no node diverges.
    """

    rows: list[LayerRow]
    backends: list[str]
    reference: str
    model: str
    tolerances: dict[str, str] = field(default_factory=dict)
    chunks: int = 1
    errors: dict[str, str] = field(default_factory=dict)  # backend -> why it could not run

    def __bool__(self) -> bool:
        return not self.errors and all(r.passed for r in self.rows)

    def first_divergent_on(self, backend: str) -> LayerRow | None:
        failed = [r for r in self.rows if r.backend == backend and not r.passed]
        return min(failed, key=lambda r: r.index) if failed else None

    @property
    def first_divergent(self) -> LayerRow | None:
        """The earliest diverging node on any runtime (None when every node is within tolerance)."""
        found = [r for r in (self.first_divergent_on(b) for b in self.backends) if r is not None]
        return min(found, key=lambda r: (r.index, self.backends.index(r.backend))) if found else None

    def per_node(self, backend: str | None = None, metric: str = "rel_l2") -> dict[str, float]:
        """``{node name: error}`` on ``backend`` (default: the first), the worst of a node's outputs."""
        backend = backend or self.backends[0]
        pick = min if metric == "cosine" else max  # the worst output of a node
        out: dict[str, float] = {}
        for r in self.rows:
            value = getattr(r, metric)
            if r.backend == backend and not math.isnan(value):
                out[r.node] = pick(out[r.node], value) if r.node in out else value
        return out

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.rows])

    def summary(self) -> str:
        lines = [f"{self.model}: {len({r.node for r in self.rows})} nodes compared with {self.reference} "
                 f"on {', '.join(self.backends)}"]
        for b in self.backends:
            if b in self.errors:
                lines.append(f"  {b}: could not run: {self.errors[b]}")
                continue
            first = self.first_divergent_on(b)
            n_fail = sum(1 for r in self.rows if r.backend == b and not r.passed)
            lines.append(f"  {b} [{self.tolerances.get(b, '')}]: " + (
                "every node within tolerance" if first is None else
                f"{n_fail} node output(s) beyond tolerance; first: {first.node} ({first.op_type}"
                + (f", module {first.module}" if first.module else "") + f") rel_l2={first.rel_l2:.3g}"))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<LayerReport>\n{self.summary()}"

    def json_extras(self) -> dict[str, Any]:
        """Derived figures written beside the fields (dropped when read back)."""
        first = self.first_divergent
        return {"passed": bool(self), "first_divergent": asdict(first) if first else None}

    def to_json(self, indent: int | None = 2) -> str:
        """JSON with ``schema: "workbench.layer_report"``; ``LayerReport.from_json(text)`` reads it back."""
        return to_json(self, indent=indent)

    html_title = "Layer-wise comparison"

    def html_sections(self) -> list[str]:
        from html import escape

        from workbench.analysis.report import svg_scatter

        parts = [f"<pre>{escape(self.summary())}</pre>"]
        for b in self.backends:
            first = self.first_divergent_on(b)
            pts = [{"x": r.index, "y": r.rel_l2, "label": f"{r.node} ({r.op_type})", "highlight": not r.passed,
                    "annotate": r is first} for r in self.rows if r.backend == b]
            parts.append(svg_scatter(pts, f"Relative L2 error per node on {b} (orange: beyond tolerance; "
                                     "labelled: the first)",
                                     "node index (graph order)", "rel L2", log_y=True))
        return parts


def _node_module(node: Any) -> str:
    """The torch module path (and class) a node came from, from the exporter's metadata or its name."""
    try:
        from workbench.formats.onnx import onnx_scope

        scope = onnx_scope(node)
    except Exception:  # noqa: BLE001 - metadata we cannot read: no module
        scope = ()
    path = scope[-1] if scope else ""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.class_hierarchy" and path:
            try:
                import ast

                classes = ast.literal_eval(prop.value)
                if len(classes) >= 2:
                    return f"{path} ({str(classes[-2]).rsplit('.', 1)[-1]})"
            except (ValueError, SyntaxError):
                pass
    return path


def _twin(name: str, ref_names: set[str]) -> str | None:
    if name in ref_names:
        return name
    for suffix in QDQ_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in ref_names:
            return name[: -len(suffix)]
    return None


def _onnx_runtime() -> str:
    """ONNX's natural runtime (the reference's, and the one that exports a torch model on the way)."""
    return registry.default_runtime(ONNX)


def _native_runtime(model: Model) -> str | None:
    """The runtime that reads the intermediate tensors of a model in its own format (an IR), if any."""
    return next((n for n in registry.runtimes_with("run_with_outputs")
                 if model.format in getattr(registry.get_runtime(n), "default_for", ())), None)


def _onnx_model(model: Model) -> Model:
    """``model`` as ONNX: itself, or exported (a torch model) through the registered steps."""
    if model.format == ONNX:
        return model
    try:
        registry.route(model.format, ONNX)
    except WorkbenchError:
        raise WorkbenchError(f"compare_layers needs an ONNX model, got {model.format}",
                             "export it first: wb.export(model, 'onnx')") from None
    return routing.prepare_for(model, _onnx_runtime())


def _tensor_types(proto: Any) -> dict[str, tuple[int, list[int | None]]]:
    """Tensor name -> (ONNX elem type, dims with None for unknown), from shape inference."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(proto, data_prop=False).graph
    except Exception:  # noqa: BLE001 - models shape inference cannot handle: types unknown
        inferred = proto.graph
    out = {}
    for vi in [*inferred.value_info, *inferred.output, *inferred.input]:
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        out[vi.name] = (t.elem_type, dims)
    return out


def _run_with_outputs(proto: Any, names: list[str], types: dict[str, tuple[int, list[int | None]]],
                      backend: str, options: dict[str, Any], feeds: Feeds, folder: str) -> tuple[Feeds, str]:
    """Run the ONNX graph ``proto`` with ``names`` as its outputs on ``backend``; returns the outputs and
    the precision it ran in."""
    import onnx
    from onnx import helper

    saved = list(proto.graph.output)
    del proto.graph.output[:]
    for n in names:
        elem = types.get(n, (0, []))[0]
        proto.graph.output.append(helper.make_tensor_value_info(n, elem, None) if elem
                                  else helper.make_empty_tensor_value_info(n))
    path = os.path.join(folder, f"layers-{backend}.onnx")
    try:
        big = proto.ByteSize() > 1_800_000_000  # protobuf's 2 GB limit: weights go to a side file
        onnx.save_model(proto, path, save_as_external_data=big, location=os.path.basename(path) + ".data")
    finally:
        del proto.graph.output[:]
        proto.graph.output.extend(saved)
    model = registry.get_format(ONNX).load(Path(path))
    with routing.runner(model, backend, **options) as r:
        outs = r.infer(feeds_for(model, feeds))
        return outs, precision_of(model, r)


@dataclass
class _LayerTarget:
    """One tensor to compare: where it is in the candidate, and its twin in the reference."""

    index: int
    node: str
    op_type: str
    module: str
    tensor: str  # its name in the candidate (an ONNX tensor name, or a runtime's label of it)
    twin: str  # the reference's tensor name
    nbytes: int
    key: Any = None  # for a model in a runtime's own format: what its run_with_outputs takes


def _onnx_targets(proto: Any, types: dict[str, tuple[int, list[int | None]]], ref_names: set[str],
                  wanted: set[str] | None, batch: int) -> list[_LayerTarget]:
    consumers: dict[str, set[str]] = {}
    for node in proto.graph.node:
        for i in node.input:
            consumers.setdefault(i, set()).add(node.op_type)
    targets = []
    for index, node in enumerate(proto.graph.node):
        if wanted is not None and node.name not in wanted and node.op_type not in wanted:
            continue
        if node.op_type in ("Constant", "QuantizeLinear", "Shape"):
            continue
        for out in node.output:
            elem, dims = types.get(out, (0, []))
            twin = _twin(out, ref_names)
            if not out or twin is None or (elem and elem not in _FLOAT_TYPES):
                continue
            if consumers.get(out) == {"QuantizeLinear"}:
                # only quantized next: its Q→DQ copy is the tensor the model uses (and a quantizer may have
                # dropped a ReLU into the quantization range, so the raw tensor is pre-activation)
                continue
            size = _ONNX_ITEMSIZE.get(elem, 4) * int(np.prod([d if d else batch for d in dims])) if dims else 4 << 20
            targets.append(_LayerTarget(index, node.name, node.op_type, _node_module(node), out, twin, size))
    return targets


def _native_targets(model: Model, runtime: str, ref_names: set[str], producers: dict[str, str],
                    wanted: set[str] | None, batch: int) -> list[_LayerTarget]:
    """The tensors of a model in ``runtime``'s own format (``Runner.layer_tensors``) that have a twin in
    the reference. Rows are named after the reference node that produced the twin, so they line up
    with the ONNX graph."""
    targets = []
    for t in registry.get_runtime(runtime).layer_tensors(model, batch):
        if wanted is not None and t.node not in wanted and t.op_type not in wanted:
            continue
        twin = next((n for n in t.names if n in ref_names), None)
        if twin is None:
            continue
        label = f"{twin} ({t.note})" if t.note else twin
        targets.append(_LayerTarget(t.index, producers.get(twin, t.node), t.op_type, "", label, twin, t.nbytes,
                                    t.key))
    return targets


def compare_layers(
    model: Model,
    backends: str | Sequence[str | tuple[str, dict[str, Any]]] | None = None,
    *,
    reference: Model | None = None,
    nodes: Iterable[str] | None = None,
    inputs: Feeds | None = None,
    tolerances: Any = None,
    chunk_bytes: int = 256 * 2**20,
) -> LayerReport:
    """Compare the output of every node (or the chosen ones) of ``model`` on each runtime with a reference.

    Args:
        model: an ONNX Model (a torch model is exported first), or a model in a runtime's own format
            (an OpenVINO IR, e.g. NNCF's INT8) with ``reference=`` its float ONNX model; such a model
            runs on that runtime only.
        backends: runtimes to check, names or ``(name, {options})`` (e.g. ``("openvino", {"precision": "fp32"})``).
            Default: every available runtime that takes the model (ONNX: each runtime that takes ONNX).
        reference: the float model whose tensors are the truth, matched by name (a quantized model's
            QDQ tensors are matched to their float twins: ``x_DequantizeLinear_Output`` ↔ ``x``, and
            NNCF's FakeQuantize outputs to the tensor they quantize).
            Default: ``model`` itself on ONNX's natural runtime with graph optimisations off (the ONNX
            semantics: ``Runner.as_written_options()``).
        nodes: node names or op types to compare (default: every node with a float output).
        inputs: one set of feeds (default: the model's example inputs).
        tolerances: as for ``wb.compare`` (default: from each runtime's precision, ``tolerances.py``).
        chunk_bytes: the intermediate tensors of one run are kept under about this many bytes; a large
            model is run in several passes, so memory stays bounded on a model of thousands of nodes.

    Returns:
        a LayerReport: ``first_divergent``, ``per_node()``, ``to_frame()``, ``to_json()``.
    """
    given = as_model(model)
    native = _native_runtime(given) if given.format != ONNX else None
    if native is not None and reference is None:
        raise WorkbenchError(f"comparing the layers of a {given.format} model needs the float model it came from",
                             f"pass reference= the ONNX model the {given.format} model was converted or quantized from")
    cand = given if native is not None else _onnx_model(given)
    ref = _onnx_model(as_model(reference, "reference")) if reference is not None else cand
    ref_proto = ref.native()
    # the task's real data where either model has it (a quantized model's calibration range fits it)
    feeds = inputs if inputs is not None else (cand if cand.task is not None else ref).example_inputs()
    if backends is None:
        table = registry.runtimes()
        backends = [native] if native is not None else [
            n for n in registry.runtimes_for(ONNX) if table[n].availability()]
    specs: list[tuple[str, dict[str, Any]]] = []
    for b in [backends] if isinstance(backends, str) else list(backends):
        specs.append((b, {}) if isinstance(b, str) else (b[0], dict(b[1])))
    if not specs:
        raise WorkbenchError("no backends to compare",
                             f"pass backends= some of {', '.join(registry.runtimes_for(cand.format))}")
    labels = []
    for name, opts in specs:
        label = name + (" (" + ", ".join(f"{k}={v}" for k, v in opts.items()) + ")" if opts else "")
        labels.append(label if label not in labels else f"{label} #{len(labels) + 1}")

    ref_types = _tensor_types(ref_proto)
    ref_names = {o for n in ref_proto.graph.node for o in n.output} | {i.name for i in ref_proto.graph.input}
    wanted = set(nodes) if nodes is not None else None
    batch = max([int(np.shape(v)[0]) for v in feeds.values() if np.ndim(v)] or [1])
    if native is not None:
        proto, types = None, {}
        producers = {o: n.name for n in ref_proto.graph.node for o in n.output}
        targets = _native_targets(cand, native, ref_names, producers, wanted, batch)
    else:
        proto = cand.native()
        types = ref_types if proto is ref_proto else _tensor_types(proto)
        targets = _onnx_targets(proto, types, ref_names, wanted, batch)
    if not targets:
        raise WorkbenchError("no node outputs to compare", "check nodes= (node names or op types of the model)")
    chunks: list[list[_LayerTarget]] = [[]]
    used = 0
    for t in targets:
        if chunks[-1] and used + t.nbytes > chunk_bytes:
            chunks.append([])
            used = 0
        chunks[-1].append(t)
        used += t.nbytes

    reference_runtime = _onnx_runtime()
    reference_options = registry.get_runtime(reference_runtime).as_written_options()
    per_output = tolerances if isinstance(tolerances, dict) else {}
    default_spec = None if isinstance(tolerances, dict) else tolerances
    rows: list[LayerRow] = []
    errors: dict[str, str] = {}
    precisions: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="wb-layers-") as tmp:
        for chunk in chunks:
            twins = list(dict.fromkeys(t.twin for t in chunk))
            ref_outs, ref_precision = _run_with_outputs(ref_proto, twins, ref_types, reference_runtime,
                                                        reference_options, feeds, tmp)
            for label, (backend, opts) in zip(labels, specs, strict=True):
                if label in errors:
                    continue
                try:
                    if native is not None:
                        runtime = registry.get_runtime(backend)
                        if runtime.name != native:
                            raise WorkbenchError(f"{runtime.name} cannot run a {cand.format} model's layers",
                                                 f"compare on {native!r}")
                        values, prec = runtime.run_with_outputs(cand, [t.key for t in chunk], feeds, **opts)
                        prec = normalize_precision(prec)
                    else:
                        outs, prec = _run_with_outputs(proto, [t.tensor for t in chunk], types, backend, opts,
                                                       feeds, tmp)
                        values = [outs[t.tensor] for t in chunk]
                except Exception as err:  # noqa: BLE001 - report the runtime that failed, keep the others
                    errors[label] = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
                    continue
                # the candidate's own precision (QDQ / FakeQuantize: int8) and its runtime's (OpenVINO: bf16)
                precision = loosest(prec, ref_precision, precision_of(cand))
                precisions[label] = precision
                for t, value in zip(chunk, values, strict=True):
                    crit = criterion(per_output.get(t.tensor, default_spec), precision)
                    res = compare_arrays(ref_outs[t.twin], value, crit, name=t.tensor, label=label,
                                         precision=precision, kind="tensor")
                    rows.append(LayerRow(label, t.index, t.node, t.op_type, t.tensor, t.twin, t.module, res.passed,
                                         precision, res.rel_l2, res.max_abs, res.max_abs_rel, res.cosine, res.reason))
                del values
            del ref_outs
    tol_text = {}
    for label, prec in precisions.items():
        crit = criterion(default_spec, prec)
        tol_text[label] = crit.describe() if isinstance(crit, Check) else f"{prec}: rel_l2≤{crit.rel_l2:g}, cos≥{crit.cosine:g}"
    reference_text = "float reference" if reference is not None else f"{reference_runtime}, graph as written"
    return LayerReport(rows, labels, reference_text, cand.name, tol_text, len(chunks), errors)

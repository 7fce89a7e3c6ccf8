"""One graph model for every format: nodes, edges, shapes, dtypes, parameters, MACs, hierarchy.

This module holds the data structures (``Graph``, ``Node``, ``Tensor``, ``Weight``, ``Edge``), the op
families and categories, and the format-agnostic algorithms (parameters, MACs, precision per node,
module hierarchy, statistics, the widget's payload). Reading a graph is the format plugin's job:
``Graph.from_model(model)`` (what ``Model.graph()`` does too) asks the model's registered format
(``workbench.core.registry.get_format(model.format).graph(model)``); the readers live in
``workbench/formats/*.py``. Comparing two graphs is ``workbench.analysis.graph_diff``.

Conventions, the same for every format:

- **Nodes** are operators. Constants are not nodes: ONNX initializers and ``Constant`` nodes, OpenVINO
  ``Constant`` ops (and ``Convert`` ops that only decompress a constant), and torch parameters and
  buffers become the **weights** of the nodes that read them. Graph inputs and outputs are listed in
  ``Graph.inputs`` / ``Graph.outputs``, not as nodes.
- **Edges** connect a producing node to a consuming node, one per (producer, consumer, tensor).
- **Parameters** count the elements of weight tensors (float, or int8/uint8/int4 for quantized
  weights); shapes, indices, quantization scales and zero points, and torch buffers (BatchNorm
  running statistics) are not parameters.
- **MACs** (multiply-accumulates) count convolutions, transposed convolutions and matrix products
  (MatMul, Gemm, Linear) at the graph's static shapes, the convention of fvcore and thop; symbolic
  dimensions count as 1. Element-wise operators count 0.
- **Scope** is the module hierarchy of a node: the torch module path (``("layer1", "layer1.0",
  "layer1.0.conv1")``) or the ONNX/OpenVINO name scopes (``/layer1/layer1.0/conv1/Conv``).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.model import human_bytes

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from workbench.core.model import Model

Shape = tuple[int | str, ...]

# low-precision dtypes, by the names readers give them (NumPy / ml_dtypes names for ONNX, OpenVINO's otherwise)
_QUANT_DTYPES = {"int8", "uint8", "int4", "uint4", "nf4", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2",
                 "float8_e5m2fnuz", "float8e4m3", "float8e5m2", "float4_e2m1fn"}
# dtypes whose tensors count as parameters (weights), as opposed to shapes/indices/masks
_PARAM_DTYPES = {"float32", "float16", "bfloat16", "float64", *_QUANT_DTYPES}
# operators that are quantized by nature (ONNX QOperator/QDQ, OpenVINO FakeQuantize)
_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
              "ConvInteger", "MatMulInteger", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool",
              "QGemm", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearConcat", "FakeQuantize",
              "FakeConvert", "DynamicQuantizeMatMul", "MatMulNBits"}
# input positions that hold quantization parameters (scales, zero points), never parameters
_QPARAM_POSITIONS = {"QuantizeLinear": {1, 2}, "DequantizeLinear": {1, 2}, "QLinearConv": {1, 2, 4, 5, 6, 7},
                     "QLinearMatMul": {1, 2, 4, 5, 6, 7}, "ConvInteger": {2, 3}, "MatMulInteger": {2, 3},
                     "FakeQuantize": {1, 2, 3, 4}, "MatMulNBits": {2, 3}}


# --------------------------------------------------------------------------------------------------
# data classes
# --------------------------------------------------------------------------------------------------
@dataclass
class Tensor:
    """A value flowing between nodes: name, shape (ints, strings for symbolic dims, None unknown), dtype."""

    name: str
    shape: Shape | None = None
    dtype: str | None = None

    @property
    def numel(self) -> int | None:
        if self.shape is None:
            return None
        return math.prod(d if isinstance(d, int) else 1 for d in self.shape)


@dataclass
class Weight:
    """A constant tensor read by nodes (a parameter, buffer, initializer or constant)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    is_param: bool = True
    loader: Callable[[], np.ndarray] | None = field(default=None, repr=False)
    #: the weight this one is a decompressed view of (OpenVINO's Convert of a Constant), counted there
    source: str | None = field(default=None, repr=False)

    @property
    def numel(self) -> int:
        if not self.shape:
            return 1
        n = math.prod(self.shape)  # the common case: a tuple of Python ints
        return n if type(n) is int else math.prod(int(d) for d in self.shape)

    @property
    def nbytes(self) -> int:
        bits = _SUB_BYTE_BITS.get(self.dtype)
        if bits is not None:
            return (self.numel * bits + 7) // 8
        size = _itemsize(self.dtype)
        return self.numel * (size if size is not None else 2 if self.dtype == "bfloat16" else 1)

    def array(self) -> np.ndarray | None:
        """The values, loaded on demand (None when the format does not give them)."""
        if self.loader is None:
            return None
        return np.asarray(self.loader())

    def stats(self) -> dict[str, Any]:
        """Shape, dtype and value statistics (min, max, mean, std, share of zeros)."""
        out: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                               "numel": self.numel, "parameter": self.is_param}
        try:
            arr = self.array()
        except Exception as err:  # noqa: BLE001 - statistics are best effort
            out["note"] = f"values not readable: {err}"
            return out
        if arr is None or arr.size == 0 or arr.dtype.kind not in "fiub":
            return out
        a = arr.astype(np.float64, copy=False).ravel()
        out.update(min=float(a.min()), max=float(a.max()), mean=float(a.mean()), std=float(a.std()),
                   zeros=float(np.count_nonzero(a == 0) / a.size))
        return out


_SUB_BYTE_BITS = {"int4": 4, "uint4": 4, "nf4": 4, "uint1": 1}


@functools.lru_cache(maxsize=256)
def _itemsize(dtype: str) -> int | None:
    """Bytes per element of a NumPy dtype name (None for names NumPy does not know)."""
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return None


@dataclass
class Node:
    """One operator.

    ``inputs`` holds every input tensor name in the operator's order, weights included;
    ``weights`` is the subset that are constants. ``scope`` is the module path, outermost first.
    """

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    weights: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    scope: tuple[str, ...] = ()
    params: int = 0
    macs: int = 0
    precision: str = "float32"
    index: int = 0
    #: input tensor name -> its position among the operator's inputs (to tell weights from scales)
    positions: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def module(self) -> str:
        """The innermost module path ("" at the top level)."""
        return self.scope[-1] if self.scope else ""


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    tensor: str


@functools.lru_cache(maxsize=4096)  # a graph has few distinct ops and thousands of nodes
def canonical_op(op: str) -> str:
    """An op family name shared across formats ("Conv", "Convolution", "aten.conv2d" -> "conv")."""
    o = op.split("::")[-1].lower()
    if o.startswith("aten."):
        o = o[5:]
    o = o.split(".")[0].rstrip("_")
    return _OP_FAMILY.get(o, o)


_OP_FAMILY = {
    "conv": "conv", "conv1d": "conv", "conv2d": "conv", "conv3d": "conv", "convolution": "conv",
    "_convolution": "conv", "groupconvolution": "conv", "qlinearconv": "conv", "convinteger": "conv",
    "convtranspose": "convtranspose", "conv_transpose1d": "convtranspose", "conv_transpose2d": "convtranspose",
    "convolutionbackpropdata": "convtranspose", "groupconvolutionbackpropdata": "convtranspose",
    "matmul": "matmul", "gemm": "matmul", "linear": "matmul", "mm": "matmul", "addmm": "matmul",
    "bmm": "matmul", "qlinearmatmul": "matmul", "matmulinteger": "matmul", "fullyconnected": "matmul",
    "qgemm": "matmul", "matmulnbits": "matmul",
    "batchnormalization": "batchnorm", "batch_norm": "batchnorm", "batchnorminference": "batchnorm",
    "_native_batch_norm_legit_no_training": "batchnorm",
    "layernormalization": "layernorm", "layer_norm": "layernorm", "mvn": "layernorm",
    "maxpool": "maxpool", "max_pool2d": "maxpool", "max_pool1d": "maxpool",
    "max_pool2d_with_indices": "maxpool",
    "globalaveragepool": "avgpool", "adaptive_avg_pool2d": "avgpool", "avgpool": "avgpool",
    "avg_pool2d": "avgpool", "reducemean": "avgpool", "mean": "avgpool",
    "flatten": "reshape", "reshape": "reshape", "view": "reshape", "squeeze": "reshape",
    "unsqueeze": "reshape", "_unsafe_view": "reshape",
    "relu": "relu", "add": "add", "mul": "mul", "multiply": "mul", "sub": "sub", "subtract": "sub",
    "div": "div", "divide": "div", "sigmoid": "sigmoid", "gelu": "gelu", "softmax": "softmax",
    "_softmax": "softmax", "concat": "concat", "cat": "concat", "transpose": "transpose",
    "permute": "transpose", "clip": "clamp", "clamp": "clamp", "hardtanh": "clamp", "relu6": "clamp",
    "identity": "identity", "dropout": "identity", "clone": "identity", "contiguous": "identity",
    "convert": "cast", "cast": "cast", "_to_copy": "cast", "to": "cast",
    "quantizelinear": "quantize", "dequantizelinear": "dequantize", "fakequantize": "fakequantize",
    # TFLite builtins (CONV_2D, …)
    "conv_2d": "conv", "depthwise_conv_2d": "conv", "fully_connected": "matmul", "batch_matmul": "matmul",
    "depthwiseconv2d": "conv",  # XNNPACK's (ExecuTorch delegate graphs)
    "max_pool_2d": "maxpool", "average_pool_2d": "avgpool", "concatenation": "concat", "logistic": "sigmoid",
    "quantize": "quantize", "dequantize": "dequantize",
}
_CATEGORY = {
    "conv": "conv", "convtranspose": "conv", "matmul": "matmul", "batchnorm": "norm", "layernorm": "norm",
    "maxpool": "pool", "avgpool": "pool", "relu": "activation", "sigmoid": "activation", "gelu": "activation",
    "softmax": "activation", "clamp": "activation", "tanh": "activation", "silu": "activation",
    "hardswish": "activation", "erf": "activation",
    "reshape": "shape", "transpose": "shape", "concat": "shape", "gather": "shape", "slice": "shape",
    "shape": "shape", "shapeof": "shape", "split": "shape", "expand": "shape",
    "add": "elementwise", "mul": "elementwise", "sub": "elementwise", "div": "elementwise", "pow": "elementwise",
    "sqrt": "elementwise",
    "quantize": "quant", "dequantize": "quant", "fakequantize": "quant", "cast": "quant",
}


@functools.lru_cache(maxsize=4096)
def op_category(op: str) -> str:
    """A colour family for an op: conv, matmul, norm, pool, activation, shape, elementwise, quant, other."""
    if op in _QUANT_OPS:
        return "quant"
    return _CATEGORY.get(canonical_op(op), "other")


# --------------------------------------------------------------------------------------------------
# Graph
# --------------------------------------------------------------------------------------------------
class Graph:
    """A model's graph in one shape for every format.

    Attributes:
        name, format: the model's name and format (``"onnx"``, ``"openvino"``, ``"exported_program"``, …).
        nodes: ``[Node]`` in topological order.
        tensors: ``{name: Tensor}`` for every value with its shape and dtype where known.
        weights: ``{name: Weight}`` constants read by nodes.
        inputs, outputs: graph input and output tensor names.
        notes: what could not be read (e.g. shapes unknown for a TorchScript model without example inputs).
    """

    def __init__(self, name: str, format: str, nodes: list[Node], tensors: dict[str, Tensor],
                 weights: dict[str, Weight], inputs: list[str], outputs: list[str],
                 notes: Iterable[str] = (), size_bytes: int | None = None):
        self.name = name
        self.format = format
        self.nodes = _unique_names(nodes)
        for i, n in enumerate(self.nodes):
            n.index = i
        self.tensors = tensors
        self.weights = weights
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.notes = list(notes)
        self._file_size = size_bytes
        self._by_name = {n.name: n for n in self.nodes}
        self.producer: dict[str, str] = {}
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for n in self.nodes:
            for t in n.outputs:
                self.producer[t] = n.name
        # consumers and edges in one pass over the inputs (after every producer is known)
        producer, consumers = self.producer, self.consumers
        seen: set[tuple[str, str, str]] = set()  # plain tuples: hashing frozen dataclasses is slow
        self.edges: list[Edge] = []
        for n in self.nodes:
            name = n.name
            for t in n.inputs:
                src = producer.get(t)
                if src is not None:
                    consumers[t].append(name)
                    key = (src, name, t)
                    if key not in seen:
                        seen.add(key)
                        self.edges.append(Edge(src, name, t))
        self._compute_costs()

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: Model) -> Graph:
        """The graph of a ``workbench.Model``, read by its format's plugin (``Format.graph``)."""
        from workbench.core import registry

        return registry.get_format(model.format).graph(model)

    def with_file_size(self, model: Model) -> Graph:
        """Record the size of ``model``'s files (what ``size_bytes`` reports) and return the graph."""
        try:
            self._file_size = model.size_bytes
        except Exception:  # noqa: BLE001 - a model without readable files: size of the weights instead
            pass
        return self

    # -- costs -----------------------------------------------------------------------------------
    def _compute_costs(self) -> None:
        for n in self.nodes:
            try:
                n.macs = _macs(n, self) if canonical_op(n.op) in _MAC_FAMILIES else 0
            except Exception:  # noqa: BLE001 - unknown shapes: 0 MACs
                n.macs = 0
            n.precision = self._precision(n)

    def _precision(self, n: Node) -> str:
        if n.op in _QUANT_OPS:
            return "quantized"
        tensors, producer = self.tensors, self.producer
        for t in n.inputs:
            tt = tensors.get(t)
            if tt is not None and tt.dtype and tt.dtype in _QUANT_DTYPES:
                return "quantized"
        # QDQ form: every float data input comes from a DequantizeLinear / FakeQuantize
        srcs = [self._by_name[producer[t]].op for t in n.inputs if t in producer]
        if srcs and all(s in ("DequantizeLinear", "FakeQuantize") for s in srcs):
            return "quantized"
        for t in n.outputs:
            tt = tensors.get(t)
            if tt is not None and tt.dtype:
                return tt.dtype
        return "unknown"

    # -- queries ---------------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        """The node called ``name`` (KeyError with close names when absent)."""
        try:
            return self._by_name[name]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(name, list(self._by_name), n=3)
            raise KeyError(f"no node {name!r}" + (f"; did you mean {close}?" if close else "")) from None

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self.nodes)

    @property
    def num_params(self) -> int:
        """Parameters: elements of the weights counted as parameters (each shared weight once)."""
        return sum(w.numel for w in self.weights.values() if w.is_param)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of convolutions and matrix products at the graph's static shapes."""
        return sum(n.macs for n in self.nodes)

    @property
    def size_bytes(self) -> int:
        """Bytes of the model file(s) when known, else of the weights."""
        if self._file_size:
            return int(self._file_size)
        return sum(w.nbytes for w in self.weights.values() if w.source is None)

    def op_histogram(self) -> dict[str, int]:
        """``{op: count}``, most frequent first."""
        return dict(Counter(n.op for n in self.nodes).most_common())

    def predecessors(self, name: str) -> list[str]:
        return list(dict.fromkeys(self.producer[t] for t in self.node(name).inputs if t in self.producer))

    def successors(self, name: str) -> list[str]:
        return list(dict.fromkeys(c for t in self.node(name).outputs for c in self.consumers.get(t, ())))

    def hierarchy(self) -> dict[str, Any]:
        """The module tree: ``{"name", "path", "nodes", "params", "macs", "children": [...]}``."""
        root: dict[str, Any] = {"name": self.name, "path": "", "nodes": 0, "params": 0, "macs": 0, "children": {}}
        for n in self.nodes:
            cur = root
            cur["nodes"] += 1
            cur["params"] += n.params
            cur["macs"] += n.macs
            for k in range(len(n.scope)):
                path = "/".join(n.scope[: k + 1])
                child = cur["children"].get(path)
                if child is None:
                    child = {"name": _short(n.scope[k], n.scope[k - 1] if k else ""), "path": path, "nodes": 0,
                             "params": 0, "macs": 0, "children": {}}
                    cur["children"][path] = child
                cur = child
                cur["nodes"] += 1
                cur["params"] += n.params
                cur["macs"] += n.macs

        def freeze(d: dict[str, Any]) -> dict[str, Any]:
            return {**d, "children": [freeze(c) for c in d["children"].values()]}

        return freeze(root)

    def stats(self) -> dict[str, Any]:
        """Model statistics: nodes, edges, parameters, MACs, size, op histogram, precision mix."""
        return {
            "name": self.name, "format": self.format, "nodes": len(self.nodes), "edges": len(self.edges),
            "inputs": [self._tensor_dict(t) for t in self.inputs],
            "outputs": [self._tensor_dict(t) for t in self.outputs],
            "params": self.num_params, "macs": self.macs, "size_bytes": self.size_bytes,
            "weights_bytes": sum(w.nbytes for w in self.weights.values() if w.source is None),
            "op_histogram": self.op_histogram(),
            "precision": dict(Counter(n.precision for n in self.nodes).most_common()),
            "notes": list(self.notes),
        }

    def _tensor_dict(self, name: str) -> dict[str, Any]:
        t = self.tensors.get(name, Tensor(name))
        return {"name": name, "shape": None if t.shape is None else list(t.shape), "dtype": t.dtype}

    def quantized(self) -> dict[str, str]:
        """``{node: "quantized" | "float"}``, the overlay for quantized vs float nodes."""
        return {n.name: "quantized" if n.precision == "quantized" else "float" for n in self.nodes}

    def details(self, name: str) -> dict[str, Any]:
        """Everything the details panel shows for one node (weights with statistics)."""
        n = self.node(name)
        return {
            "name": n.name, "op": n.op, "module": n.module, "scope": list(n.scope), "params": n.params,
            "macs": n.macs, "precision": n.precision, "attributes": {k: jsonable(v) for k, v in n.attrs.items()},
            "inputs": [{**self._tensor_dict(t), "from": self.producer.get(t)} for t in n.inputs
                       if t not in n.weights],
            "outputs": [{**self._tensor_dict(t), "to": self.consumers.get(t, [])} for t in n.outputs],
            "weights": [self.weights[w].stats() for w in n.weights],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per node: name, op, module, output shape, dtype, params, MACs, precision."""
        import pandas as pd

        rows = []
        for n in self.nodes:
            t = self.tensors.get(n.outputs[0]) if n.outputs else None
            rows.append({"name": n.name, "op": n.op, "module": n.module,
                         "output_shape": None if t is None or t.shape is None else tuple(t.shape),
                         "dtype": t.dtype if t else None, "params": n.params, "macs": n.macs,
                         "precision": n.precision})
        return pd.DataFrame(rows)

    def summary(self) -> str:
        s = self.stats()
        top = ", ".join(f"{k}×{v}" for k, v in list(s["op_histogram"].items())[:6])
        return (f"{self.name} ({self.format}): {s['nodes']} nodes, {s['edges']} edges, "
                f"{_human(s['params'])} params, {_human(s['macs'])} MACs, {human_bytes(s['size_bytes'])}; {top}")

    def __repr__(self) -> str:
        return f"<Graph {self.summary()}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())

    # -- the widget's payload --------------------------------------------------------------------
    def to_view(self) -> dict[str, Any]:
        """The graph widget's payload (``widgets/schema/graph.schema.json``, ``GraphPayload``); see ``_payload``."""
        with gc_paused():
            return self._payload()

    def _payload(self) -> dict[str, Any]:
        """The graph widget's payload (``widgets/schema/graph.schema.json``, ``GraphPayload``).

        Tables are stored by column, each field named: ``nodes`` (``name``, ``op``, ``category``,
        ``scope``, ``shape``, ``dtype``, ``params``, ``macs``, ``precision``), ``edges`` (``src``,
        ``dst`` node indices and the tensor's ``shape``) and ``scopes`` (the module tree: ``label``,
        ``parent``, ``path``). Graph inputs and outputs are added as nodes of op ``Input`` / ``Output``.
        """
        scopes = ScopeTable()
        cols: dict[str, list[Any]] = {k: [] for k in NODE_COLUMNS}
        index: dict[str, int] = {}

        columns = [cols[k] for k in NODE_COLUMNS]

        def add(key: str, *row: Any) -> None:  # one value per NODE_COLUMNS entry, in its order
            index[key] = len(columns[0])
            for col, v in zip(columns, row, strict=True):
                col.append(v)

        for t in self.inputs:
            tt = self.tensors.get(t, Tensor(t))
            add(f"input:{t}", t, "Input", "io", -1, shape_str(tt.shape), tt.dtype or "", 0, 0, "")
        tensors, names = self.tensors, columns[0]
        for n in self.nodes:  # the hot loop (one row per node): columns appended directly
            t = tensors.get(n.outputs[0]) if n.outputs else None
            index[n.name] = len(names)
            for col, v in zip(columns, (n.name, n.op, op_category(n.op), scopes.id(n.scope),
                                        shape_str(t.shape if t else None), (t.dtype if t else "") or "",
                                        int(n.params), int(n.macs), n.precision), strict=True):
                col.append(v)
        for t in self.outputs:
            tt = self.tensors.get(t, Tensor(t))
            add(f"output:{t}", t, "Output", "io", -1, shape_str(tt.shape), tt.dtype or "", 0, 0, "")
        edges: dict[str, list[Any]] = {"src": [], "dst": [], "shape": []}

        def edge(src: str, dst: str, tensor: str | None) -> None:
            edges["src"].append(index[src])
            edges["dst"].append(index[dst])
            edges["shape"].append(shape_str(self.tensors.get(tensor, Tensor("")).shape) if tensor else "")

        for e in self.edges:
            edge(e.src, e.dst, e.tensor)
        for t in self.inputs:
            for c in self.consumers.get(t, []):
                edge(f"input:{t}", c, t)
        input_set = set(self.inputs)
        for n in self.nodes:  # graph inputs are not produced by nodes, so consumers were not recorded
            for t in n.inputs:
                if t in input_set and n.name not in self.consumers.get(t, []):
                    edge(f"input:{t}", n.name, t)
        for t in self.outputs:
            if t in self.producer:
                edge(self.producer[t], f"output:{t}", t)
            elif t in input_set:
                edge(f"input:{t}", f"output:{t}", t)
        stats = self.stats()
        return {"version": VIEW_VERSION, "name": self.name, "format": self.format, "nodes": cols, "edges": edges,
                "scopes": scopes.table(), "stats": {k: v for k, v in stats.items() if k not in ("inputs", "outputs")}}


#: the graph payload's version (``widgets/schema/graph.schema.json``); bumped when a field changes meaning
VIEW_VERSION = 2
#: the node table's columns, in the order ``Graph.to_view`` fills them
NODE_COLUMNS = ("name", "op", "category", "scope", "shape", "dtype", "params", "macs", "precision")


class ScopeTable:
    """The module tree of a graph payload: one id per scope tuple, parents before children.

    Each scope gets its full module ``path`` ("layer1.0.conv1") and a ``label`` for its folded box:
    the last path segment, with the container's name when the segment is a number ("layer1.0", never
    "0"), so the boxes of a ``ModuleList`` read as layers.
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[str, ...], int] = {(): -1}
        self.label: list[str] = []
        self.parent: list[int] = []
        self.path: list[str] = []

    def id(self, scope: tuple[str, ...]) -> int:
        """The id of ``scope`` (a tuple of module paths, outermost first), adding it and its parents."""
        found = self._ids.get(scope)
        if found is not None:
            return found
        parent = self.id(scope[:-1])
        parent_path = self.path[parent] if parent >= 0 else ""
        path = module_path(scope[-1], parent_path)
        self._ids[scope] = len(self.path)
        self.label.append(scope_label(path, parent_path))
        self.parent.append(parent)
        self.path.append(path)
        return self._ids[scope]

    def add_path(self, path: str, parent: int) -> int:
        """A scope given by its full path and its parent's id (merging trees of two graphs)."""
        key = (*self._key(parent), path)
        if key in self._ids:
            return self._ids[key]
        self._ids[key] = len(self.path)
        self.label.append(scope_label(path, self.path[parent] if parent >= 0 else ""))
        self.parent.append(parent)
        self.path.append(path)
        return self._ids[key]

    def _key(self, sid: int) -> tuple[str, ...]:
        out: list[str] = []
        while sid >= 0:
            out.append(self.path[sid])
            sid = self.parent[sid]
        return tuple(reversed(out))

    def table(self) -> dict[str, list[Any]]:
        return {"label": self.label, "parent": self.parent, "path": self.path}


def module_path(entry: str, parent_path: str) -> str:
    """A scope entry's full module path: torch scopes are full paths already ("layer1.0" under "layer1");
    ONNX name scopes may be relative ("conv1" under "layer1.0" -> "layer1.0.conv1")."""
    if not parent_path or entry == parent_path or entry.startswith(parent_path + "."):
        return entry
    return f"{parent_path}.{entry}"


def scope_label(path: str, parent_path: str) -> str:
    """A module box's label: the path relative to its parent; a numbered child is named from the
    nearest named module above it ("encoder.layer.0" -> "layer.0", "layers.1.2" -> "layers.1.2")."""
    rel = path[len(parent_path) + 1:] if parent_path and path.startswith(parent_path + ".") else path
    last = rel.rpartition(".")[2]
    if not last.isdigit():
        return last or rel
    segs = path.split(".")
    k = len(segs) - 1
    while k > 0 and segs[k].isdigit():
        k -= 1
    return ".".join(segs[k:])



# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a block that allocates many small acyclic objects
    (a large graph's nodes, tensors and payload columns): its passes over them cost a third of the
    build. Objects are still freed by reference counting; the collector resumes (if it was on) after."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _unique_names(nodes: list[Node]) -> list[Node]:
    seen: dict[str, int] = {}
    for n in nodes:
        if n.name in seen:
            seen[n.name] += 1
            n.name = f"{n.name}#{seen[n.name]}"
        else:
            seen[n.name] = 0
    return nodes


def mark_params(nodes: list[Node], weights: dict[str, Weight], respect_flags: bool = False) -> None:
    """Decide which weights are parameters, and give each node the parameters it reads.

    A reader calls this before building the ``Graph``. With ``respect_flags`` the readers' own
    ``Weight.is_param`` stands (torch knows its parameters from its buffers); otherwise a weight is a
    parameter when its dtype is a weight dtype and its input position is not a quantization parameter.
    """
    counted: set[str] = set()
    for n in nodes:
        qpos = _QPARAM_POSITIONS.get(n.op, set())
        positions = n.positions
        total = 0
        for w in n.weights:
            wt = weights[w]
            if wt.source is not None:  # a decompressed view of another constant
                wt.is_param = False
                src = weights[wt.source]
                if src.name not in counted and src.dtype in _PARAM_DTYPES and src.numel > 1:
                    total += src.numel
                counted.add(src.name)
                continue
            if not respect_flags:
                # a scalar constant (an epsilon, a scale, a 0.5) is a number in the formula, not a parameter
                is_param = wt.dtype in _PARAM_DTYPES and wt.numel > 1 and positions.get(w, 0) not in qpos
                if n.op == "DequantizeLinear" and positions.get(w) == 0:
                    is_param = True  # int32 biases are parameters too
                if w in counted:
                    is_param = is_param or wt.is_param
                wt.is_param = is_param if w not in counted else wt.is_param or is_param
            if wt.is_param:
                total += wt.numel
            counted.add(w)
        n.params = total
    if not respect_flags:
        for name, wt in weights.items():  # weights nobody reads are not parameters
            if name not in counted and wt.source is None:
                wt.is_param = False


_MAC_FAMILIES = frozenset(("conv", "convtranspose", "matmul"))


def _macs(n: Node, g: Graph) -> int:
    fam = canonical_op(n.op)
    if fam not in _MAC_FAMILIES:
        return 0

    def shape(i: int) -> tuple[int, ...] | None:
        if i >= len(n.inputs):
            return None
        t = g.tensors.get(n.inputs[i])
        if t is None or t.shape is None:
            return None
        return tuple(d if isinstance(d, int) else 1 for d in t.shape)

    out = g.tensors.get(n.outputs[0]) if n.outputs else None
    out_numel = out.numel if out is not None else None
    if not out_numel:
        return 0
    op = n.op.split(".")[-1] if n.op.startswith("aten.") else n.op
    if fam == "conv":
        widx = 3 if n.op == "QLinearConv" else 1
        if op == "convolution" and len(n.inputs) > 1 and n.attrs.get("transposed"):  # aten.convolution(transposed=True)
            fam = "convtranspose"
        else:
            w = shape(widx)
            if not w:
                return 0
            if n.op in ("DEPTHWISE_CONV_2D", "DepthwiseConv2d"):  # TFLite, XNNPACK: [1, kh, kw, channels]
                return out_numel * math.prod(w[1:3])
            per = math.prod(w[2:] if n.op == "GroupConvolution" else w[1:])
            return out_numel * per
    if fam == "convtranspose":
        x, w = shape(0), shape(1)
        if not x or not w:
            return 0
        per = math.prod(w[2:] if n.op == "GroupConvolutionBackpropData" else w[1:])
        return math.prod(x) * per
    # matmul family
    if n.op == "Gemm":
        a = shape(0)
        return out_numel * (a[0] if n.attrs.get("transA") else a[-1]) if a else 0
    if op in ("linear",):
        w = shape(1)
        return out_numel * w[-1] if w else 0
    if op in ("addmm",):
        a = shape(1)
        return out_numel * a[-1] if a else 0
    if n.op == "MatMul" and n.attrs.get("transpose_a"):
        a = shape(0)
        return out_numel * a[-2] if a and len(a) >= 2 else 0
    a = shape(0)
    return out_numel * a[-1] if a else 0



def path_scope(name: str) -> tuple[str, ...]:
    """Scopes from a "/"-separated name: "/layer1/layer1.0/conv1/Conv" or "__module.layer1.0.conv1/aten::x/Y"."""
    if "/" not in name:
        return ()
    parts = [p for p in name.split("/") if p]
    if parts and parts[0].startswith("__module."):
        return dotted_scope(parts[0][len("__module."):])
    parts = parts[:-1] if name.startswith("/") or len(parts) > 1 else parts
    while parts and (parts[-1][:1].isupper() or "::" in parts[-1]):  # trailing op names
        parts = parts[:-1]
    return tuple(parts)


def dotted_scope(path: str) -> tuple[str, ...]:
    """"layer1.0.conv1" -> ("layer1", "layer1.0", "layer1.0.conv1")."""
    if not path:
        return ()
    pieces = path.split(".")
    return tuple(".".join(pieces[: k + 1]) for k in range(len(pieces)))



def _short(label: str, parent: str) -> str:
    """A scope's label relative to its parent ("layer1.0.conv1" under "layer1.0" -> "conv1")."""
    if parent and label.startswith(parent + "."):
        return label[len(parent) + 1:]
    return label



def shape_str(shape: Shape | None) -> str:
    """``(1, 3, "batch")`` -> ``"1×3×batch"`` (``"scalar"`` for ``()``, ``""`` when unknown)."""
    if shape is None:
        return ""
    return "×".join(str(d) for d in shape) if shape else "scalar"


def jsonable(v: Any) -> Any:
    """``v`` as plain JSON values (arrays summarised beyond 64 elements, non-finite floats as text)."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v][:256]
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 64 else f"array{list(v.shape)}"
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)


def _human(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f} {unit}"
    return str(int(n))


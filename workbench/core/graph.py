"""One graph model for every format: nodes, edges, shapes, dtypes, parameters, MACs, hierarchy, diff.

``Graph.from_model(model)`` (what ``Model.graph()`` calls) reads ONNX, OpenVINO IR, torch.export
``ExportedProgram`` (and ``nn.Module`` / Hugging Face models, exported on the fly), and TorchScript.

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

import ast
import math
import operator
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import ModelFormatError, WorkbenchError
from workbench.core.model import human_bytes

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from workbench.core.model import Model

Shape = tuple[int | str, ...]

_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
                8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
                16: "bfloat16", 17: "float8e4m3fn", 19: "float8e5m2", 21: "uint4", 22: "int4"}
_OV_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64", "i8": "int8",
              "u8": "uint8", "i4": "int4", "u4": "uint4", "i16": "int16", "u16": "uint16", "i32": "int32",
              "u32": "uint32", "i64": "int64", "u64": "uint64", "boolean": "bool", "u1": "uint1",
              "f8e4m3": "float8e4m3", "f8e5m2": "float8e5m2", "nf4": "nf4"}
# dtypes whose tensors count as parameters (weights), as opposed to shapes/indices/masks
_PARAM_DTYPES = {"float32", "float16", "bfloat16", "float64", "int8", "uint8", "int4", "uint4", "nf4",
                 "float8e4m3fn", "float8e5m2", "float8e4m3"}
_QUANT_DTYPES = {"int8", "uint8", "int4", "uint4", "nf4", "float8e4m3fn", "float8e5m2", "float8e4m3"}
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

    @property
    def numel(self) -> int:
        return math.prod(int(d) for d in self.shape) if self.shape else 1

    @property
    def nbytes(self) -> int:
        bits = {"int4": 4, "uint4": 4, "nf4": 4, "uint1": 1}.get(self.dtype)
        if bits is not None:
            return (self.numel * bits + 7) // 8
        try:
            return self.numel * np.dtype(self.dtype).itemsize
        except TypeError:
            return self.numel * (2 if self.dtype == "bfloat16" else 1)

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

    @property
    def module(self) -> str:
        """The innermost module path ("" at the top level)."""
        return self.scope[-1] if self.scope else ""


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    tensor: str


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
}
# ops a structural match may look through (inserted by quantization, conversion or export)
_TRANSPARENT = {"quantize", "dequantize", "fakequantize", "cast", "identity"}

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
        for n in self.nodes:
            for t in n.inputs:
                if t in self.producer:
                    self.consumers[t].append(n.name)
        seen: set[Edge] = set()
        self.edges: list[Edge] = []
        for n in self.nodes:
            for t in n.inputs:
                src = self.producer.get(t)
                if src is not None:
                    e = Edge(src, n.name, t)
                    if e not in seen:
                        seen.add(e)
                        self.edges.append(e)
        self._compute_costs()

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: Model) -> Graph:
        """The graph of a ``workbench.Model`` in any format the graph view reads."""
        fmt = model.format
        if fmt == "onnx":
            g = cls.from_onnx(model.native(), name=model.name)
        elif fmt == "openvino":
            g = cls.from_openvino(model.native(), name=model.name)
        elif fmt == "exported_program":
            g = cls.from_exported_program(model.native(), name=model.name, input_names=model.input_names)
        elif fmt == "torchscript":
            feeds = None
            try:
                feeds = model.example_inputs()
            except Exception:  # noqa: BLE001 - shapes are optional for TorchScript
                feeds = None
            g = cls.from_torchscript(model.native(), feeds, name=model.name, input_names=model.input_names)
        elif fmt in ("torch", "hf"):
            g = cls.from_module(model.native(), model.example_inputs(), name=model.name,
                                input_names=model.input_names, keyword=fmt == "hf")
        else:
            raise ModelFormatError(f"the native graph view does not read {fmt} models",
                                   "show it with wb.show(model, viewer='netron'), or convert it to ONNX first")
        try:
            g._file_size = model.size_bytes
        except Exception:  # noqa: BLE001
            pass
        return g

    @classmethod
    def from_onnx(cls, proto: Any, name: str | None = None) -> Graph:
        """Read an ``onnx.ModelProto`` (shapes from ONNX shape inference where the file lacks them)."""
        import onnx
        from onnx import numpy_helper

        if isinstance(proto, str | bytes) or hasattr(proto, "__fspath__"):
            proto = onnx.load(proto)
        notes: list[str] = []
        try:
            inferred = onnx.shape_inference.infer_shapes(proto)
        except Exception as err:  # noqa: BLE001 - a graph without inferred shapes is still a graph
            inferred = proto
            notes.append(f"ONNX shape inference failed ({str(err).splitlines()[0][:120]}); some shapes are unknown")
        g = inferred.graph
        tensors: dict[str, Tensor] = {}

        def vi_tensor(vi: Any) -> Tensor:
            tt = vi.type.tensor_type
            shape: Shape | None = None
            if tt.HasField("shape"):
                shape = tuple(int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                              for d in tt.shape.dim)
            return Tensor(vi.name, shape, _ONNX_DTYPES.get(tt.elem_type) if tt.elem_type else None)

        for vi in [*g.input, *g.output, *g.value_info]:
            tensors[vi.name] = vi_tensor(vi)
        weights: dict[str, Weight] = {}
        for init in proto.graph.initializer:  # the original proto: its arrays are loaded already
            weights[init.name] = Weight(init.name, tuple(int(d) for d in init.dims),
                                        _ONNX_DTYPES.get(init.data_type, str(init.data_type)),
                                        loader=(lambda t=init: numpy_helper.to_array(t)))
            tensors[init.name] = Tensor(init.name, weights[init.name].shape, weights[init.name].dtype)
        initializer_names = set(weights)
        nodes: list[Node] = []
        for i, nd in enumerate(g.node):
            if nd.op_type == "Constant" and not nd.domain:
                for out in nd.output:
                    w = _onnx_constant_weight(out, nd)
                    weights[out] = w
                    tensors[out] = Tensor(out, w.shape, w.dtype)
                continue
            attrs = {a.name: _onnx_attr(a) for a in nd.attribute}
            op = nd.op_type if nd.domain in ("", "ai.onnx") else f"{nd.domain}.{nd.op_type}"
            ins = [t for t in nd.input]
            node = Node(nd.name or f"{nd.op_type}_{i}", op, [t for t in ins if t], list(nd.output),
                        weights=[t for t in ins if t in weights], attrs=attrs, scope=_onnx_scope(nd))
            node._positions = {t: k for k, t in enumerate(ins)}  # type: ignore[attr-defined]
            nodes.append(node)
        inputs = [vi.name for vi in g.input if vi.name not in initializer_names]
        outputs = [vi.name for vi in g.output]
        for nm in [*inputs, *outputs]:
            tensors.setdefault(nm, Tensor(nm))
        _mark_params(nodes, weights)
        return cls(name or g.name or "model", "onnx", nodes, tensors, weights, inputs, outputs, notes)

    @classmethod
    def from_openvino(cls, ov_model: Any, name: str | None = None) -> Graph:
        """Read an ``openvino.Model``: Constants (and Converts that decompress them) become weights."""
        tensors: dict[str, Tensor] = {}
        weights: dict[str, Weight] = {}
        nodes: list[Node] = []
        inputs: list[str] = []
        outputs: list[str] = []
        out_name: dict[tuple[int, int], str] = {}  # (id(node), port) -> tensor name
        used_names: set[str] = set()

        def tensor_name(op: Any, port: int) -> str:
            key = (id(op), port)
            if key not in out_name:
                names = sorted(op.output(port).get_names())
                base = names[0] if names else (op.get_friendly_name() + (f":{port}" if port else ""))
                nm, k = base, 1
                while nm in used_names:
                    nm, k = f"{base}#{k}", k + 1
                used_names.add(nm)
                out_name[key] = nm
            return out_name[key]

        ops = list(ov_model.get_ordered_ops())
        keep_alive = ops  # id() keys are valid while the op objects live
        for op in ops:
            kind = op.get_type_name()
            outs = [tensor_name(op, p) for p in range(op.get_output_size())]
            for p, t in enumerate(outs):
                port = op.output(p)
                tensors[t] = Tensor(t, _ov_shape(port.get_partial_shape()),
                                    _OV_DTYPES.get(port.get_element_type().get_type_name(),
                                                   port.get_element_type().get_type_name()))
            ins = []
            for inp in op.inputs():
                src = inp.get_source_output()
                ins.append(tensor_name(src.get_node(), src.get_index()))
            if kind == "Parameter":
                inputs.append(outs[0])
                continue
            if kind == "Result":
                outputs.append(ins[0])
                continue
            if kind == "Constant":
                t = outs[0]
                weights[t] = Weight(t, tuple(int(d) for d in op.get_output_shape(0)), tensors[t].dtype,
                                    loader=(lambda o=op: o.get_data()))
                continue
            if kind == "Convert" and ins and ins[0] in weights:  # weight decompression: fold into the weight
                weights[outs[0]] = Weight(outs[0], weights[ins[0]].shape, tensors[outs[0]].dtype or "",
                                          is_param=False, loader=weights[ins[0]].loader)
                weights[outs[0]]._source = ins[0]  # type: ignore[attr-defined]
                continue
            try:
                attrs = {k: _jsonable(v) for k, v in op.get_attributes().items()}
            except Exception:  # noqa: BLE001 - some ops have attributes the Python API cannot read
                attrs = {}
            node = Node(op.get_friendly_name(), kind, ins, outs, weights=[t for t in ins if t in weights],
                        attrs=attrs, scope=_path_scope(op.get_friendly_name()))
            node._positions = {t: k for k, t in enumerate(ins)}  # type: ignore[attr-defined]
            nodes.append(node)
        del keep_alive
        _mark_params(nodes, weights)
        fname = name or ov_model.get_friendly_name() or "model"
        return cls(fname, "openvino", nodes, tensors, weights, inputs, outputs)

    @classmethod
    def from_exported_program(cls, ep: Any, name: str | None = None,
                              input_names: list[str] | None = None) -> Graph:
        """Read a ``torch.export.ExportedProgram`` (shapes from FX metadata, scope from nn_module_stack)."""
        import torch

        sig = ep.graph_signature
        params = dict(sig.inputs_to_parameters)
        buffers = dict(sig.inputs_to_buffers)
        consts = dict(getattr(sig, "inputs_to_lifted_tensor_constants", {}) or {})
        state = ep.state_dict
        constants = getattr(ep, "constants", {}) or {}
        tensors: dict[str, Tensor] = {}
        weights: dict[str, Weight] = {}
        nodes: list[Node] = []
        inputs: list[str] = []
        outputs: list[str] = []
        alias: dict[str, str] = {}  # fx node name -> tensor / weight name
        element_of: dict[str, list[str]] = defaultdict(list)  # multi-output node -> its getitem tensors
        user_inputs = list(sig.user_inputs)
        rename = dict(zip(user_inputs, input_names, strict=False)) if input_names and len(input_names) == len(
            user_inputs) else {}

        def val_tensor(nm: str, val: Any) -> Tensor:
            if isinstance(val, torch.Tensor):
                return Tensor(nm, tuple(int(d) if isinstance(d, int) or str(d).isdigit() else str(d)
                                        for d in val.shape), str(val.dtype).replace("torch.", ""))
            return Tensor(nm)

        for fx in ep.graph.nodes:
            if fx.op == "placeholder":
                target = params.get(fx.name) or buffers.get(fx.name) or consts.get(fx.name)
                if target is not None:
                    value = state.get(target, constants.get(target))
                    t = val_tensor(target, value if value is not None else fx.meta.get("val"))
                    weights[target] = Weight(target, tuple(int(d) for d in (t.shape or ())), t.dtype or "",
                                             is_param=fx.name in params,
                                             loader=(lambda v=value: v.detach().float().cpu().numpy()
                                                     if v.is_floating_point() else v.detach().cpu().numpy()))
                    tensors[target] = t
                    alias[fx.name] = target
                elif fx.name in user_inputs:
                    nm = rename.get(fx.name, fx.name)
                    alias[fx.name] = nm
                    tensors[nm] = val_tensor(nm, fx.meta.get("val"))
                    inputs.append(nm)
                continue
            if fx.op == "output":
                for a in _fx_nodes(fx.args):
                    outputs.append(alias.get(a.name, a.name))
                continue
            if fx.op != "call_function":
                continue
            if fx.target is operator.getitem:  # a multi-output op's element: name it producer:index
                src = fx.args[0]
                alias[fx.name] = f"{alias.get(src.name, src.name)}:{fx.args[1]}"
                tensors[alias[fx.name]] = val_tensor(alias[fx.name], fx.meta.get("val"))
                element_of[src.name].append(alias[fx.name])
                continue
            ins = [alias.get(a.name, a.name) for a in _fx_nodes((fx.args, fx.kwargs))]
            val = fx.meta.get("val")
            if isinstance(val, list | tuple):
                outs = [f"{fx.name}:{k}" for k in range(len(val))]
                for k, v in enumerate(val):
                    tensors[outs[k]] = val_tensor(outs[k], v)
            else:
                outs = [fx.name]
                tensors[fx.name] = val_tensor(fx.name, val)
            stack = fx.meta.get("nn_module_stack") or {}
            scope = tuple(path for path, _ in stack.values() if path)
            node = Node(fx.name, _torch_op_name(fx.target), ins, outs, weights=[t for t in ins if t in weights],
                        attrs=_fx_attrs(fx), scope=scope)
            node._positions = {t: k for k, t in enumerate(ins)}  # type: ignore[attr-defined]
            node._args = fx.args  # type: ignore[attr-defined]
            nodes.append(node)
        # a getitem alias "x:0" must name the producer's output
        for n in nodes:
            n.outputs += [t for t in element_of.get(n.name, []) if t not in n.outputs]
        _mark_params(nodes, weights, respect_flags=True)
        return cls(name or "model", "exported_program", nodes, tensors, weights, inputs, outputs)

    @classmethod
    def from_module(cls, module: Any, example_inputs: Mapping[str, np.ndarray] | None, name: str | None = None,
                    input_names: list[str] | None = None, keyword: bool = False) -> Graph:
        """An ``nn.Module``'s graph, through ``torch.export`` on its example inputs."""
        import torch

        if not example_inputs:
            raise ModelFormatError("the graph of a torch module needs example inputs",
                                   "load it with wb.load(module, example_inputs=...)")
        names = input_names or list(example_inputs)
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in example_inputs.items()}
        was_training = getattr(module, "training", False)
        module.eval()
        try:
            if keyword:
                ep = torch.export.export(module, (), kwargs=tensors, strict=False)
            else:
                ep = torch.export.export(module, tuple(tensors[n] for n in names if n in tensors), strict=False)
        except Exception as err:  # noqa: BLE001 - fall back to TorchScript tracing
            try:
                args = tuple(tensors[n] for n in names if n in tensors)
                traced = torch.jit.trace(module, args, check_trace=False)
            except Exception:  # noqa: BLE001
                raise ModelFormatError(
                    f"torch.export could not capture {name or 'the module'} ({str(err).splitlines()[0][:160]})",
                    "export it to ONNX (wb.export(model, 'onnx')) and show that, or use viewer='netron'",
                ) from err
            g = cls.from_torchscript(traced, example_inputs, name=name)
            g.notes.append("torch.export failed; the graph comes from torch.jit.trace")
            return g
        finally:
            module.train(was_training)
        g = cls.from_exported_program(ep, name=name, input_names=names if not keyword else None)
        g.format = "torch"
        return g

    @classmethod
    def from_torchscript(cls, module: Any, example_inputs: Mapping[str, np.ndarray] | None = None,
                         name: str | None = None, input_names: list[str] | None = None) -> Graph:
        """Read a ``torch.jit.ScriptModule`` (inlined graph). Shapes come from running it node by node
        on ``example_inputs`` when given; the module path comes from the weights each node reads."""
        import torch

        graph = module.inlined_graph
        g_inputs = list(graph.inputs())
        tensors: dict[str, Tensor] = {}
        weights: dict[str, Weight] = {}
        nodes: list[Node] = []
        values: dict[str, Any] = {}  # debugName -> python/torch value (for shapes)
        attr_path: dict[str, str] = {g_inputs[0].debugName(): ""}  # GetAttr chains -> "layer1.0.conv1"
        notes: list[str] = []
        feeds = list(example_inputs.values()) if example_inputs else None
        inputs = [v.debugName() for v in g_inputs[1:]]
        if feeds is not None and len(feeds) == len(inputs):
            for v, arr in zip(inputs, feeds, strict=True):
                values[v] = torch.from_numpy(np.ascontiguousarray(arr))
        else:
            feeds = None
            notes.append("no example inputs: shapes and MACs are unknown for this TorchScript model")
        alias: dict[str, str] = {}  # graph input / GetAttr output -> public name or weight path
        if input_names and len(input_names) == len(inputs):
            alias.update(zip(inputs, input_names, strict=True))
        for v in g_inputs[1:]:
            nm = alias.get(v.debugName(), v.debugName())
            tensors[nm] = _ts_tensor(nm, values.get(v.debugName()))
        inputs = [alias.get(v, v) for v in inputs]
        running = feeds is not None
        lists: dict[str, list[str]] = {}
        containers = ("prim::ListConstruct", "prim::TupleConstruct")
        for n in graph.nodes():
            kind = n.kind()
            outs = [o.debugName() for o in n.outputs()]
            ins = [i.debugName() for i in n.inputs()]
            if kind == "prim::GetAttr":
                parent = attr_path.get(ins[0])
                if parent is None:
                    continue
                path = f"{parent}.{n.s('name')}" if parent else n.s("name")
                attr_path[outs[0]] = path
                obj = _ts_attr(module, path)
                if isinstance(obj, torch.Tensor):
                    if path not in weights:
                        weights[path] = Weight(path, tuple(obj.shape), str(obj.dtype).replace("torch.", ""),
                                               is_param=isinstance(obj, torch.nn.Parameter) or obj.requires_grad,
                                               loader=(lambda o=obj: o.detach().float().numpy()
                                                       if o.is_floating_point() else o.detach().numpy()))
                        tensors[path] = Tensor(path, tuple(obj.shape), weights[path].dtype)
                    alias[outs[0]] = path
                    values[outs[0]] = obj
                continue
            if kind == "prim::Constant":
                try:
                    values[outs[0]] = n.output().toIValue()
                except Exception:  # noqa: BLE001
                    values[outs[0]] = None
                continue
            if kind in containers:
                values[outs[0]] = [values.get(i) for i in ins]
                lists[outs[0]] = ins
                continue
            if kind in ("prim::ListUnpack", "prim::TupleUnpack") and ins[0] in values:
                for o, v in zip(outs, values[ins[0]] or [], strict=False):
                    values[o] = v
            if running and kind.startswith("aten::"):
                try:
                    res = _ts_call(n, [values[i] for i in ins])
                    if len(outs) == 1:
                        values[outs[0]] = res
                    else:
                        for o, r in zip(outs, res, strict=False):
                            values[o] = r
                except Exception as err:  # noqa: BLE001 - stop computing shapes, keep reading the graph
                    running = False
                    notes.append(f"shapes stop at {kind} ({str(err).splitlines()[0][:100]})")
            elif kind in ("prim::If", "prim::Loop", "prim::CallFunction", "prim::CallMethod"):
                running = False
            for o in outs:
                tensors[o] = _ts_tensor(o, values.get(o))
            flat: list[str] = []
            for i in ins:  # a list argument (cat's tensors) reads its elements
                flat += [alias.get(x, x) for x in lists[i]] if i in lists else [alias.get(i, i)]
            tensor_ins = [i for i in flat if i in tensors or i in weights]
            wts = [i for i in tensor_ins if i in weights]
            node = Node(outs[0] if outs else f"{kind}_{len(nodes)}", kind.replace("::", "."), tensor_ins, outs,
                        weights=wts, attrs=_ts_attrs(ins, values), scope=())
            node._positions = {t: k for k, t in enumerate(tensor_ins)}  # type: ignore[attr-defined]
            if wts:
                node.scope = _dotted_scope(wts[0].rsplit(".", 1)[0])
            nodes.append(node)
        # node names: prefer the module path of weights ("layer1.0.conv1/aten._convolution")
        _ts_fill_scopes(nodes)
        # tensors that are weights carry their weight name, keep node inputs pointing at weight keys
        outputs = [o.debugName() for o in graph.outputs()]
        # drop weights never read by a node (GetAttr of submodules)
        _mark_params(nodes, weights, respect_flags=True)
        return cls(name or "model", "torchscript", nodes, tensors, weights, inputs, outputs, notes)

    # -- costs -----------------------------------------------------------------------------------
    def _compute_costs(self) -> None:
        for n in self.nodes:
            try:
                n.macs = _macs(n, self)
            except Exception:  # noqa: BLE001 - unknown shapes: 0 MACs
                n.macs = 0
            n.precision = self._precision(n)

    def _precision(self, n: Node) -> str:
        if n.op in _QUANT_OPS:
            return "quantized"
        dts = [self.tensors[t].dtype for t in n.inputs if t in self.tensors]
        if any(d in _QUANT_DTYPES for d in dts if d):
            return "quantized"
        # QDQ form: every float data input comes from a DequantizeLinear / FakeQuantize
        srcs = [self._by_name[self.producer[t]].op for t in n.inputs if t in self.producer]
        if srcs and all(s in ("DequantizeLinear", "FakeQuantize") for s in srcs):
            return "quantized"
        outs = [self.tensors[t].dtype for t in n.outputs if t in self.tensors and self.tensors[t].dtype]
        return outs[0] if outs else "unknown"

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
        return sum(w.nbytes for w in self.weights.values() if not hasattr(w, "_source"))

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
            "weights_bytes": sum(w.nbytes for w in self.weights.values() if not hasattr(w, "_source")),
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
            "macs": n.macs, "precision": n.precision, "attributes": {k: _jsonable(v) for k, v in n.attrs.items()},
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

    def diff(self, other: Graph, match: str = "auto") -> GraphDiff:
        """Compare with ``other``: nodes matched by name, then by structure; see ``GraphDiff``."""
        return diff(self, other, match=match)

    # -- the widget's payload --------------------------------------------------------------------
    def to_view(self) -> dict[str, Any]:
        """A compact JSON payload for the browser: nodes, edges, scope tree, stats.

        ``nodes`` rows are ``[name, op, category, scope_id, out_shape, dtype, params, macs, precision]``;
        graph inputs and outputs are added as nodes of op ``Input`` / ``Output``.
        """
        scope_ids: dict[tuple[str, ...], int] = {(): -1}
        scopes: list[list[Any]] = []  # [label, parent]

        def scope_id(scope: tuple[str, ...]) -> int:
            if scope in scope_ids:
                return scope_ids[scope]
            parent = scope_id(scope[:-1])
            scope_ids[scope] = len(scopes)
            scopes.append([_short(scope[-1], scope[-2] if len(scope) > 1 else ""), parent])
            return scope_ids[scope]

        rows: list[list[Any]] = []
        index: dict[str, int] = {}
        for t in self.inputs:
            index[f"input:{t}"] = len(rows)
            tt = self.tensors.get(t, Tensor(t))
            rows.append([t, "Input", "io", -1, _shape_str(tt.shape), tt.dtype or "", 0, 0, ""])
        for n in self.nodes:
            index[n.name] = len(rows)
            t = self.tensors.get(n.outputs[0]) if n.outputs else None
            rows.append([n.name, n.op, op_category(n.op), scope_id(n.scope), _shape_str(t.shape if t else None),
                         (t.dtype if t else "") or "", n.params, n.macs, n.precision])
        for t in self.outputs:
            index[f"output:{t}"] = len(rows)
            tt = self.tensors.get(t, Tensor(t))
            rows.append([t, "Output", "io", -1, _shape_str(tt.shape), tt.dtype or "", 0, 0, ""])
        edges = [[index[e.src], index[e.dst], _shape_str(self.tensors.get(e.tensor, Tensor("")).shape)]
                 for e in self.edges]
        for t in self.inputs:
            for c in self.consumers.get(t, []):
                edges.append([index[f"input:{t}"], index[c], _shape_str(self.tensors.get(t, Tensor(t)).shape)])
        input_set = set(self.inputs)
        for n in self.nodes:  # graph inputs are not produced by nodes, so consumers were not recorded
            for t in n.inputs:
                if t in input_set and n.name not in self.consumers.get(t, []):
                    edges.append([index[f"input:{t}"], index[n.name], _shape_str(self.tensors[t].shape)])
        for t in self.outputs:
            if t in self.producer:
                edges.append([index[self.producer[t]], index[f"output:{t}"], ""])
            elif t in input_set:
                edges.append([index[f"input:{t}"], index[f"output:{t}"], ""])
        stats = self.stats()
        return {"name": self.name, "format": self.format, "nodes": rows, "edges": edges, "scopes": scopes,
                "stats": {k: v for k, v in stats.items() if k not in ("inputs", "outputs")}}


# --------------------------------------------------------------------------------------------------
# diff
# --------------------------------------------------------------------------------------------------
@dataclass
class NodeMatch:
    """A pair of nodes (or a lone node) in a diff: status is same, changed, added or removed."""

    a: str | None
    b: str | None
    status: str
    how: str = ""  # "name" or "structure"
    changes: list[str] = field(default_factory=list)


@dataclass
class GraphDiff:
    """The result of ``diff(a, b)``: every node of both graphs, matched or not.

    ``added`` are nodes only in ``b``, ``removed`` only in ``a``; ``changed`` pairs differ in op
    family, attributes, output shape or dtype, weights, precision or inputs (``NodeMatch.changes``).
    """

    a: Graph
    b: Graph
    matches: list[NodeMatch]

    @property
    def added(self) -> list[str]:
        return [m.b for m in self.matches if m.status == "added"]  # type: ignore[misc]

    @property
    def removed(self) -> list[str]:
        return [m.a for m in self.matches if m.status == "removed"]  # type: ignore[misc]

    @property
    def changed(self) -> list[NodeMatch]:
        return [m for m in self.matches if m.status == "changed"]

    @property
    def same(self) -> list[NodeMatch]:
        return [m for m in self.matches if m.status == "same"]

    def pairs(self) -> dict[str, str]:
        """``{node in a: matched node in b}``."""
        return {m.a: m.b for m in self.matches if m.a is not None and m.b is not None}

    def counts(self) -> dict[str, int]:
        c = Counter(m.status for m in self.matches)
        return {k: c.get(k, 0) for k in ("same", "changed", "added", "removed")}

    def status_a(self) -> dict[str, str]:
        return {m.a: m.status for m in self.matches if m.a is not None}

    def status_b(self) -> dict[str, str]:
        return {m.b: m.status for m in self.matches if m.b is not None}

    def __bool__(self) -> bool:
        """True when the graphs differ."""
        c = self.counts()
        return bool(c["changed"] or c["added"] or c["removed"])

    def summary(self) -> str:
        c = self.counts()
        added = Counter(self.b.node(n).op for n in self.added).most_common(4)
        removed = Counter(self.a.node(n).op for n in self.removed).most_common(4)
        parts = [f"{self.a.name} ({self.a.format}, {len(self.a)} nodes) vs {self.b.name} ({self.b.format}, "
                 f"{len(self.b)} nodes): {c['same']} same, {c['changed']} changed, {c['added']} added, "
                 f"{c['removed']} removed"]
        if added:
            parts.append("added: " + ", ".join(f"{op}×{k}" for op, k in added))
        if removed:
            parts.append("removed: " + ", ".join(f"{op}×{k}" for op, k in removed))
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"<GraphDiff {self.summary()}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())

    def to_view(self) -> dict[str, Any]:
        """One merged graph for the browser: ``b``'s nodes plus the nodes removed from ``a``, with a
        ``status`` per node name and the list of ``changes`` of changed nodes."""
        va, vb = self.a.to_view(), self.b.to_view()
        rows = [list(r) for r in vb["nodes"]]
        edges = [list(e) for e in vb["edges"]]
        b_index = {r[0] if r[1] not in ("Input", "Output") else f"{r[1]}:{r[0]}": k for k, r in enumerate(rows)}
        status = {r[0]: "same" for r in rows}
        status.update(self.status_b())
        changes = {m.b: m.changes for m in self.matches if m.b is not None and m.changes}
        pairs = self.pairs()
        a_map: dict[int, int] = {}
        taken = {r[0] for r in rows}
        scopes = [list(sc) for sc in vb["scopes"]]

        def paths(sc: list[list[Any]]) -> list[str]:
            out: list[str] = []
            for label, parent in sc:  # parents come before children
                out.append(f"{out[parent]}/{label}" if parent >= 0 else label)
            return out

        b_scope = {p: k for k, p in enumerate(paths(scopes))}
        scope_map: dict[int, int] = {-1: -1}
        for k, p in enumerate(paths(va["scopes"])):
            if p not in b_scope:
                b_scope[p] = len(scopes)
                scopes.append([va["scopes"][k][0], scope_map[va["scopes"][k][1]]])
            scope_map[k] = b_scope[p]
        for k, r in enumerate(va["nodes"]):
            name, op = r[0], r[1]
            if op in ("Input", "Output"):
                key = f"{op}:{name}"
                if key in b_index:
                    a_map[k] = b_index[key]
                    continue
            elif name in pairs:
                a_map[k] = b_index[pairs[name]]
                continue
            label = name if name not in taken else f"{name} (removed)"
            taken.add(label)
            status[label] = "removed"
            a_map[k] = len(rows)
            rows.append([label, *r[1:3], scope_map[r[3]], *r[4:]])
        have = {(e[0], e[1]) for e in edges}
        for src, dst, lab in va["edges"]:
            s2, d2 = a_map[src], a_map[dst]
            if (s2, d2) not in have and (status.get(rows[s2][0]) == "removed" or status.get(rows[d2][0]) == "removed"):
                edges.append([s2, d2, lab])
                have.add((s2, d2))
        return {"name": f"{self.a.name} → {self.b.name}", "format": f"{self.a.format} → {self.b.format}",
                "nodes": rows, "edges": edges, "scopes": scopes, "stats": vb["stats"], "status": status,
                "changes": changes}

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([{"a": m.a, "b": m.b, "status": m.status, "matched_by": m.how,
                              "op_a": self.a.node(m.a).op if m.a else None,
                              "op_b": self.b.node(m.b).op if m.b else None,
                              "changes": ", ".join(m.changes)} for m in self.matches])


def diff(a: Graph, b: Graph, match: str = "auto") -> GraphDiff:
    """Match the nodes of ``a`` and ``b`` and mark added, removed and changed nodes.

    ``match``: ``"name"`` (equal names with the same op family), ``"structure"`` (same op family
    reached from matched neighbours, looking through Quantize/Dequantize/Convert/Identity), or
    ``"auto"`` (names first, then structure for the rest).
    """
    if match not in ("auto", "name", "structure"):
        raise WorkbenchError(f"unknown match mode {match!r}", "use match='auto', 'name' or 'structure'")
    pairs: dict[str, str] = {}  # a -> b
    how: dict[str, str] = {}
    if match in ("auto", "name"):
        for n in a.nodes:
            if n.name in b and canonical_op(b.node(n.name).op) == canonical_op(n.op):
                pairs[n.name] = n.name
                how[n.name] = "name"
    if match in ("auto", "structure"):
        _structural_match(a, b, pairs, how)
    rev = {v: k for k, v in pairs.items()}
    matches: list[NodeMatch] = []
    for n in a.nodes:
        if n.name in pairs:
            m = b.node(pairs[n.name])
            changes = _changes(a, n, b, m, pairs)
            matches.append(NodeMatch(n.name, m.name, "changed" if changes else "same", how[n.name], changes))
        else:
            matches.append(NodeMatch(n.name, None, "removed"))
    for m in b.nodes:
        if m.name not in rev:
            matches.append(NodeMatch(None, m.name, "added"))
    return GraphDiff(a, b, matches)


def _effective_neighbours(g: Graph, name: str, step: Callable[[str], Iterable[str]]) -> list[str]:
    """Nearest neighbours along ``step`` (predecessors or successors) that are not transparent ops
    (quantize/dequantize/convert/identity): walks through those to what they wrap."""
    out: list[str] = []
    seen = {name}
    queue = deque(step(name))
    while queue:
        n = queue.popleft()
        if n in seen:
            continue
        seen.add(n)
        if canonical_op(g.node(n).op) in _TRANSPARENT:
            queue.extend(step(n))
        else:
            out.append(n)
    return out


def _effective_preds(g: Graph, name: str) -> list[str]:
    return _effective_neighbours(g, name, g.predecessors)


def _effective_succs(g: Graph, name: str) -> list[str]:
    return _effective_neighbours(g, name, g.successors)


def _input_roots(g: Graph, name: str) -> set[int]:
    """Positions of the graph inputs a node reads (through transparent ops), for anchoring roots."""
    roots: set[int] = set()
    pos = {t: i for i, t in enumerate(g.inputs)}
    stack, seen = [name], set()
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.add(cur)
        node = g.node(cur)
        roots |= {pos[t] for t in node.inputs if t in pos}
        if cur == name or canonical_op(node.op) in _TRANSPARENT:
            stack.extend(g.predecessors(cur))
    return roots


def _structural_match(a: Graph, b: Graph, pairs: dict[str, str], how: dict[str, str]) -> None:
    rev = {v: k for k, v in pairs.items()}
    a_pos = {n.name: n.index / max(1, len(a.nodes)) for n in a.nodes}
    b_pos = {n.name: n.index / max(1, len(b.nodes)) for n in b.nodes}
    eff_succ_cache: dict[str, list[str]] = {}

    def a_succs(x: str) -> list[str]:
        if x not in eff_succ_cache:
            eff_succ_cache[x] = _effective_succs(a, x)
        return eff_succ_cache[x]

    a_roots: dict[frozenset[int], list[str]] | None = None  # graph-input positions read -> a's root nodes

    def roots_of_a(roots: set[int]) -> set[str]:
        nonlocal a_roots
        if a_roots is None:
            a_roots = defaultdict(list)
            for n in a.nodes:
                if canonical_op(n.op) not in _TRANSPARENT and not _effective_preds(a, n.name):
                    a_roots[frozenset(_input_roots(a, n.name))].append(n.name)
        return set(a_roots.get(frozenset(roots), []))

    for _ in range(3):  # a few sweeps: later matches can anchor earlier unmatched nodes
        progress = False
        for m in b.nodes:
            if m.name in rev or canonical_op(m.op) in _TRANSPARENT:
                continue
            fam = canonical_op(m.op)
            preds = _effective_preds(b, m.name)
            anchored = [rev[p] for p in preds if p in rev]
            if anchored:
                cands = {c for p in anchored for c in a_succs(p)}
            elif not preds:
                cands = roots_of_a(_input_roots(b, m.name))
            else:
                continue
            cands = {c for c in cands if c not in pairs and canonical_op(a.node(c).op) == fam}
            if not cands:
                continue

            def score(c: str, anchored: list[str] = anchored, m: Node = m) -> tuple[int, float]:
                cp = set(_effective_preds(a, c))
                return (sum(1 for p in anchored if p in cp), -abs(a_pos[c] - b_pos[m.name]))

            best = max(sorted(cands), key=score)
            pairs[best] = m.name
            rev[m.name] = best
            how[best] = "structure"
            progress = True
        if not progress:
            break
    # transparent ops (Q/DQ, Convert) that exist in both: match by the matched node they feed
    for m in b.nodes:
        if m.name in rev or canonical_op(m.op) not in _TRANSPARENT:
            continue
        for s in b.successors(m.name):
            if s in rev:
                for c in a.predecessors(rev[s]):
                    if c not in pairs and canonical_op(a.node(c).op) == canonical_op(m.op):
                        pairs[c] = m.name
                        rev[m.name] = c
                        how[c] = "structure"
                        break
            if m.name in rev:
                break


def _changes(a: Graph, n: Node, b: Graph, m: Node, pairs: dict[str, str]) -> list[str]:
    changes: list[str] = []
    if canonical_op(n.op) != canonical_op(m.op):
        changes.append(f"op {n.op} -> {m.op}")
    elif n.op == m.op and a.format == b.format:
        ka = {k: v for k, v in n.attrs.items()}
        kb = {k: v for k, v in m.attrs.items()}
        if _jsonable(ka) != _jsonable(kb):
            diff_keys = sorted(k for k in set(ka) | set(kb) if _jsonable(ka.get(k)) != _jsonable(kb.get(k)))
            changes.append("attributes " + ", ".join(diff_keys[:4]))
    ta = [a.tensors.get(t) for t in n.outputs[:1]]
    tb = [b.tensors.get(t) for t in m.outputs[:1]]
    if ta and tb and ta[0] and tb[0]:
        if ta[0].shape is not None and tb[0].shape is not None and not _same_shape(ta[0].shape, tb[0].shape):
            changes.append(f"shape {_shape_str(ta[0].shape)} -> {_shape_str(tb[0].shape)}")
        if ta[0].dtype and tb[0].dtype and ta[0].dtype != tb[0].dtype:
            changes.append(f"dtype {ta[0].dtype} -> {tb[0].dtype}")
    if n.precision != m.precision and "quantized" in (n.precision, m.precision):
        changes.append(f"precision {n.precision} -> {m.precision}")
    wa = sorted((a.weights[w].shape, a.weights[w].dtype) for w in n.weights if a.weights[w].is_param)
    wb = sorted((b.weights[w].shape, b.weights[w].dtype) for w in m.weights if b.weights[w].is_param)
    if a.format == b.format and wa != wb:
        changes.append("weights")
    pa = {pairs.get(p) for p in _effective_preds(a, n.name)}
    pb = set(_effective_preds(b, m.name))
    if pa != pb:
        changes.append("inputs")
    return changes


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def _same_shape(a: Shape, b: Shape) -> bool:
    """Equal ranks and equal static dims; a symbolic dim ("batch", "?") matches any size."""
    return len(a) == len(b) and all(x == y or not isinstance(x, int) or not isinstance(y, int)
                                    for x, y in zip(a, b, strict=True))


def _unique_names(nodes: list[Node]) -> list[Node]:
    seen: dict[str, int] = {}
    for n in nodes:
        if n.name in seen:
            seen[n.name] += 1
            n.name = f"{n.name}#{seen[n.name]}"
        else:
            seen[n.name] = 0
    return nodes


def _mark_params(nodes: list[Node], weights: dict[str, Weight], respect_flags: bool = False) -> None:
    """Decide which weights are parameters, and give each node the parameters it reads."""
    counted: set[str] = set()
    for n in nodes:
        qpos = _QPARAM_POSITIONS.get(n.op, set())
        positions = getattr(n, "_positions", {})
        total = 0
        for w in n.weights:
            wt = weights[w]
            if hasattr(wt, "_source"):  # a decompressed view of another constant
                wt.is_param = False
                src = weights[wt._source]  # type: ignore[attr-defined]
                if src.name not in counted and src.dtype in _PARAM_DTYPES and src.numel > 1:
                    total += src.numel
                counted.add(src.name)
                continue
            if not respect_flags:
                is_param = wt.dtype in _PARAM_DTYPES and positions.get(w, 0) not in qpos
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
            if name not in counted and not hasattr(wt, "_source"):
                wt.is_param = False


def _macs(n: Node, g: Graph) -> int:
    fam = canonical_op(n.op)
    if fam not in ("conv", "convtranspose", "matmul"):
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
        if op == "convolution" and len(n.inputs) > 1 and getattr(n, "_args", None) and n._args[6]:  # type: ignore[attr-defined]
            fam = "convtranspose"
        else:
            w = shape(widx)
            if not w:
                return 0
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


def _onnx_attr(a: Any) -> Any:
    from onnx import helper

    try:
        v = helper.get_attribute_value(a)
    except Exception:  # noqa: BLE001
        return "?"
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list | tuple):
        return [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v][:64]
    if hasattr(v, "dims") and hasattr(v, "data_type"):
        return f"tensor{list(v.dims)}"
    if hasattr(v, "node"):
        return f"graph({len(v.node)} nodes)"
    return v


def _onnx_constant_weight(out: str, nd: Any) -> Weight:
    from onnx import helper, numpy_helper

    for a in nd.attribute:
        if a.name == "value":
            t = a.t
            return Weight(out, tuple(int(d) for d in t.dims), _ONNX_DTYPES.get(t.data_type, str(t.data_type)),
                          loader=(lambda t=t: numpy_helper.to_array(t)))
        if a.name.startswith("value_"):
            v = np.asarray(helper.get_attribute_value(a))
            return Weight(out, tuple(v.shape), str(v.dtype), loader=(lambda v=v: v))
    return Weight(out, (), "unknown")


def _onnx_scope(nd: Any) -> tuple[str, ...]:
    for p in nd.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(p.value)
            except (ValueError, SyntaxError):
                break
            return tuple(s for s in scopes[:-1] if s)
    return _path_scope(nd.name)


def _path_scope(name: str) -> tuple[str, ...]:
    """Scopes from a "/"-separated name: "/layer1/layer1.0/conv1/Conv" or "__module.layer1.0.conv1/aten::x/Y"."""
    if "/" not in name:
        return ()
    parts = [p for p in name.split("/") if p]
    if parts and parts[0].startswith("__module."):
        return _dotted_scope(parts[0][len("__module."):])
    parts = parts[:-1] if name.startswith("/") or len(parts) > 1 else parts
    while parts and (parts[-1][:1].isupper() or "::" in parts[-1]):  # trailing op names
        parts = parts[:-1]
    return tuple(parts)


def _dotted_scope(path: str) -> tuple[str, ...]:
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


def _ov_shape(ps: Any) -> Shape | None:
    if ps.rank.is_dynamic:
        return None
    return tuple(int(d.get_length()) if d.is_static else "?" for d in ps)


def _shape_str(shape: Shape | None) -> str:
    if shape is None:
        return ""
    return "×".join(str(d) for d in shape) if shape else "scalar"


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v][:256]
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


def _fx_nodes(obj: Any) -> list[Any]:
    import torch.fx

    out: list[Any] = []
    if isinstance(obj, torch.fx.Node):
        out.append(obj)
    elif isinstance(obj, list | tuple):
        for x in obj:
            out += _fx_nodes(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            out += _fx_nodes(x)
    return out


def _torch_op_name(target: Any) -> str:
    name = str(target)
    if name.startswith("aten.") and name.count(".") >= 2:
        name = name.rsplit(".", 1)[0]  # drop the overload (".default")
    return name if "<" not in name else getattr(target, "__name__", name)


def _fx_attrs(fx: Any) -> dict[str, Any]:
    import torch.fx

    schema = getattr(fx.target, "_schema", None)
    names = [a.name for a in schema.arguments] if schema is not None else []
    attrs: dict[str, Any] = {}
    for i, a in enumerate(fx.args):
        if isinstance(a, torch.fx.Node) or (isinstance(a, list | tuple) and any(
                isinstance(x, torch.fx.Node) for x in a)):
            continue
        attrs[names[i] if i < len(names) else f"arg{i}"] = _jsonable(a)
    for k, a in fx.kwargs.items():
        if not isinstance(a, torch.fx.Node):
            attrs[k] = _jsonable(a)
    return attrs


def _ts_tensor(name: str, val: Any) -> Tensor:
    import torch

    if isinstance(val, torch.Tensor):
        return Tensor(name, tuple(int(d) for d in val.shape), str(val.dtype).replace("torch.", ""))
    return Tensor(name)


def _ts_attr(module: Any, path: str) -> Any:
    obj = module
    for p in path.split("."):
        try:
            obj = getattr(obj, p)
        except AttributeError:
            return None
    return obj


def _ts_call(n: Any, args: list[Any]) -> Any:
    """Run one TorchScript aten node on concrete values (keyword-only arguments by name)."""
    import torch

    schema = torch._C.parse_schema(n.schema())
    packet = getattr(torch.ops.aten, schema.name.split("::")[1])
    fn = getattr(packet, schema.overload_name or "default")
    pos = [v for a, v in zip(schema.arguments, args, strict=False) if not a.kwarg_only]
    kw = {a.name: v for a, v in zip(schema.arguments, args, strict=False) if a.kwarg_only}
    return fn(*pos, **kw)


def _ts_attrs(ins: list[str], values: dict[str, Any]) -> dict[str, Any]:
    """Non-tensor arguments (strides, padding, flags) of a TorchScript node, by position."""
    import torch

    attrs: dict[str, Any] = {}
    for k, i in enumerate(ins):
        v = values.get(i)
        if v is None or isinstance(v, torch.Tensor):
            continue
        if isinstance(v, list) and any(isinstance(x, torch.Tensor) for x in v):
            continue
        attrs[f"arg{k}"] = _jsonable(v)
    return attrs


def _ts_fill_scopes(nodes: list[Node]) -> None:
    """Nodes without weights take the scope shared by their neighbours (relu after bn1 -> its block)."""
    producer = {t: n for n in nodes for t in n.outputs}
    consumers: dict[str, list[Node]] = defaultdict(list)
    for n in nodes:
        for t in n.inputs:
            consumers[t].append(n)
    for n in nodes:
        if n.scope:
            continue
        near = [producer[t].scope for t in n.inputs if t in producer and producer[t].scope]
        near += [c.scope for t in n.outputs for c in consumers.get(t, []) if c.scope]
        if near:
            common = near[0]
            for s in near[1:]:
                k = 0
                while k < min(len(common), len(s)) and common[k] == s[k]:
                    k += 1
                common = common[:k]
            n.scope = common[:-1] if common == near[0] and len(near) == 1 else common

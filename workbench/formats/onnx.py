"""ONNX models (``.onnx``), with or without external data files.

Detection parses the protobuf (the header only: external tensors are not read), so a misnamed
``.bin`` that holds ONNX loads as ONNX, and a damaged ``.onnx`` gets an error that says so.
"""

from __future__ import annotations

import ast
import functools
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import ModelFormatError
from workbench.core.graph import Graph, Node, Shape, Tensor, Weight, gc_paused, mark_params, path_scope
from workbench.core.model import UNKNOWN_SHAPE, Model, TensorSpec
from workbench.core.registry import Format, register_format

if TYPE_CHECKING:  # pragma: no cover
    import onnx

# ops whose presence makes a graph quantized (QDQ or QOperator form); MatMulNBits is 4-bit
QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger",
                           "ConvInteger", "DynamicQuantizeLinear", "MatMulNBits"})


# -- reading the file ----------------------------------------------------------------------------
def _proto_header(path: Path) -> onnx.ModelProto:
    """The ModelProto without external tensors (cheap even for multi-GB models)."""
    import onnx

    return onnx.load_model(str(path), load_external_data=False)


def sniff(path: Path) -> bool:
    """True when ``path`` parses as an ONNX model with a graph."""
    if not path.is_file():
        return False
    try:
        proto = _proto_header(path)
    except Exception:  # noqa: BLE001 - any parse failure means "not ONNX"
        return False
    return proto.ir_version > 0 and len(proto.graph.node) + len(proto.graph.input) > 0


def explain_parse_failure(path: Path) -> ModelFormatError:
    """Why a file named .onnx could not be read: truncated, or not ONNX at all."""
    try:
        _proto_header(path)
    except Exception as err:  # noqa: BLE001
        detail = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        if "depth" in detail.lower() or "recursion" in detail.lower():
            return ModelFormatError(
                f"{path} nests graphs (If / Loop / Scan bodies) deeper than protobuf reads ({detail})",
                "flatten the model's control flow (fewer nested If/Loop levels); a real model nests a few levels")
        return ModelFormatError(
            f"{path} is not a valid ONNX model: the protobuf could not be parsed ({detail}); "
            "the file is truncated or is not ONNX",
            "export it again (wb.export(model, 'onnx')) or copy the complete file",
        )
    return ModelFormatError(f"{path} parses as protobuf but holds no ONNX graph",
                            "pass a model saved with onnx.save or torch.onnx.export")


@functools.cache  # a handful of element types, asked once per tensor of a graph
def onnx_dtype_name(elem_type: int) -> str:
    """NumPy's name for an ONNX element type (``"float32"``, ``"bfloat16"``, ``"int4"``), or ONNX's own
    name in lower case for types NumPy has no dtype for (``"string"``)."""
    from onnx import TensorProto, helper

    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):
        dtype = None
    if dtype is not None and dtype.kind != "O":
        return dtype.name
    try:
        return TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return f"onnx:{elem_type}"


def value_info_spec(vi: Any) -> TensorSpec:
    """A graph input/output's ``TensorSpec`` (unnamed dynamic dims: ``"batch"`` first, ``"?"`` after).

    A tensor without a shape has ``UNKNOWN_SHAPE``; a sequence, optional or map has the shape of what it
    holds (the tensor's, for ``optional(float32)``; unknown for a sequence, whose items vary) and a dtype
    naming the type (``"sequence(float32)"``, ``"optional(sequence(int64))"``, ``"map(string,float32)"``).
    """
    shape, dtype = onnx_type_spec(vi.type)
    return TensorSpec(vi.name, shape, dtype)


def onnx_type_spec(tp: Any) -> tuple[tuple[int | str, ...], str]:
    """(shape, dtype name) of an ONNX ``TypeProto`` (see ``value_info_spec``)."""
    which = tp.WhichOneof("value")
    if which == "tensor_type" or which == "sparse_tensor_type":
        t = getattr(tp, which)
        if not t.HasField("shape"):
            return UNKNOWN_SHAPE, onnx_dtype_name(t.elem_type)
        dims: list[int | str] = []
        for i, d in enumerate(t.shape.dim):
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or ("batch" if i == 0 else "?"))
        return tuple(dims), onnx_dtype_name(t.elem_type)
    if which == "sequence_type":
        _, inner = onnx_type_spec(tp.sequence_type.elem_type)
        return UNKNOWN_SHAPE, f"sequence({inner})"
    if which == "optional_type":
        shape, inner = onnx_type_spec(tp.optional_type.elem_type)
        return shape, f"optional({inner})"
    if which == "map_type":
        _, value = onnx_type_spec(tp.map_type.value_type)
        return UNKNOWN_SHAPE, f"map({onnx_dtype_name(tp.map_type.key_type)},{value})"
    return UNKNOWN_SHAPE, "undefined"


def iter_tensors(proto: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in the model: initializers and attribute tensors (``Constant`` values),
    in the main graph, its subgraphs (``If`` / ``Loop`` bodies) and its functions."""
    from onnx import AttributeProto

    def in_graph(graph: Any) -> Iterator[Any]:
        yield from graph.initializer
        yield from (s.values for s in graph.sparse_initializer)
        yield from in_nodes(graph.node)

    def in_nodes(nodes: Any) -> Iterator[Any]:
        for node in nodes:
            for attr in node.attribute:
                if attr.type == AttributeProto.TENSOR:
                    yield attr.t
                elif attr.type == AttributeProto.TENSORS:
                    yield from attr.tensors
                elif attr.type == AttributeProto.GRAPH:
                    yield from in_graph(attr.g)
                elif attr.type == AttributeProto.GRAPHS:
                    for g in attr.graphs:
                        yield from in_graph(g)

    yield from in_graph(proto.graph)
    for function in proto.functions:
        yield from in_nodes(function.node)


def external_names(proto: onnx.ModelProto) -> list[str]:
    """The file names an ONNX proto's external tensors point at."""
    from onnx.external_data_helper import uses_external_data

    names = set()
    for tensor in iter_tensors(proto):
        if uses_external_data(tensor):
            names.update(e.value for e in tensor.external_data if e.key == "location")
    return sorted(names)


def external_data_files(path: Path) -> list[Path]:
    """The external data files an ONNX model refers to, inside its folder (never a file outside it:
    a location with ``..``, an absolute path or a symlink out is not listed, counted or served)."""
    from workbench.core.safety import inside_folder

    files = []
    for n in external_names(_proto_header(path)):
        f = inside_folder(path.parent, n)
        if f is not None and f.is_file():
            files.append(f)
    return files


def check_external_data(path: Path, proto: onnx.ModelProto) -> None:
    """Refuse external data that points outside the model's folder or past its file's end.

    ONNX's rule (``onnx.checker``): a location is a relative path inside the model's folder. Raises
    ``ModelFormatError`` for an empty location, ``..``, an absolute path, a symlink out of the folder,
    a FIFO or device, a missing file, and an offset or length that is not a non-negative integer within
    the file. Nothing outside the folder is opened.
    """
    from onnx.external_data_helper import uses_external_data

    from workbench.core.safety import file_kind, inside_folder

    fix = "keep external data files beside the .onnx, referred to by a plain relative name (onnx.save_model(..., " \
          "save_as_external_data=True))"
    missing: list[str] = []
    for tensor in iter_tensors(proto):
        if not uses_external_data(tensor):
            continue
        info = {e.key: e.value for e in tensor.external_data}
        name = tensor.name if isinstance(tensor.name, str) else tensor.name.decode("utf-8", "replace")
        name = name[:80]
        location = info.get("location", "")
        if not isinstance(location, str) or not all(isinstance(v, str) for v in info.values()):
            raise ModelFormatError(f"{path}: tensor {name!r} has external data fields that are not UTF-8 text", fix)
        if not location:
            raise ModelFormatError(f"{path}: tensor {name!r} is stored externally but names no file (empty location)",
                                   fix)
        target = inside_folder(path.parent, location)
        if target is None:
            raise ModelFormatError(
                f"{path}: tensor {name!r} points at external data {location[:200]!r}, outside the model's folder "
                "(.., an absolute path or a symlink out); the workbench never reads files outside it", fix)
        if not target.exists():
            missing.append(location)
            continue
        mode = target.stat().st_mode
        if not stat.S_ISREG(mode):
            raise ModelFormatError(f"{path}: external data {location!r} of tensor {name!r} is {file_kind(mode)}", fix)
        size = target.stat().st_size
        try:
            offset = int(info.get("offset", 0) or 0)
            length = int(info["length"]) if info.get("length", "") != "" else None
        except ValueError:
            raise ModelFormatError(f"{path}: tensor {name!r} has a non-integer external data offset or length "
                                   f"({info.get('offset')!r}, {info.get('length')!r})", fix) from None
        if offset < 0 or (length is not None and length < 0):
            raise ModelFormatError(f"{path}: tensor {name!r} has a negative external data offset or length "
                                   f"({offset}, {length})", fix)
        if offset > size or (length is not None and offset + length > size):
            raise ModelFormatError(f"{path}: tensor {name!r} reads bytes {offset}..{offset + (length or 0)} of "
                                   f"{location!r}, which has {size} bytes (the data file is truncated or "
                                   "does not belong to this model)", fix)
    if missing:
        raise ModelFormatError(
            f"{path} keeps its weights in external data file(s) {sorted(set(missing))} that are not next to it",
            "copy the .onnx together with its data file(s) into the same folder",
        )


def check_names(proto: onnx.ModelProto, where: str) -> None:
    """Refuse names that are not UTF-8 (protobuf hands them over as ``bytes``; ONNX requires UTF-8)."""
    def bad(values: Any) -> Any:
        return next((v for v in values if isinstance(v, bytes)), None)

    def in_graph(graph: Any, depth: int) -> Any:
        found = bad([graph.name, *(v.name for v in (*graph.input, *graph.output, *graph.value_info)),
                     *(t.name for t in graph.initializer)])
        if found is not None:
            return found
        for node in graph.node:  # no per-node list: this runs over every node of large graphs
            found = bad((node.name, node.op_type, node.domain))
            if found is None:
                found = bad(node.input)
            if found is None:
                found = bad(node.output)
            if found is not None:
                return found
            if depth < 64:  # the depth ONNX's checker allows is far below this
                for a in node.attribute:
                    for g in (*([a.g] if a.HasField("g") else []), *a.graphs):
                        found = in_graph(g, depth + 1)
                        if found is not None:
                            return found
        return None

    found = in_graph(proto.graph, 0)
    if found is None:
        for f in proto.functions:
            found = bad([f.name, f.domain, *f.input, *f.output,
                         *(x for n in f.node for x in (n.name, n.op_type, n.domain, *n.input, *n.output))])
            if found is not None:
                break
    if found is not None:
        raise ModelFormatError(f"{where} has a name that is not valid UTF-8 ({bytes(found)[:40]!r}); ONNX "
                               "requires UTF-8 names", "export the model again (a tool wrote damaged names)")


def _load_full(path: Path) -> onnx.ModelProto:
    """The ModelProto with its external tensors; a file that fails here is a damaged model."""
    import onnx

    try:
        return onnx.load_model(str(path), load_external_data=True)
    except Exception as err:  # noqa: BLE001 - onnx raises ValidationError, ValueError, DecodeError, OSError
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ModelFormatError(f"{path} could not be read with its weights ({type(err).__name__}: {detail})",
                               "export it again, or copy the .onnx together with its data file(s)") from None


def load(path: Path, **_: Any) -> Model:
    """Read inputs, outputs and metadata; the full proto (with weights) is loaded on ``native()``."""
    try:
        proto = _proto_header(path)
    except Exception:  # noqa: BLE001
        raise explain_parse_failure(path) from None
    check_names(proto, str(path))
    check_external_data(path, proto)
    external = external_names(proto)
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [value_info_spec(v) for v in proto.graph.input if v.name not in initializers]
    outputs = [value_info_spec(v) for v in proto.graph.output]
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    meta = {
        "opset": opset,
        "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
        "ir_version": proto.ir_version,
        "nodes": len(proto.graph.node),
        "external_data": bool(external),
    }
    return Model("onnx", name=path.stem, path=path, inputs=inputs, outputs=outputs, metadata=meta,
                 native_loader=lambda: _load_full(path))


# -- the graph -----------------------------------------------------------------------------------
def read_graph(proto: onnx.ModelProto | str | Path, name: str | None = None) -> Graph:
    """Read an ``onnx.ModelProto`` (or the path of one) as a ``Graph``; shapes come from ONNX shape
    inference where the file lacks them. Initializers and ``Constant`` nodes become weights."""
    import onnx

    with gc_paused():  # tens of thousands of small objects: the cyclic collector's passes cost a third
        if isinstance(proto, str | bytes) or hasattr(proto, "__fspath__"):
            proto = onnx.load(proto)
        return _read_graph(proto, name)


def _read_graph(proto: onnx.ModelProto, name: str | None) -> Graph:
    import onnx
    from onnx import numpy_helper

    check_names(proto, name or "the model")
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
        if tt.HasField("shape"):  # dim_value is an int already; a list comprehension beats a generator
            shape = tuple([d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                           for d in tt.shape.dim])
        elem = tt.elem_type
        return Tensor(vi.name, shape, onnx_dtype_name(elem) if elem else None)

    for vi in [*g.input, *g.output, *g.value_info]:
        tensors[vi.name] = vi_tensor(vi)
    weights: dict[str, Weight] = {}
    for init in proto.graph.initializer:  # the original proto: its arrays are loaded already
        iname = init.name  # each protobuf field read builds a new Python object: read it once
        w = weights[iname] = Weight(iname, tuple(map(int, init.dims)), onnx_dtype_name(init.data_type),
                                    loader=(lambda t=init: numpy_helper.to_array(t)))
        tensors[iname] = Tensor(iname, w.shape, w.dtype)
    initializer_names = set(weights)
    nodes: list[Node] = []
    seen: set[str] = set()

    def add_nodes(graph: Any, outer: tuple[str, ...]) -> None:
        """The nodes of ``graph``; a subgraph's (``If`` branches, ``Loop`` / ``Scan`` bodies) follow their
        node, inside a scope named after it and the attribute (``loop_0/body``) so they fold like a module."""
        # each protobuf field read builds a Python object: read every field once per node
        for i, nd in enumerate(graph.node):
            op_type, domain = nd.op_type, nd.domain
            if op_type == "Constant" and not domain:
                for out in nd.output:
                    w = _constant_weight(out, nd)
                    weights[out] = w
                    tensors[out] = Tensor(out, w.shape, w.dtype)
                continue
            attributes = list(nd.attribute)
            attrs = {a.name: _attr_value(a) for a in attributes}
            op = op_type if domain in ("", "ai.onnx") else f"{domain}.{op_type}"
            ins = list(nd.input)
            node_name = nd.name or f"{op_type}_{i}"
            if node_name in seen:  # subgraphs reuse names (every branch has its "Add_0")
                node_name = "/".join((*outer, node_name))
            seen.add(node_name)
            nodes.append(Node(node_name, op, [t for t in ins if t], list(nd.output),
                              weights=[t for t in ins if t in weights], attrs=attrs,
                              scope=(*outer, *onnx_scope(nd)), positions={t: k for k, t in enumerate(ins)}))
            for a in attributes:
                for k, sub in enumerate([a.g] if a.HasField("g") else list(a.graphs)):
                    for init in sub.initializer:
                        weights[init.name] = Weight(init.name, tuple(int(d) for d in init.dims),
                                                    onnx_dtype_name(init.data_type),
                                                    loader=(lambda t=init: numpy_helper.to_array(t)))
                        tensors[init.name] = Tensor(init.name, weights[init.name].shape, weights[init.name].dtype)
                    for vi in [*sub.input, *sub.output, *sub.value_info]:
                        tensors.setdefault(vi.name, vi_tensor(vi))
                    label = a.name if a.HasField("g") else f"{a.name}[{k}]"
                    add_nodes(sub, (*outer, f"{node_name}/{label}"))

    add_nodes(g, ())
    inputs = [vi.name for vi in g.input if vi.name not in initializer_names]
    outputs = [vi.name for vi in g.output]
    for nm in [*inputs, *outputs]:
        tensors.setdefault(nm, Tensor(nm))
    mark_params(nodes, weights)
    return Graph(name or g.name or "model", "onnx", nodes, tensors, weights, inputs, outputs, notes)


def onnx_scope(nd: Any) -> tuple[str, ...]:
    """A node's module path: the exporter's ``pkg.torch.onnx.name_scopes`` metadata, else its "/" name."""
    for p in nd.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            # metadata is the file's text: only a list of strings is a scope, anything else is ignored
            if isinstance(p.value, bytes) or len(p.value) > 20_000:
                break
            try:
                scopes = ast.literal_eval(p.value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                break
            if not isinstance(scopes, list | tuple) or not all(isinstance(s, str) for s in scopes):
                break
            return tuple(s for s in scopes[:-1] if s)
    return path_scope(nd.name)


def _attr_value(a: Any) -> Any:
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


def _constant_weight(out: str, nd: Any) -> Weight:
    from onnx import helper, numpy_helper

    for a in nd.attribute:
        if a.name == "value":
            t = a.t
            return Weight(out, tuple(int(d) for d in t.dims), onnx_dtype_name(t.data_type),
                          loader=(lambda t=t: numpy_helper.to_array(t)))
        if a.name.startswith("value_"):
            v = np.asarray(helper.get_attribute_value(a))
            return Weight(out, tuple(v.shape), str(v.dtype), loader=(lambda v=v: v))
    return Weight(out, (), "unknown")


def graph_precision(proto: onnx.ModelProto) -> str | None:
    """``"int8"`` for a QDQ/QOperator graph (``"int4"`` with ``MatMulNBits``), ``"fp16"`` for fp16
    weights, else None (the graph says nothing beyond fp32)."""
    from onnx import TensorProto

    ops = {n.op_type for n in proto.graph.node}
    if ops & QUANTIZED_OPS:
        return "int4" if "MatMulNBits" in ops else "int8"
    if any(t.data_type == TensorProto.FLOAT16 for t in proto.graph.initializer):
        return "fp16"
    return None


@register_format
class OnnxFormat(Format):
    name = "onnx"
    description = "ONNX (.onnx, external data beside it)"
    suffixes = (".onnx",)
    pure_data = True  # read by a parser: nothing is unpickled, no code from the file runs
    priority = 90  # last among files: parsing protobuf is the most expensive test and the least specific
    facts = ("opset", "producer", "ir_version", "nodes", "external_data")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return sniff(path)

    @classmethod
    def explain(cls, path: Path, head: bytes) -> ModelFormatError | None:
        return explain_parse_failure(path) if path.is_file() and path.suffix.lower() in cls.suffixes else None

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def files(cls, path: Path) -> list[Path]:
        return [path, *external_data_files(path)] if path.is_file() else []

    @classmethod
    def graph(cls, model: Model) -> Graph:
        return read_graph(model.native(), name=model.name).with_file_size(model)

    @classmethod
    def precision(cls, model: Model) -> str | None:
        try:
            return graph_precision(model.native())
        except Exception:  # noqa: BLE001 - a graph we cannot read says nothing about precision
            return None

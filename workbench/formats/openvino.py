"""OpenVINO IR models (``.xml`` + ``.bin``).

Detection reads the XML root (``<net>``); the weights file must sit next to the ``.xml``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from workbench.core.errors import BackendUnavailable, ModelFormatError
from workbench.core.graph import Graph, Node, Shape, Tensor, Weight, jsonable, mark_params, path_scope
from workbench.core.model import Model, TensorSpec
from workbench.core.registry import Format, register_format

# OpenVINO element type names -> NumPy's names (the ones the graph uses for every format)
OV_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64", "i8": "int8",
             "u8": "uint8", "i4": "int4", "u4": "uint4", "i16": "int16", "u16": "uint16", "i32": "int32",
             "u32": "uint32", "i64": "int64", "u64": "uint64", "boolean": "bool", "u1": "uint1",
             "f8e4m3": "float8e4m3", "f8e5m2": "float8e5m2", "nf4": "nf4"}
# ops that make an IR compute in int8 (NNCF / POT quantization)
QUANTIZED_OPS = frozenset({"FakeQuantize", "FakeConvert"})


def _ov() -> Any:
    try:
        import openvino
    except ImportError:
        raise BackendUnavailable("OpenVINO is not installed",
                                 "pip install 'deployment-workbench[openvino]'") from None
    return openvino


# lines of OpenVINO's C++ trace that say where in OpenVINO's sources, not what went wrong
_TRACE_LINE = re.compile(r"^(Exception from \S+:\d+:?|Check '.*' failed at \S+:\d+:?|\S+\.(?:cpp|hpp):\d+:?)$")


def error_text(err: BaseException, limit: int = 1200) -> str:
    """OpenVINO's whole message without the C++ source locations, on one line.

    OpenVINO puts ``Exception from src/inference/src/cpp/core.cpp:84:`` first and the cause (``No conversion
    rule found for operations: com.example.Mystery``, the node, the shape) after it: the first line alone
    says nothing.
    """
    text = str(err).strip()
    if not text:
        return type(err).__name__
    lines = [ln.strip() for ln in text.splitlines()]
    kept = [ln for ln in lines if ln and not _TRACE_LINE.match(ln) and ln not in ("Summary:",)]
    joined = " ".join(kept) or lines[0]
    return joined if len(joined) <= limit else joined[:limit] + " …"


def unsupported_ops(err: BaseException) -> list[str]:
    """The operators an OpenVINO frontend names as unconvertible (``com.example.Mystery``), or []."""
    ops: list[str] = []
    for m in re.finditer(r"No conversion rule found for operations?: ([^\n]+)", str(err)):
        ops += [o.strip() for o in m.group(1).split(",") if o.strip()]
    for m in re.finditer(r"(?:OpConversionFailure|not supported)[^\n]*?operation[s]? ['\"]?([\w.:]+)", str(err)):
        ops.append(m.group(1))
    return list(dict.fromkeys(ops))


def error_fix(err: BaseException, source_format: str | None) -> str:
    """What to do about an OpenVINO error, for a model of ``source_format`` (never "convert via ONNX" for
    a model that is ONNX already)."""
    ops = unsupported_ops(err)
    tips = []
    if ops:
        tips.append(f"OpenVINO has no conversion for {', '.join(ops)}: run this model on ONNX Runtime, "
                    "or replace that operator with standard ONNX ops"
                    + (" (or export again from PyTorch with another opset)" if source_format == "onnx" else ""))
    if source_format == "onnx":
        if not ops:
            tips.append("check the model with onnx.checker / ONNX Runtime; try another opset when exporting it")
    elif source_format == "openvino":
        tips.append("the IR may be from a newer OpenVINO: convert the source model again")
    elif source_format is not None:  # a torch model of some kind: OpenVINO's ONNX frontend is the other way in
        tips.append("export to ONNX first (wb.export(m, 'onnx')) and convert or run that")
    tips.append("try another device or precision" if not ops else "")
    return "; ".join(t for t in tips if t)


def port_spec(port: Any, index: int, kind: str) -> TensorSpec:
    names = sorted(port.get_names())
    name = port.get_any_name() if names else f"{kind}_{index}"
    dims: list[int | str] = []
    for i, d in enumerate(port.get_partial_shape()):
        dims.append(d.get_length() if d.is_static else ("batch" if i == 0 else "?"))
    dtype = port.get_element_type()
    try:
        np_dtype = str(dtype.to_dtype())
    except Exception:  # noqa: BLE001 - bf16 and friends have no numpy dtype
        np_dtype = dtype.get_type_name()
    return TensorSpec(name, tuple(dims), np_dtype)


def specs_of(ov_model: Any) -> tuple[list[TensorSpec], list[TensorSpec]]:
    inputs = [port_spec(p, i, "input") for i, p in enumerate(ov_model.inputs)]
    outputs = [port_spec(p, i, "output") for i, p in enumerate(ov_model.outputs)]
    return inputs, outputs


def load(path: Path, **_: Any) -> Model:
    ov = _ov()
    bin_path = path.with_suffix(".bin")
    if not bin_path.exists():
        raise ModelFormatError(f"the OpenVINO IR {path.name} has no weights file {bin_path.name} next to it",
                               "copy the .xml together with its .bin into the same folder")
    from workbench.core.safety import check_openable

    check_openable(bin_path)  # OpenVINO would block reading a pipe in its place
    try:
        ov_model = ov.Core().read_model(str(path))
    except Exception as err:  # noqa: BLE001 - OpenVINO raises RuntimeError with a long C++ trace
        raise ModelFormatError(f"OpenVINO could not read {path}: {error_text(err)}",
                               "the IR is damaged or from a newer OpenVINO: convert the model again") from None
    inputs, outputs = specs_of(ov_model)
    rt = ov_model.get_rt_info()
    ops = ov_model.get_ops()
    meta: dict[str, Any] = {"nodes": len(ops), "openvino_name": ov_model.get_friendly_name()}
    weight_types = {str(op.get_output_element_type(0)) for op in ops if op.get_type_name() == "Constant"
                    and op.get_output_partial_shape(0).rank.get_length() > 1}
    if any("f16" in t for t in weight_types):
        meta["notes"] = ["weights stored as fp16 (ov.save_model compresses by default; computed in the device's "
                         "precision after decompression)"]
    try:
        meta["producer"] = f"OpenVINO {rt['Runtime_version'].astype(str)}"  # an OVAny, not a str
    except Exception:  # noqa: BLE001 - rt_info keys vary by producer
        pass
    return Model("openvino", name=path.stem, path=path, inputs=inputs, outputs=outputs, native=ov_model,
                 metadata=meta)


# -- the graph -----------------------------------------------------------------------------------
def read_graph(ov_model: Any, name: str | None = None) -> Graph:
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
            tensors[t] = Tensor(t, _shape(port.get_partial_shape()),
                                OV_DTYPES.get(port.get_element_type().get_type_name(),
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
                                      is_param=False, loader=weights[ins[0]].loader, source=ins[0])
            continue
        try:
            attrs = {k: jsonable(v) for k, v in op.get_attributes().items()}
        except Exception:  # noqa: BLE001 - some ops have attributes the Python API cannot read
            attrs = {}
        node = Node(op.get_friendly_name(), kind, ins, outs, weights=[t for t in ins if t in weights],
                    attrs=attrs, scope=path_scope(op.get_friendly_name()),
                    positions={t: k for k, t in enumerate(ins)})
        nodes.append(node)
    del keep_alive
    mark_params(nodes, weights)
    fname = name or ov_model.get_friendly_name() or "model"
    return Graph(fname, "openvino", nodes, tensors, weights, inputs, outputs)


def _shape(ps: Any) -> Shape | None:
    if ps.rank.is_dynamic:
        return None
    return tuple(int(d.get_length()) if d.is_static else "?" for d in ps)


def graph_precision(ov_model: Any) -> str | None:
    """``"int8"`` for an IR with FakeQuantize / FakeConvert ops, else None. Weights stored as fp16 say
    nothing: OpenVINO decompresses them and computes in the device's precision."""
    ops = {op.get_type_name() for op in ov_model.get_ordered_ops()}
    return "int8" if ops & QUANTIZED_OPS else None


@register_format
class OpenVINOFormat(Format):
    name = "openvino"
    description = "OpenVINO IR (.xml + .bin)"
    suffixes = (".xml",)
    pure_data = True  # read by a parser: nothing is unpickled, no code from the file runs
    priority = 40
    facts = ("producer", "nodes", "openvino_name")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return path.is_file() and head.lstrip().startswith(b"<") and b"<net" in head

    @classmethod
    def explain(cls, path: Path, head: bytes) -> ModelFormatError | None:
        if path.is_file() and head.lstrip().startswith(b"<"):
            return ModelFormatError(f"{path} is an XML file but not an OpenVINO IR (no <net> root)",
                                    "pass the .xml written by openvino.save_model or ovc")
        return None

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def files(cls, path: Path) -> list[Path]:
        return [p for p in (path, path.with_suffix(".bin")) if p.exists()]

    @classmethod
    def graph(cls, model: Model) -> Graph:
        return read_graph(model.native(), name=model.name).with_file_size(model)

    @classmethod
    def precision(cls, model: Model) -> str | None:
        try:
            return graph_precision(model.native())
        except Exception:  # noqa: BLE001 - a graph we cannot read says nothing about precision
            return None

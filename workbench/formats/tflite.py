"""LiteRT / TensorFlow Lite models (``.tflite``).

A ``.tflite`` is a FlatBuffer with the file identifier ``TFL3`` at bytes 4–8: that is what detection reads.
Everything else is read through the FlatBuffer schema that ships with ``ai-edge-litert``
(``schema_py_generated``): the interface (the signature's names, in the subgraph's input order), the
operators and tensors of the main subgraph (the graph view), the constant buffers (weights, loaded on
demand). No interpreter is built to describe a model.

A fully quantized model has int8 inputs and outputs with a scale and zero point: the model's interface
says float32 (what the source took), and the LiteRT runner quantizes inputs and dequantizes outputs
with the file's parameters (an int8 array is passed through as it is).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import BackendUnavailable, ModelFormatError
from workbench.core.graph import Graph, Node, Tensor, Weight, dotted_scope, mark_params
from workbench.core.model import Model, TensorSpec
from workbench.core.registry import Format, register_format

INSTALL = "pip install 'deployment-workbench[litert]'"
IDENTIFIER = b"TFL3"
# TFLite TensorType names -> NumPy's names
TENSOR_TYPES = {"FLOAT32": "float32", "FLOAT16": "float16", "INT32": "int32", "UINT8": "uint8", "INT64": "int64",
                "STRING": "str", "BOOL": "bool", "INT16": "int16", "COMPLEX64": "complex64", "INT8": "int8",
                "FLOAT64": "float64", "COMPLEX128": "complex128", "UINT64": "uint64", "UINT32": "uint32",
                "UINT16": "uint16", "INT4": "int4", "BFLOAT16": "bfloat16"}
INTEGER_TYPES = ("int8", "uint8", "int16", "int4")


def _schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise BackendUnavailable("ai-edge-litert is not installed (it reads .tflite models)", INSTALL) from None
    return schema_py_generated


def _enum_names(cls: Any) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def read_flatbuffer(path: Path) -> tuple[Any, bytes]:
    """(the schema's lazy ``Model`` over the file's bytes, the bytes)."""
    schema = _schema()
    data = path.read_bytes()
    if data[4:8] != IDENTIFIER:
        raise ModelFormatError(f"{path} has no TFLite identifier (TFL3 at byte 4)",
                               "pass a .tflite written by LiteRT's converter (wb.convert(m, 'litert'))")
    try:
        model = schema.Model.GetRootAs(data, 0)
        if model.SubgraphsLength() == 0:
            raise ValueError("no subgraph")
        model.Subgraphs(0).TensorsLength()
    except Exception as err:  # noqa: BLE001 - a damaged flatbuffer raises anything
        raise ModelFormatError(f"{path} could not be read as a TFLite model: {type(err).__name__}: {err}",
                               "the file is damaged: convert the model again") from None
    return model, data


def _decode(value: bytes | str | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


class TFLiteReader:
    """What the workbench reads from a ``.tflite`` (main subgraph)."""

    def __init__(self, path: Path):
        self.path = path
        self.schema = _schema()
        self.model, self.data = read_flatbuffer(path)
        self.sg = self.model.Subgraphs(0)
        self.types = _enum_names(self.schema.TensorType)
        self.builtins = _enum_names(self.schema.BuiltinOperator)

    # -- tensors -----------------------------------------------------------------------------------
    def tensor(self, i: int) -> Any:
        return self.sg.Tensors(i)

    def dtype(self, i: int) -> str:
        t = self.types.get(self.tensor(i).Type(), "?")
        return TENSOR_TYPES.get(t, t.lower())

    def shape(self, i: int) -> tuple[int | str, ...]:
        t = self.tensor(i)
        sig = t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else t.ShapeAsNumpy()
        if isinstance(sig, int):  # the schema returns 0 for an empty vector: a scalar
            return ()
        return tuple(("batch" if k == 0 else "?") if int(d) < 0 else int(d) for k, d in enumerate(sig))

    def quantization(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(scales, zero points) of a quantized tensor, else None."""
        q = self.tensor(i).Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        return np.asarray(q.ScaleAsNumpy(), np.float32), np.asarray(q.ZeroPointAsNumpy(), np.int64)

    def name(self, i: int) -> str:
        return _decode(self.tensor(i).Name()) or f"t{i}"

    def buffer(self, i: int) -> np.ndarray | None:
        """The constant data of tensor ``i`` (None for an activation)."""
        index = self.tensor(i).Buffer()
        if index <= 0 or index >= self.model.BuffersLength():
            return None
        buf = self.model.Buffers(index)
        if buf.Offset() > 1:  # large models keep buffers after the flatbuffer, by offset
            raw = self.data[buf.Offset(): buf.Offset() + buf.Size()]
        elif buf.DataLength():
            raw = buf.DataAsNumpy().tobytes()
        else:
            return None
        dtype = self.dtype(i)
        try:
            arr = np.frombuffer(raw, dtype=np.dtype(dtype))
        except TypeError:  # int4, bfloat16: no NumPy dtype here
            return np.frombuffer(raw, dtype=np.uint8)
        shape = self.shape(i)
        return arr.reshape([int(d) for d in shape]) if all(isinstance(d, int) for d in shape) else arr

    def is_constant(self, i: int) -> bool:
        index = self.tensor(i).Buffer()
        if index <= 0 or index >= self.model.BuffersLength():
            return False
        buf = self.model.Buffers(index)
        return buf.DataLength() > 0 or buf.Offset() > 1

    # -- interface -----------------------------------------------------------------------------------
    def io(self) -> tuple[list[int], list[str], list[int], list[str]]:
        """(input tensor indices, their names, output indices, names): the subgraph's order, the
        signature's names where it has one (what the source model called them)."""
        ins = [int(i) for i in self.sg.InputsAsNumpy()] if self.sg.InputsLength() else []
        outs = [int(i) for i in self.sg.OutputsAsNumpy()] if self.sg.OutputsLength() else []
        sig_names: dict[int, str] = {}
        if self.model.SignatureDefsLength():
            sig = self.model.SignatureDefs(0)
            for k in range(sig.InputsLength()):
                sig_names[sig.Inputs(k).TensorIndex()] = _decode(sig.Inputs(k).Name())
            for k in range(sig.OutputsLength()):
                sig_names[sig.Outputs(k).TensorIndex()] = _decode(sig.Outputs(k).Name())
        return ins, [sig_names.get(i, self.name(i)) for i in ins], outs, [sig_names.get(i, self.name(i)) for i in outs]

    def signature_key(self) -> str | None:
        return _decode(self.model.SignatureDefs(0).SignatureKey()) if self.model.SignatureDefsLength() else None

    def spec(self, i: int, name: str) -> TensorSpec:
        dtype = self.dtype(i)
        if dtype in INTEGER_TYPES and self.quantization(i) is not None:
            dtype = "float32"  # quantized I/O: the runner converts (see the module doc)
        return TensorSpec(name, self.shape(i), dtype)

    # -- operators -----------------------------------------------------------------------------------
    def op_name(self, op: Any) -> str:
        code = self.model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = self.builtins.get(builtin, f"op{builtin}")
        if name == "CUSTOM":
            name = _decode(code.CustomCode()) or "CUSTOM"
        return name

    def operators(self) -> list[tuple[str, list[int], list[int]]]:
        out = []
        for k in range(self.sg.OperatorsLength()):
            op = self.sg.Operators(k)
            ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
            outs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
            out.append((self.op_name(op), ins, outs))
        return out

    def precision(self) -> str:
        """``int8`` when an operator reads int8/uint8 quantized weights or activations, else ``fp16``
        when its weights are float16 (dequantized at load), else ``fp32``."""
        dtypes = {self.dtype(i) for _, ins, _ in self.operators() for i in ins if i >= 0}
        if dtypes & {"int8", "uint8", "int4"}:
            return "int8"
        return "fp32"


def load(path: Path, **_: Any) -> Model:
    reader = TFLiteReader(path)
    ins, in_names, outs, out_names = reader.io()
    inputs = [reader.spec(i, n) for i, n in zip(ins, in_names, strict=True)]
    outputs = [reader.spec(i, n) for i, n in zip(outs, out_names, strict=True)]
    ops = reader.operators()
    notes = []
    quantized_io = [f"{n} ({reader.dtype(i)})" for i, n in zip(ins + outs, in_names + out_names, strict=True)
                    if reader.quantization(i) is not None and reader.dtype(i) in INTEGER_TYPES]
    if quantized_io:
        notes.append(f"quantized inputs/outputs {', '.join(quantized_io)} (scale, zero point in the file): "
                     "the LiteRT runner quantizes float inputs and dequantizes outputs")
    if reader.model.SubgraphsLength() > 1:
        notes.append(f"{reader.model.SubgraphsLength()} subgraphs (control flow): the graph view shows the main one")
    meta: dict[str, Any] = {
        "operators": len(ops),
        "op_types": sorted({name for name, _, _ in ops}),
        "subgraphs": reader.model.SubgraphsLength(),
        "signature": reader.signature_key(),
        "schema_version": reader.model.Version(),
        "producer": _decode(reader.model.Description()) or None,
        "precision": reader.precision(),
    }
    if notes:
        meta["notes"] = notes
    return Model("tflite", name=path.stem, path=path, inputs=inputs, outputs=outputs,
                 native_loader=lambda: TFLiteReader(path), metadata=meta)


def module_scope(tensor_name: str) -> tuple[str, ...]:
    """The torch module path LiteRT's torch converter writes into tensor names
    (``pkg.Net/torch.nn.modules.container.Sequential_features/torch.nn.modules.conv.Conv2d_0;1`` → the scopes
    of ``features.0``); () for other names."""
    parts = tensor_name.split(";")[0].split("/")
    if len(parts) < 2:
        return ()
    attrs = []
    for part in parts[1:]:  # the first is the root module
        cls = part.rsplit(".", 1)[-1]
        if "_" not in cls:
            break
        attrs.append(cls.split("_", 1)[1])
    return dotted_scope(".".join(attrs))


def read_graph(reader: TFLiteReader, name: str) -> Graph:
    """The main subgraph: one node per operator; constant buffers are weights (values on demand)."""
    tensors: dict[str, Tensor] = {}
    weights: dict[str, Weight] = {}
    ins, in_names, outs, out_names = reader.io()
    names = {i: reader.name(i) for i in range(reader.sg.TensorsLength())}
    names.update(dict(zip(ins, in_names, strict=True)))
    names.update(dict(zip(outs, out_names, strict=True)))
    seen: dict[str, int] = {}
    for i, n in list(names.items()):  # TFLite allows two tensors with one name
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            names[i] = f"{n}#{seen[n] - 1}"
    for i, n in names.items():
        shape = reader.shape(i)
        tensors[n] = Tensor(n, shape, reader.dtype(i))
        if reader.is_constant(i):
            weights[n] = Weight(n, tuple(d if isinstance(d, int) else 1 for d in shape), reader.dtype(i),
                                loader=(lambda k=i: reader.buffer(k)))
    nodes = []
    for k, (op, op_ins, op_outs) in enumerate(reader.operators()):
        inputs = [names[i] for i in op_ins if i >= 0]
        attrs: dict[str, Any] = {}
        quant = [reader.quantization(i) for i in op_outs]
        if quant and quant[0] is not None:
            attrs["output_scale"] = float(quant[0][0][0]) if quant[0][0].size else None
        outputs = [names[i] for i in op_outs]
        nodes.append(Node(f"{op.lower()}_{k}", op, inputs, outputs, weights=[t for t in inputs if t in weights],
                          attrs=attrs, scope=module_scope(outputs[0]) if outputs else (),
                          positions={t: p for p, t in enumerate(inputs)}))
    mark_params(nodes, weights)
    return Graph(name, "tflite", nodes, tensors, weights, [names[i] for i in ins], [names[i] for i in outs])


@register_format
class TFLiteFormat(Format):
    name = "tflite"
    description = "LiteRT / TensorFlow Lite (.tflite)"
    suffixes = (".tflite",)
    pure_data = True  # read by a parser: nothing is unpickled, no code from the file runs
    priority = 20  # four bytes at a fixed offset: cheap and exact
    facts = ("operators", "op_types", "subgraphs", "signature", "schema_version", "producer", "precision")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return path.is_file() and len(head) >= 8 and head[4:8] == IDENTIFIER

    @classmethod
    def explain(cls, path: Path, head: bytes) -> ModelFormatError | None:
        if path.is_file() and head[4:8] != IDENTIFIER:
            return ModelFormatError(f"{path} has no TFLite identifier (TFL3 at byte 4)",
                                    "pass a .tflite written by LiteRT's converter (wb.convert(m, 'litert'))")
        return None

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def graph(cls, model: Model) -> Graph:
        reader = model.native() if isinstance(model.native(), TFLiteReader) else TFLiteReader(model.path)
        return read_graph(reader, model.name).with_file_size(model)

    @classmethod
    def precision(cls, model: Model) -> str | None:
        return model.metadata.get("precision")


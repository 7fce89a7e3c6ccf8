"""MNN models (``.mnn``, Alibaba's MNN runtime for phones, desktops and servers).

An ``.mnn`` file is a FlatBuffers buffer without a file identifier: detection checks the suffix and
that the header is a plausible FlatBuffers root (an offset inside the file, pointing at a table whose
vtable lies inside the file). The interface, the op counts and the graph come from MNN's own reader
(``MNN.expr.load_as_dict``: one variable per op output, with its op type, inputs and shape), so
describing a ``.mnn`` needs the ``mnn`` package.
"""

from __future__ import annotations

import importlib.util
import struct
from collections import Counter
from pathlib import Path
from typing import Any

from workbench.core.errors import BackendUnavailable, ModelFormatError
from workbench.core.graph import Graph, Node, Tensor, Weight, mark_params
from workbench.core.model import Model, TensorSpec
from workbench.core.registry import Format, register_format

INSTALL = "pip install 'deployment-workbench[mnn]'"
#: MNN's expression dtypes -> NumPy names
DTYPES = {"float": "float32", "double": "float64", "int": "int32", "int64": "int64", "uint8": "uint8",
          "int8": "int8", "bool": "bool"}
#: ops that hold no computation (the graph view skips them; constants become weights)
PLUMBING = {"Input", "Const", "TrainableParam"}


def import_mnn() -> Any:
    """``import MNN``, without the CPU-feature line its native library prints on stdout at import (it would
    land in a notebook's cell); BackendUnavailable with the fix when it is not installed."""
    import os
    import sys

    if sys.modules.get("MNN") is None:
        if "MNN" in sys.modules or importlib.util.find_spec("MNN") is None:  # hidden, or not installed
            raise BackendUnavailable("MNN is not installed", INSTALL)
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                import MNN  # noqa: F401
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    return sys.modules["MNN"]


def _mnn_expr() -> Any:
    import_mnn()
    import MNN.expr as expr

    return expr


def plausible_flatbuffer(head: bytes, size: int) -> bool:
    """True when ``head`` starts like a FlatBuffers buffer of ``size`` bytes: a root table offset inside
    the buffer, 4-aligned, whose vtable (signed offset back from the table) is inside it too."""
    if len(head) < 8 or size < 16:
        return False
    root = struct.unpack_from("<I", head, 0)[0]
    if root < 4 or root % 4 or root + 4 > min(size, len(head)):
        return False
    vtable = root - struct.unpack_from("<i", head, root)[0]
    if not 0 <= vtable <= size - 4 or vtable + 4 > len(head):
        return False
    vt_size, table_size = struct.unpack_from("<HH", head, vtable)
    return 4 <= vt_size <= 1024 and vt_size % 2 == 0 and table_size >= 4


def _dtype(var: Any) -> str:
    return DTYPES.get(str(var.dtype).rsplit(".", 1)[-1], str(var.dtype))


def _spec(var: Any, name: str) -> TensorSpec:
    dims: list[int | str] = []
    for i, d in enumerate(var.shape or []):
        dims.append(int(d) if int(d) >= 0 else ("batch" if i == 0 else "?"))
    return TensorSpec(name, tuple(dims), _dtype(var))


def read_vars(path: Path) -> dict[str, Any]:
    """MNN's variables of the file (one per op output), read by MNN itself."""
    expr = _mnn_expr()
    try:
        return dict(expr.load_as_dict(str(path)))
    except Exception as err:  # noqa: BLE001 - MNN raises plain exceptions for damaged files
        raise ModelFormatError(f"MNN could not read {path.name}: {str(err).strip()[:200] or type(err).__name__}",
                               "convert the model again (wb.convert(model, 'mnn'))") from None


def load(path: Path, **_: Any) -> Model:
    from workbench.core.safety import check_openable

    check_openable(path)
    variables = read_vars(path)
    if not variables:
        raise ModelFormatError(f"MNN could not read {path.name}: its FlatBuffers data does not verify (damaged or "
                               "not an MNN model)", "convert the model again (wb.convert(model, 'mnn'))")
    import MNN.nn as mnn_nn

    info = mnn_nn.load_module_from_file(str(path), [], []).get_info()
    inputs = [_spec(variables[n], n) for n in info.get("inputNames", []) if n in variables]
    # MNN computes integers in int32 (its converter turns ONNX int64 inputs into int32); the interface
    # keeps int64, what exporters and tokenizers give, and the runner casts
    inputs = [TensorSpec(s.name, s.shape, "int64") if s.dtype == "int32" else s for s in inputs]
    # MNNConvert stores a dynamic batch as 1, and the Module API resizes at run time: a leading 1 is the batch
    inputs = [TensorSpec(s.name, ("batch", *s.shape[1:]), s.dtype) if s.shape[:1] == (1,) else s for s in inputs]
    outputs = [_spec(variables[n], n) if n in variables else TensorSpec(n, ("?",), "float32")
               for n in info.get("outputNames", [])]
    ops = Counter(v.op_type for v in variables.values() if v.op_type not in PLUMBING)
    meta: dict[str, Any] = {"producer": f"MNN {info.get('version', '?')}", "biz_code": info.get("bizCode"),
                            "ops": dict(ops.most_common()), "nodes": sum(ops.values())}
    return Model("mnn", name=path.stem, path=path, inputs=inputs, outputs=outputs,
                 native_loader=lambda: read_vars(path), metadata=meta)


def read_graph(variables: dict[str, Any], name: str, inputs: list[str], outputs: list[str]) -> Graph:
    """The workbench Graph of an MNN model: one node per op; ``Const`` ops are weights (convolution and
    matmul weights live inside their op in MNN, so they are not separate tensors)."""
    tensors: dict[str, Tensor] = {}
    weights: dict[str, Weight] = {}
    nodes: list[Node] = []
    for key, var in variables.items():
        name_ = var.name or key
        shape = tuple(int(d) if int(d) >= 0 else "?" for d in (var.shape or []))
        tensors[name_] = Tensor(name_, shape, _dtype(var))
        if var.op_type in ("Const", "TrainableParam"):
            weights[name_] = Weight(name_, tuple(int(d) for d in shape if isinstance(d, int)), _dtype(var),
                                    loader=lambda v=var: v.read())
    for key, var in variables.items():
        if var.op_type in PLUMBING:
            continue
        ins = [i.name for i in (var.inputs or [])]
        nodes.append(Node(var.name or key, var.op_type, ins, [var.name or key],
                          weights=[i for i in ins if i in weights], positions={t: k for k, t in enumerate(ins)}))
    order = _topological(nodes)
    mark_params(order, weights)
    return Graph(name, "mnn", order, tensors, weights, inputs, outputs)


def _topological(nodes: list[Node]) -> list[Node]:
    """``nodes`` in an order where each comes after the producers of its inputs (MNN's dict is by name)."""
    producer = {t: n for n in nodes for t in n.outputs}
    done: set[str] = set()
    order: list[Node] = []
    for start in nodes:
        stack = [(start, False)]
        while stack:
            node, expanded = stack.pop()
            if node.name in done:
                continue
            if expanded:
                done.add(node.name)
                order.append(node)
                continue
            stack.append((node, True))
            stack.extend((producer[t], False) for t in node.inputs if t in producer and producer[t].name not in done)
    return order


@register_format
class MNNFormat(Format):
    name = "mnn"
    description = "MNN (.mnn FlatBuffers model)"
    suffixes = (".mnn",)
    pure_data = True  # read by a parser: nothing is unpickled, no code from the file runs
    priority = 60
    facts = ("producer", "nodes", "ops")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return path.is_file() and path.suffix.lower() == ".mnn" and plausible_flatbuffer(head, path.stat().st_size)

    @classmethod
    def explain(cls, path: Path, head: bytes) -> ModelFormatError | None:
        if path.is_file() and path.suffix.lower() == ".mnn":
            return ModelFormatError(f"{path} is not an MNN model (no FlatBuffers header)",
                                    "pass the .mnn file written by MNNConvert (wb.convert(model, 'mnn'))")
        return None

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def graph(cls, model: Model) -> Graph:
        return read_graph(model.native(), model.name, model.input_names,
                          model.output_names).with_file_size(model)

    @classmethod
    def precision(cls, model: Model) -> str | None:
        return model.metadata.get("precision")

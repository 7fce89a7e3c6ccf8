"""ONNX models (``.onnx``), with or without external data files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import ModelFormatError
from workbench.core.registry import Format, register_format

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.graph import Graph
from workbench.core.model import Model, TensorSpec


def _proto_header(path: Path) -> Any:
    """The ModelProto without external tensors (cheap even for multi-GB models)."""
    import onnx

    return onnx.load_model(str(path), load_external_data=False)


def sniff(path: Path) -> bool:
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
        return ModelFormatError(
            f"{path} is not a valid ONNX model: the protobuf could not be parsed ({detail}); "
            "the file is truncated or is not ONNX",
            "export it again (wb.export(model, 'onnx')) or copy the complete file",
        )
    return ModelFormatError(f"{path} parses as protobuf but holds no ONNX graph",
                            "pass a model saved with onnx.save or torch.onnx.export")


_ONNX_TO_NUMPY = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
                  9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}


def value_info_spec(vi: Any) -> TensorSpec:
    t = vi.type.tensor_type
    dims: list[int | str] = []
    for i, d in enumerate(t.shape.dim):
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or ("batch" if i == 0 else "?"))
    return TensorSpec(vi.name, tuple(dims), _ONNX_TO_NUMPY.get(t.elem_type, f"onnx:{t.elem_type}"))


def external_data_files(path: Path) -> list[Path]:
    """The external data files an ONNX model refers to (found next to it)."""
    return [path.parent / n for n in _external_names(_proto_header(path)) if (path.parent / n).exists()]


def load(path: Path, **_: Any) -> Model:
    """Read inputs, outputs and metadata; the full proto (with weights) is loaded on ``native()``."""
    import onnx

    try:
        proto = _proto_header(path)
    except Exception:  # noqa: BLE001
        raise explain_parse_failure(path) from None
    external = _external_names(proto)
    missing = [n for n in external if not (path.parent / n).exists()]
    if missing:
        raise ModelFormatError(
            f"{path} keeps its weights in external data file(s) {missing} that are not next to it",
            "copy the .onnx together with its data file(s) into the same folder",
        )
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
                 native_loader=lambda: onnx.load_model(str(path), load_external_data=True))


def _external_names(proto: Any) -> list[str]:
    """The file names an ONNX proto's external tensors point at."""
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    names = set()
    for tensor in _get_all_tensors(proto):
        if uses_external_data(tensor):
            names.update(e.value for e in tensor.external_data if e.key == "location")
    return sorted(names)


@register_format
class OnnxFormat(Format):
    name = "onnx"
    description = "ONNX (.onnx, external data beside it)"
    suffixes = (".onnx",)

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)
    @classmethod
    def files(cls, path: Path) -> list[Path]:
        return [path, *external_data_files(path)]

    @classmethod
    def graph(cls, model: Model) -> Graph:
        from workbench.core.graph import Graph

        return Graph.from_model(model)

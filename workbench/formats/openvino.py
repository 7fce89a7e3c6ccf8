"""OpenVINO IR models (``.xml`` + ``.bin``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import BackendUnavailable, ModelFormatError
from workbench.core.registry import Format, register_format

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.graph import Graph
from workbench.core.model import Model, TensorSpec


def _ov() -> Any:
    try:
        import openvino
    except ImportError:
        raise BackendUnavailable("OpenVINO is not installed",
                                 "pip install 'deployment-workbench[openvino]'") from None
    return openvino


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
    try:
        ov_model = ov.Core().read_model(str(path))
    except Exception as err:  # noqa: BLE001 - OpenVINO raises RuntimeError with a long C++ trace
        first = str(err).strip().splitlines()[0][:200] if str(err) else type(err).__name__
        raise ModelFormatError(f"OpenVINO could not read {path}: {first}",
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
        meta["producer"] = f"OpenVINO {rt['Runtime_version']}"
    except Exception:  # noqa: BLE001 - rt_info keys vary by producer
        pass
    return Model("openvino", name=path.stem, path=path, inputs=inputs, outputs=outputs, native=ov_model,
                 metadata=meta)


@register_format
class OpenVINOFormat(Format):
    name = "openvino"
    description = "OpenVINO IR (.xml + .bin)"
    suffixes = (".xml",)

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)
    @classmethod
    def files(cls, path: Path) -> list[Path]:
        return [p for p in (path, path.with_suffix(".bin")) if p.exists()]

    @classmethod
    def graph(cls, model: Model) -> Graph:
        from workbench.core.graph import Graph

        return Graph.from_model(model)

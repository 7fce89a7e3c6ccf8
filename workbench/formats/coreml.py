"""Core ML models (``.mlpackage`` folders and ``.mlmodel`` files).

Described and inspected everywhere through coremltools' protobuf spec; running them needs macOS
(Core ML itself), which the ``coreml`` backend says when asked elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import BackendUnavailable, ModelFormatError
from workbench.core.model import Model, TensorSpec
from workbench.core.registry import Format, register_format

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.graph import Graph

# Core ML ArrayFeatureType.ArrayDataType values
_ARRAY_DTYPES = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32", 131080: "int8"}


def _ct() -> Any:
    try:
        import coremltools
    except ImportError:
        raise BackendUnavailable("coremltools is not installed", "pip install 'deployment-workbench[coreml]'") from None
    return coremltools


def feature_spec(feature: Any) -> TensorSpec:
    kind = feature.type.WhichOneof("Type")
    if kind == "multiArrayType":
        arr = feature.type.multiArrayType
        shape: list[int | str] = [int(d) for d in arr.shape]
        if arr.WhichOneof("ShapeFlexibility") is not None:  # enumerated or ranged: dims may vary
            ranges = arr.shapeRange.sizeRanges if arr.HasField("shapeRange") else []
            for i, r in enumerate(ranges):
                if r.lowerBound != r.upperBound:
                    shape[i] = "batch" if i == 0 else "?"
        return TensorSpec(feature.name, tuple(shape), _ARRAY_DTYPES.get(arr.dataType, f"coreml:{arr.dataType}"))
    if kind == "imageType":
        img = feature.type.imageType
        channels = 1 if img.colorSpace == 10 else 3  # GRAYSCALE = 10
        return TensorSpec(feature.name, (1, channels, int(img.height), int(img.width)), "float32")
    return TensorSpec(feature.name, (), kind or "unknown")


def load(path: Path, **_: Any) -> Model:
    ct = _ct()
    try:
        spec = ct.utils.load_spec(str(path))
    except Exception as err:  # noqa: BLE001
        first = str(err).strip().splitlines()[0][:200] if str(err) else type(err).__name__
        raise ModelFormatError(f"{path} could not be read as a Core ML model: {first}",
                               "pass a .mlpackage folder or .mlmodel file saved by coremltools") from None
    inputs = [feature_spec(f) for f in spec.description.input]
    outputs = [feature_spec(f) for f in spec.description.output]
    model_type = spec.WhichOneof("Type")
    unshaped = [f.name for f in spec.description.output
                if f.type.WhichOneof("Type") == "multiArrayType" and not f.type.multiArrayType.shape]
    meta = {
        "spec_version": spec.specificationVersion,
        "model_type": model_type,
        "producer": "coremltools " + spec.description.metadata.userDefined.get("com.github.apple.coremltools.version", "?"),
        "notes": ["Core ML models run only on macOS; here they can be inspected, not run"],
    }
    if unshaped:  # neural-network (.mlmodel) specs often leave output shapes out
        meta["notes"].append(f"the file records no shape for output(s) {', '.join(unshaped)}")
    if model_type == "mlProgram":
        meta["precision"] = _program_precision(spec)
    return Model("coreml", name=path.stem, path=path, inputs=inputs, outputs=outputs, native=spec, metadata=meta)


def _program_precision(spec: Any) -> str:
    """fp16 if the ML program computes in fp16 (casts to fp16 present), else fp32."""
    text = str(spec.mlProgram)[:2_000_000]
    return "fp16" if "fp16" in text else "fp32"


@register_format
class CoreMLFormat(Format):
    name = "coreml"
    description = "Core ML (.mlpackage, .mlmodel)"
    suffixes = (".mlpackage", ".mlmodel")
    pure_data = True  # read by a parser: nothing is unpickled, no code from the file runs
    folder = True  # an .mlpackage is a folder (an .mlmodel a single protobuf file)
    priority = 50
    facts = ("spec_version", "model_type", "producer", "precision")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        if path.is_dir():
            return path.suffix.lower() == ".mlpackage" or (path / "Manifest.json").is_file()
        return path.suffix.lower() == ".mlmodel"  # a bare protobuf: nothing in its bytes says Core ML

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def graph(cls, model: Model) -> Graph:
        raise ModelFormatError(f"the native graph view does not read {cls.name} models",
                               "show it with wb.show(model, viewer='netron'), or convert it to ONNX first")

    @classmethod
    def precision(cls, model: Model) -> str | None:
        return model.metadata.get("precision")  # read from an ML program's spec by ``load``

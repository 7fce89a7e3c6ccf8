"""TensorRT engines (``.engine`` / ``.plan``): a network compiled by TensorRT for one GPU model and one
TensorRT version.

A serialized engine starts with the tag ``ftrt``: that is what detection reads. Its interface (I/O tensor
names, shapes, dtypes) is only readable by deserializing it, which needs TensorRT and an NVIDIA GPU: on a
machine without them the file is recognised and loading it says why it cannot be read here, and the fix.

``nvidia_gpu()`` tells whether this machine has an NVIDIA GPU without importing CUDA or TensorRT (the
runtime and the steps ask it before anything heavy is imported).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from workbench.core.errors import BackendUnavailable, ModelFormatError
from workbench.core.model import Model, TensorSpec
from workbench.core.registry import Format, register_format

INSTALL = "pip install 'deployment-workbench[tensorrt]'"
MAGIC = b"ftrt"
NO_GPU_FIX = ("run TensorRT on a machine with an NVIDIA GPU, its driver, a CUDA build of torch and "
              f"{INSTALL}; here run the ONNX model on onnxruntime or openvino")


def nvidia_gpu() -> str | None:
    """A short description of the NVIDIA GPU(s) this process may use, or None; reads the driver's files
    (``/proc/driver/nvidia``, ``/dev/nvidia*``) and ``CUDA_VISIBLE_DEVICES``, imports nothing."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return None
    gpus = Path("/proc/driver/nvidia/gpus")
    try:
        found = sorted(p.name for p in gpus.iterdir()) if gpus.is_dir() else []
    except OSError:
        found = []
    if not found:
        found = sorted(p.name for p in Path("/dev").glob("nvidia[0-9]*"))
    if not found:
        return None
    model = ""
    try:
        info = (gpus / found[0] / "information").read_text()
        model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("Model")), "")
    except OSError:
        pass
    return f"{len(found)} NVIDIA GPU(s)" + (f" ({model})" if model else "")


def no_gpu_reason() -> str:
    return "TensorRT needs an NVIDIA GPU (CUDA); this machine has none (no NVIDIA driver device)"


def tensorrt_module() -> Any:
    """``tensorrt``, or BackendUnavailable saying what is missing (the GPU first: without one, installing
    TensorRT would not help)."""
    if nvidia_gpu() is None:
        raise BackendUnavailable(no_gpu_reason(), NO_GPU_FIX)
    try:
        import tensorrt
    except ImportError:
        raise BackendUnavailable("TensorRT is not installed", INSTALL) from None
    return tensorrt


def torch_dtype(trt_dtype: Any) -> Any:
    """The torch dtype of a TensorRT ``DataType`` (through NumPy's)."""
    import numpy as np
    import tensorrt as trt
    import torch

    return torch.from_numpy(np.empty(0, dtype=trt.nptype(trt_dtype))).dtype


def engine_io(engine: Any) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """(inputs, outputs) of a deserialized ``ICudaEngine`` (``-1`` dims are dynamic)."""
    import numpy as np
    import tensorrt as trt

    inputs, outputs = [], []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dims = tuple(("batch" if k == 0 else "?") if int(d) < 0 else int(d)
                     for k, d in enumerate(engine.get_tensor_shape(name)))
        spec = TensorSpec(name, dims, str(np.dtype(trt.nptype(engine.get_tensor_dtype(name)))))
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(spec)
    return inputs, outputs


def deserialize(path: Path) -> Any:
    """The ``ICudaEngine`` in ``path`` (needs TensorRT and a GPU)."""
    trt = tensorrt_module()
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        raise ModelFormatError(f"TensorRT {trt.__version__} could not deserialize {path.name}",
                               "an engine runs only with the TensorRT version and GPU it was built for: build it "
                               "again here (wb.convert(onnx_model, 'tensorrt'))")
    return engine


def load(path: Path, **_: Any) -> Model:
    engine = deserialize(path)
    inputs, outputs = engine_io(engine)
    meta: dict[str, Any] = {"io_tensors": engine.num_io_tensors, "layers": engine.num_layers,
                            "gpu": nvidia_gpu(), "notes": ["a TensorRT engine runs only on the GPU model and "
                                                           "TensorRT version it was built with"]}
    try:
        import tensorrt as trt

        meta["producer"] = f"TensorRT {trt.__version__}"
    except ImportError:  # pragma: no cover - deserialize imported it
        pass
    return Model("tensorrt", name=path.stem, path=path, inputs=inputs, outputs=outputs, native=engine,
                 metadata=meta)


@register_format
class TensorRTFormat(Format):
    name = "tensorrt"
    description = "TensorRT engine (.engine, .plan)"
    suffixes = (".engine", ".plan", ".trt")
    priority = 20
    facts = ("producer", "layers", "io_tensors", "gpu")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return path.is_file() and head[:4] == MAGIC

    @classmethod
    def explain(cls, path: Path, head: bytes) -> ModelFormatError | None:
        if path.is_file() and head[:4] != MAGIC:
            return ModelFormatError(f"{path} does not start with TensorRT's engine tag (ftrt)",
                                    "pass an engine serialized by TensorRT (wb.convert(onnx_model, 'tensorrt'))")
        return None

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def precision(cls, model: Model) -> str | None:
        return model.metadata.get("precision")

"""TensorRT's steps: ONNX → a serialized TensorRT engine, built on this machine's NVIDIA GPU.

* ``wb.convert(model, "tensorrt", precision="fp32" | "fp16", max_batch=None)``: the TensorRT 10 builder,
  the network from TensorRT's ONNX parser, ``BuilderFlag.FP16`` for fp16; dynamic dimensions get one
  optimization profile (the example's shape; batch up to ``max_batch``).
* ``wb.quantize(model, "tensorrt")`` (method ``int8``): the same build with ``BuilderFlag.INT8`` and an
  ``IInt8EntropyCalibrator2`` fed from the model's calibration data (copied to the GPU through torch);
  FP16 is allowed too, so layers TensorRT cannot run in INT8 take FP16.

The engine is the artifact. Without an NVIDIA GPU the steps say so before anything heavy is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.errors import StepError
from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.formats.tensorrt import TensorRTFormat, nvidia_gpu, tensorrt_module
from workbench.steps.base import StepSpec, as_model, offer, run_step
from workbench.steps.convert import need_format
from workbench.steps.quantize import QuantizeMethods, check_options, need

TARGET = TensorRTFormat.name
PRECISIONS = ("fp32", "fp16")
WORKSPACE_GB = 4


def _offer_with_gpu(func: Any) -> Any:
    """The app offers the step only on a machine with an NVIDIA GPU (elsewhere it could only fail)."""
    return offer("TensorRT engine (NVIDIA GPU)", ticked=False)(func) if nvidia_gpu() is not None else func


@register_step("convert", TARGET, accepts=("onnx",), produces=TARGET, aliases=("trt", "engine"),
               requires=(TARGET,))
@_offer_with_gpu
def convert_tensorrt(model: Model, *, precision: str = "fp32", max_batch: int | None = None,
                     workspace_gb: float = WORKSPACE_GB, path: str | Path | None = None, isolate: bool = True,
                     timeout: float | None = None, cache: bool = True, validate: bool = True) -> Model:
    """A TensorRT engine from ONNX, at ``precision`` (fp32 or fp16), on this machine's NVIDIA GPU."""
    model = as_model(model)
    need_format(model, ("onnx",), TARGET, "export it to ONNX first: wb.export(model, 'onnx')")
    if precision not in PRECISIONS:
        raise StepError(f"unknown TensorRT precision {precision!r}",
                        "use 'fp32' or 'fp16' (INT8: wb.quantize(model, 'tensorrt'))")
    tensorrt_module()  # no GPU or no TensorRT: say so now, in one line
    opts = {"precision": precision, "max_batch": max_batch, "workspace_gb": workspace_gb}
    spec = StepSpec(f"convert:{TARGET}", opts, ".engine", write_engine, dict(opts),
                    tag="" if precision == "fp32" else precision, precision=precision, tools=(TARGET,))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


@register_step("quantize", TARGET, accepts=("onnx",), produces=TARGET, aliases=("trt",), methods=("int8",),
               requires=(TARGET,))
def quantize_tensorrt(model: Model, method: str | None = None, **options: Any) -> Model:
    """A TensorRT INT8 engine from ONNX, calibrated (IInt8EntropyCalibrator2) on the model's data."""
    return METHODS.run(model, method, **options)


def _plan_int8(model: Model, options: dict[str, Any]) -> StepSpec:
    need(model, ("onnx",), "TensorRT INT8", "export it to ONNX first: wb.export(model, 'onnx')")
    tensorrt_module()
    opts = check_options(options, {"max_batch": None, "workspace_gb": WORKSPACE_GB}, "tensorrt int8")
    return StepSpec(f"quantize:{TARGET}", {"method": "int8", "calibrator": "IInt8EntropyCalibrator2", **opts},
                    ".engine", write_engine, {"precision": "int8", **opts}, tag="int8", precision="int8",
                    tools=(TARGET,))


METHODS = QuantizeMethods(TARGET, {"int8": _plan_int8}, default="int8", calibrated=("int8",))


# -- the writer (runs in the worker, on the GPU machine) ----------------------------------------------
def write_engine(model: Model, tmp: Path, *, precision: str, max_batch: int | None, workspace_gb: float,
                 calibration: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Parse the ONNX file, configure the builder for ``precision``, build and write the serialized engine."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(model.path)):  # reads external data beside the file
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise StepError(f"TensorRT's ONNX parser rejected {model.name}: {errors[:600]}",
                        "simplify the model (wb.convert(m, 'onnx-simplified')) or export with another opset")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    profile = _profile(builder, network, model, max_batch)
    if profile is not None:
        config.add_optimization_profile(profile)
    calibrator = None
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        if not calibration:
            raise StepError("TensorRT INT8 needs calibration data", "pass calibration= or use a model with data")
        config.set_flag(trt.BuilderFlag.INT8)
        calibrator = entropy_calibrator([{n: f[n] for n in model.input_names} for f in calibration])
        config.int8_calibrator = calibrator
        if profile is not None:
            config.set_calibration_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise StepError(f"TensorRT could not build an engine for {model.name} at {precision}",
                        "see TensorRT's log above; try fp32, or a larger workspace_gb")
    tmp.write_bytes(memoryview(serialized).tobytes())
    meta: dict[str, Any] = {"tensorrt_version": trt.__version__}
    if calibration:
        meta["calibration_samples"] = len(calibration)
    return meta


def _profile(builder: Any, network: Any, model: Model, max_batch: int | None) -> Any:
    """One optimization profile for inputs with dynamic dimensions: min = opt = the example's shape,
    max = the same with batch ``max_batch`` (default: the example's batch)."""
    example = model.example_inputs()
    dynamic = [network.get_input(i) for i in range(network.num_inputs)
               if any(int(d) < 0 for d in network.get_input(i).shape)]
    if not dynamic:
        return None
    profile = builder.create_optimization_profile()
    for tensor in dynamic:
        shape = tuple(int(d) for d in example[tensor.name].shape)
        largest = (max(max_batch or shape[0], shape[0]), *shape[1:]) if shape else shape
        profile.set_shape(tensor.name, shape, shape, largest)
    return profile


def entropy_calibrator(batches: list[dict[str, Any]]) -> Any:
    """An ``IInt8EntropyCalibrator2`` that hands TensorRT one calibration sample per call, copied to the GPU
    through torch (the tensors are kept alive until the next call)."""
    import numpy as np
    import tensorrt as trt
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.index = 0
            self.alive: list[Any] = []
            self.cache: bytes | None = None

        def get_batch_size(self) -> int:
            first = next(iter(batches[0].values()))
            return int(first.shape[0]) if np.ndim(first) else 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.index >= len(batches):
                return None
            feeds = batches[self.index]
            self.index += 1
            self.alive = [torch.from_numpy(np.ascontiguousarray(feeds[n])).cuda() for n in names]
            return [int(t.data_ptr()) for t in self.alive]

        def read_calibration_cache(self) -> bytes | None:
            return self.cache

        def write_calibration_cache(self, cache: Any) -> None:
            self.cache = bytes(cache)

    return EntropyCalibrator()

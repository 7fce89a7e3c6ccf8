"""TensorRT (NVIDIA GPUs): runs serialized engines with the TensorRT 10 Python API, tensors in GPU memory
through torch CUDA tensors (``IExecutionContext.set_tensor_address`` + ``execute_async_v3`` on a torch
CUDA stream). ``wb.runner(m, "tensorrt")`` on an ONNX or torch model builds the engine first
(``steps/tensorrt.py``).

Availability is decided without importing CUDA or TensorRT: no NVIDIA GPU here → unavailable, with the
reason and the fix in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from workbench.core.errors import BackendUnavailable, WorkbenchError
from workbench.core.registry import register_runtime
from workbench.core.runner import Runner
from workbench.formats.tensorrt import INSTALL, NO_GPU_FIX, no_gpu_reason, nvidia_gpu


@register_runtime
class TensorRTRunner(Runner):
    """Options: ``device`` (the CUDA device index, default 0)."""

    name: ClassVar[str] = "tensorrt"
    formats: ClassVar[tuple[str, ...]] = ("tensorrt",)
    distributions: ClassVar[tuple[str, ...]] = ("tensorrt",)
    aliases: ClassVar[tuple[str, ...]] = ("trt",)
    default_for: ClassVar[tuple[str, ...]] = ("tensorrt",)
    devices: ClassVar[tuple[str, ...]] = ("GPU",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "int8")

    @classmethod
    def _check_available(cls) -> str:
        import importlib.metadata as md
        import importlib.util

        if nvidia_gpu() is None:
            raise BackendUnavailable(no_gpu_reason(), NO_GPU_FIX)
        try:
            found = importlib.util.find_spec("tensorrt") is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise BackendUnavailable("TensorRT is not installed", INSTALL)
        for dist in ("tensorrt", "tensorrt-cu12", "tensorrt-cu13"):
            try:
                return md.version(dist)
            except md.PackageNotFoundError:
                continue
        return "unknown"

    def _prepare_impl(self) -> None:
        import torch

        from workbench.formats.tensorrt import deserialize

        if not torch.cuda.is_available():
            raise BackendUnavailable(f"this torch ({torch.__version__}) has no CUDA: TensorRT's tensors live in GPU "
                                     "memory through torch", "install a CUDA build of torch (pip install torch "
                                     "--index-url https://download.pytorch.org/whl/cu128)")
        if self.model.path is None:
            raise WorkbenchError(f"the TensorRT model {self.model.name} has no engine file", "save it to a file first")
        self.device = torch.device("cuda", int(self.options.get("device", 0)))
        native = self.model.native()
        self.engine = native if native is not None else deserialize(self.model.path)
        self.context = self.engine.create_execution_context()
        with torch.cuda.device(self.device):
            self.stream = torch.cuda.Stream()
        self._outputs_gpu: dict[str, Any] = {}
        self._inputs_gpu: dict[str, Any] = {}

    def _bind(self, feeds: dict[str, np.ndarray]) -> None:
        """Copy the inputs to the GPU, set their shapes and addresses, and allocate the outputs."""
        import torch

        from workbench.formats.tensorrt import torch_dtype

        ctx, engine = self.context, self.engine
        for spec in self.model.inputs:
            want = torch_dtype(engine.get_tensor_dtype(spec.name))
            t = torch.from_numpy(np.ascontiguousarray(feeds[spec.name])).to(self.device, want)
            self._inputs_gpu[spec.name] = t
            if not ctx.set_input_shape(spec.name, tuple(t.shape)):
                raise WorkbenchError(f"TensorRT rejected the shape {tuple(t.shape)} of input {spec.name!r}",
                                     "give shapes within the engine's optimization profile (build it again "
                                     "with max_batch= for larger batches)")
            ctx.set_tensor_address(spec.name, t.data_ptr())
        for spec in self.model.outputs:
            shape = tuple(ctx.get_tensor_shape(spec.name))
            current = self._outputs_gpu.get(spec.name)
            if current is None or tuple(current.shape) != shape:
                current = torch.empty(shape, dtype=torch_dtype(engine.get_tensor_dtype(spec.name)),
                                      device=self.device)
                self._outputs_gpu[spec.name] = current
            ctx.set_tensor_address(spec.name, current.data_ptr())

    def _run(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise WorkbenchError(f"TensorRT failed to run {self.model.name}", "see TensorRT's log above")
        self.stream.synchronize()

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._bind(feeds)
        self._run()
        return {name: t.cpu().numpy() for name, t in self._outputs_gpu.items()}

    def _close_impl(self) -> None:
        self.context = None
        self.engine = None
        self._inputs_gpu, self._outputs_gpu = {}, {}

    # -- hooks -----------------------------------------------------------------------------------
    def effective_precision(self) -> str | None:
        return self.model.metadata.get("precision") or "fp32"

    def inference_call(self, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
        """``execute_async_v3`` on inputs copied to the GPU once, waiting for the stream (outputs stay on
        the GPU, as ``trtexec`` times)."""
        self._bind(feeds)
        return self._run

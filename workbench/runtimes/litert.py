"""LiteRT (TensorFlow Lite)'s interpreter from ``ai-edge-litert``, with its default XNNPACK delegate on this
CPU. Takes ``.tflite`` models; ``wb.runner(m, "litert")`` on a torch model converts it first
(``steps/litert.py``).

Quantized inputs and outputs (a fully INT8 model) are converted with the file's scale and zero point:
float arrays in, float arrays out, as the source model took and gave.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from workbench.core.errors import BackendUnavailable, WorkbenchError
from workbench.core.notices import native_notices
from workbench.core.registry import register_runtime
from workbench.core.runner import Runner
from workbench.formats.tflite import INSTALL


def quantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Float ``values`` in the integer type of the tensor ``detail`` describes (per-tensor scale)."""
    dtype = np.dtype(detail["dtype"])
    if values.dtype == dtype or dtype.kind not in "iu" or values.dtype.kind != "f":
        return values
    scale, zero = detail["quantization"]
    if not scale:
        return values.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero), info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """An integer output as floats (per-tensor scale and zero point); other outputs as they are."""
    scale, zero = detail["quantization"]
    if values.dtype.kind not in "iu" or not scale:
        return values
    return ((values.astype(np.float32) - zero) * scale).astype(np.float32)


def fitted(value: Any, dtype: str) -> Any:
    """``value`` cast to the integer ``dtype`` when it is an integer array of another width whose values all
    fit; anything else unchanged (the input check then names a real mismatch)."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu":
        return value
    try:
        want = np.dtype(dtype)
    except TypeError:
        return value
    if want.kind not in "iu" or want == value.dtype:
        return value
    info = np.iinfo(want)
    if value.size and (value.min() < info.min or value.max() > info.max):
        return value
    return value.astype(want)


@register_runtime
class LiteRTRunner(Runner):
    """Options: ``threads`` (the interpreter's ``num_threads``; default: its own choice),
    ``xnnpack`` (True: the default XNNPACK delegate; False: LiteRT's built-in reference-style kernels)."""

    name: ClassVar[str] = "litert"
    formats: ClassVar[tuple[str, ...]] = ("tflite",)
    distributions: ClassVar[tuple[str, ...]] = ("ai-edge-litert",)
    aliases: ClassVar[tuple[str, ...]] = ("tflite", "tensorflow-lite")
    default_for: ClassVar[tuple[str, ...]] = ("tflite",)
    tunable: ClassVar[tuple[str, ...]] = ("threads",)
    devices: ClassVar[tuple[str, ...]] = ("CPU",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "int8")

    @classmethod
    def _check_available(cls) -> str:
        import importlib.metadata as md
        import importlib.util

        try:
            found = importlib.util.find_spec("ai_edge_litert.interpreter") is not None
        except (ImportError, ValueError):  # no ai_edge_litert package (or a hidden one)
            found = False
        if not found:
            raise BackendUnavailable("LiteRT is not installed (ai-edge-litert's interpreter)", INSTALL)
        try:
            return md.version("ai-edge-litert")
        except md.PackageNotFoundError:
            return "unknown"

    def validate_feeds(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        """As every runner's, after casting integer inputs to the file's integer type where every value fits:
        LiteRT's converter stores int64 inputs (token ids) as int32, and the source model's feeds are int64."""
        if isinstance(feeds, dict):
            feeds = {**feeds, **{s.name: fitted(feeds[s.name], s.dtype) for s in self.model.inputs if s.name in feeds}}
        return super().validate_feeds(feeds)

    def _prepare_impl(self) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        if self.model.path is None:
            raise WorkbenchError(f"the LiteRT model {self.model.name} has no .tflite file", "save it to a file first")
        kwargs: dict[str, Any] = {"model_path": str(self.model.path)}
        if self.options.get("threads"):
            kwargs["num_threads"] = int(self.options["threads"])
        if self.options.get("xnnpack") is False:
            kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        # its first interpreter prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from C++
        with native_notices(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"):
            self.interpreter = Interpreter(**kwargs)
            self.interpreter.allocate_tensors()
        self._inputs = self.interpreter.get_input_details()
        self._outputs = self.interpreter.get_output_details()
        if len(self._inputs) != len(self.model.inputs) or len(self._outputs) != len(self.model.outputs):
            raise WorkbenchError(f"{self.model.name}: the interpreter has {len(self._inputs)} inputs and "
                                 f"{len(self._outputs)} outputs, the file declares {len(self.model.inputs)} and "
                                 f"{len(self.model.outputs)}", "convert the model again")

    def _bind(self, feeds: dict[str, np.ndarray]) -> None:
        resized = False
        for spec, detail in zip(self.model.inputs, self._inputs, strict=True):
            value = np.ascontiguousarray(quantize(np.asarray(feeds[spec.name]), detail))
            if tuple(value.shape) != tuple(detail["shape"]):  # another batch / length: dynamic dims
                self.interpreter.resize_tensor_input(detail["index"], list(value.shape), strict=True)
                resized = True
            feeds = {**feeds, spec.name: value}
        if resized:
            self.interpreter.allocate_tensors()
            self._inputs = self.interpreter.get_input_details()
            self._outputs = self.interpreter.get_output_details()
        for spec, detail in zip(self.model.inputs, self._inputs, strict=True):
            self.interpreter.set_tensor(detail["index"], feeds[spec.name])

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._bind(feeds)
        self.interpreter.invoke()
        return {spec.name: dequantize(np.array(self.interpreter.get_tensor(d["index"]), copy=True), d)
                for spec, d in zip(self.model.outputs, self._outputs, strict=True)}

    def _close_impl(self) -> None:
        self.interpreter = None

    # -- hooks -----------------------------------------------------------------------------------
    def effective_precision(self) -> str | None:
        return self.model.metadata.get("precision") or "fp32"

    def inference_call(self, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
        """``Interpreter.invoke`` with the inputs set once (outputs stay in the interpreter's buffers)."""
        self._bind(feeds)
        return self.interpreter.invoke

    def throughput_loop(self, feeds: dict[str, np.ndarray], *, warmup: int, duration_s: float,
                        iterations: int | None, jobs: int | None) -> tuple[list[float], float, int]:
        """``jobs`` interpreters of the model, one per thread (an interpreter is not thread-safe)."""
        from workbench.core.runner import default_in_flight, timed_in_threads

        jobs = jobs or default_in_flight()
        copies = [type(self)(self.model, **self.options).prepare() for _ in range(jobs)]
        calls = [c.inference_call(feeds) for c in copies]
        for call in calls:
            for _ in range(warmup):
                call()
        latencies, wall = timed_in_threads(calls, duration_s=duration_s, iterations=iterations)
        for c in copies:
            c.close()
        return latencies, wall, jobs

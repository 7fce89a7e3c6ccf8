"""MNN (Alibaba's inference engine for phones, desktops and servers), through its Python module API
(``MNN.nn.load_module_from_file``: the Module runtime, shapes may change between calls)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.registry import register_runtime
from workbench.core.runner import Runner, physical_cores
from workbench.formats.mnn import import_mnn

#: the runner's precision option -> MNN's PrecisionMode (High: fp32; Low: fp16 where the CPU has it)
PRECISIONS = {"fp32": "High", "normal": "Normal", "fp16": "Low", "bf16": "Low_BF16"}
#: MNN expression dtypes by the NumPy dtype of a feed (MNN computes integers in int32)
_CASTS = {"int64": np.int32, "float64": np.float32}
#: NumPy dtype of a feed (after the cast) -> the name of MNN.expr's dtype
_EXPR_DTYPES = {"float32": "float", "int32": "int", "uint8": "uint8", "int8": "int8"}


@register_runtime
class MNNRunner(Runner):
    """Options:
        precision: ``"fp32"`` (MNN's ``High``), ``"normal"`` (MNN's default, the default here), ``"fp16"``
            (``Low``), ``"bf16"`` (``Low_BF16``); on x86 ``Normal`` and ``Low`` compute in fp32 unless the
            CPU has fp16 arithmetic.
        threads: ``thread_num`` (default: the physical cores).
    """

    name: ClassVar[str] = "mnn"
    formats: ClassVar[tuple[str, ...]] = ("mnn",)
    distributions: ClassVar[tuple[str, ...]] = ("mnn",)
    default_for: ClassVar[tuple[str, ...]] = ("mnn",)
    tunable: ClassVar[tuple[str, ...]] = ("threads", "precision")
    devices: ClassVar[tuple[str, ...]] = ("CPU",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16", "int8")

    @classmethod
    def _check_available(cls) -> str:
        return str(import_mnn().version())

    @classmethod
    def reference_options(cls) -> dict[str, Any]:
        """fp32 (``PrecisionMode.High``): validation compares at full precision."""
        return {"precision": "fp32"}

    def _prepare_impl(self) -> None:
        import_mnn()
        import MNN.expr as F
        import MNN.nn as mnn_nn

        precision = self.options.get("precision") or "normal"
        if precision not in PRECISIONS:
            raise WorkbenchError(f"unknown MNN precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
        if self.model.path is None:
            raise WorkbenchError("the MNN runner needs a .mnn file", "convert with wb.convert(model, 'mnn')")
        self._inputs = list(self.model.input_names)
        self._outputs = list(self.model.output_names)
        self.module = mnn_nn.load_module_from_file(
            str(self.model.path), self._inputs, self._outputs, shape_mutable=True,
            precision_mode=getattr(F.PrecisionMode, PRECISIONS[precision]),
            thread_num=int(self.options.get("threads") or physical_cores()))
        self._precision = precision

    def effective_precision(self) -> str | None:
        return self._precision if self.is_prepared else super().effective_precision()

    def effective_threads(self) -> int | None:
        return int(self.options.get("threads") or physical_cores())

    def _vars(self, feeds: dict[str, np.ndarray]) -> list[Any]:
        import MNN.expr as F

        out = []
        for name in self._inputs:
            arr = np.asarray(feeds[name])
            cast = _CASTS.get(str(arr.dtype))
            arr = np.ascontiguousarray(arr.astype(cast) if cast is not None else arr)
            dtype = getattr(F, _EXPR_DTYPES.get(str(arr.dtype), "float"))
            out.append(F.const(arr, list(arr.shape), F.NCHW, dtype))
        return out

    def inference_call(self, feeds: dict[str, np.ndarray]) -> Any:
        """``Module.forward`` on input variables made once; outputs read back (MNN computes lazily)."""
        inputs = self._vars(feeds)
        module = self.module
        return lambda: [v.read() for v in module.forward(inputs)]

    def throughput_loop(self, feeds: dict[str, np.ndarray], *, warmup: int, duration_s: float,
                        iterations: int | None, jobs: int | None) -> tuple[list[float], float, int]:
        """One MNN Module per request in flight (a Module is not safe to call from two threads at once):
        the base loop, each thread on its own runner."""
        from workbench.core.runner import default_in_flight, timed_in_threads

        jobs = jobs or default_in_flight()
        threads_each = max(1, int(self.options.get("threads") or physical_cores()) // jobs)
        runners = [type(self)(self.model, **{**self.options, "threads": threads_each}) for _ in range(jobs)]
        calls = []
        for r in runners:
            r.prepare()
            calls.append(r.inference_call(feeds))
            for _ in range(warmup):
                calls[-1]()
        latencies, wall = timed_in_threads(calls, duration_s=duration_s, iterations=iterations)
        for r in runners:
            r.close()
        return latencies, wall, jobs

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.module.forward(self._vars(feeds))
        return {name: np.array(v.read(), copy=True) for name, v in zip(self._outputs, outs, strict=True)}

    def _close_impl(self) -> None:
        self.module = None

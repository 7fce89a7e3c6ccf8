"""OpenVINO Runtime (CPU here). Takes IR, ONNX, or a torch model (converted in memory)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.core import progress
from workbench.core.data import feeds_for
from workbench.core.errors import BackendUnavailable, WorkbenchError
from workbench.core.registry import register_runtime
from workbench.core.runner import KernelTime, LayerTensor, Runner
from workbench.formats.openvino import error_fix, error_text

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.model import Model

PRECISIONS = {"fp32": "f32", "f32": "f32", "bf16": "bf16", "fp16": "f16", "f16": "f16"}
#: ops whose outputs a layer-wise comparison skips (inputs, weights, outputs, shape arithmetic)
LAYER_SKIP = {"Parameter", "Constant", "Result", "ShapeOf", "Convert"}


@register_runtime
class OpenVINORunner(Runner):
    """Options:
        device: ``"CPU"`` (default), ``"GPU"``, ``"AUTO"``, …
        hint: performance hint ``"LATENCY"`` (default) | ``"THROUGHPUT"`` | ``"CUMULATIVE_THROUGHPUT"``.
        precision: inference precision ``"fp32" | "bf16" | "fp16"``; default: the device's own choice,
            which on CPUs with AVX-512 BF16 or AMX is **bf16**, not fp32 (fp32 on the others).
        threads: ``INFERENCE_NUM_THREADS``; streams: ``NUM_STREAMS``; cache_dir: compiled-model cache.
        config: any other OpenVINO properties, passed to ``compile_model``.
    """

    name: ClassVar[str] = "openvino"
    formats: ClassVar[tuple[str, ...]] = ("openvino", "onnx", "torch", "exported_program", "hf")
    distributions: ClassVar[tuple[str, ...]] = ("openvino",)
    aliases: ClassVar[tuple[str, ...]] = ("ov",)
    default_for: ClassVar[tuple[str, ...]] = ("openvino",)
    #: options wb.autotune sweeps; "precision": the CPU plugin computes fp32/bf16/fp16 on request
    tunable: ClassVar[tuple[str, ...]] = ("hint", "threads", "precision")
    #: Triton Inference Server's backend that runs this runtime's format natively (``workbench.serving.triton``)
    triton_backend: ClassVar[str] = "openvino"
    devices: ClassVar[tuple[str, ...]] = ("CPU", "GPU", "NPU", "AUTO")
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "bf16", "fp16", "int8", "int4")

    @classmethod
    def _check_available(cls) -> str:
        try:
            import openvino
        except ImportError:
            raise BackendUnavailable("OpenVINO is not installed", "pip install 'deployment-workbench[openvino]'") from None
        return openvino.get_version()

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"PERFORMANCE_HINT": str(self.options.get("hint", "LATENCY")).upper()}
        precision = self.options.get("precision")
        if precision:
            if precision not in PRECISIONS:
                raise WorkbenchError(f"unknown OpenVINO precision {precision!r}", f"use one of {sorted(set(PRECISIONS))}")
            cfg["INFERENCE_PRECISION_HINT"] = PRECISIONS[precision]
        if self.options.get("threads"):
            cfg["INFERENCE_NUM_THREADS"] = int(self.options["threads"])
        if self.options.get("streams"):
            cfg["NUM_STREAMS"] = str(self.options["streams"])
        if self.options.get("cache_dir"):
            cfg["CACHE_DIR"] = str(self.options["cache_dir"])
        cfg.update(self.options.get("config") or {})
        return cfg

    def read_model(self) -> Any:
        import openvino as ov

        fmt = self.model.format
        if fmt == "openvino":
            return self.model.native()
        if fmt == "onnx":
            return self.core.read_model(str(self.model.path)) if self.model.path else ov.convert_model(self.model.native())
        import torch

        native = self.model.native()
        if fmt == "exported_program":
            return ov.convert_model(native)
        feeds = self.model.example_inputs()
        example = tuple(torch.from_numpy(feeds[n]) for n in self.model.input_names)
        return ov.convert_model(native, example_input=example)

    def _prepare_impl(self) -> None:
        import openvino as ov

        self.core = ov.Core()
        try:
            ov_model = self.read_model()
            self.compiled = self.core.compile_model(ov_model, self.options.get("device", "CPU"), self.config())
        except WorkbenchError:
            raise
        except Exception as err:  # noqa: BLE001 - OpenVINO raises RuntimeError with C++ traces
            raise WorkbenchError(f"OpenVINO could not compile {self.model.name} ({self.model.format}): "
                                 f"{error_text(err)}", error_fix(err, self.model.format)) from None
        self.request = self.compiled.create_infer_request()
        n_out = len(self.compiled.outputs)
        names = self.model.output_names
        self._output_names = names if len(names) == n_out else [f"output_{i}" for i in range(n_out)]

    @property
    def inference_precision(self) -> str:
        """The precision the compiled model actually computes in (e.g. ``"bf16"`` by default here)."""
        return str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))

    # -- hooks -----------------------------------------------------------------------------------
    @classmethod
    def reference_options(cls) -> dict[str, Any]:
        """fp32: the CPU plugin's own default is bf16 on CPUs with AVX-512 BF16 or AMX."""
        return {"precision": "fp32"}

    @classmethod
    def benchmark_options(cls, options: dict[str, Any], mode: str, streams: int | None) -> dict[str, Any]:
        """Async mode: the ``THROUGHPUT`` hint, and ``streams`` as ``NUM_STREAMS`` when given."""
        opts = dict(options)
        if mode == "async":
            opts.setdefault("hint", "THROUGHPUT")
            if streams:
                opts.setdefault("streams", streams)
        return opts

    def effective_precision(self) -> str | None:
        """``INFERENCE_PRECISION_HINT`` of the compiled model (what it computes in, asked or not)."""
        return self.inference_precision if self.is_prepared else super().effective_precision()

    def effective_threads(self) -> int | None:
        """``INFERENCE_NUM_THREADS`` of the compiled model (what it uses, not what was asked)."""
        if not self.is_prepared:
            return super().effective_threads()
        return int(self.compiled.get_property("INFERENCE_NUM_THREADS")) or None

    def effective_streams(self, mode: str, streams: int | None) -> int | None:
        """``NUM_STREAMS`` of the compiled model, in either mode."""
        try:
            return int(self.compiled.get_property("NUM_STREAMS"))
        except Exception:  # noqa: BLE001 - e.g. a device that does not report it
            return streams

    def inference_call(self, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
        """``InferRequest.infer`` on input tensors bound once (sharing the arrays' memory)."""
        import openvino as ov

        request = self.request
        for i, name in enumerate(self.model.input_names):
            request.set_input_tensor(i, ov.Tensor(np.ascontiguousarray(feeds[name]), shared_memory=True))
        return request.infer

    def throughput_loop(self, feeds: dict[str, np.ndarray], *, warmup: int, duration_s: float,
                        iterations: int | None, jobs: int | None) -> tuple[list[float], float, int]:
        """OpenVINO's ``AsyncInferQueue`` with ``jobs`` requests (default: the compiled model's
        ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``); latencies as the requests report them."""
        import openvino as ov

        jobs = jobs or int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queue = ov.AsyncInferQueue(self.compiled, jobs)
        latencies: list[float] = []
        queue.set_callback(lambda request, _userdata: latencies.append(request.latency / 1e3))
        inputs = [feeds[n] for n in self.model.input_names]
        for _ in range(max(warmup, jobs)):
            queue.start_async(inputs)
        queue.wait_all()
        latencies.clear()
        n = 0
        start = time.perf_counter()
        deadline = start + duration_s
        while (n < iterations) if iterations is not None else (time.perf_counter() < deadline or n < 2 * jobs):
            queue.start_async(inputs)  # blocks while all jobs are busy
            n += 1
            if progress.cancel_requested():  # a Cancel: stop now (the benchmark raises Cancelled)
                break
        queue.wait_all()
        return latencies, time.perf_counter() - start, jobs

    @classmethod
    def profile_nodes(cls, model: Model, feeds: dict[str, np.ndarray], runs: int, warmup: int,
                      **options: Any) -> tuple[list[KernelTime], Model]:
        """The CPU plugin's per-layer performance counters (``PERF_COUNT``); kernels fused into another
        or optimised away (``NOT_RUN``) are left out."""
        config = {**(options.pop("config", None) or {}), "PERF_COUNT": "YES"}
        with cls(model, config=config, **options) as r:
            feeds = feeds_for(r.model, feeds)
            for _ in range(warmup):
                r.infer(feeds)
            per_kernel: dict[str, list[float]] = defaultdict(list)
            meta: dict[str, tuple[str, str]] = {}
            for _ in range(runs):
                r.infer(feeds)
                for info in r.request.get_profiling_info():
                    if str(info.status).endswith("NOT_RUN"):
                        continue
                    per_kernel[info.node_name].append(info.real_time.total_seconds() * 1e3)
                    meta[info.node_name] = (info.node_type, info.exec_type)
        kernels = [KernelTime(k, *meta[k], float(np.sum(times) / runs)) for k, times in per_kernel.items()]
        return kernels, model

    @classmethod
    def layer_tensors(cls, model: Model, batch: int) -> list[LayerTensor]:
        """The float outputs of an IR's ops, by their tensor names (the ONNX frontend keeps the ONNX
        names). A FakeQuantize output carries the names of the tensor it quantizes, and a tensor read
        only by FakeQuantize ops is left out (the quantized copy is what the model uses)."""
        if model.format not in cls.default_for:
            return super().layer_tensors(model, batch)
        found = []
        for index, op in enumerate(model.native().get_ordered_ops()):
            kind, name = op.get_type_name(), op.get_friendly_name()
            if kind in LAYER_SKIP:
                continue
            for port in op.outputs():
                if not port.get_element_type().is_real():
                    continue
                names = port.get_names()
                if kind == "FakeQuantize":
                    names = op.input(0).get_source_output().get_names()
                elif {t.get_node().get_type_name() for t in port.get_target_inputs()} == {"FakeQuantize"}:
                    continue
                shape = port.get_partial_shape()
                dims = [d.get_length() if d.is_static else batch for d in shape] if shape.rank.is_static else None
                nbytes = 4 * int(np.prod(dims)) if dims else 4 << 20
                found.append(LayerTensor(index, name, kind, tuple(sorted(names)), (name, port.get_index()), nbytes,
                                         "FakeQuantize" if kind == "FakeQuantize" else ""))
        return found

    @classmethod
    def run_with_outputs(cls, model: Model, keys: Sequence[Any], feeds: dict[str, np.ndarray],
                         **options: Any) -> tuple[list[np.ndarray], str | None]:
        """Run the IR with the op output ports ``keys`` (``(op name, port index)``) added as outputs."""
        import openvino as ov

        from workbench.core.model import Model
        from workbench.formats.openvino import specs_of

        if model.format not in cls.default_for or model.path is None:
            return super().run_with_outputs(model, keys, feeds, **options)
        ov_model = ov.Core().read_model(str(model.path))
        by_name = {op.get_friendly_name(): op for op in ov_model.get_ordered_ops()}
        ov_model.add_outputs([by_name[name].output(i) for name, i in keys])  # no-op for a port already an output
        # each model output is a Result node: the port it reads is the one asked for
        sources = []
        for out in ov_model.outputs:
            src = out.get_node().input(0).get_source_output()
            sources.append((src.get_node().get_friendly_name(), src.get_index()))
        inputs, outputs = specs_of(ov_model)
        layers = Model(model.format, name="layers", inputs=inputs, outputs=outputs, native=ov_model)
        with cls(layers, **options) as r:
            values = list(r.infer(feeds_for(layers, feeds)).values())
            precision = r.effective_precision()
        found = dict(zip(sources, values, strict=True))
        return [found[tuple(k)] for k in keys], precision

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.request.infer([feeds[n] for n in self.model.input_names])
        return {name: self.request.get_output_tensor(i).data.copy() for i, name in enumerate(self._output_names)}

    def _close_impl(self) -> None:
        self.request = None
        self.compiled = None

"""OpenVINO Runtime (CPU here). Takes IR, ONNX, or a torch model (converted in memory)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from workbench.core.errors import BackendUnavailable, WorkbenchError
from workbench.core.registry import register_runtime
from workbench.core.runner import Runner

PRECISIONS = {"fp32": "f32", "f32": "f32", "bf16": "bf16", "fp16": "f16", "f16": "f16"}


@register_runtime
class OpenVINORunner(Runner):
    """Options:
        device: ``"CPU"`` (default), ``"GPU"``, ``"AUTO"``, …
        hint: performance hint ``"LATENCY"`` (default) | ``"THROUGHPUT"`` | ``"CUMULATIVE_THROUGHPUT"``.
        precision: inference precision ``"fp32" | "bf16" | "fp16"``; default: the device's own choice,
            which on CPUs with AVX-512 BF16 or AMX (as on this machine) is **bf16**, not fp32.
        threads: ``INFERENCE_NUM_THREADS``; streams: ``NUM_STREAMS``; cache_dir: compiled-model cache.
        config: any other OpenVINO properties, passed to ``compile_model``.
    """

    name: ClassVar[str] = "openvino"
    formats: ClassVar[tuple[str, ...]] = ("openvino", "onnx", "torch", "exported_program", "hf")
    aliases: ClassVar[tuple[str, ...]] = ("ov",)
    default_for: ClassVar[tuple[str, ...]] = ("openvino",)
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
        if fmt == "hf":
            example = dict(zip(self.model.input_names, example, strict=True))
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
            first = str(err).strip().splitlines()[0][:300] if str(err) else type(err).__name__
            raise WorkbenchError(f"OpenVINO could not compile {self.model.name}: {first}",
                                 "try another device or precision, or convert via ONNX (wb.export(m, 'onnx'))") from None
        self.request = self.compiled.create_infer_request()
        n_out = len(self.compiled.outputs)
        names = self.model.output_names
        self._output_names = names if len(names) == n_out else [f"output_{i}" for i in range(n_out)]

    @property
    def inference_precision(self) -> str:
        """The precision the compiled model actually computes in (e.g. ``"bf16"`` by default here)."""
        return str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.request.infer([feeds[n] for n in self.model.input_names])
        return {name: self.request.get_output_tensor(i).data.copy() for i, name in enumerate(self._output_names)}

    def _close_impl(self) -> None:
        self.request = None
        self.compiled = None

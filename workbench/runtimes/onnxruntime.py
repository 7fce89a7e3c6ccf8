"""ONNX Runtime."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from workbench.core.errors import BackendUnavailable, WorkbenchError
from workbench.core.registry import register_runtime
from workbench.core.runner import Runner

OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "layout": "ORT_ENABLE_LAYOUT", "all": "ORT_ENABLE_ALL"}


@register_runtime
class OnnxRuntimeRunner(Runner):
    """Options:
        providers: execution providers, default ``["CPUExecutionProvider"]``.
        graph_optimization_level: ``"disable" | "basic" | "extended" | "all"`` (default ``"all"``).
        threads: intra-op threads (default: ONNX Runtime's choice, one per physical core).
        inter_op_threads, execution_mode (``"sequential" | "parallel"``).
        optimized_model_path: write the graph after ONNX Runtime's optimizations to this file.
        enable_profiling: write a chrome-trace profile (``runner.end_profiling()`` returns its path).
        session_config: extra ``SessionOptions.add_session_config_entry`` key/values.
    """

    name: ClassVar[str] = "onnxruntime"
    formats: ClassVar[tuple[str, ...]] = ("onnx",)
    aliases: ClassVar[tuple[str, ...]] = ("ort",)
    default_for: ClassVar[tuple[str, ...]] = ("onnx",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "int8", "int4")

    @classmethod
    def _check_available(cls) -> str:
        try:
            import onnxruntime
        except ImportError:
            raise BackendUnavailable("ONNX Runtime is not installed", "pip install onnxruntime") from None
        return onnxruntime.__version__

    def session_options(self) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        level = self.options.get("graph_optimization_level", "all")
        if isinstance(level, str):
            if level not in OPT_LEVELS:
                raise WorkbenchError(f"unknown graph_optimization_level {level!r}", f"use one of {list(OPT_LEVELS)}")
            level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[level])
        so.graph_optimization_level = level
        if self.options.get("threads"):
            so.intra_op_num_threads = int(self.options["threads"])
        if self.options.get("inter_op_threads"):
            so.inter_op_num_threads = int(self.options["inter_op_threads"])
        if self.options.get("execution_mode") == "parallel":
            so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        if self.options.get("optimized_model_path"):
            so.optimized_model_filepath = str(self.options["optimized_model_path"])
        if self.options.get("enable_profiling"):
            so.enable_profiling = True
            if self.options.get("profile_prefix"):
                so.profile_file_prefix = str(self.options["profile_prefix"])
        for key, value in (self.options.get("session_config") or {}).items():
            so.add_session_config_entry(key, str(value))
        so.log_severity_level = 3  # errors only: warnings about unused initializers are noise here
        return so

    def _prepare_impl(self) -> None:
        import onnxruntime as ort

        providers = self.options.get("providers") or ["CPUExecutionProvider"]
        unknown = [p for p in providers if (p if isinstance(p, str) else p[0]) not in ort.get_available_providers()]
        if unknown:
            raise BackendUnavailable(f"ONNX Runtime execution provider(s) {unknown} are not available here",
                                     f"available: {ort.get_available_providers()}")
        source = str(self.model.path) if self.model.path is not None else self.model.native().SerializeToString()
        try:
            self.session = ort.InferenceSession(source, self.session_options(), providers=providers)
        except Exception as err:  # noqa: BLE001 - ORT raises its own exception types
            first = str(err).strip().splitlines()[0][:300]
            raise WorkbenchError(f"ONNX Runtime could not load {self.model.name}: {first}",
                                 "check the opset (wb.export(..., opset=...)) or simplify the model") from None
        self._output_names = [o.name for o in self.session.get_outputs()]

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self._output_names, feeds)
        return dict(zip(self._output_names, values, strict=True))

    def end_profiling(self) -> str:
        """Stop profiling and return the path of the JSON trace."""
        return self.session.end_profiling()

    def _close_impl(self) -> None:
        self.session = None

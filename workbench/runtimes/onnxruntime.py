"""ONNX Runtime."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.core.data import feeds_for
from workbench.core.errors import BackendUnavailable, WorkbenchError, one_line
from workbench.core.registry import register_runtime
from workbench.core.runner import KernelTime, Runner, default_in_flight, physical_cores

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.model import Model

OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "layout": "ORT_ENABLE_LAYOUT", "all": "ORT_ENABLE_ALL"}


def load_error_fix(text: str) -> str:
    """The fix for an ONNX Runtime session error, from what it says went wrong (not always the opset)."""
    low = text.lower()
    if "invalid_protobuf" in low or "protobuf parsing failed" in low:
        return "the file is damaged or not ONNX: export or copy it again"
    if "no_suchfile" in low or "external data" in low or "external_data" in low:
        return "copy the .onnx together with its external data file(s), unchanged, into one folder"
    if "ir version" in low or ("opset" in low and ("support" in low or "under development" in low)):
        return "this ONNX Runtime does not support the file's IR version or opset: export with another " \
               "opset (wb.export(..., opset=...)) or upgrade onnxruntime"
    if "no op registered" in low:
        return "the graph uses an operator (or domain/opset) ONNX Runtime does not know: export it with " \
               "standard operators, register its custom-op library, or run it on another runtime"
    if "not_implemented" in low or "could not find an implementation" in low:
        return "an operator (with these input types) has no ONNX Runtime kernel: export with another opset " \
               "or dtype, or run it on another runtime"
    if "invalid_graph" in low or "type error" in low or "shape" in low or "invalid_argument" in low:
        return "the graph is invalid (types, shapes or node inputs disagree): check it with " \
               "onnx.checker.check_model(path, full_check=True) and export it again"
    return "check the model with onnx.checker.check_model(path, full_check=True), or try another runtime"


def without_trailing_empty_inputs(source: str | bytes) -> str | bytes:
    """``source`` (a path or a serialized model), with every node's trailing omitted inputs (``""``)
    dropped when it has any, as serialized bytes; else ``source`` unchanged.

    ONNX lets a node name a missing optional input ``""`` or leave it out: the two mean the same. ONNX
    Runtime 1.31's graph fusions crash the process (a segfault, found by ``benchmarks/fuzz_onnx.py``) on
    ``Add → LayerNormalization(x, scale, "")``; the shorter form loads. Models with external data are
    passed as they are (their data is found relative to the file), and so are files over 1 GiB (parsing
    one here would double the memory ONNX Runtime needs to load it).
    """
    import os

    import onnx

    if isinstance(source, str) and os.path.getsize(source) > 1 << 30:
        return source
    try:
        proto = (onnx.load_model(source, load_external_data=False) if isinstance(source, str)
                 else onnx.load_model_from_string(source))
    except Exception:  # noqa: BLE001 - ONNX Runtime reports what is wrong with the file itself
        return source
    from onnx.external_data_helper import uses_external_data

    if isinstance(source, str) and any(uses_external_data(t) for t in proto.graph.initializer):
        return source
    changed = False
    graphs = [proto.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            while len(node.input) and node.input[-1] == "":
                node.input.pop()
                changed = True
            graphs += [a.g for a in node.attribute if a.HasField("g")] + [g for a in node.attribute for g in a.graphs]
    return proto.SerializeToString() if changed else source


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
    distributions: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    aliases: ClassVar[tuple[str, ...]] = ("ort",)
    default_for: ClassVar[tuple[str, ...]] = ("onnx",)
    #: options wb.autotune sweeps (``workbench.analysis.autotune``)
    tunable: ClassVar[tuple[str, ...]] = ("graph_optimization_level", "threads")
    #: Triton Inference Server's backend that runs this runtime's format natively (``workbench.serving.triton``)
    triton_backend: ClassVar[str] = "onnxruntime"
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
        source = without_trailing_empty_inputs(source)
        try:
            self.session = ort.InferenceSession(source, self.session_options(), providers=providers)
        except Exception as err:  # noqa: BLE001 - ORT raises its own exception types
            raise WorkbenchError(f"ONNX Runtime could not load {self.model.name}: {one_line(err)}",
                                 load_error_fix(str(err))) from None
        self._output_names = [o.name for o in self.session.get_outputs()]

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self._output_names, feeds)
        return dict(zip(self._output_names, values, strict=True))

    # -- hooks -----------------------------------------------------------------------------------
    @classmethod
    def as_written_options(cls) -> dict[str, Any]:
        """Graph optimisations off: every node of the ONNX graph runs, as the ONNX semantics say."""
        return {"graph_optimization_level": "disable"}

    @classmethod
    def benchmark_options(cls, options: dict[str, Any], mode: str, streams: int | None) -> dict[str, Any]:
        """Async mode without ``threads``: the physical cores split between the requests in flight,
        rather than each session oversubscribing them."""
        opts = dict(options)
        if mode == "async" and "threads" not in opts:
            opts["threads"] = max(1, physical_cores() // (streams or default_in_flight()))
        return opts

    def effective_threads(self) -> int | None:
        """The ``threads`` option, else ONNX Runtime's default: one per physical core."""
        return super().effective_threads() or physical_cores()

    def inference_call(self, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
        """``run_with_iobinding`` on inputs bound once, outputs left in ONNX Runtime's buffers."""
        session = self.session
        binding = session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        for out in session.get_outputs():
            binding.bind_output(out.name)
        return lambda: session.run_with_iobinding(binding)

    @classmethod
    def profile_nodes(cls, model: Model, feeds: dict[str, np.ndarray], runs: int, warmup: int,
                      **options: Any) -> tuple[list[KernelTime], Model]:
        """ONNX Runtime's profiler (a chrome trace): the ``*_kernel_time`` events of the profiled runs."""
        with tempfile.TemporaryDirectory(prefix="wb-ort-profile-") as tmp:
            with cls(model, enable_profiling=True, profile_prefix=str(Path(tmp) / "ort"), **options) as r:
                feeds = feeds_for(r.model, feeds)
                for _ in range(warmup + runs):
                    r.infer(feeds)
                trace = json.loads(Path(r.end_profiling()).read_text())
        per_kernel: dict[str, list[float]] = defaultdict(list)
        meta: dict[str, tuple[str, str]] = {}
        for ev in trace:
            if ev.get("cat") != "Node" or not ev.get("name", "").endswith("_kernel_time"):
                continue
            kernel = ev["name"][: -len("_kernel_time")]
            per_kernel[kernel].append(ev.get("dur", 0) / 1e3)  # µs -> ms
            args = ev.get("args", {})
            meta[kernel] = (args.get("op_name", "?"), args.get("provider", ""))
        # the last ``runs`` calls are the profiled ones, after the warm-up
        kernels = [KernelTime(k, *meta[k], float(np.mean(times[-runs:]))) for k, times in per_kernel.items()]
        return kernels, model

    def end_profiling(self) -> str:
        """Stop profiling and return the path of the JSON trace."""
        return self.session.end_profiling()

    def _close_impl(self) -> None:
        self.session = None

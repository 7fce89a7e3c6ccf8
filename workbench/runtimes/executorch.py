"""ExecuTorch's runtime through its Python bindings (``executorch.runtime``): the same C++ runtime and
kernels an app embeds on a phone, here on this CPU. Takes ``.pte`` programs; ``wb.runner(m, "executorch")``
on a torch model converts it first (``steps/executorch.py``).

Per-operator times come from ETDump (the runtime's event tracer): the XNNPACK delegate reports each of its
operators (``Convolution (NHWC, F32) IGEMM #1``), portable kernels report themselves.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.core.data import feeds_for
from workbench.core.errors import BackendUnavailable, WorkbenchError
from workbench.core.notices import native_notices
from workbench.core.registry import register_runtime
from workbench.core.runner import KernelTime, Runner
from workbench.formats.executorch import INSTALL

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.model import Model

#: ETDump events that sum others (the whole method, the whole delegate call)
AGGREGATE_EVENTS = ("Method::execute", "Method::init", "Program::load_method")
#: the XNNPACK threadpool's CPU probing, printed from C++ when the first method loads ("Failed to open midr
#: file", "CPU info and manual query on # of cpus dont match"): diagnostics of ARM files absent on x86
CPUINFO_NOTICES = r"^\[cpuinfo_utils\.cpp:\d+\] "


def _load_program(path: Path, *, etdump: bool = False) -> Any:
    from executorch.runtime import Runtime, Verification

    kwargs: dict[str, Any] = {"verification": Verification.Minimal}
    if etdump:
        kwargs.update(enable_etdump=True, debug_buffer_size=0)
    return Runtime.get().load_program(path, **kwargs)


def _set_threads(threads: int | None) -> None:
    """Size the runtime's shared thread pool (XNNPACK's); process-wide, as in an app."""
    if threads:
        from executorch.extension.pybindings import portable_lib

        portable_lib._unsafe_reset_threadpool(int(threads))


def _as_tensors(model: Model, feeds: dict[str, np.ndarray]) -> list[Any]:
    import torch

    return [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in model.input_names]


@register_runtime
class ExecuTorchRunner(Runner):
    """Options: ``threads`` (the size of the runtime's thread pool, process-wide; default: its own
    choice, the physical cores); ``method`` (default: the program's ``forward``)."""

    name: ClassVar[str] = "executorch"
    formats: ClassVar[tuple[str, ...]] = ("executorch",)
    distributions: ClassVar[tuple[str, ...]] = ("executorch",)
    aliases: ClassVar[tuple[str, ...]] = ("et", "pte")
    default_for: ClassVar[tuple[str, ...]] = ("executorch",)
    tunable: ClassVar[tuple[str, ...]] = ("threads",)
    devices: ClassVar[tuple[str, ...]] = ("CPU",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "int8")

    @classmethod
    def _check_available(cls) -> str:
        import importlib.metadata as md
        import importlib.util

        try:
            found = importlib.util.find_spec("executorch.runtime") is not None
        except (ImportError, ValueError):  # no executorch package (or a hidden one)
            found = False
        if not found:
            raise BackendUnavailable("ExecuTorch is not installed (its Python runtime, executorch.runtime)", INSTALL)
        try:
            return md.version("executorch")
        except md.PackageNotFoundError:  # a source build on sys.path
            return "unknown"

    def _prepare_impl(self) -> None:
        if self.model.path is None:
            raise WorkbenchError(f"the ExecuTorch model {self.model.name} has no .pte file", "save it to a file first")
        _set_threads(self.options.get("threads"))
        self.program = _load_program(self.model.path)
        method = self.options.get("method") or self.model.metadata.get("method") or "forward"
        if method not in self.program.method_names:
            raise WorkbenchError(f"{self.model.name} has no method {method!r}",
                                 f"choose one of {sorted(self.program.method_names)}")
        with native_notices(CPUINFO_NOTICES):
            self.method = self.program.load_method(method)

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.method.execute(_as_tensors(self.model, feeds))
        # outputs live in the method's planned memory, which the next call overwrites: copy them
        return {s.name: np.array(o.numpy() if hasattr(o, "numpy") else o, copy=True)
                for s, o in zip(self.model.outputs, outs, strict=False)}

    def _close_impl(self) -> None:
        self.method = None
        self.program = None

    # -- hooks -----------------------------------------------------------------------------------
    def effective_threads(self) -> int | None:
        """The size of the runtime's thread pool (what XNNPACK uses)."""
        try:
            from executorch.extension.pybindings import portable_lib

            return int(portable_lib._threadpool_get_thread_count()) or None
        except Exception:  # noqa: BLE001 - older bindings do not expose it
            return super().effective_threads()

    def effective_precision(self) -> str | None:
        return self.model.metadata.get("precision") or "fp32"

    def inference_call(self, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
        """``Method.execute`` on input tensors made once (they share the arrays' memory)."""
        tensors = _as_tensors(self.model, feeds)
        return lambda: self.method.execute(tensors)

    @classmethod
    def profile_nodes(cls, model: Model, feeds: dict[str, np.ndarray], runs: int, warmup: int,
                      **options: Any) -> tuple[list[KernelTime], Model]:
        """ETDump's events of ``runs`` calls after ``warmup``: each operator of a delegate (XNNPACK names
        them), each portable kernel; the delegate call itself only when its operators are not reported."""
        from executorch.devtools import Inspector

        if model.path is None:
            raise WorkbenchError(f"the ExecuTorch model {model.name} has no .pte file", "save it to a file first")
        _set_threads(options.get("threads"))
        program = _load_program(model.path, etdump=True)
        with native_notices(CPUINFO_NOTICES):
            method = program.load_method(options.get("method") or model.metadata.get("method") or "forward")
        tensors = _as_tensors(model, feeds_for(model, feeds))
        for _ in range(warmup + runs):
            method.execute(tensors)
        with tempfile.TemporaryDirectory(prefix="wb-etdump-") as tmp:
            etdump = Path(tmp) / "run.etdp"
            program.write_etdump_result_to_file(str(etdump), str(Path(tmp) / "debug.bin"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Output Buffer not found": no tensors were logged
                inspector = Inspector(etdump_path=str(etdump))
        events = [e for block in inspector.event_blocks if block.name == "Execute" for e in block.events
                  if e.perf_data is not None and e.name not in AGGREGATE_EVENTS]
        delegated = any(e.is_delegated_op for e in events)
        kernels = []
        for e in events:
            if delegated and e.name == "DELEGATE_CALL":
                continue
            times = list(e.perf_data.raw)[-runs:]  # ms per call; the warm-up calls come first
            backend = e.delegate_backend_name or ("XNNPACK" if e.is_delegated_op else "portable")
            op = e.name.split(" (")[0].split(" #")[0]
            kernels.append(KernelTime(e.name, op, str(backend), float(np.mean(times)) if times else 0.0))
        return kernels, model

"""Apache TVM: a model compiled by ``wb.convert(model, "tvm")`` (a Relax VM executable for this CPU),
run with TVM's Relax virtual machine."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from workbench.core.errors import BackendUnavailable, InferenceError, UntrustedPickleError
from workbench.core.registry import register_runtime
from workbench.core.runner import Runner

INSTALL = "pip install 'deployment-workbench[tvm]'"
STEP = "convert:tvm"


def compiled_here(model: Any) -> bool:
    """True for a library the workbench compiled (its lineage ends in the TVM step) or one opened with
    ``trust=True``: loading a library runs its native code."""
    return bool(model.metadata.get("trusted")) or any(e.step == STEP for e in model.lineage)


@register_runtime
class TVMRunner(Runner):
    """Options: ``threads`` (TVM's thread pool size; default: TVM's, one per physical core)."""

    name: ClassVar[str] = "tvm"
    formats: ClassVar[tuple[str, ...]] = ("tvm",)
    distributions: ClassVar[tuple[str, ...]] = ("apache-tvm",)
    aliases: ClassVar[tuple[str, ...]] = ("apache-tvm",)
    default_for: ClassVar[tuple[str, ...]] = ("tvm",)
    tunable: ClassVar[tuple[str, ...]] = ("threads",)
    devices: ClassVar[tuple[str, ...]] = ("CPU",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)

    @classmethod
    def _check_available(cls) -> str:
        try:
            import tvm
        except ImportError:
            raise BackendUnavailable("Apache TVM is not installed", INSTALL) from None
        except Exception as err:  # noqa: BLE001 - its native library can fail to load (glibc, LLVM)
            raise BackendUnavailable(f"Apache TVM failed to import: {str(err).strip()[:200]}",
                                     f"reinstall it: {INSTALL}") from None
        return str(tvm.__version__)

    def _prepare_impl(self) -> None:
        import tvm
        from tvm import relax

        path = self.model.path
        if path is None:
            raise InferenceError("the TVM runner needs a compiled .tvm folder", "compile with wb.convert(model, 'tvm')")
        if not compiled_here(self.model):
            raise UntrustedPickleError(
                f"{path.name} is a compiled library: loading it runs its native code, and the workbench did "
                "not compile it", f"if you trust it, wb.load({str(path)!r}, trust=True); else compile the "
                "source model here with wb.convert(model, 'tvm')")
        if self.options.get("threads"):
            config = tvm.get_global_func("runtime.config_threadpool", True)
            if config is not None:
                config(0, int(self.options["threads"]))
        try:
            library = tvm.runtime.load_module(str(path / "lib.so"))
            self.vm = relax.VirtualMachine(library, tvm.cpu())
        except Exception as err:  # noqa: BLE001 - TVM raises its own error types with C++ traces
            raise InferenceError(f"TVM could not load {path.name}: {str(err).strip().splitlines()[-1][:300]}",
                                 "the library was compiled for another CPU or TVM version: compile it again here") from None
        self.main = self.vm["main"]
        self._inputs = [(s.name, s.dtype) for s in self.model.inputs]
        self._outputs = list(self.model.output_names)

    def _tensors(self, feeds: dict[str, np.ndarray]) -> list[Any]:
        import tvm

        return [tvm.runtime.tensor(np.ascontiguousarray(feeds[name], dtype=dtype)) for name, dtype in self._inputs]

    def inference_call(self, feeds: dict[str, np.ndarray]) -> Any:
        """The VM's ``main`` on TVM tensors made once."""
        args = self._tensors(feeds)
        main = self.main
        return lambda: main(*args)

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.main(*self._tensors(feeds))
        values = [result] if hasattr(result, "numpy") else list(result)
        arrays = [v.numpy() for v in values]
        if len(arrays) != len(self._outputs):
            raise InferenceError(f"the TVM library returned {len(arrays)} outputs, its description lists "
                                 f"{len(self._outputs)}", "compile the model again")
        return dict(zip(self._outputs, arrays, strict=True))

    def _close_impl(self) -> None:
        self.main = None
        self.vm = None

"""``torch.compile`` (TorchInductor on CPU: generated C++/OpenMP kernels, needs a C++ compiler)."""

from __future__ import annotations

import shutil
from typing import ClassVar

import numpy as np

from workbench.core.errors import BackendUnavailable
from workbench.core.registry import register_runtime
from workbench.runtimes.torch_common import (
    TorchRunner,
    call_module,
    named_outputs,
    set_threads,
    torch_version,
)


@register_runtime
class TorchCompileRunner(TorchRunner):
    """Options: ``backend`` (default ``"inductor"``), ``mode`` (``None``, ``"max-autotune"``, …),
    ``dynamic`` (default False), ``threads``. The first ``infer`` compiles (seconds to a minute):
    ``prepare()`` does it on the model's example inputs so timings exclude it."""

    name: ClassVar[str] = "torch_compile"
    formats: ClassVar[tuple[str, ...]] = ("torch", "hf", "exported_program")
    distributions: ClassVar[tuple[str, ...]] = ("torch",)
    aliases: ClassVar[tuple[str, ...]] = ("inductor",)
    default_for: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _check_available(cls) -> str:
        version = torch_version()
        if not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")):
            raise BackendUnavailable("torch.compile (inductor) needs a C++ compiler and none is on PATH",
                                     "install one: apt-get install g++")
        return version

    def _prepare_impl(self) -> None:
        import torch

        set_threads(self.options.get("threads"))
        native = self.model.native()
        module = native.module() if self.model.format == "exported_program" else native
        self._compiled = torch.compile(module, backend=self.options.get("backend", "inductor"),
                                       mode=self.options.get("mode"), dynamic=self.options.get("dynamic", False))
        call_module(self._compiled, self.model.format, self.model.example_inputs(), self.model.input_names)

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = call_module(self._compiled, self.model.format, feeds, self.model.input_names)
        return named_outputs(out, self.model.output_names)

    def _close_impl(self) -> None:
        self._compiled = None

"""PyTorch eager mode: the reference every other runtime is compared with."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from workbench.core.registry import register_runtime
from workbench.runtimes.torch_common import (
    TorchRunner,
    call_module,
    named_outputs,
    set_threads,
    torch_version,
)


@register_runtime
class TorchEagerRunner(TorchRunner):
    """Runs the module as written. Options: ``threads`` (intra-op threads), ``dtype`` (``"fp32"`` or
    ``"bf16"``: autocast on CPU)."""

    name: ClassVar[str] = "torch_eager"
    formats: ClassVar[tuple[str, ...]] = ("torch", "hf", "exported_program", "torchscript")
    distributions: ClassVar[tuple[str, ...]] = ("torch",)
    aliases: ClassVar[tuple[str, ...]] = ("torch", "eager")
    default_for: ClassVar[tuple[str, ...]] = ("torch", "hf", "exported_program")
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "bf16")

    @classmethod
    def _check_available(cls) -> str:
        return torch_version()

    def _prepare_impl(self) -> None:
        set_threads(self.options.get("threads"))
        native = self.model.native()
        self._module = native.module() if self.model.format == "exported_program" else native
        self._bf16 = self.options.get("dtype", "fp32") == "bf16"

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._bf16):
            out = call_module(self._module, self.model.format, feeds, self.model.input_names)
        return named_outputs(out, self.model.output_names)

    def _close_impl(self) -> None:
        self._module = None

    @property
    def module(self) -> Any:
        return self._module

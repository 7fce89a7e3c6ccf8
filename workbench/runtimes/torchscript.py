"""TorchScript (``torch.jit``): a saved ``.pt`` archive, or a torch model traced on the way in."""

from __future__ import annotations

from typing import ClassVar

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
class TorchScriptRunner(TorchRunner):
    """Options: ``threads``, ``optimize`` (``torch.jit.optimize_for_inference``; default False)."""

    name: ClassVar[str] = "torchscript"
    formats: ClassVar[tuple[str, ...]] = ("torchscript",)
    distributions: ClassVar[tuple[str, ...]] = ("torch",)
    aliases: ClassVar[tuple[str, ...]] = ("jit",)
    default_for: ClassVar[tuple[str, ...]] = ("torchscript",)
    #: Triton Inference Server's backend that runs TorchScript natively (libtorch; ``workbench.serving.triton``)
    triton_backend: ClassVar[str] = "pytorch"

    @classmethod
    def _check_available(cls) -> str:
        return torch_version()

    def _prepare_impl(self) -> None:
        import torch

        set_threads(self.options.get("threads"))
        module = self.model.native()
        if self.options.get("optimize"):
            module = torch.jit.optimize_for_inference(torch.jit.freeze(module) if module.training is False else module)
        self._module = module

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = call_module(self._module, "torchscript", feeds, self.model.input_names)
        return named_outputs(out, self.model.output_names)

    def _close_impl(self) -> None:
        self._module = None

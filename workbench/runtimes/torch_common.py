"""Helpers shared by the torch-based runners."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.core.errors import BackendUnavailable
from workbench.core.runner import Runner


class TorchRunner(Runner):
    """What the torch-based runners share: their hooks (not a runtime itself; it is not registered)."""

    def effective_threads(self) -> int | None:
        """The ``threads`` option, else torch's intra-op thread count."""
        threads = super().effective_threads()
        if threads:
            return threads
        import torch

        return torch.get_num_threads()


def torch_version() -> str:
    try:
        import torch
    except ImportError:
        raise BackendUnavailable("PyTorch is not installed", "pip install torch (see constraints.txt)") from None
    return torch.__version__


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def call_module(module: Any, fmt: str, feeds: dict[str, np.ndarray], input_names: list[str]) -> Any:
    """Call a module with numpy feeds: keyword arguments for transformers models, positional otherwise."""
    import torch

    tensors = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in input_names]
    with torch.inference_mode():
        if fmt == "hf":
            return module(**dict(zip(input_names, tensors, strict=True)))
        return module(*tensors)


def named_outputs(out: Any, output_names: list[str]) -> dict[str, np.ndarray]:
    """Module outputs renamed to the model's output names (by position)."""
    from workbench.formats.torch_module import flatten_outputs

    flat = flatten_outputs(out)
    values = list(flat.values())
    if output_names and len(values) >= len(output_names):
        return dict(zip(output_names, values[: len(output_names)], strict=True))
    return flat

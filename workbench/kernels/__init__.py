"""The Triton kernel lab: write kernels inline, check them, time them, put them into a model.

Kernels run compiled on an NVIDIA GPU and through Triton's interpreter everywhere else (CPU tensors,
``TRITON_INTERPRET=1`` set for you before Triton is imported); ``wb.kernels.mode()`` says which.

    import workbench as wb
    %load_ext workbench.kernels          # the %%triton cell magic
    wb.kernels.mode()                    # compiled on <GPU> / interpreter on the CPU
    report = wb.kernels.check(add, lambda x, y: x + y, shapes=[(1,), (1000,), (4097,)])
    wb.kernels.bench(add, x, y, reference=torch.add, bytes=3 * x.numel() * 4)
    fast = wb.kernels.with_kernels(wb.load("tiny-transformer"), attention=True)  # + fused attention
    wb.kernels.trace(add, x, y).maps[0]  # interpreter: who read and wrote which element (heat-map)
    wb.KernelLab()                       # the editor widget (workbench.ui.kernel_lab; not imported here)
    ex = wb.kernels.exercise("softmax.log_softmax")

Importing this package is cheap: torch and triton are imported when a function needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, tuple[str, str | None]] = {
    "setup": ("workbench.kernels.modes", "setup"),
    "mode": ("workbench.kernels.modes", "mode"),
    "device": ("workbench.kernels.modes", "device"),
    "Mode": ("workbench.kernels.modes", "Mode"),
    "KernelError": ("workbench.kernels.modes", "KernelError"),
    "OutOfBoundsError": ("workbench.kernels.guard", "OutOfBoundsError"),
    "check": ("workbench.kernels.checker", "check"),
    "CheckReport": ("workbench.kernels.checker", "CheckReport"),
    "TOLERANCES": ("workbench.kernels.checker", "TOLERANCES"),
    "dot_tolerance": ("workbench.kernels.checker", "dot_tolerance"),
    "bench": ("workbench.kernels.timing", "bench"),
    "BenchResult": ("workbench.kernels.timing", "BenchResult"),
    "device_peaks": ("workbench.kernels.timing", "device_peaks"),
    "sweep": ("workbench.kernels.timing", "sweep"),
    "plot_sweep": ("workbench.kernels.timing", "plot_sweep"),
    "roofline": ("workbench.kernels.timing", "roofline"),
    "run": ("workbench.kernels.magic", "run_source"),
    "register_op": ("workbench.kernels.custom_op", "register_op"),
    "with_kernels": ("workbench.kernels.custom_op", "with_kernels"),
    "swap_modules": ("workbench.kernels.custom_op", "swap_modules"),
    "TritonSoftmax": ("workbench.kernels.custom_op", "TritonSoftmax"),
    "TritonLayerNorm": ("workbench.kernels.custom_op", "TritonLayerNorm"),
    "TritonAttention": ("workbench.kernels.custom_op", "TritonAttention"),
    "to_device": ("workbench.kernels.custom_op", "to_device"),
    "trace": ("workbench.kernels.access", "trace"),
    "AccessMap": ("workbench.kernels.access", "AccessMap"),
    "exercise": ("workbench.kernels.puzzles", "exercise"),
    "exercises": ("workbench.kernels.puzzles", "exercises"),
    "library": ("workbench.kernels.library", None),
}

__all__ = sorted(_LAZY) + ["load_ipython_extension", "quick"]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'workbench.kernels' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext workbench.kernels``: registers the ``%%triton`` cell magic."""
    from workbench.kernels.magic import load_ipython_extension as load

    load(ipython)


def quick() -> bool:
    """True when ``WORKBENCH_QUICK=1`` (CI): tutorials use their smallest settings."""
    from workbench.core import settings

    return settings.quick()

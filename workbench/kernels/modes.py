"""How kernels run here: compiled on an NVIDIA GPU, or through Triton's interpreter on the CPU.

Triton decides between the two when a kernel is decorated with ``@triton.jit``: with the environment
variable ``TRITON_INTERPRET=1`` set, the decorator returns an ``InterpretedFunction`` that runs the
kernel's Python body with NumPy, one program at a time, on CPU tensors. ``setup()`` picks the mode
once per process: no CUDA GPU (or ``WORKBENCH_TRITON_MODE=interpreter``) means interpreter mode, and
the variable is set before Triton is imported. Kernels decorated before that (compiled kernels on a
machine without a GPU) cannot run; ``as_error`` turns Triton's "0 active drivers" into a one-line
explanation with the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from workbench.core import settings
from workbench.core.errors import BackendUnavailable, WorkbenchError


class KernelError(WorkbenchError, RuntimeError):
    """A kernel failed to compile or run; the message points at the line of the kernel."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback: the one line is the whole story
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


@dataclass(frozen=True)
class Mode:
    """The way kernels run in this process."""

    name: str  # "compiled" or "interpreter"
    device: str  # "cuda" or "cpu": where kernel tensors live
    reason: str  # why this mode was chosen
    gpu: str | None = None  # the GPU's name in compiled mode
    triton_version: str | None = None

    @property
    def interpreted(self) -> bool:
        return self.name == "interpreter"

    def describe(self) -> str:
        """One line for notebooks and the KernelLab badge."""
        if self.interpreted:
            return (
                f"Triton {self.triton_version} · interpreter mode on the CPU ({self.reason}); "
                "results are exact, timings say nothing about GPU speed"
            )
        return f"Triton {self.triton_version} · compiled mode on {self.gpu}"

    def __str__(self) -> str:
        return self.describe()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.describe())

    def _repr_html_(self) -> str:
        color = "#b26b00" if self.interpreted else "#1a7f37"
        return f'<span style="color:{color};font-weight:600">{self.describe()}</span>'


_MODE: Mode | None = None


def _cuda_gpu() -> str | None:
    """The name of the first CUDA GPU torch sees, or None."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return None
    try:
        if torch.cuda.is_available() and torch.version.hip is None:
            return torch.cuda.get_device_name(0)
    except Exception:  # a broken driver counts as no GPU
        return None
    return None


def setup() -> Mode:
    """Choose the mode (once per process), set ``TRITON_INTERPRET`` accordingly, import Triton.

    ``WORKBENCH_TRITON_MODE=interpreter`` forces the interpreter on a GPU machine (to debug with
    prints and bounds checks). Returns the ``Mode``; later calls return the same one.
    """
    global _MODE
    if _MODE is not None:
        return _MODE
    forced = settings.triton_mode()
    gpu = None if forced == "interpreter" else _cuda_gpu()
    user_interpret = os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on", "yes")
    if gpu is not None and not user_interpret:
        reason = f"CUDA GPU found: {gpu}"
        name, device = "compiled", "cuda"
    else:
        if forced == "interpreter":
            reason = "WORKBENCH_TRITON_MODE=interpreter"
        elif user_interpret:
            reason = "TRITON_INTERPRET=1 was set"
        else:
            reason = "no CUDA GPU here"
        name, device = "interpreter", "cpu"
        # Triton reads this when a kernel is decorated (recent versions) or imported (older ones).
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        import triton
    except ImportError as err:
        raise BackendUnavailable(
            "Triton is not installed", "pip install 'deployment-workbench[triton]' (or pip install triton)"
        ) from err
    if name == "interpreter" and (_has_compiled_jit_functions() or not _decorates_interpreted()):
        # Kernels decorated before TRITON_INTERPRET was set (Triton's own tl.max, tl.sigmoid, … when
        # triton was imported first, or the user's) are compiled-mode JITFunctions: route them.
        _route_jit_to_interpreter()
        reason += "; Triton was imported before the lab, its kernels are routed to the interpreter"
    _MODE = Mode(name, device, reason, gpu if name == "compiled" else None, triton.__version__)
    if name == "interpreter":
        from workbench.kernels import guard

        guard.install()
    return _MODE


def _has_compiled_jit_functions() -> bool:
    """True when Triton's own library functions were decorated in compiled mode (imported too early)."""
    from triton.language import standard
    from triton.runtime.jit import JITFunction

    return isinstance(getattr(standard, "max", None), JITFunction)


def _decorates_interpreted() -> bool:
    """Whether ``@triton.jit`` makes interpreted kernels now: ``triton.knobs`` (Triton ≥ 3.4) reads the
    setting; older versions read the environment variable when a kernel is decorated."""
    try:
        from triton import knobs
    except ImportError:  # Triton < 3.4 has no knobs module
        return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")
    return bool(knobs.runtime.interpret)


def _route_jit_to_interpreter() -> None:
    """Make compiled-mode ``JITFunction``s run through the interpreter (launches and nested calls)."""
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    if getattr(JITFunction, "_workbench_routed", False):
        return

    def interpreted(self: Any) -> Any:
        fn = self.__dict__.get("_workbench_interpreted")
        if fn is None:
            fn = InterpretedFunction(self.fn)
            self.__dict__["_workbench_interpreted"] = fn
        return fn

    JITFunction.__call__ = lambda self, *args, **kwargs: interpreted(self)(*args, **kwargs)
    JITFunction.run = lambda self, *args, **kwargs: interpreted(self).run(*args, **kwargs)
    JITFunction._workbench_routed = True


def mode() -> Mode:
    """The current ``Mode`` (calls ``setup()`` the first time)."""
    return _MODE or setup()


def device() -> str:
    """Where kernel tensors must live in this mode: ``"cuda"`` or ``"cpu"``."""
    return mode().device


def is_compiled_kernel_without_gpu(kernel: Any) -> bool:
    """True for a ``@triton.jit`` kernel that was decorated in compiled mode while we interpret."""
    if not mode().interpreted:
        return False
    from triton.runtime.jit import JITFunction

    return isinstance(kernel, JITFunction)


def as_error(err: BaseException) -> BaseException:
    """Translate the errors Triton gives for a mode mismatch into a KernelError with the fix."""
    text = str(err)
    if "active drivers" in text:
        return KernelError(
            "this kernel was decorated with @triton.jit in compiled mode, but there is no GPU driver here",
            "define kernels after `import workbench.kernels` (or in a %%triton cell) so they run in the "
            "interpreter; re-run the cell that defines the kernel",
        )
    if "Pointer argument" in text and "cannot be accessed from Triton" in text:
        return KernelError(
            f"a tensor given to the kernel is on the wrong device ({text.splitlines()[0]})",
            f"create kernel tensors with device={device()!r} (wb.kernels.device())",
        )
    return err

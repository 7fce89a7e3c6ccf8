"""Kernels into models: register a launcher as a torch custom op, wrap it in an ``nn.Module``, and
swap it into a model in place of the layer it computes.

``register_op("mylib::softmax", softmax)`` makes ``torch.ops.mylib.softmax`` from a launcher with type
hints (``torch.library.custom_op``; with ``kind="triton_op"``, ``torch.library.triton_op``, which lets
``torch.compile`` see into kernels launched through ``torch.library.wrap_triton``). Re-registering a
name (re-running a notebook cell) points the op at the new launcher instead of failing.

``with_kernels(model, {nn.Softmax: TritonSoftmax})`` returns a new ``Model`` whose module has every
matching submodule replaced; the original is not modified. ``wb.compare(model, [new])`` and
``wb.benchmark([model, new])`` then show the kernel's end-to-end effect.
"""

from __future__ import annotations

import copy
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

from workbench.errors import WorkbenchError
from workbench.kernels.modes import KernelError, setup

# qualname -> the launcher the op currently calls (re-registration swaps it)
_IMPLS: dict[str, Callable[..., Any]] = {}
_OPS: dict[str, Any] = {}


def register_op(
    qualname: str,
    launcher: Callable[..., Any],
    *,
    fake: Callable[..., Any] | None = None,
    kind: str = "custom_op",
) -> Any:
    """Register ``launcher`` as the torch op ``qualname`` (``"namespace::name"``) and return the op.

    ``fake`` computes the output's shape and dtype from fake tensors (for ``torch.compile`` and
    ``torch.export``); by default the output is like the first input. ``launcher`` needs type hints
    (``x: torch.Tensor) -> torch.Tensor``) because torch derives the op's schema from them.
    """
    setup()
    import torch

    if "::" not in qualname:
        raise WorkbenchError(f"op name {qualname!r} has no namespace", 'use "namespace::name", e.g. "mylib::softmax"')
    if kind not in ("custom_op", "triton_op"):
        raise WorkbenchError(f"unknown op kind {kind!r}", 'use kind="custom_op" or kind="triton_op"')
    _IMPLS[qualname] = launcher
    if qualname in _OPS:
        return _OPS[qualname]

    @functools.wraps(launcher)
    def trampoline(*args: Any, **kwargs: Any) -> Any:
        return _IMPLS[qualname](*args, **kwargs)

    try:
        trampoline.__signature__ = _resolved_signature(launcher)  # type: ignore[attr-defined]
        if kind == "triton_op":
            op = torch.library.triton_op(qualname, trampoline, mutates_args=())
        else:
            op = torch.library.custom_op(qualname, trampoline, mutates_args=())
    except (ValueError, TypeError, NameError) as err:
        _IMPLS.pop(qualname, None)
        raise KernelError(
            f"cannot register {qualname} from {getattr(launcher, '__name__', launcher)!r}: {err}",
            "give the launcher type hints for every argument and its result, e.g. "
            "def softmax(x: torch.Tensor) -> torch.Tensor",
        ) from err
    if kind == "custom_op":
        op.register_fake(fake or (lambda *args, **kwargs: torch.empty_like(args[0])))
    _OPS[qualname] = op
    return op


def _resolved_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """``fn``'s signature with string annotations (``from __future__ import annotations``) evaluated."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()]
    return sig.replace(parameters=params, return_annotation=hints.get("return", sig.return_annotation))


def _library_ops() -> dict[str, Any]:
    """The custom ops over the tutorial kernels (registered once)."""
    from workbench.kernels.library import layernorm, softmax

    return {
        "softmax": register_op("workbench::softmax", softmax.softmax),
        "layer_norm": register_op("workbench::layer_norm", layernorm.layer_norm),
    }


def _nn() -> Any:
    from torch import nn

    return nn


class _KernelModuleBase:
    """Marker for modules whose forward runs a Triton kernel."""


def TritonSoftmax(dim: int = -1) -> Any:  # noqa: N802 - reads like a class in user code
    """An ``nn.Module`` computing softmax over the last dimension with the tutorial's fused kernel."""
    nn = _nn()
    ops = _library_ops()

    class _TritonSoftmax(nn.Module, _KernelModuleBase):
        def __init__(self) -> None:
            super().__init__()
            if dim not in (-1,):
                raise WorkbenchError(f"TritonSoftmax computes over the last dimension, not dim={dim}",
                                     "use it for nn.Softmax(dim=-1) layers")
            self.dim = dim

        def forward(self, x: Any) -> Any:
            return ops["softmax"](x)

        def extra_repr(self) -> str:
            return "dim=-1, kernel=workbench::softmax"

    return _TritonSoftmax()


def TritonLayerNorm(norm: Any) -> Any:  # noqa: N802
    """An ``nn.Module`` with the weights of ``norm`` (an ``nn.LayerNorm`` over the last dimension)
    computing it with the tutorial's layernorm kernel."""
    nn = _nn()
    ops = _library_ops()
    if len(norm.normalized_shape) != 1 or not norm.elementwise_affine or norm.bias is None:
        raise WorkbenchError("TritonLayerNorm takes an nn.LayerNorm over one (last) dimension with weight and bias",
                             "leave other LayerNorms as they are (pass a predicate to with_kernels)")

    class _TritonLayerNorm(nn.Module, _KernelModuleBase):
        def __init__(self) -> None:
            super().__init__()
            self.weight = norm.weight
            self.bias = norm.bias
            self.eps = float(norm.eps)

        def forward(self, x: Any) -> Any:
            return ops["layer_norm"](x.contiguous(), self.weight, self.bias, self.eps)

        def extra_repr(self) -> str:
            return f"{self.weight.shape[0]}, eps={self.eps}, kernel=workbench::layer_norm"

    return _TritonLayerNorm()


def swap_modules(module: Any, match: Any, make: Callable[[Any], Any]) -> list[str]:
    """Replace, in place, every submodule of ``module`` that ``match`` selects by ``make(old)``.

    ``match`` is an ``nn.Module`` subclass or a predicate ``(name, submodule) -> bool``. Returns the
    names of the replaced submodules.
    """
    replaced = []
    for name, child in list(module.named_modules()):
        if not name:
            continue
        hit = isinstance(child, match) if isinstance(match, type) else match(name, child)
        if hit:
            parent_name, _, attr = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, attr, make(child))
            replaced.append(name)
    return replaced


def default_replacements() -> dict[Any, Callable[[Any], Any]]:
    """nn.Softmax(dim=-1) -> TritonSoftmax, nn.LayerNorm -> TritonLayerNorm."""
    nn = _nn()
    return {nn.Softmax: lambda m: TritonSoftmax(m.dim if m.dim is not None else -1), nn.LayerNorm: TritonLayerNorm}


def with_kernels(model: Any, replacements: dict[Any, Callable[[Any], Any]] | None = None, *, name: str | None = None):
    """A new ``Model`` (format ``"torch"``) in which submodules are computed by Triton kernels.

    ``model`` is a workbench ``Model`` of format ``"torch"`` (``wb.load("tiny-transformer")``) or an
    ``nn.Module``. ``replacements`` maps an ``nn.Module`` type (or a predicate) to a factory; default:
    softmax and LayerNorm. The new model keeps the original's inputs, outputs, task and example data,
    and its lineage records which modules were replaced.
    """
    setup()
    from workbench.model import LineageEntry, Model

    nn = _nn()
    if isinstance(model, nn.Module):
        raise WorkbenchError("with_kernels takes a workbench Model",
                             "wrap the module first: wb.load(module, example_inputs=...)")
    if not isinstance(model, Model) or model.format != "torch":
        fmt = getattr(model, "format", type(model).__name__)
        raise WorkbenchError(f"kernels can only be swapped into a torch model, not a {fmt} one",
                             "use the original torch model (model.original) or wb.load('tiny-transformer')")
    module = copy.deepcopy(model.native())
    replaced: dict[str, list[str]] = {}
    for match, make in (replacements or default_replacements()).items():
        names = swap_modules(module, match, make)
        if names:
            replaced[getattr(match, "__name__", str(match))] = names
    if not replaced:
        raise WorkbenchError("no submodule matched the replacements",
                             f"the model's module types are: {sorted({type(m).__name__ for m in module.modules()})}")
    module.eval()
    entry = LineageEntry("kernels:triton", {"replaced": replaced}, model)
    return model.derive(
        "torch", None, entry,
        name=name or f"{model.name}+triton",
        native=module,
        example_feeds=model.example_inputs(),
        metadata={**model.metadata, "kernels": replaced},
    )

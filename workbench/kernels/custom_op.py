"""Kernels into models: register a launcher as a torch custom op, wrap it in an ``nn.Module``, and
swap it into a model in place of the layer it computes.

``register_op("mylib::softmax", softmax)`` makes ``torch.ops.mylib.softmax`` from a launcher with type
hints (``torch.library.custom_op``; with ``kind="triton_op"``, ``torch.library.triton_op``, which lets
``torch.compile`` see into kernels launched through ``torch.library.wrap_triton``). Re-registering a
name (re-running a notebook cell) points the op at the new launcher instead of failing.

In interpreter mode ``wrap_triton`` hands the kernel back unwrapped (an interpreted kernel cannot be
traced: it touches real memory), so a ``triton_op`` there would break ``torch.compile``'s fake-tensor
pass. ``kind="triton_op"`` therefore registers an opaque ``custom_op`` with a fake implementation in
interpreter mode (``torch.compile`` keeps it as one node and runs it eagerly), and a real ``triton_op``
on a GPU, where Inductor sees the kernels. ``op._workbench_kind`` says which one was made.

``with_kernels(model, {nn.Softmax: TritonSoftmax})`` returns a new ``Model`` whose module has every
matching submodule replaced; the original is not modified. ``with_kernels(model, attention=True)``
also swaps the fused attention kernel into attention blocks that project q, k, v with one ``qkv``
linear layer (the zoo's tiny transformer). ``device="cuda"`` (the default on a GPU) moves the module
to the device and wraps it so the workbench's runners, which feed CPU arrays, still work: inputs go to
the device and outputs come back. ``to_device(model)`` does the same without swapping anything (the
baseline to compare with). ``wb.compare(model, [new])`` and ``wb.benchmark([model, new])`` then show
the kernel's end-to-end effect.
"""

from __future__ import annotations

import copy
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

from workbench.core.errors import WorkbenchError
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
    made = kind if (kind == "custom_op" or not setup().interpreted) else "custom_op (interpreter)"
    _IMPLS[qualname] = launcher
    if qualname in _OPS:
        return _OPS[qualname]

    @functools.wraps(launcher)
    def trampoline(*args: Any, **kwargs: Any) -> Any:
        return _IMPLS[qualname](*args, **kwargs)

    try:
        trampoline.__signature__ = _resolved_signature(launcher)  # type: ignore[attr-defined]
        if made == "triton_op":
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
    if made != "triton_op" or fake is not None:
        op.register_fake(fake or (lambda *args, **kwargs: torch.empty_like(args[0])))
    op._workbench_kind = made
    _OPS[qualname] = op
    return op


def _resolved_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """``fn``'s signature with string annotations (``from __future__ import annotations``) evaluated."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()]
    return sig.replace(parameters=params, return_annotation=hints.get("return", sig.return_annotation))


def _attention_fake(q: Any, k: Any, v: Any) -> Any:
    import torch

    return torch.empty_like(q)


def _library_ops() -> dict[str, Any]:
    """The ops over the tutorial kernels (registered once; their launchers go through wrap_triton)."""
    from workbench.kernels.library import attention, layernorm, softmax

    return {
        "softmax": register_op("workbench::softmax", softmax.softmax, kind="triton_op"),
        "layer_norm": register_op("workbench::layer_norm", layernorm.layer_norm, kind="triton_op"),
        "attention": register_op("workbench::attention", attention.attention, kind="triton_op",
                                 fake=_attention_fake),
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


def _heads_of(attn: Any) -> int | None:
    """The head count of an attention module: an attribute, else the module's own HEADS constant."""
    for name in ("heads", "num_heads", "n_heads", "n_head"):
        value = getattr(attn, name, None)
        if isinstance(value, int):
            return value
    value = getattr(type(attn).forward, "__globals__", {}).get("HEADS")
    return value if isinstance(value, int) else None


def is_qkv_attention(_name: str, module: Any) -> bool:
    """Attention blocks ``TritonAttention`` can take: one ``qkv`` and one ``proj`` linear layer."""
    nn = _nn()
    qkv, proj = getattr(module, "qkv", None), getattr(module, "proj", None)
    return (isinstance(qkv, nn.Linear) and isinstance(proj, nn.Linear) and qkv.out_features == 3 * proj.in_features
            and _heads_of(module) is not None and not isinstance(module, _KernelModuleBase))


def TritonAttention(attn: Any, heads: int | None = None) -> Any:  # noqa: N802
    """An ``nn.Module`` computing ``attn`` (self-attention with a fused ``qkv`` projection, non-causal)
    with the tutorial's fused attention kernel: q, k, v go to the kernel as (batch, heads, seq, head_dim)."""
    nn = _nn()
    ops = _library_ops()
    heads = heads or _heads_of(attn)
    if heads is None or not is_qkv_attention("", attn):
        raise WorkbenchError("TritonAttention takes a self-attention module with `qkv` and `proj` nn.Linear layers "
                             "and a head count", "pass heads=… or leave this module as it is")

    class _TritonAttention(nn.Module, _KernelModuleBase):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = attn.qkv
            self.proj = attn.proj
            self.heads = heads

        def forward(self, x: Any) -> Any:
            b, s, d = x.shape
            q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            out = ops["attention"](q.contiguous(), k.contiguous(), v.contiguous())
            return self.proj(out.transpose(1, 2).reshape(b, s, d))

        def extra_repr(self) -> str:
            return f"heads={self.heads}, kernel=workbench::attention"

    return _TritonAttention()


class _OnDeviceBase:
    """Marker: a module moved to a device, taking and returning CPU tensors."""


def on_device(module: Any, device: str) -> Any:
    """``module`` moved to ``device``, wrapped so callers can pass and get back CPU tensors (what the
    workbench's runners use). Attribute access reaches the wrapped module (``m.blocks[0]``)."""
    import torch

    nn = _nn()

    class _OnDevice(nn.Module, _OnDeviceBase):
        def __init__(self) -> None:
            super().__init__()
            self.module = module.to(device)
            self.device = torch.device(device)

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            move = (lambda t: t.to(self.device) if isinstance(t, torch.Tensor) else t)  # noqa: E731
            out = self.module(*map(move, args), **{k: move(v) for k, v in kwargs.items()})
            back = (lambda t: t.cpu() if isinstance(t, torch.Tensor) else t)  # noqa: E731
            if isinstance(out, tuple | list):
                return type(out)(back(o) for o in out)
            if isinstance(out, dict):
                return {k: back(v) for k, v in out.items()}
            return back(out)

        def __getattr__(self, name: str) -> Any:
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(super().__getattr__("module"), name)

    return _OnDevice()


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


def default_replacements(attention: bool = False) -> dict[Any, Callable[[Any], Any]]:
    """nn.Softmax(dim=-1) -> TritonSoftmax, nn.LayerNorm -> TritonLayerNorm; with ``attention``, then
    every fused-``qkv`` self-attention block -> TritonAttention (its softmax included)."""
    nn = _nn()
    out: dict[Any, Callable[[Any], Any]] = {
        nn.Softmax: lambda m: TritonSoftmax(m.dim if m.dim is not None else -1), nn.LayerNorm: TritonLayerNorm}
    if attention:
        out[is_qkv_attention] = TritonAttention
    return out


def _derive(model: Any, module: Any, step: str, options: dict[str, Any], name: str) -> Any:
    from workbench.core.model import LineageEntry

    module.eval()
    return model.derive(
        "torch", None, LineageEntry(step, options, model),
        name=name, native=module, example_feeds=model.example_inputs(),
        metadata={**model.metadata, **({"kernels": options["replaced"]} if "replaced" in options else {}),
                  **({"device": options["device"]} if "device" in options else {})},
    )


def _torch_model(model: Any) -> None:
    from workbench.core.model import Model

    nn = _nn()
    if isinstance(model, nn.Module):
        raise WorkbenchError("with_kernels takes a workbench Model",
                             "wrap the module first: wb.load(module, example_inputs=...)")
    if not isinstance(model, Model) or model.format != "torch":
        fmt = getattr(model, "format", type(model).__name__)
        raise WorkbenchError(f"kernels can only be swapped into a torch model, not a {fmt} one",
                             "use the original torch model (model.original) or wb.load('tiny-transformer')")


def to_device(model: Any, device: str | None = None, *, name: str | None = None) -> Any:
    """A new ``Model`` whose module runs on ``device`` (default: where kernels run, ``wb.kernels.device()``),
    taking and returning CPU tensors: the eager baseline beside ``with_kernels(model, device=...)``."""
    mode = setup()
    _torch_model(model)
    device = device or mode.device
    module = copy.deepcopy(model.native())
    module = on_device(module, device) if device != "cpu" else module
    return _derive(model, module, f"device:{device}", {"device": device}, name or f"{model.name}@{device}")


def with_kernels(model: Any, replacements: dict[Any, Callable[[Any], Any]] | None = None, *, name: str | None = None,
                 attention: bool = False, device: str | None = None):
    """A new ``Model`` (format ``"torch"``) in which submodules are computed by Triton kernels.

    ``model`` is a workbench ``Model`` of format ``"torch"`` (``wb.load("tiny-transformer")``) or an
    ``nn.Module``. ``replacements`` maps an ``nn.Module`` type (or a predicate) to a factory; default:
    softmax and LayerNorm (and fused attention with ``attention=True``). ``device``: where the module
    and the kernels run (default: ``wb.kernels.device()``, i.e. ``"cuda"`` on a GPU); off the CPU the
    module is wrapped to take and return CPU tensors (see ``on_device``). The new model keeps the
    original's inputs, outputs, task and example data, and its lineage records which modules were
    replaced and where they run.
    """
    mode = setup()
    _torch_model(model)
    device = device or mode.device
    if mode.interpreted and device != "cpu":
        raise WorkbenchError(f"kernels run in Triton's interpreter here, on CPU tensors, not on {device!r}",
                             "leave device= unset (or 'cpu'); compiled kernels need an NVIDIA GPU")
    module = copy.deepcopy(model.native())
    replaced: dict[str, list[str]] = {}
    for match, make in (replacements or default_replacements(attention)).items():
        names = swap_modules(module, match, make)
        if names:
            replaced[getattr(match, "__name__", str(match))] = names
    if not replaced:
        raise WorkbenchError("no submodule matched the replacements",
                             f"the model's module types are: {sorted({type(m).__name__ for m in module.modules()})}")
    if device != "cpu":
        module = on_device(module, device)
    return _derive(model, module, "kernels:triton", {"replaced": replaced, "device": device},
                   name or f"{model.name}+triton")

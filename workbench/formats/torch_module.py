"""In-memory ``torch.nn.Module`` models (format ``"torch"``)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import ModelFormatError
from workbench.core.model import Model, TensorSpec
from workbench.core.registry import Format, register_format

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.graph import Graph


def torch_dtype_name(dtype: Any) -> str:
    """``torch.float32`` -> ``"float32"`` (NumPy's name)."""
    return str(dtype).replace("torch.", "")


def to_numpy(value: Any) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy()
    return np.asarray(value)


def flatten_outputs(out: Any, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """A module's output (tensor, tuple, dict, ``ModelOutput``) as ``{name: array}``.

    Names are ``names`` when given, else dict keys, else ``output`` / ``output_0``, ``output_1``, …
    """
    import torch

    if isinstance(out, torch.Tensor):
        values, keys = [out], ["output"]
    elif isinstance(out, Mapping) or hasattr(out, "to_tuple"):  # dict or transformers ModelOutput
        items = [(k, v) for k, v in dict(out).items() if isinstance(v, torch.Tensor)]
        keys, values = [k for k, _ in items], [v for _, v in items]
    elif isinstance(out, list | tuple):
        values = [v for v in _flatten_seq(out)]
        keys = [f"output_{i}" for i in range(len(values))]
    else:
        raise ModelFormatError(f"cannot read a model output of type {type(out).__name__}",
                               "make forward() return tensors, a tuple of tensors or a dict of tensors")
    if names is not None:
        if len(names) != len(values):
            raise ModelFormatError(f"the model returns {len(values)} outputs but {len(names)} output names were given",
                                   "pass one output name per returned tensor")
        keys = list(names)
    return {k: to_numpy(v) for k, v in zip(keys, values, strict=True)}


def _flatten_seq(seq: Sequence[Any]) -> list[Any]:
    import torch

    flat: list[Any] = []
    for v in seq:
        if isinstance(v, torch.Tensor):
            flat.append(v)
        elif isinstance(v, list | tuple):
            flat.extend(_flatten_seq(v))
    return flat


def forward_input_names(module: Any, n: int) -> list[str]:
    """Names of ``forward``'s first ``n`` positional parameters (fallback ``input_0``…)."""
    try:
        params = [p for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params[:n]]
    return names + [f"input_{i}" for i in range(len(names), n)]


def normalize_example_inputs(module: Any, example_inputs: Any, input_names: Sequence[str] | None) -> dict[str, Any]:
    """A tensor, tuple of tensors or dict → an ordered ``{name: tensor}``."""
    import torch

    if example_inputs is None:
        raise ModelFormatError(
            f"a torch.nn.Module ({type(module).__name__}) needs example inputs to know its input shapes",
            "pass example_inputs=, e.g. wb.load(module, example_inputs=torch.randn(1, 3, 224, 224))",
        )
    if isinstance(example_inputs, torch.Tensor | np.ndarray):
        example_inputs = (example_inputs,)
    if isinstance(example_inputs, Mapping):
        items = dict(example_inputs)
        if input_names:
            items = {n: items[n] for n in input_names}
    else:
        values = list(example_inputs)
        names = list(input_names) if input_names else forward_input_names(module, len(values))
        if len(names) != len(values):
            raise ModelFormatError(f"{len(values)} example inputs but {len(names)} input names",
                                   "pass one name per example input")
        items = dict(zip(names, values, strict=True))
    out = {}
    for k, v in items.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(v)
        if not isinstance(v, torch.Tensor):
            raise ModelFormatError(f"example input {k!r} is a {type(v).__name__}, not a tensor",
                                   "pass tensors (or numpy arrays) as example inputs")
        out[k] = v
    return out


def from_module(
    module: Any,
    example_inputs: Any = None,
    *,
    name: str | None = None,
    task: Any = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    **_: Any,
) -> Model:
    """Wrap an ``nn.Module`` (put in eval mode) with named, shaped inputs and outputs.

    ``dynamic_axes`` maps input name → {axis: name}; by default axis 0 of every input is ``"batch"``.
    Outputs are found by running the module once on the example inputs.
    """
    import torch

    module.eval()
    named = normalize_example_inputs(module, example_inputs, input_names)
    dyn = {k: dict(v) for k, v in (dynamic_axes or {}).items()}
    inputs = []
    for k, t in named.items():
        axes = dyn.get(k, {0: "batch"} if t.dim() > 0 else {})
        shape = tuple(axes.get(i, int(s)) for i, s in enumerate(t.shape))
        inputs.append(TensorSpec(k, shape, torch_dtype_name(t.dtype)))
    with torch.no_grad():
        out = module(*named.values())
    flat = flatten_outputs(out, output_names)
    batch = next(iter(named.values())).shape[0] if named and next(iter(named.values())).dim() else None
    seq_sizes = {int(t.shape[i]): axis for k, t in named.items() for i, axis in dyn.get(k, {}).items() if i > 0}
    outputs = []
    for k, arr in flat.items():
        shape: list[int | str] = list(arr.shape)
        if shape and batch is not None and shape[0] == batch:
            shape[0] = "batch"
        for i in range(1, len(shape)):
            if shape[i] in seq_sizes:
                shape[i] = seq_sizes[shape[i]]
        outputs.append(TensorSpec(k, tuple(shape), str(arr.dtype)))
    feeds = {k: to_numpy(v) for k, v in named.items()}
    params = sum(p.numel() for p in module.parameters())
    return Model(
        "torch",
        name=name or type(module).__name__,
        inputs=inputs,
        outputs=outputs,
        native=module,
        task=task,
        example_feeds=feeds,
        metadata={"parameters": params, "class": f"{type(module).__module__}.{type(module).__qualname__}"},
    )


def read_graph(module: Any, example_inputs: Mapping[str, np.ndarray] | None, name: str | None = None,
               input_names: list[str] | None = None, keyword: bool = False) -> Graph:
    """An ``nn.Module``'s graph, through ``torch.export`` on its example inputs (``keyword``: pass
    them by name, as Hugging Face models take them); ``torch.jit.trace`` when export fails."""
    import torch

    from workbench.formats import exported, torchscript

    if not example_inputs:
        raise ModelFormatError("the graph of a torch module needs example inputs",
                               "load it with wb.load(module, example_inputs=...)")
    names = input_names or list(example_inputs)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in example_inputs.items()}
    was_training = getattr(module, "training", False)
    module.eval()
    try:
        if keyword:
            ep = torch.export.export(module, (), kwargs=tensors, strict=False)
        else:
            ep = torch.export.export(module, tuple(tensors[n] for n in names if n in tensors), strict=False)
    except Exception as err:  # noqa: BLE001 - fall back to TorchScript tracing
        try:
            args = tuple(tensors[n] for n in names if n in tensors)
            traced = torch.jit.trace(module, args, check_trace=False)
        except Exception:  # noqa: BLE001
            raise ModelFormatError(
                f"torch.export could not capture {name or 'the module'} ({str(err).splitlines()[0][:160]})",
                "export it to ONNX (wb.export(model, 'onnx')) and show that, or use viewer='netron'",
            ) from err
        g = torchscript.read_graph(traced, example_inputs, name=name)
        g.notes.append("torch.export failed; the graph comes from torch.jit.trace")
        return g
    finally:
        module.train(was_training)
    g = exported.read_graph(ep, name=name, input_names=names if not keyword else None)
    g.format = "torch"
    return g


@register_format
class TorchModuleFormat(Format):
    name = "torch"
    description = "a torch.nn.Module in memory"
    suffixes = ()
    in_memory = True
    facts = ("parameters", "class")

    @classmethod
    def graph(cls, model: Model) -> Graph:
        return read_graph(model.native(), model.example_inputs(), name=model.name,
                          input_names=model.input_names).with_file_size(model)


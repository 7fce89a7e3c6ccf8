"""The facade: the one place that turns what a user passes (a zoo name, a path, an ``nn.Module``) into a
``Model``, and that plans the conversions a runtime needs.

Everything here is derived from the registry (``workbench.core.registry``): the runtimes ``backends()``
lists, the formats ``load()`` detects, the chain of steps ``runner()`` runs to bring a model into a
format the runtime takes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core import registry
from workbench.core.errors import ModelFormatError
from workbench.core.model import Model
from workbench.steps import routing

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from workbench.core.runner import Runner

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def load(source: Any, example_inputs: Any = None, *, trust: bool = False, **options: Any) -> Model:
    """Load a model from anything the workbench understands, and return a ``Model``.

    Args:
        source: a zoo name (``wb.zoo.list()``); a ``torch.nn.Module`` (pass ``example_inputs``);
            a path to a file or folder of any registered format (``.pt`` TorchScript, ``.pt2``
            ExportedProgram, ``.onnx`` with its external data, ``.xml`` + ``.bin`` OpenVINO IR,
            ``.mlpackage``/``.mlmodel`` Core ML, a Hugging Face model folder, …); or a Hugging Face hub
            id (needs network access).
        example_inputs: for an ``nn.Module``: a tensor, a tuple of tensors, or a dict name -> tensor.
        trust: allow unpickling arbitrary objects (a ``torch.save``-d whole module). Only for files
            you trust: unpickling runs code.
        **options: format-specific options (``input_names=``, ``output_names=`` for modules).

    The format is detected from the content, not only the extension.
    """
    if isinstance(source, Model):
        return source
    if _is_torch_module(source):
        from workbench.formats import torch_module

        return torch_module.from_module(source, example_inputs, **options)
    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        path = Path(text).expanduser()
        if path.exists():
            if example_inputs is not None:
                options["example_inputs"] = example_inputs
            from workbench.core.detect import load_path

            return load_path(path, trust=trust, **options)
        from workbench import zoo

        if text in zoo.names():
            return zoo.load(text, **options)
        if _HUB_ID.match(text):
            from workbench.formats import hf

            return hf.load_hub(text, **options)
        raise ModelFormatError(
            f"{text!r} is not a file, a folder or a zoo model",
            f"pass an existing path, or one of the zoo names: {', '.join(zoo.names())}",
        )
    raise ModelFormatError(
        f"cannot load a model from a {type(source).__name__}",
        "pass a path, a zoo name, or a torch.nn.Module with example_inputs=",
    )


def _is_torch_module(obj: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")  # a Module can only exist if torch is imported already
    return torch is not None and isinstance(obj, torch.nn.Module)


def backends(as_frame: bool = True) -> pd.DataFrame | list[Any]:
    """Every runtime: available or not, its version, the formats it takes, and if unavailable why and the fix."""
    rows = [cls.availability() for cls in registry.runtimes().values()]
    if not as_frame:
        return rows
    import pandas as pd

    return pd.DataFrame([{
        "backend": a.name, "available": a.available, "version": a.version or "",
        "formats": ", ".join(a.formats), "devices": ", ".join(a.devices), "precisions": ", ".join(a.precisions),
        "reason": a.reason or "", "fix": a.fix or "",
    } for a in rows]).set_index("backend")


def runner(model: Model | Any, backend: str, **options: Any) -> Runner:
    """A Runner for ``model`` on ``backend``; converts the model when the runtime needs another format.

    Options go to the runtime (e.g. ``providers=``, ``graph_optimization_level=``, ``threads=`` for
    ONNX Runtime; ``device=``, ``hint=``, ``precision=`` for OpenVINO). See each runtime's docstring.
    """
    return routing.runner(load(model), backend, **options)


default_backend = routing.default_backend

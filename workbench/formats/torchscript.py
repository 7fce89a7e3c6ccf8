"""TorchScript models (``.pt`` archives written by ``torch.jit.save``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import ModelFormatError
from workbench.core.registry import Format, register_format

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.graph import Graph
from workbench.core.model import Model, TensorSpec

SPEC_FILE = "workbench_specs.json"  # written by wb.export into the archive's extra files


def specs_to_json(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> str:
    return json.dumps({"inputs": [[s.name, list(s.shape), s.dtype] for s in inputs],
                       "outputs": [[s.name, list(s.shape), s.dtype] for s in outputs]})


def specs_from_json(text: str) -> tuple[list[TensorSpec], list[TensorSpec]]:
    data = json.loads(text)
    return ([TensorSpec(n, tuple(s), d) for n, s, d in data["inputs"]],
            [TensorSpec(n, tuple(s), d) for n, s, d in data["outputs"]])


def load(path: Path, example_inputs: Any = None, **options: Any) -> Model:
    import torch

    extra = {SPEC_FILE: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as err:  # noqa: BLE001
        first = str(err).strip().splitlines()[0][:200]
        raise ModelFormatError(f"{path} could not be loaded as TorchScript: {first}",
                               "save it again with torch.jit.save") from None
    module.eval()
    if extra[SPEC_FILE]:
        inputs, outputs = specs_from_json(extra[SPEC_FILE])
        return Model("torchscript", name=path.stem, path=path, inputs=inputs, outputs=outputs, native=module)
    if example_inputs is not None:  # a foreign TorchScript: learn the shapes by running it
        from workbench.formats.torch_module import from_module

        m = from_module(module, example_inputs, name=path.stem, **options)
        return Model("torchscript", name=path.stem, path=path, inputs=m.inputs, outputs=m.outputs,
                     native=module, example_feeds=m.example_inputs())
    names = [i.debugName().split(".")[0] for i in list(module.graph.inputs())[1:]]
    inputs = [TensorSpec(n, (), "float32") for n in names]
    return Model("torchscript", name=path.stem, path=path, inputs=inputs, outputs=[], native=module,
                 metadata={"notes": ["input shapes unknown (the file does not record them): "
                                     "pass example_inputs= to wb.load"]})


@register_format
class TorchScriptFormat(Format):
    name = "torchscript"
    description = "TorchScript (.pt)"
    suffixes = (".pt",)

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def graph(cls, model: Model) -> Graph:
        from workbench.core.graph import Graph

        return Graph.from_model(model)

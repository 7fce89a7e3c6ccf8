"""``torch.save`` files (``.pt`` / ``.pth`` / ``.pkl``): a pickled ``nn.Module``, loaded as a ``"torch"`` model.

Unpickling runs code from the file, so the file is read weights-only (``torch.load(weights_only=True)``)
unless the caller passes ``trust=True``. A state_dict is weights without the code: the error says how
to build the module instead. This format is one models are loaded *through* (``loads_as = "torch"``):
no ``Model`` has it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.errors import ModelFormatError, UntrustedPickleError
from workbench.core.model import Model
from workbench.core.registry import Format, register_format
from workbench.formats.torch_module import from_module
from workbench.formats.torchscript import archive_members

PICKLE_PROTOCOL_MARK = b"\x80"  # the first byte of a pickle of protocol 2 or later (torch's legacy format)
LEGACY_SUFFIXES = (".pt", ".pth", ".pkl", ".bin")


def load(path: Path, *, trust: bool = False, example_inputs: Any = None, **options: Any) -> Model:
    """A ``torch.save`` file: weights-only unless ``trust=True`` (unpickling runs arbitrary code)."""
    import pickle

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust:
            raise UntrustedPickleError(
                f"{path} is a full pickle (it holds Python objects: {str(err).splitlines()[0][:120]}) "
                "and loading it would run code from the file",
                "if you trust the file, wb.load(path, trust=True, example_inputs=...); better, save a TorchScript "
                "or ExportedProgram (torch.export.save) instead",
            ) from None
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - torch raises many types for damaged files
        raise ModelFormatError(f"{path} could not be read as a torch file ({type(err).__name__}: {err})",
                               "the file is damaged or not a torch file") from None
    if isinstance(obj, torch.nn.Module):
        model = from_module(obj, example_inputs, name=path.stem, **options)
        model.path = path
        return model
    if isinstance(obj, dict):
        raise ModelFormatError(
            f"{path} holds a state_dict ({len(obj)} tensors), not a model: weights without the code",
            "build the module, call module.load_state_dict(torch.load(path)), then wb.load(module, example_inputs=...)",
        )
    raise ModelFormatError(f"{path} holds a {type(obj).__name__}, not a model",
                           "save the nn.Module itself, a TorchScript or an ExportedProgram")


@register_format
class TorchPickleFormat(Format):
    name = "torch_pickle"
    description = "a torch.save file (.pt, .pth; read weights-only unless trust=True)"
    suffixes = (".pth", ".pkl")
    priority = 30  # after TorchScript and ExportedProgram: their archives hold pickles too
    loads_as = "torch"

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        if any(n.endswith("data.pkl") for n in archive_members(path, head)):
            return True  # torch.save's zip format
        return head.startswith(PICKLE_PROTOCOL_MARK) and path.suffix.lower() in LEGACY_SUFFIXES

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

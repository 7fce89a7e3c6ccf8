"""Format detection and loading. One module per format; each has ``sniff(path)`` and ``load(path)``.

Detection reads the content (zip member names, XML root, protobuf fields), not only the extension,
so a misnamed file is loaded as what it is, and a damaged one gets an error that says so.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import ModelFormatError, UntrustedPickleError

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.model import Model

KNOWN = ".onnx (ONNX), .xml+.bin (OpenVINO IR), .pt (TorchScript), .pt2 (ExportedProgram), " \
        ".mlpackage/.mlmodel (Core ML), or a Hugging Face model folder (config.json)"


def detect(path: Path) -> str:
    """The format of the file or folder at ``path``; raises ``ModelFormatError`` when it is none."""
    if path.is_dir():
        return _detect_dir(path)
    size = path.stat().st_size
    if size == 0:
        raise ModelFormatError(f"{path} is an empty file (0 bytes)",
                               "the file was not written completely: export or copy it again")
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04"):
        return _detect_zip(path)
    if head.lstrip().startswith(b"<"):
        if b"<net" in head:
            return "openvino"
        raise ModelFormatError(f"{path} is an XML file but not an OpenVINO IR (no <net> root)",
                               "pass the .xml written by openvino.save_model or ovc")
    if head[:1] == b"\x80" and path.suffix in (".pt", ".pth", ".pkl", ".bin"):
        return "torch-pickle"
    if path.suffix == ".mlmodel":
        return "coreml"
    from workbench.formats import onnx as onnx_format

    if onnx_format.sniff(path):
        return "onnx"
    if path.suffix == ".onnx":
        raise onnx_format.explain_parse_failure(path)
    raise ModelFormatError(f"{path} is not a model file the workbench recognises", f"pass one of: {KNOWN}")


def _detect_zip(path: Path) -> str:
    try:
        names = zipfile.ZipFile(path).namelist()
    except zipfile.BadZipFile as err:
        raise ModelFormatError(f"{path} is a damaged zip archive ({err})",
                               "the file is truncated or corrupt: save or copy it again") from None
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("models/model.json") or n.endswith("serialized_exported_program.json") for n in names):
        return "exported_program"
    if any(n.endswith("data.pkl") for n in names):
        return "torch-pickle"
    raise ModelFormatError(f"{path} is a zip archive but not a TorchScript or ExportedProgram file",
                           f"pass one of: {KNOWN}")


def _detect_dir(path: Path) -> str:
    if path.suffix == ".mlpackage" or (path / "Manifest.json").exists():
        return "coreml"
    if (path / "config.json").exists():
        return "hf"
    found = sorted(p.name for p in path.iterdir() if p.suffix in (".onnx", ".xml", ".pt", ".pt2", ".mlmodel"))
    hint = f"it holds {', '.join(found[:5])}: pass one of those files" if found else f"pass one of: {KNOWN}"
    raise ModelFormatError(f"the folder {path} holds no model (no config.json, not a .mlpackage)", hint)


def load_path(path: Path, *, trust: bool = False, **options: Any) -> Model:
    """Load the model file or folder at ``path``, whatever its format."""
    fmt = detect(path)
    if fmt == "torch-pickle":
        return _load_pickle(path, trust=trust, **options)
    from importlib import import_module

    module = import_module(f"workbench.formats.{_MODULES[fmt]}")
    return module.load(path, **options)


_MODULES = {"onnx": "onnx", "openvino": "openvino", "torchscript": "torchscript",
            "exported_program": "exported", "coreml": "coreml", "hf": "hf"}


def _load_pickle(path: Path, *, trust: bool, example_inputs: Any = None, **options: Any) -> Model:
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
        from workbench.formats.torch_module import from_module

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


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def looks_like_hub_id(text: str) -> bool:
    """``"org/name"`` with no such local path: probably a Hugging Face hub id."""
    return bool(_HUB_ID.match(text)) and not Path(text).exists()


def model_files(model: Model) -> list[Path]:
    """Every file on disk that belongs to the model (ONNX external data, IR .bin, folder contents)."""
    path = model.path
    if path is None or not path.exists():
        return []
    if path.is_dir():
        return [p for p in path.rglob("*") if p.is_file()]
    files = [path]
    if model.format == "openvino":
        bin_path = path.with_suffix(".bin")
        if bin_path.exists():
            files.append(bin_path)
    elif model.format == "onnx":
        from workbench.formats import onnx as onnx_format

        files += onnx_format.external_data_files(path)
    return files

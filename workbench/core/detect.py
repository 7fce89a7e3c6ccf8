"""Which registered format a file or folder is in, from its content, and loading it.

Every format plugin (``workbench.core.registry.Format``) declares ``sniff(path, head)``; detection asks
them in ``priority`` order (in-memory formats never), so a misnamed file loads as what it is. When
none recognises the content, the plugins are asked to ``explain`` the failure — first those whose
suffix the path carries, then the others (a damaged zip, XML that is not an IR, a truncated
``.onnx``) — and the first explanation is raised; otherwise the error lists the known formats, which
come from the plugins' descriptions.

``load_path`` is what ``wb.load`` calls for a path; ``model_files`` lists a model's files on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core import registry
from workbench.core.errors import ModelFormatError
from workbench.core.safety import check_archive, check_openable, open_regular

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.model import Model

#: bytes read from the start of a file for ``Format.sniff`` / ``Format.explain``
HEAD_BYTES = 512


def file_formats() -> list[type[registry.Format]]:
    """The registered formats a path can hold, in the order detection tries them."""
    return sorted((cls for cls in registry.formats().values() if not cls.in_memory), key=lambda c: c.priority)


def known_formats() -> str:
    """The formats models are stored in, for messages ("ONNX (.onnx, …); …; or a Hugging Face model folder")."""
    descriptions = [cls.description or cls.name for cls in file_formats() if cls.loads_as is None]
    if len(descriptions) < 2:
        return "".join(descriptions)
    return "; ".join(descriptions[:-1]) + "; or " + descriptions[-1]


def read_head(path: Path) -> bytes:
    """The first ``HEAD_BYTES`` bytes of a file (``b""`` for a folder)."""
    if not path.is_file():
        return b""
    with open_regular(path) as f:  # never blocks: a file swapped for a pipe since the check is refused
        return f.read(HEAD_BYTES)


def detect(path: str | Path) -> type[registry.Format]:
    """The format plugin of the file or folder at ``path``; raises ``ModelFormatError`` when it is none."""
    path = Path(path)
    if not path.exists():
        raise ModelFormatError(f"{path} does not exist", "check the path")
    check_openable(path)  # a FIFO or device is never opened: it would block, or never end
    if path.is_file() and path.stat().st_size == 0:
        raise ModelFormatError(f"{path} is an empty file (0 bytes)",
                               "the file was not written completely: export or copy it again")
    head = read_head(path)
    if path.is_file():
        check_archive(path, head)  # a zip bomb is refused before any format unpacks it
    candidates = file_formats()
    for cls in candidates:
        if cls.sniff(path, head):
            return cls
    suffix = path.suffix.lower()
    claimed = [cls for cls in candidates if suffix and suffix in cls.suffixes]
    for cls in claimed + [cls for cls in candidates if cls not in claimed]:
        error = cls.explain(path, head)
        if error is not None:
            raise error
    if path.is_dir():
        raise _no_model_in_folder(path, candidates)
    raise ModelFormatError(f"{path} is not a model file the workbench recognises", f"pass one of: {known_formats()}")


def _no_model_in_folder(path: Path, candidates: list[type[registry.Format]]) -> ModelFormatError:
    folders = "; ".join(cls.description or cls.name for cls in candidates if cls.folder and cls.loads_as is None)
    suffixes = {s for cls in candidates if cls.loads_as is None for s in cls.suffixes}
    found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in suffixes)
    hint = f"it holds {', '.join(found[:5])}: pass one of those files" if found else f"pass one of: {known_formats()}"
    return ModelFormatError(f"the folder {path} holds no model (it is none of: {folders})", hint)


def load_path(path: str | Path, *, trust: bool = False, **options: Any) -> Model:
    """Load the model file or folder at ``path``, whatever its registered format.

    ``trust`` lets a format that unpickles (a ``torch.save`` file) run the code in the file; the
    other options go to the format's ``load`` (``example_inputs=``, ``input_names=``, …).
    """
    path = Path(path)
    return detect(path).load(path, trust=trust, **options)


def model_files(model: Model) -> list[Path]:
    """Every file on disk that belongs to ``model`` (ONNX external data, the IR's .bin, folder contents)."""
    path = model.path
    if path is None or not path.exists():
        return []
    return registry.get_format(model.format).files(path)

"""Every ``WORKBENCH_*`` environment setting, in one place: its name, type, default and meaning.

Settings are read from the environment each time they are asked for (never cached at import), so a
test's ``monkeypatch.setenv`` or a notebook's ``os.environ[...] = ...`` takes effect on the next call.
A value that cannot be parsed raises a ``WorkbenchError`` naming the variable and what it accepts.

================================== ========= ================================= ===========================
variable                           type      default                           what it changes
================================== ========= ================================= ===========================
``WORKBENCH_QUICK``                flag      off                               smallest settings (CI, Binder)
``WORKBENCH_ARTIFACTS``            path      ``<project>/workbench-artifacts`` the artifacts folder
``WORKBENCH_CACHE``                path      ``~/.cache/workbench``            trained zoo weights
``WORKBENCH_STEP_TIMEOUT``         seconds   3600                              isolated step time limit
``WORKBENCH_ONNX_EXTERNAL_BYTES``  bytes     1 800 000 000                     ONNX external-data threshold
``WORKBENCH_TRITON_MODE``          choice    "" (auto)                         ``interpreter`` forces it
``WORKBENCH_PUBLISHED``            flag      off                               a published app's kernel
``WORKBENCH_WORKER_MEMORY``        bytes     0 (no limit)                      memory of one worker call
``WORKBENCH_MAX_INPUT_BYTES``      bytes     4 294 967 296                     largest example input made
``WORKBENCH_MAX_UNPACKED_BYTES``   bytes     68 719 476 736                    largest archive unpacked
``WORKBENCH_MAX_UPLOAD_BYTES``     bytes     268 435 456                       largest model upload (app)
``WORKBENCH_MAX_DOWNLOAD_BYTES``   bytes     536 870 912                       largest browser download
================================== ========= ================================= ===========================

``<project>`` is the project root: the nearest folder at or above the working directory (below the home
folder) holding ``pyproject.toml``, ``setup.py`` or ``.git``; else the working directory. So a notebook in
``notebooks/``, an app in ``notebooks/apps/`` and the CLI at the repository's root share one artifacts folder.

A flag is on for ``1``, ``true``, ``yes``, ``on`` and off for an empty value, ``0``, ``false``, ``no``,
``off`` (any case). ``settings.describe()`` lists every setting with its current value.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from workbench.core.errors import WorkbenchError

__all__ = ["ARTIFACTS", "CACHE", "ONNX_EXTERNAL_BYTES", "QUICK", "SETTINGS", "STEP_TIMEOUT", "TRITON_MODE",
           "Setting", "artifacts_dir", "cache_dir", "describe", "max_download_bytes", "max_input_bytes",
           "max_unpacked_bytes", "max_upload_bytes",
           "onnx_external_bytes", "quick", "step_timeout_s", "triton_mode",
           "PUBLISHED", "WORKER_MEMORY", "published", "worker_memory"]

T = TypeVar("T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("use 1/true/yes/on or 0/false/no/off")


def _path(text: str) -> Path:
    if not text.strip():
        raise ValueError("give a folder path")
    return Path(text.strip()).expanduser()


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("give a number of seconds > 0")
    return value


def _bytes(text: str) -> int:
    value = int(float(text.strip().replace("_", "")))  # "1e9" and "1_000_000" read as people write them
    if value < 0:
        raise ValueError("give a number of bytes >= 0")
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise ValueError("use one of " + ", ".join(repr(a) for a in allowed))
        return value

    return parse


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment setting: ``get()`` reads and parses it now (the default when unset)."""

    name: str
    parse: Callable[[str], T]
    default: Callable[[], T]
    doc: str
    kind: str

    def raw(self) -> str | None:
        """The variable's text, or None when it is unset."""
        return os.environ.get(self.name)

    def get(self) -> T:
        text = self.raw()
        if text is None or (not text.strip() and self.kind != "flag"):
            return self.default()
        try:
            return self.parse(text)
        except ValueError as err:
            raise WorkbenchError(f"{self.name}={text!r} is not a valid {self.kind}",
                                 f"{err}, or unset {self.name} (default: {self.default()!r})") from None

    def is_set(self) -> bool:
        return self.raw() is not None


QUICK: Setting[bool] = Setting(
    "WORKBENCH_QUICK", _flag, lambda: False, "Use the smallest settings (fewer iterations, samples and "
    "runs; small models in notebooks): what CI and Binder set.", "flag")
#: files or folders that mark a project's root (``project_root``)
PROJECT_MARKERS = ("pyproject.toml", "setup.py", ".git")


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) that holds one of
    ``PROJECT_MARKERS``, never above the home folder (a home under version control is not a project);
    ``start`` itself where none does."""
    here = (start or Path.cwd()).resolve()
    home = Path.home().resolve()
    for folder in (here, *here.parents):
        if folder != here and (folder == home or folder == folder.parent):
            break  # not the home folder or the filesystem root, unless one is where the user works
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return here


ARTIFACTS: Setting[Path] = Setting(
    "WORKBENCH_ARTIFACTS", _path, lambda: project_root() / "workbench-artifacts",
    "The artifacts folder (exported, converted, quantized models and the manifest), unless "
    "``set_workspace()`` chose one.", "path")
CACHE: Setting[Path] = Setting(
    "WORKBENCH_CACHE", _path, lambda: Path.home() / ".cache" / "workbench",
    "Where trained zoo weights are cached.", "path")
STEP_TIMEOUT: Setting[float] = Setting(
    "WORKBENCH_STEP_TIMEOUT", _positive_float, lambda: 3600.0,
    "Seconds an isolated step (export, convert, quantize in a worker process) may take.", "number of seconds")
ONNX_EXTERNAL_BYTES: Setting[int] = Setting(
    "WORKBENCH_ONNX_EXTERNAL_BYTES", _bytes, lambda: 1_800_000_000,
    "ONNX exports whose weights exceed this many bytes keep them in an external data file (protobuf "
    "files cannot exceed 2 GiB).", "number of bytes")
TRITON_MODE: Setting[str] = Setting(
    "WORKBENCH_TRITON_MODE", _choice("", "auto", "interpreter"), lambda: "",
    "``interpreter`` runs Triton kernels in the interpreter even on a GPU machine (prints, bounds "
    "checks); empty or ``auto`` chooses by the hardware.", "choice")
MAX_INPUT_BYTES: Setting[int] = Setting(
    "WORKBENCH_MAX_INPUT_BYTES", _bytes, lambda: 4 << 30,
    "The most bytes one set of example inputs may take when the workbench makes it from the shapes a "
    "model file declares (a file can declare any size).", "number of bytes")
MAX_UNPACKED_BYTES: Setting[int] = Setting(
    "WORKBENCH_MAX_UNPACKED_BYTES", _bytes, lambda: 64 << 30,
    "The most bytes a model archive (a zip: .pt, .pt2, .pth) may declare it unpacks to; a zip bomb "
    "declares far more than its size.", "number of bytes")
PUBLISHED: Setting[bool] = Setting(
    "WORKBENCH_PUBLISHED", _flag, lambda: False,
    "Set by the server of a published app (``workbench.ui.app_kernel``): the kernel serves visitors, "
    "so nothing they send may choose code to run, and heavy native work runs in the worker.", "flag")
WORKER_MEMORY: Setting[int] = Setting(
    "WORKBENCH_WORKER_MEMORY", _bytes, lambda: 0,
    "Bytes one isolated call (a step, an isolated runner, an isolated validation) may map in the "
    "worker process beyond what the worker already maps (enforced with RLIMIT_AS); 0: no limit.",
    "number of bytes")
MAX_UPLOAD_BYTES: Setting[int] = Setting(
    "WORKBENCH_MAX_UPLOAD_BYTES", _bytes, lambda: 256 << 20,
    "The largest model file a user (or a visitor of a published app) may upload through the app's model "
    "picker; the browser refuses a larger file before sending a byte.", "number of bytes")
MAX_DOWNLOAD_BYTES: Setting[int] = Setting(
    "WORKBENCH_MAX_DOWNLOAD_BYTES", _bytes, lambda: 512 << 20,
    "The largest file (a report, an artifact) a widget sends to the browser as a download.", "number of bytes")

#: every setting, in the order of the table above
SETTINGS: tuple[Setting[Any], ...] = (QUICK, ARTIFACTS, CACHE, STEP_TIMEOUT, ONNX_EXTERNAL_BYTES, TRITON_MODE,
                                      PUBLISHED, WORKER_MEMORY, MAX_INPUT_BYTES, MAX_UNPACKED_BYTES,
                                      MAX_UPLOAD_BYTES, MAX_DOWNLOAD_BYTES)


def quick() -> bool:
    """True when ``WORKBENCH_QUICK`` is on: use the smallest settings."""
    return QUICK.get()


def artifacts_dir() -> Path:
    """``$WORKBENCH_ARTIFACTS`` (default ``<project root>/workbench-artifacts``: ``project_root``), resolved
    to an absolute path."""
    return ARTIFACTS.get().expanduser().resolve()


def cache_dir() -> Path:
    """``$WORKBENCH_CACHE`` (default ``~/.cache/workbench``); not created here."""
    return CACHE.get()


def step_timeout_s() -> float:
    """``$WORKBENCH_STEP_TIMEOUT`` in seconds (default 3600)."""
    return STEP_TIMEOUT.get()


def onnx_external_bytes() -> int:
    """``$WORKBENCH_ONNX_EXTERNAL_BYTES`` (default 1.8 GB)."""
    return ONNX_EXTERNAL_BYTES.get()


def max_input_bytes() -> int:
    """``$WORKBENCH_MAX_INPUT_BYTES`` (default 4 GiB)."""
    return MAX_INPUT_BYTES.get()


def max_unpacked_bytes() -> int:
    """``$WORKBENCH_MAX_UNPACKED_BYTES`` (default 64 GiB)."""
    return MAX_UNPACKED_BYTES.get()


def max_upload_bytes() -> int:
    """``$WORKBENCH_MAX_UPLOAD_BYTES`` (default 256 MiB)."""
    return MAX_UPLOAD_BYTES.get()


def max_download_bytes() -> int:
    """``$WORKBENCH_MAX_DOWNLOAD_BYTES`` (default 512 MiB)."""
    return MAX_DOWNLOAD_BYTES.get()


def triton_mode() -> str:
    """``$WORKBENCH_TRITON_MODE``: ``"interpreter"`` or ``""`` (choose by the hardware)."""
    mode = TRITON_MODE.get()
    return "" if mode == "auto" else mode


def published() -> bool:
    """True in the kernel of a published app (``WORKBENCH_PUBLISHED``)."""
    return PUBLISHED.get()


def worker_memory() -> int:
    """``$WORKBENCH_WORKER_MEMORY`` in bytes; 0 for no limit."""
    return WORKER_MEMORY.get()


def describe() -> list[dict[str, Any]]:
    """One dict per setting: ``name``, ``kind``, ``value`` (current), ``set`` (in the environment), ``doc``."""
    rows = []
    for s in SETTINGS:
        try:
            value: Any = s.get()
        except WorkbenchError as err:
            value = f"invalid: {err}"
        rows.append({"name": s.name, "kind": s.kind, "value": value, "set": s.is_set(), "doc": s.doc})
    return rows

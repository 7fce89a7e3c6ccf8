"""Guards for untrusted files: what a model file declares is checked before the workbench acts on it.

A model file is data from anywhere. Before the workbench opens, unpacks or allocates what a file says,
these checks refuse, with a ``WorkbenchError`` naming the problem and the fix:

* ``check_openable(path)``: a FIFO, socket or device is never opened (reading one blocks or never ends),
  nor one inside a model folder; ``open_regular(path)`` opens a file only if it is still a regular one;
* ``check_archive(path)``: a zip archive (``.pt``, ``.pt2``, ``.pth``) that declares it unpacks to far
  more than its size (a zip bomb), or to more than ``$WORKBENCH_MAX_UNPACKED_BYTES``;
* ``check_declared_bytes(...)``: arrays the workbench would allocate from declared shapes (example
  inputs, feeds) larger than ``$WORKBENCH_MAX_INPUT_BYTES``;
* ``inside_folder(folder, name)``: a file name a model refers to (ONNX external data) resolves inside
  the model's folder: no ``..``, no absolute path, no symlink out.

Python's ``zipfile`` and torch's reader both stop at a member's declared size, so checking the declared
sizes bounds the work of unpacking.
"""

from __future__ import annotations

import io
import math
import os
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from workbench.core import settings
from workbench.core.errors import InputError, ModelFormatError

ZIP_MAGIC = b"PK\x03\x04"
#: an archive that declares more than this many times its size unpacked, past ``BOMB_FLOOR``, is a zip bomb
BOMB_RATIO = 100
BOMB_FLOOR = 64 << 20
#: more members than a model archive ever holds
MAX_MEMBERS = 200_000
#: entries of a model folder checked for pipes and devices
MAX_FOLDER_ENTRIES = 10_000


def human(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit, div in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} B"


def file_kind(mode: int) -> str:
    """``"a FIFO"``, ``"a socket"``, ``"a character device"``, … for a ``st_mode``."""
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def check_openable(path: Path) -> None:
    """Raise ``ModelFormatError`` unless ``path`` is a regular file or a folder (after symlinks).

    Reading a FIFO blocks until a writer comes; a device may never end: neither is ever opened.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise ModelFormatError(f"{path} cannot be read ({err.strerror or err})",
                               "check the path and its permissions") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ModelFormatError(f"{path} is {file_kind(mode)}, not a model file",
                               "pass the path of a model file or folder (a pipe or device is never read)")
    if stat.S_ISDIR(mode):  # a model folder: the libraries that read it would block on a pipe in it too
        with os.scandir(path) as entries:
            for n, entry in enumerate(entries):
                if n >= MAX_FOLDER_ENTRIES:
                    break
                try:
                    emode = entry.stat(follow_symlinks=True).st_mode  # stat never opens: a FIFO is safe here
                except OSError:
                    continue  # a dangling symlink: the format says what is missing
                if not (stat.S_ISREG(emode) or stat.S_ISDIR(emode)):
                    raise ModelFormatError(
                        f"the model folder {path} holds {entry.name!r}, which is {file_kind(emode)}",
                        "remove it from the folder or replace it with the real file (a pipe or device is never read)")


def check_zip(archive: zipfile.ZipFile, size: int, label: str) -> None:
    """Refuse an opened zip whose declared unpacked size is a bomb's (see ``check_archive``)."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFormatError(f"{label} is a zip archive of {len(infos):,} members, more than a model holds",
                               "pass a model archive written by torch.save / torch.jit.save / torch.export.save")
    total = sum(max(0, i.file_size) for i in infos)
    limit = settings.max_unpacked_bytes()
    if total > limit:
        raise ModelFormatError(
            f"{label} declares it unpacks to {human(total)}, more than the limit of {human(limit)}",
            "if the file is trusted and that large, raise WORKBENCH_MAX_UNPACKED_BYTES")
    if total > BOMB_FLOOR and total > BOMB_RATIO * max(size, 1):
        raise ModelFormatError(
            f"{label} is a zip bomb: {human(size)} on disk that declares {human(total)} unpacked "
            f"({total / max(size, 1):,.0f}x; model archives store their weights uncompressed)",
            "do not open this file; save the model again with torch.save / torch.jit.save / torch.export.save")


def check_archive(path: Path, head: bytes | None = None) -> None:
    """Refuse a zip archive that would unpack to a zip bomb's size (no-op for other files).

    Raises ``ModelFormatError`` when the members' declared sizes add up to more than
    ``$WORKBENCH_MAX_UNPACKED_BYTES``, or to more than ``BOMB_RATIO`` times the file's size (past
    ``BOMB_FLOOR``): torch's archives store tensors uncompressed, so a real one is never that dense.
    """
    if head is None:
        with open(path, "rb") as f:
            head = f.read(4)
    if not head.startswith(ZIP_MAGIC):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip(archive, path.stat().st_size, str(path))
    except zipfile.BadZipFile:
        return  # a damaged zip: the formats explain it (``explain_archive``)


def check_zip_bytes(data: bytes, label: str) -> None:
    """``check_archive`` for a zip held in memory (an archive nested in another)."""
    if not data.startswith(ZIP_MAGIC):
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_zip(archive, len(data), label)
    except zipfile.BadZipFile:
        return


def read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes (its declared size was checked by ``check_zip``)."""
    with archive.open(name) as f:
        return f.read()


def declared_bytes(shape: Iterable[int], itemsize: int) -> int:
    """Bytes of an array of ``shape`` (exact integers: no overflow for absurd declared shapes)."""
    return math.prod(int(d) for d in shape) * int(itemsize)


def check_declared_bytes(name: str, shape: tuple[int, ...], itemsize: int, what: str = "example input") -> None:
    """Raise ``InputError`` when an array of ``shape`` would exceed ``$WORKBENCH_MAX_INPUT_BYTES``.

    A model file can declare any shape (``[2147483648]``, ``[1e9, 1e9]``); the workbench never allocates
    what it declares without this check. Negative sizes are refused too.
    """
    if any(int(d) < 0 for d in shape):
        raise InputError(f"{what} {name!r} has a negative size in its declared shape {list(shape)}",
                         "fix the model's input shape, or pass inputs of your own")
    nbytes = declared_bytes(shape, itemsize)
    limit = settings.max_input_bytes()
    if nbytes > limit:
        raise InputError(
            f"{what} {name!r} of declared shape {list(shape)} would take {human(nbytes)}, more than the "
            f"limit of {human(limit)}",
            "pass inputs of your own (wb.load(..., example_inputs=...) or runner.infer(feeds)), or raise "
            "WORKBENCH_MAX_INPUT_BYTES if this machine has the memory")


def inside_folder(folder: Path, name: str) -> Path | None:
    """The file ``name`` (as a model refers to it) under ``folder``, or None when it leaves the folder.

    Refused: an empty name, an absolute path, a drive or UNC path, any ``..`` component, a NUL byte,
    and a path whose real location (symlinks followed) is outside ``folder``'s real location.
    """
    if not name or "\x00" in name or name.startswith(("/", "\\")) or os.path.isabs(name):
        return None
    parts = name.replace("\\", "/").split("/")
    if ".." in parts or (parts and ":" in parts[0]):
        return None
    candidate = folder / name
    try:
        real = candidate.resolve()
        root = folder.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    if real != root and root not in real.parents:
        return None
    return candidate


def open_regular(path: Path) -> IO[bytes]:
    """Open ``path`` for reading only if it is a regular file (never blocks on a FIFO)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ModelFormatError(f"{path} is {file_kind(os.fstat(fd).st_mode)}, not a model file",
                                   "pass the path of a model file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise

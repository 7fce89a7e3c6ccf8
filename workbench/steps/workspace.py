"""The artifacts folder: where steps write their files (default ``<project root>/workbench-artifacts``).

Files are written atomically (to a temporary name, then renamed) and never over a file that is
already there: a new artifact gets a new name (``resnet18.onnx``, ``resnet18-2.onnx``, …).

The folder holds ``manifest.json``: one entry per artifact with its format, files, sha256, the step and
options that made it, its parent, the tool versions, the time taken, its size and its validation figures.
The manifest is rewritten atomically under a file lock, so several processes (a notebook and a worker,
two CLI runs) can add to it at once.

The location: ``set_workspace(path)``, else ``$WORKBENCH_ARTIFACTS``, else ``<project root>/workbench-artifacts``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core import settings
from workbench.core.errors import WorkbenchError
from workbench.core.results import plain

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.model import Model

MANIFEST = "manifest.json"
_lock = threading.RLock()
_root: Path | None = None


def set_workspace(path: str | os.PathLike | None) -> Path:
    """Use ``path`` as the artifacts folder from now on (created if missing); ``None`` restores the default."""
    global _root
    _root = None if path is None else Path(path).expanduser().resolve()
    return workspace()


@contextlib.contextmanager
def using_workspace(path: str | os.PathLike) -> Iterator[Path]:
    """``with using_workspace(folder): ...`` writes artifacts to ``folder`` inside the block only."""
    global _root
    previous = _root
    try:
        yield set_workspace(path)
    finally:
        _root = previous


def workspace() -> Path:
    """The artifacts folder: ``set_workspace()``'s, else ``$WORKBENCH_ARTIFACTS``, else ``<project root>/workbench-artifacts``.

    The first time a process uses a folder, what killed processes left there is removed
    (``clean_stale``)."""
    root = _root or settings.artifacts_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise WorkbenchError(f"the artifacts folder {root} is a file (or lies under one), not a folder",
                             "choose a folder: wb.set_workspace('some/folder') or WORKBENCH_ARTIFACTS=some/folder; "
                             "the file is left as it is") from None
    except OSError as err:
        raise WorkbenchError(f"the artifacts folder {root} cannot be created ({err.strerror or err})",
                             "choose a folder you can write to: wb.set_workspace(...) or WORKBENCH_ARTIFACTS") from None
    clean_once(root)
    return root


# -- what killed processes leave behind ----------------------------------------------------------
#: folders already cleaned by this process
_cleaned: set[Path] = set()
#: tmp_sibling's names: .stem.tmp-<pid>-<thread id>.suffix (+ .data / .bin siblings); a thread id has many digits
_TMP_NAME = re.compile(r"^\..+\.tmp-(\d+)-\d{5,}(\.[A-Za-z0-9_]+)*$")
_RESERVED_NAME = re.compile(r"^\.(.+)\.reserved-(\d+)$")  # unique_path's marker beside a placeholder


def clean_once(folder: Path) -> None:
    """``clean_stale(folder)`` the first time this process writes to ``folder``."""
    key = Path(folder).resolve()
    if key not in _cleaned:
        _cleaned.add(key)
        clean_stale(key)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a PID we may not signal is alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def clean_stale(folder: Path) -> list[str]:
    """Remove what processes that died mid-step left in ``folder``; returns the names removed.

    Only the workbench's own leftovers, of processes no longer running: hidden temporary files and
    folders (``.name.tmp-<pid>-…``) and the empty placeholders ``unique_path`` reserved (each has a
    ``.name.reserved-<pid>`` marker; a placeholder that is no longer empty is the user's and stays).
    Symlinks are removed as links, never followed.
    """
    import shutil

    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        p = folder / name
        m = _TMP_NAME.match(name)
        if m and not _alive(int(m.group(1))):
            try:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
                removed.append(name)
            except OSError:
                pass
            continue
        m = _RESERVED_NAME.match(name)
        if m and not _alive(int(m.group(2))):
            target = folder / m.group(1)
            try:
                if target.is_symlink():
                    pass  # not a placeholder we made: leave it
                elif target.is_file() and target.stat().st_size == 0:
                    target.unlink()
                    removed.append(target.name)
                elif target.is_dir() and not any(target.iterdir()):
                    target.rmdir()
                    removed.append(target.name)
                p.unlink()
                removed.append(name)
            except OSError:
                pass
    return removed


def _marker(path: Path) -> Path:
    return path.with_name(f".{path.name}.reserved-{os.getpid()}")


def release(path: Path) -> None:
    """Drop this process's reservation marker of ``path`` (the placeholder was filled or removed)."""
    with contextlib.suppress(OSError):
        _marker(path).unlink()


def unique_path(stem: str, suffix: str, folder: Path | None = None) -> Path:
    """A path in the workspace that does not exist yet; reserved by creating an empty placeholder.

    ``suffix`` includes the dot (``".onnx"``); for a multi-file artifact (``.xml`` + ``.bin``) pass the
    main suffix: the name is free only if its ``.bin`` and ``.data`` siblings are free too. A folder
    artifact (``.mlpackage``) is reserved as an empty folder.
    """
    folder = folder or workspace()
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem) or "model"
    with _lock:
        for i in range(1, 100_000):
            candidate = folder / (f"{safe}{suffix}" if i == 1 else f"{safe}-{i}{suffix}")
            siblings = (candidate, candidate.with_suffix(".bin"), Path(f"{candidate}.data"))
            if any(p.exists() for p in siblings):
                continue
            try:
                if suffix in FOLDER_SUFFIXES:
                    candidate.mkdir()
                else:
                    candidate.touch(exist_ok=False)  # reserve the name (another process may race us)
            except FileExistsError:
                continue
            _marker(candidate).touch()  # lets a later run remove the placeholder if this process dies
            return candidate
    raise RuntimeError(f"no free artifact name for {stem}{suffix} in {folder}")


FOLDER_SUFFIXES = (".mlpackage", ".tvm")  # artifacts that are folders (Core ML, a TVM library)


def tmp_sibling(path: Path) -> Path:
    """A temporary name in the same folder (same filesystem, so the final rename is atomic)."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{threading.get_ident()}{path.suffix}")


def commit(tmp: Path, final: Path) -> Path:
    """Atomically move a finished temporary file (or folder) into place.

    ``final`` must be free or be the empty placeholder ``unique_path`` reserved; anything else is a
    user's file and is never replaced.
    """
    if final.is_symlink():  # a user's link (even a dangling one) is never replaced
        raise FileExistsError(f"{final} is a symlink; not replacing it")
    if final.is_dir():
        if any(final.iterdir()):
            raise FileExistsError(f"{final} exists and is not empty; not replacing it")
        final.rmdir()
    elif final.exists() and final.stat().st_size > 0:
        raise FileExistsError(f"{final} exists; not replacing it")
    os.replace(tmp, final)
    release(final)
    return final


# -- hashing -----------------------------------------------------------------------------------
_hash_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file (or of every file in a folder, in name order); memoised on (path, size, mtime)."""
    path = Path(path)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode())
            h.update(file_sha256(f).encode())
        return h.hexdigest()
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _hash_cache[key] = h.hexdigest()
    return _hash_cache[key]


def model_sha256(model: Model) -> str | None:
    """One sha256 over every file of a model on disk (None for in-memory models)."""
    from workbench.core.detect import model_files

    files = model_files(model)
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(file_sha256(f).encode())
    return h.hexdigest()


# -- the manifest ------------------------------------------------------------------------------
@contextlib.contextmanager
def _manifest_lock(root: Path) -> Iterator[None]:
    """A lock across threads and processes (fcntl where it exists)."""
    with _lock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: the thread lock only
            yield
            return
        with open(root / ".manifest.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def manifest_path(root: Path | None = None) -> Path:
    return (root or workspace()) / MANIFEST


def read_manifest(root: Path | None = None) -> dict[str, Any]:
    """The manifest as a dict ``{"version": 1, "artifacts": [entry, …]}`` (empty when there is none)."""
    path = manifest_path(root)
    if not path.exists():
        return {"version": 1, "artifacts": []}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        # a damaged manifest is kept aside, never silently dropped
        backup = path.with_name(f"manifest.damaged-{int(time.time())}.json")
        os.replace(path, backup)
        return {"version": 1, "artifacts": [], "note": f"the previous manifest was damaged; kept as {backup.name}"}
    data.setdefault("artifacts", [])
    return data


def _write_manifest(root: Path, data: dict[str, Any]) -> None:
    path = manifest_path(root)
    tmp = tmp_sibling(path)
    tmp.write_text(json.dumps(plain(data), indent=1, allow_nan=False))  # strict JSON: NaN/inf are null
    os.replace(tmp, path)


def relpath(path: Path, root: Path | None = None) -> str:
    """``path`` relative to the workspace when it is inside it, else absolute."""
    root = root or workspace()
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(Path(path).resolve())


def record(model: Model, *, cache_key: str | None = None, validation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add (or update) the manifest entry of ``model``'s artifact and return it."""
    from workbench.core.detect import model_files

    if model.path is None:
        raise ValueError("only models on disk go into the manifest")
    root = workspace()
    last = model.lineage[-1] if model.lineage else None
    parent = last.parent if last is not None else None
    entry: dict[str, Any] = {
        "path": relpath(model.path, root),
        "name": model.name,
        "format": model.format,
        "files": [relpath(f, root) for f in model_files(model)],
        "sha256": model_sha256(model),
        "size_bytes": model.size_bytes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "step": last.step if last else "load",
        "options": plain(last.options) if last else {},
        "parent": _describe_parent(parent, root),
        "tool_versions": dict(last.tool_versions) if last else {},
        "seconds": round(last.seconds, 4) if last else 0.0,
        "lineage": [e.step for e in model.lineage],
        "precision": model.metadata.get("precision"),
        "inputs": [[s.name, list(s.shape), s.dtype] for s in model.inputs],
        "outputs": [[s.name, list(s.shape), s.dtype] for s in model.outputs],
    }
    if cache_key:
        entry["cache_key"] = cache_key
    if validation is not None:
        entry["validation"] = validation
    with _manifest_lock(root):
        data = read_manifest(root)
        data["artifacts"] = [a for a in data["artifacts"] if a.get("path") != entry["path"]] + [entry]
        _write_manifest(root, data)
    return entry


def update_entry(path: Path, **fields: Any) -> None:
    """Set fields of the manifest entry for ``path`` (e.g. its validation once it is known)."""
    root = workspace()
    key = relpath(path, root)
    with _manifest_lock(root):
        data = read_manifest(root)
        for a in data["artifacts"]:
            if a.get("path") == key:
                a.update(plain(fields))
        _write_manifest(root, data)


def find_cached(cache_key: str) -> dict[str, Any] | None:
    """The manifest entry made with ``cache_key`` whose files are still there and unchanged."""
    root = workspace()
    for entry in reversed(read_manifest(root)["artifacts"]):
        if entry.get("cache_key") != cache_key:
            continue
        path = root / entry["path"]
        if not path.exists():
            continue
        try:
            from workbench.core.detect import load_path

            model = load_path(path)
            if model_sha256(model) == entry.get("sha256"):
                entry = dict(entry)
                entry["_model"] = model
                return entry
        except Exception:  # noqa: BLE001 - a damaged or edited artifact is simply not a cache hit
            continue
    return None


def artifacts() -> Any:
    """The manifest as a pandas DataFrame (one row per artifact)."""
    import pandas as pd

    rows = [{k: v for k, v in a.items() if k not in ("inputs", "outputs", "files")} for a in read_manifest()["artifacts"]]
    return pd.DataFrame(rows)


def _describe_parent(parent: Model | None, root: Path) -> dict[str, Any] | None:
    if parent is None:
        return None
    out: dict[str, Any] = {"name": parent.name, "format": parent.format}
    if parent.path is not None:
        out["path"] = relpath(parent.path, root)
        out["sha256"] = model_sha256(parent)
    return out

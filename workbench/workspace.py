"""The artifacts folder: where steps write their files (default ``./workbench-artifacts``).

Files are written atomically (to a temporary name, then renamed) and never over a file that is
already there: a new artifact gets a new name (``resnet18.onnx``, ``resnet18-2.onnx``, …).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_lock = threading.Lock()
_root: Path | None = None


def set_workspace(path: str | os.PathLike) -> Path:
    """Use ``path`` as the artifacts folder from now on (created if missing)."""
    global _root
    _root = Path(path).expanduser().resolve()
    _root.mkdir(parents=True, exist_ok=True)
    return _root


def workspace() -> Path:
    """The artifacts folder: ``set_workspace()``'s, else ``$WORKBENCH_ARTIFACTS``, else ``./workbench-artifacts``."""
    root = _root or Path(os.environ.get("WORKBENCH_ARTIFACTS", "workbench-artifacts")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def unique_path(stem: str, suffix: str, folder: Path | None = None) -> Path:
    """A path in the workspace that does not exist yet; reserved by creating an empty placeholder.

    ``suffix`` includes the dot (``".onnx"``); for a multi-file artifact (``.xml`` + ``.bin``) pass the
    main suffix: the name is free only if its ``.bin`` and ``.data`` siblings are free too.
    """
    folder = folder or workspace()
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem) or "model"
    with _lock:
        for i in range(1, 100_000):
            candidate = folder / (f"{safe}{suffix}" if i == 1 else f"{safe}-{i}{suffix}")
            siblings = (candidate, candidate.with_suffix(".bin"), Path(f"{candidate}.data"))
            if not any(p.exists() for p in siblings):
                candidate.touch(exist_ok=False)  # reserve the name
                return candidate
    raise RuntimeError(f"no free artifact name for {stem}{suffix} in {folder}")


def tmp_sibling(path: Path) -> Path:
    """A temporary name in the same folder (same filesystem, so the final rename is atomic)."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{threading.get_ident()}{path.suffix}")


def commit(tmp: Path, final: Path) -> Path:
    """Atomically move a finished temporary file into place."""
    os.replace(tmp, final)
    return final

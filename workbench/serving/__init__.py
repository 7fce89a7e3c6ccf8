"""Serving: a validated artifact as a ready-to-run package for a server, started on 127.0.0.1 and load-tested.

One file per server (``triton.py``, ``torchserve.py``, ``ray_serve.py``, ``http.py``), each a ``Server``
registered with ``workbench.core.registry.register_server``: the list of targets is the registry's.
``package`` writes a package, ``serve`` writes and starts one, ``load_test`` measures an endpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from workbench.core import registry
from workbench.core.model import Model
from workbench.serving.base import Endpoint, Package, ServingError

__all__ = ["Endpoint", "Package", "ServingError", "package", "serve", "targets"]


def targets() -> list[str]:
    """The registered serving targets (``wb.package(model, target)``)."""
    return list(registry.servers())


def _folder_for(model: Model, target: str, path: str | os.PathLike | None, overwrite: bool) -> Path:
    if path is not None:
        folder = Path(path).expanduser()
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise ServingError(f"{folder} is not empty; a package is written into a folder of its own",
                               "pass an empty or new folder as path=, or overwrite=True to write over it")
        return folder
    from workbench.steps.workspace import workspace

    stem = Path(model.path).stem if model.path is not None else model.name
    base = workspace() / "serving" / f"{stem}-{target}"
    folder, i = base, 2
    while folder.exists() and any(folder.iterdir()):  # never write over an earlier package
        folder, i = base.with_name(f"{base.name}-{i}"), i + 1
    return folder


def package(model: Model, target: str, *, path: str | os.PathLike | None = None, runtime: str | None = None,
            runtime_options: dict[str, Any] | None = None, overwrite: bool = False, allow_failed: bool = False,
            **options: Any) -> Package:
    """Write a ready-to-run serving package for ``model`` (a file on disk: an export or step result).

    Args:
        model: the artifact to serve; its inputs/outputs (TensorSpecs) shape the server's interface.
        target: one of ``targets()``: ``"triton"`` (a model repository), ``"torchserve"`` (a ``.mar``),
            ``"ray_serve"`` (a deployment), ``"http"`` (FastAPI + uvicorn).
        path: the package folder (default: ``<workspace>/serving/<artifact>-<target>``, a new one each time).
        allow_failed: package a step's result whose validation failed (refused by default).
        runtime: the workbench runtime that runs the artifact inside the server (default: the format's).
        runtime_options: options for that runner (``threads=``, ``providers=``, …).
        **options: the target's own (Triton: ``backend=``, ``max_batch_size=``, ``instances=``;
            Ray Serve: ``max_batch_size=``, ``batch_wait_timeout_s=``, ``replicas=``), see each ``Server``.

    The folder holds the artifact, ``package.json``, the server's files, ``README.md`` (how to run it) and
    ``smoke_client.py``. ``package.start()`` runs it here on 127.0.0.1.
    """
    validation = getattr(model, "validation", None)
    if validation is not None and getattr(validation, "skipped", None) is None and not validation and not allow_failed:
        raise ServingError(f"{model.name} failed its validation against the original; a server would answer wrongly",
                           "fix the step (see model.validation), or pass allow_failed=True to package it anyway")
    server = registry.get_server(target)()
    folder = _folder_for(model, target, path, overwrite)
    return server.write(model, folder, runtime=runtime, runtime_options=runtime_options, **options)


def serve(model: Model, target: str = "http", *, port: int | None = None, timeout: float = 180.0,
          start_options: dict[str, Any] | None = None, **options: Any) -> Endpoint:
    """Package ``model`` for ``target`` and start the server on 127.0.0.1; returns the running ``Endpoint``.

    ``endpoint.url``, ``endpoint.infer(feeds)``, ``endpoint.stop()``; ``with wb.serve(...) as ep:`` stops it
    at the end of the block, and it stops by itself when Python exits. ``wb.compare(model, endpoint)``
    checks the served answers against the original. A server that cannot start here raises a
    ``WorkbenchError`` naming the fix (e.g. Java missing for TorchServe).
    """
    registry.get_server(target).check_available()  # fail before writing anything
    pkg = package(model, target, **options)
    return registry.get_server(target)().start(pkg, port=port, timeout=timeout, **(start_options or {}))

"""Native work for untrusted or large models, run in the worker process with time and memory limits.

Steps already run in the worker (``steps/worker.py``). This module moves the rest of the native
work there on request: a runner (``IsolatedRunner``, what ``wb.runner(..., isolate=True)`` returns:
the runtime's session lives in the worker, ``infer`` sends the feeds and gets the outputs back),
graph building (``graph_of``, what the graph views use) and the runs a validation makes
(``validate_step(..., isolate=True)``, through ``run_model_isolated``). A crash, a hang past ``timeout`` or an
allocation past ``memory`` ends in one ``StepError`` naming what happened and the limit; the
notebook's process never loads the model's native code, and the kernel's interrupt stops the
worker at once.

When to isolate: a model from someone else (a published app's visitor, a file from the internet),
or one large enough that a runtime might take the machine's memory. ``isolation_default()`` is the
default where a caller passes ``isolate=None``: on in a published app's kernel
(``WORKBENCH_PUBLISHED``), off elsewhere (an in-process runner is faster to call and its model
objects stay inspectable).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np

from workbench.core import settings
from workbench.core.errors import WorkbenchError
from workbench.core.model import Model

_RUNNERS: dict[int, Any] = {}  # in the worker: the isolated runners' live Runners, by handle
_HANDLES = itertools.count(1)


def isolation_default() -> bool:
    """Whether native work runs in the worker when the caller does not say: on in a published app."""
    return settings.published()


def reload_in_worker(model: Model) -> Model:
    """In the worker: a model that travelled as its path gets its native object back (same trust)."""
    if model.path is not None and model.native() is None:
        from workbench.core.detect import load_path

        loaded = load_path(model.path, trust=bool(model.metadata.get("trusted")))
        model._native, model._native_loader = loaded._native, loaded._native_loader
    return model


def _open(model: Model, backend: str, options: dict[str, Any]) -> tuple[int, int, Model]:
    from workbench.steps.routing import runner

    r = runner(reload_in_worker(model), backend, **options)
    r.prepare()
    handle = next(_HANDLES)
    _RUNNERS[handle] = r
    m = r.model
    return os.getpid(), handle, Model(m.format, name=m.name, inputs=m.inputs, outputs=m.outputs, path=m.path)


def _runner_of(pid: int, handle: int) -> Any:
    r = _RUNNERS.get(handle) if pid == os.getpid() else None
    if r is None:
        raise WorkbenchError("this isolated runner's worker process was stopped (a crash, a timeout, an "
                             "interrupt or a memory limit)", "make a new runner: wb.runner(model, backend, "
                             "isolate=True)")
    return r


def _infer(pid: int, handle: int, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in _runner_of(pid, handle).infer(feeds).items()}


def _close(pid: int, handle: int) -> None:
    r = _RUNNERS.pop(handle, None) if pid == os.getpid() else None
    if r is not None:
        r.close()


class IsolatedRunner:
    """A runner whose runtime session lives in the worker process (``wb.runner(..., isolate=True)``).

    Same use as a Runner: ``prepare()`` (or the first ``infer``), ``infer(feeds) -> {name: array}``,
    ``close()``, a context manager. Each call is bounded by ``timeout`` seconds (default
    ``$WORKBENCH_STEP_TIMEOUT``) and ``memory`` bytes beyond the worker's size (default
    ``$WORKBENCH_WORKER_MEMORY``; 0: none); past either, the worker is stopped and a ``StepError``
    names the limit. Feeds and outputs travel by pipe, so this suits checking and validating a model,
    not timing it (``wb.benchmark`` times in-process runners).
    """

    def __init__(self, model: Model, backend: str, *, timeout: float | None = None, memory: int | None = None,
                 **options: Any) -> None:
        self.source, self.backend, self.options = model, backend, options
        self.timeout, self.memory = timeout, memory
        self.model: Model = model  # the model the runtime runs (after conversion), once prepared
        self._ref: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        return f"{self.backend} (isolated)"

    def _call(self, fn: Any, *args: Any, label: str) -> Any:
        from workbench.steps.worker import run_isolated

        return run_isolated(fn, *args, timeout=self.timeout, memory=self.memory,
                            label=f"{label} of {self.source.name} on {self.backend}")

    def prepare(self) -> IsolatedRunner:
        """Load the model into the runtime, in the worker."""
        if self._ref is None:
            from workbench.steps.base import portable

            pid, handle, self.model = self._call(_open, portable(self.source), self.backend, self.options,
                                                 label="preparing")
            self._ref = (pid, handle)
        return self

    def infer(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run once in the worker; the outputs by name."""
        self.prepare()
        assert self._ref is not None
        return self._call(_infer, *self._ref, {k: np.asarray(v) for k, v in feeds.items()}, label="inference")

    def close(self) -> None:
        """Free the session in the worker (nothing to do when the worker has been stopped)."""
        ref, self._ref = self._ref, None
        if ref is not None:
            try:
                self._call(_close, *ref, label="closing")
            except WorkbenchError:
                pass

    def __enter__(self) -> IsolatedRunner:
        return self.prepare()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IsolatedRunner({self.source.name!r}, {self.backend!r})"


def graph_of(model: Model, *, isolate: bool | None = None, timeout: float | None = None,
             memory: int | None = None) -> Any:
    """``model.graph()``, built in the worker when ``isolate`` (default: ``isolation_default()``).

    Graph building parses the whole file with native code (protobuf, OpenVINO's reader, torch's
    tracer): for an untrusted or huge model, a crash, a hang past ``timeout`` or an allocation past
    ``memory`` then ends in a ``StepError`` instead of taking the notebook's process with it.
    """
    if isolate is None:
        isolate = isolation_default()
    if not isolate:
        return model.graph()
    return run_model_isolated(_graph, model, timeout=timeout, memory=memory, label="building the graph")


def _graph(model: Model) -> Any:
    """The graph, made to travel back from the worker: its weights' loaders (closures over the native
    model, which plain pickle cannot send) are replaced by their values, so the details panel still shows
    each weight's statistics; a weight whose values cannot be read keeps its shape and dtype only."""
    graph = model.graph()
    for weight in graph.weights.values():
        if weight.loader is None or isinstance(weight.loader, Values):
            continue
        try:
            weight.loader = Values(weight.array())
        except Exception:  # noqa: BLE001 - statistics are best effort (as in Weight.stats)
            weight.loader = None
    return graph


class Values:
    """A weight's values as a picklable loader (``Weight.loader``)."""

    def __init__(self, array: Any) -> None:
        self.array = array

    def __call__(self) -> Any:
        return self.array


def run_model_isolated(fn: Any, model: Model, *args: Any, timeout: float | None = None,
                       memory: int | None = None, label: str = "validation") -> Any:
    """``fn(model, *args)`` in the worker, ``model`` sent light (``portable``) and reloaded there."""
    from workbench.steps.base import portable
    from workbench.steps.worker import run_isolated

    return run_isolated(_reloaded_call, fn, portable(model), *args, timeout=timeout, memory=memory,
                        label=f"{label} of {model.name}")


def _reloaded_call(fn: Any, model: Model, *args: Any) -> Any:
    return fn(reload_in_worker(model), *args)

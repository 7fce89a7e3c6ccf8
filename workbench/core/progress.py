"""The one progress channel: the engine reports, whoever listens renders.

Engine code (a step, a pipeline) calls ``report(status)``; every subscriber of the current context
(``subscribe(callback)``, context-local, so a thread or a notebook cell has its own) receives an
``Event``. A pipeline opens a ``scope`` per step, so what a step reports carries the step's key,
label and record without the step knowing it runs in a pipeline. Nothing listens by default: a bare
``wb.export`` prints nothing. ``TqdmBars`` is the default view (``tqdm.auto``: a text bar in a
terminal, a widget bar in a notebook); the UI registers its own views with ``register_view`` (the
notebook's pipeline view, with a Cancel button) and the engine picks one by name, so nothing below
``workbench.ui`` imports it.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

#: the phases a step goes through, in order, and the terminal ones
PHASES = {"planned": 0, "running": 1, "validating": 2, "done": 3, "cached": 3}
FINAL = ("done", "cached", "failed", "cancelled", "skipped")


@dataclass(frozen=True)
class Event:
    """One report: ``status`` (``running``, ``validating``, ``done``, ``cached``, ``failed``, …) of the
    thing identified by ``key`` (a pipeline's step number), with its ``label`` and the ``payload`` the
    reporter attaches (the pipeline's ``StepRecord``)."""

    status: str
    key: Any = None
    label: str = ""
    detail: str = ""
    payload: Any = None


Subscriber = Callable[[Event], None]
_subscribers: contextvars.ContextVar[tuple[Subscriber, ...]] = contextvars.ContextVar("workbench_progress",
                                                                                      default=())
_scope: contextvars.ContextVar[Event | None] = contextvars.ContextVar("workbench_progress_scope", default=None)
_views: dict[str, Callable[..., Any]] = {}


def report(status: str, *, detail: str = "", **fields: Any) -> None:
    """Tell every subscriber of this context that the current task (or scope) is at ``status``.

    ``fields`` (``key``, ``label``, ``payload``) override the enclosing ``scope``'s. Subscribers are
    called innermost first (the pipeline that opened the scope updates its record before outer views)."""
    subscribers = _subscribers.get()
    if not subscribers:
        return
    base = _scope.get() or Event(status)
    event = replace(base, status=status, detail=detail, **fields)
    for callback in reversed(subscribers):
        callback(event)


@contextmanager
def subscribe(callback: Subscriber) -> Iterator[Subscriber]:
    """Receive every ``Event`` reported in this context while the ``with`` block runs."""
    token = _subscribers.set((*_subscribers.get(), callback))
    try:
        yield callback
    finally:
        _subscribers.reset(token)


@contextmanager
def scope(key: Any, label: str = "", payload: Any = None) -> Iterator[None]:
    """Reports inside the block are about ``key`` (e.g. a pipeline's step number) unless they say otherwise."""
    token = _scope.set(Event("running", key, label, "", payload))
    try:
        yield
    finally:
        _scope.reset(token)


def subscribed() -> bool:
    """Whether anything listens in this context (the UI, a pipeline's view)."""
    return bool(_subscribers.get())


def register_view(name: str, factory: Callable[..., Any]) -> None:
    """Offer a view by name: ``factory(owner, run)`` returns a subscriber with a ``close()`` method.
    The UI registers its widgets here (``"widget"``); ``"tqdm"`` is built in."""
    _views[name] = factory


def make_view(name: str, owner: Any = None, run: Any = None) -> Any:
    """The view registered as ``name`` for ``owner``'s ``run``; ``TqdmBars`` where none is registered."""
    factory = _views.get(name)
    return factory(owner, run) if factory is not None else TqdmBars()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where ``tqdm.auto`` draws widget bars)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and getattr(shell, "kernel", None) is not None


class TqdmBars:
    """The default view: one ``tqdm.auto`` bar per key, running → validating → done."""

    def __init__(self) -> None:
        from tqdm.auto import tqdm

        self.tqdm = tqdm
        self.bars: dict[Any, Any] = {}

    def __call__(self, event: Event) -> None:
        bar = self.bars.get(event.key)
        if bar is None:
            desc = f"{event.key}. {event.label}" if event.key is not None else event.label
            bar = self.tqdm(total=3, desc=desc[:60], leave=True, file=sys.stderr,
                            bar_format="{desc:60} {bar:20} {postfix}")
            self.bars[event.key] = bar
        bar.n = PHASES.get(event.status, bar.n)
        bar.set_postfix_str(f"{event.status}  {event.detail}".strip()[:120], refresh=True)
        if event.status in FINAL:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()

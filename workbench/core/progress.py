"""The one progress channel: the engine reports, whoever listens renders.

Engine code (a step, a pipeline) calls ``report(status)``; every subscriber of the current context
(``subscribe(callback)``, context-local, so a thread or a notebook cell has its own) receives an
``Event``. A pipeline opens a ``scope`` per step, so what a step reports carries the step's key,
label and record without the step knowing it runs in a pipeline. Nothing listens by default: a bare
``wb.export`` prints nothing. ``TqdmBars`` is the default view (``tqdm.auto``: a text bar in a
terminal, a widget bar in a notebook); the UI registers its own views with ``register_view`` (the
notebook's pipeline view, with a Cancel button) and the engine picks one by name, so nothing below
``workbench.ui`` imports it.

Cancelling: ``token = CancelToken()``; inside ``with cancellable(token):`` (context-local, like
``subscribe``; blocks nest, and a token of an outer block counts too) engine code calls
``check_cancelled()`` at safe points — between benchmark configurations and inside its timing loop,
between autotune trials, between pipeline steps — which raises ``Cancelled`` once ``token.cancel()`` was
called from any thread (a Cancel button's handler, a signal). ``run_in_background(fn)`` runs work in a
thread with a token of its own and returns a ``Task`` (``.cancel()``, ``.wait()``, ``.result()``): in a
notebook the kernel can then handle a Cancel button's click while the work runs.

Long tasks that are not pipelines (``wb.benchmark``, ``wb.autotune``) report one event per unit of work
with its name and ``done``/``total`` counts; ``task_view(progress, title, token)`` picks their view
(``TaskBar``, one tqdm bar, in a terminal; the UI's ``"task"`` widget, with a Cancel button, in a notebook;
nothing when a view already listens).
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from workbench.core.errors import WorkbenchError

#: the phases a step goes through, in order, and the terminal ones
PHASES = {"planned": 0, "running": 1, "validating": 2, "done": 3, "cached": 3}
FINAL = ("done", "cached", "failed", "cancelled", "skipped")


@dataclass(frozen=True)
class Event:
    """One report: ``status`` (``running``, ``validating``, ``done``, ``cached``, ``failed``, …) of the
    thing identified by ``key`` (a pipeline's step number), with its ``label`` and the ``payload`` the
    reporter attaches (the pipeline's ``StepRecord``). A task made of counted units (benchmark
    configurations, autotune trials) sets ``done`` (units finished) and ``total``."""

    status: str
    key: Any = None
    label: str = ""
    detail: str = ""
    payload: Any = None
    done: int | None = None
    total: int | None = None


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
def silenced() -> Iterator[None]:
    """Reports inside the block reach nobody (a task's inner work, e.g. autotune's benchmark of one trial,
    whose own counts would garble the task's view); cancel tokens still apply."""
    token = _subscribers.set(())
    try:
        yield
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


# -- cancelling ------------------------------------------------------------------------------------


class Cancelled(WorkbenchError):
    """The work was cancelled (a Cancel button, ``CancelToken.cancel()``, an interrupt of the kernel).

    ``partial`` holds what finished before it stopped (a ``BenchReport`` of the configurations that ran,
    a ``TuneResult`` of the trials measured, a ``PipelineRun``), or None; ``last_partial()`` returns it
    too, for a notebook cell stopped by Interrupt."""

    def __init__(self, what: str = "the work", partial: Any = None, *, interrupted: bool = False):
        self.partial = partial
        self.interrupted = interrupted
        kept = "" if partial is None else "; what finished is kept: the error's .partial, or " \
                                          "workbench.core.progress.last_partial()"
        super().__init__(f"{what} was {'interrupted' if interrupted else 'cancelled'}{kept}",
                         "run it again when you want the rest")
        global _last_partial
        if partial is not None:
            _last_partial = partial


_last_partial: Any = None


def last_partial() -> Any:
    """The ``partial`` result of the last ``Cancelled`` raised in this process (None if none carried one)."""
    return _last_partial


class CancelToken:
    """A cancellation flag safe to set from any thread: ``cancel()`` once, ``cancelled`` to ask."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work using this token to stop at its next safe point."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __repr__(self) -> str:
        return f"<CancelToken {'cancelled' if self.cancelled else 'active'}>"


_tokens: contextvars.ContextVar[tuple[CancelToken, ...]] = contextvars.ContextVar("workbench_cancel", default=())


@contextmanager
def cancellable(token: CancelToken) -> Iterator[CancelToken]:
    """Make ``check_cancelled()`` in this context (and tasks started from it) raise once ``token`` is cancelled."""
    reset = _tokens.set((*_tokens.get(), token))
    try:
        yield token
    finally:
        _tokens.reset(reset)


def cancel_requested() -> bool:
    """Whether a token of the current context was cancelled (cheap: engine loops may ask it often)."""
    return any(t.cancelled for t in _tokens.get())


def check_cancelled(what: str = "the work", partial: Any = None) -> None:
    """Raise ``Cancelled`` (naming ``what``, carrying ``partial``) if a token of this context was cancelled."""
    if cancel_requested():
        raise Cancelled(what, partial)


class Task:
    """Work running in a background thread (``run_in_background``): ``cancel()``, ``wait(timeout)``,
    ``done``, ``result()`` (the return value, or the work's exception re-raised — ``Cancelled`` with its
    ``partial`` after a cancel), ``partial`` and ``error``."""

    def __init__(self, name: str, token: CancelToken) -> None:
        self.name = name
        self.token = token
        self.error: BaseException | None = None
        self._value: Any = None
        self.thread: threading.Thread | None = None

    def cancel(self) -> None:
        self.token.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the work ends (or ``timeout`` seconds); True when it has."""
        if self.thread is not None:
            self.thread.join(timeout)
        return self.done

    @property
    def done(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()

    @property
    def partial(self) -> Any:
        """What finished before a cancel (None when it was not cancelled)."""
        return self.error.partial if isinstance(self.error, Cancelled) else None

    def result(self, timeout: float | None = None) -> Any:
        """The work's return value (waiting for it); its exception is raised here."""
        if not self.wait(timeout):
            raise WorkbenchError(f"{self.name} is still running", "wait longer, or task.cancel() it")
        if self.error is not None:
            raise self.error
        return self._value

    def __repr__(self) -> str:
        state = ("running" if not self.done else "cancelled" if isinstance(self.error, Cancelled)
                 else "failed" if self.error is not None else "done")
        return f"<Task {self.name}: {state}>"


def run_in_background(fn: Callable[..., Any], *args: Any, name: str = "task", token: CancelToken | None = None,
                      **kwargs: Any) -> Task:
    """Run ``fn(*args, **kwargs)`` in a daemon thread, in a copy of this context (its subscribers listen
    to it) with a token of its own (``token``, e.g. one a view's Cancel button already holds, or a new one),
    and return the ``Task`` at once. In a notebook the kernel stays free to handle widget messages, so a
    view's Cancel button stops the work at its next safe point."""
    task = Task(name, token or CancelToken())
    context = contextvars.copy_context()

    def work() -> None:
        try:
            with cancellable(task.token):
                task._value = fn(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001 - kept for result(); a thread has no one to raise to
            task.error = err

    task.thread = threading.Thread(target=context.run, args=(work,), daemon=True, name=f"workbench {name}")
    task.thread.start()
    return task


# -- the view of a counted task -------------------------------------------------------------------


class TaskBar:
    """The terminal view of a counted task (benchmark configurations, autotune trials): one ``tqdm.auto``
    bar over ``total`` units, described by the running unit's name."""

    def __init__(self, title: str = "") -> None:
        from tqdm.auto import tqdm

        self.title = title
        self.bar = tqdm(total=None, desc=title[:40], file=sys.stderr, leave=True)

    def __call__(self, event: Event) -> None:
        if event.total is not None and self.bar.total != event.total:
            self.bar.total = event.total
        if event.done is not None:
            self.bar.n = event.done
        text = f"{event.label} {event.detail}".strip() if event.status == "running" else \
            f"{event.status}: {event.label}".strip()
        self.bar.set_postfix_str(text[:100], refresh=True)

    def close(self) -> None:
        self.bar.close()


def task_view(progress: Any, title: str, token: CancelToken | None = None) -> Any:
    """The subscriber ``progress=`` asks for in a counted task: a callable as it is; ``"auto"`` or True:
    nothing when a view already listens (the app's), else the notebook's ``"task"`` view (with a Cancel
    button that cancels ``token``) or a ``TaskBar`` in a terminal; ``"tqdm"``; ``"widget"``; False: none."""
    if callable(progress):
        return progress
    if progress in (False, None, "none"):
        return None
    if progress in ("auto", True):
        if subscribed():
            return None
        progress = "widget" if in_notebook() else "tqdm"
    if progress == "widget" and "task" in _views:
        return _views["task"](token, title)
    if progress in ("tqdm", "widget"):
        return TaskBar(title)
    raise WorkbenchError(f"unknown progress={progress!r}", "use 'auto', 'tqdm', 'widget', a callable, or False")

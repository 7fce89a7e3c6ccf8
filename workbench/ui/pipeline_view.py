"""The notebook views of the progress channel: a Pipeline run's (one progress bar per step, its status
and validation, and a Cancel button, effective between steps) and a counted task's (``wb.benchmark``,
``wb.autotune``: the running configuration's name, a bar, and a Cancel button). A kernel busy running a
cell cannot take a button's click: run with ``background=True`` for the button to work (``Pipeline.run``,
``wb.benchmark``, ``wb.autotune``); in the foreground the button is off and says so — Interrupt the
kernel instead, which stops the work as cleanly (the finished results are kept).

A thin view: it subscribes to the progress channel (``workbench.core.progress``) and renders the
``StepRecord``s the Pipeline reports. Importing this module registers them as the channel's ``"widget"``
and ``"task"`` views, which ``progress="auto"`` shows in a notebook. Plain ipywidgets, so it works in
JupyterLab, Notebook 7 and Voilà alike.
"""

from __future__ import annotations

import threading
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from workbench.core import progress

if TYPE_CHECKING:  # pragma: no cover
    from workbench.steps.pipeline import Pipeline, PipelineRun, StepRecord

_PHASE = {"planned": 0, "running": 1, "validating": 2, "done": 3, "cached": 3}
_STYLE = {"done": "success", "cached": "success", "failed": "danger", "cancelled": "warning", "skipped": "warning"}


def status_text(rec: StepRecord) -> str:
    """A step's status as a view shows it: ``cached`` (never a time: nothing ran), ``done in 1.2 s``, …"""
    if rec.status == "done" and rec.seconds > 0:
        return f"done in {rec.seconds:.1f} s"
    if rec.status == "cached":
        return "cached (reused an identical earlier result)"
    return rec.status


class PipelineView:
    """``PipelineView(pipeline, run)``: rows of (step, progress bar, status); ``.widget`` is the VBox."""

    def __init__(self, pipeline: Pipeline, run: PipelineRun):
        self.pipeline = pipeline
        self.run = run
        self.bars: dict[int, widgets.IntProgress] = {}
        self.status: dict[int, widgets.HTML] = {}
        rows = []
        for rec in run.records:
            label = widgets.HTML(f"<code>{rec.index}.</code> {escape(rec.label)}",
                                 layout=widgets.Layout(width="45%"))
            bar = widgets.IntProgress(value=0, min=0, max=3, layout=widgets.Layout(width="20%"))
            status = widgets.HTML("planned", layout=widgets.Layout(width="35%"))
            self.bars[rec.index], self.status[rec.index] = bar, status
            rows.append(widgets.HBox([label, bar, status]))
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", button_style="warning",
                                            tooltip="stop after the step now running")
        if not run.background:  # the kernel is busy with this cell: a click would wait until the run is over
            self.cancel_button.disabled = True
            self.cancel_button.tooltip = ("the kernel is busy with this cell and cannot take a click: Interrupt the "
                                          "kernel to stop, or run with background=True for this button")
        self.cancel_button.on_click(lambda _b: self._cancel())
        self._ui_lock = threading.Lock()  # a click and the run's end race: the end's "Finished" must win
        self._closed = False
        title = widgets.HTML(f"<b>Pipeline</b> on <code>{escape(run.input.name)}</code>")
        self.widget = widgets.VBox([widgets.HBox([title, self.cancel_button]), *rows])
        self.widget.add_class("workbench-pipeline")

    @classmethod
    def show(cls, pipeline: Pipeline, run: PipelineRun) -> PipelineView:
        """Make the view of ``run``, display it, and return it (the channel's ``"widget"`` factory)."""
        view = cls(pipeline, run)
        view.display()
        return view

    def __call__(self, event: progress.Event) -> None:
        """A subscriber of the progress channel: render the reported record if it is one of this run's."""
        if any(r is event.payload for r in self.run.records):
            self.update(event.payload)

    def _cancel(self) -> None:
        with self._ui_lock:
            if self._closed:
                return
            self.cancel_button.disabled = True
            self.cancel_button.description = "Cancelling…"
            self.pipeline.cancel()

    def display(self) -> None:
        from IPython.display import display

        display(self.widget)

    def update(self, rec: StepRecord) -> None:
        bar = self.bars[rec.index]
        bar.value = _PHASE.get(rec.status, bar.value)
        bar.bar_style = _STYLE.get(rec.status, "info")
        text = escape(status_text(rec))
        model = rec.model
        if model is not None:
            if model.path is not None:
                text += f" → <code>{escape(model.path.name)}</code>"
            v = getattr(model, "validation", None)
            if v is not None:
                colour = "#888" if v.skipped else ("#1a7f37" if v else "#cf222e")
                word = "SKIPPED" if v.skipped else ("PASS" if v else "FAIL")
                text += f" <span style='color:{colour};font-weight:bold' title='{escape(v.summary())}'>{word}</span>"
        if rec.error:
            text += f"<br><span style='color:#cf222e'>{escape(rec.error[:300])}</span>"
        self.status[rec.index].value = text

    def close(self) -> None:
        with self._ui_lock:
            self._closed = True
            self.cancel_button.disabled = True
            self.cancel_button.description = "Finished"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


class TaskView:
    """``TaskView(token, title)``: the notebook view of a counted task (benchmark configurations, autotune
    trials): the title, the running unit's name, a bar over the units, the last result, and a Cancel
    button that cancels ``token`` (None: the task runs in the foreground, where the kernel cannot take
    the click, so the button is off and the view says to Interrupt the kernel instead)."""

    def __init__(self, token: progress.CancelToken | None, title: str = ""):
        self.token = token
        self.stopped = False  # a "cancelled" event came (a Cancel, or an Interrupt of the kernel)
        self.title = widgets.HTML(f"<b>{escape(title)}</b>")
        self.running = widgets.HTML("starting…", layout=widgets.Layout(width="100%"))
        self.bar = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="320px"))
        self.count = widgets.HTML("")
        self.last = widgets.HTML("")
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", button_style="warning")
        if token is None:
            self.cancel_button.disabled = True
            self.cancel_button.tooltip = ("the kernel is busy with this cell and cannot take a click: Interrupt "
                                          "the kernel to stop (finished results are kept), or run with "
                                          "background=True for this button")
        else:
            self.cancel_button.tooltip = "stop at the next safe point (within a second); finished results are kept"
        self.cancel_button.on_click(lambda _b: self.cancel())
        # The click is handled on the kernel's main thread while the task ends on its own: without the lock a
        # late "Cancelling…" could overwrite the end's "Cancelled" (a view stuck cancelling, seen under load).
        self._ui_lock = threading.Lock()
        self._closed = False
        self.widget = widgets.VBox([widgets.HBox([self.title, self.cancel_button]), self.running,
                                    widgets.HBox([self.bar, self.count]), self.last])
        self.widget.add_class("workbench-task")

    @classmethod
    def show(cls, token: progress.CancelToken | None, title: str = "") -> TaskView:
        """Make the view, display it, and return it (the channel's ``"task"`` factory)."""
        view = cls(token, title)
        from IPython.display import display

        display(view.widget)
        return view

    def __call__(self, event: progress.Event) -> None:
        """A subscriber of the progress channel: name the running unit, move the bar, show the last result."""
        if event.total:
            self.bar.max = event.total
        if event.done is not None:
            self.bar.value = min(event.done, self.bar.max)
            self.count.value = f"{event.done}/{event.total}" if event.total else str(event.done)
        if event.status == "running":
            self.running.value = f"running: <code>{escape(event.label)}</code> {escape(event.detail)}"
        elif event.status in progress.FINAL:
            self.stopped = self.stopped or event.status == "cancelled"
            colour = "#cf222e" if event.status == "failed" else "#555"
            word = "cached" if event.status == "cached" else event.status
            self.last.value = (f"<span style='color:{colour}'>{escape(word)}: {escape(event.label)} "
                               f"{escape(event.detail[:200])}</span>")

    def cancel(self) -> None:
        with self._ui_lock:
            if self.token is None or self._closed:
                return
            self.cancel_button.disabled = True
            self.cancel_button.description = "Cancelling…"
            self.token.cancel()

    def close(self) -> None:
        with self._ui_lock:
            self._closed = True
            cancelled = self.stopped or (self.token is not None and self.token.cancelled)
            self.cancel_button.disabled = True
            self.cancel_button.description = "Cancelled" if cancelled else "Finished"
            self.running.value = "cancelled: the finished results are kept" if cancelled else "finished"
            self.bar.bar_style = "warning" if cancelled else "success"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


progress.register_view("widget", PipelineView.show)
progress.register_view("task", TaskView.show)

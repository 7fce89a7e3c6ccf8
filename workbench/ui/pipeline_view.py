"""The notebook view of a Pipeline run: one progress bar per step, its status and validation, and a
Cancel button (effective between steps; run with ``background=True`` so the kernel can take the click).

A thin view: it subscribes to the progress channel (``workbench.core.progress``) and renders the
``StepRecord``s the Pipeline reports. Importing this module registers it as the channel's ``"widget"``
view, which ``Pipeline.run(progress="auto")`` shows in a notebook. Plain ipywidgets, so it works in
JupyterLab, Notebook 7 and Voilà alike.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from workbench.core import progress

if TYPE_CHECKING:  # pragma: no cover
    from workbench.steps.pipeline import Pipeline, PipelineRun, StepRecord

_PHASE = {"planned": 0, "running": 1, "validating": 2, "done": 3, "cached": 3}
_STYLE = {"done": "success", "cached": "success", "failed": "danger", "cancelled": "warning", "skipped": "warning"}


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
        self.cancel_button.on_click(lambda _b: self._cancel())
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
        self.pipeline.cancel()
        self.cancel_button.disabled = True
        self.cancel_button.description = "Cancelling…"

    def display(self) -> None:
        from IPython.display import display

        display(self.widget)

    def update(self, rec: StepRecord) -> None:
        bar = self.bars[rec.index]
        bar.value = _PHASE.get(rec.status, bar.value)
        bar.bar_style = _STYLE.get(rec.status, "info")
        text = escape(rec.status)
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
        self.cancel_button.disabled = True
        self.cancel_button.description = "Finished"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


progress.register_view("widget", PipelineView.show)

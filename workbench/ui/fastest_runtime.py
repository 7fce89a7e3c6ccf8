"""``wb.ui.FastestRuntime``: which runtime and precision run this model fastest *on this machine*, among
the configurations that still compute the right thing?

Pick a model (``ModelPicker``), tick the runtimes and precisions to try, choose an accuracy budget, press
*Find the fastest*. It runs ``wb.autotune`` with short timing budgets and one configuration per runtime ×
precision (no knob sweep), in the background with a Cancel button, and shows the **ranking**: valid
configurations by latency, then the ones that failed validation (an INT8 model beyond the budget is listed
with its reason, never ranked as a winner) and the ones that could not run, then every trial on a
``CompareBoard``. The Voilà app ``notebooks/apps/fastest_runtime.ipynb`` is this one widget.

In a published app the visitor chooses only among the options offered (zoo models, uploads, the
runtimes available here) and gets no "Show code".
"""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from workbench.core import progress, registry, settings
from workbench.core.errors import WorkbenchError
from workbench.core.model import Model
from workbench.ui.download import CodeBox
from workbench.ui.model_explorer import TABLE_CSS
from workbench.ui.model_picker import ModelPicker

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
BUDGETS = (("0.5 point", 0.005), ("1 point", 0.01), ("2 points", 0.02), ("5 points", 0.05))
#: one configuration per runtime x precision: the runtimes' knobs at their usual values
KNOBS: dict[str, list[Any]] = {"threads": [None], "hint": ["LATENCY"], "graph_optimization_level": ["all"]}


def runtimes_here() -> list[str]:
    """The runtimes autotune can try here: those in its default space that are available on this machine."""
    from workbench.analysis.autotune import default_space

    return [n for n in default_space()["backends"] if registry.get_runtime(n).availability().available]


def ranking(result: Any) -> Any:
    """The trials of a ``TuneResult`` as a ranking (``pandas.DataFrame``): valid configurations first,
    fastest first, numbered; then those that failed validation (``rank`` empty, ``status`` says why), then
    those that could not run. ``speedup`` is against the original on torch eager where it was timed."""
    import pandas as pd

    def latency(t: Any) -> float:
        return t.confirmed_p50_ms if t.confirmed_p50_ms is not None else t.p50_ms

    baseline = next((latency(t) for t in result.trials if t.backend.startswith("torch") and t.valid
                     and not t.error and math.isfinite(latency(t))), None)
    ordered = sorted(result.trials, key=lambda t: (0 if t.valid and not t.error else 1 if not t.error else 2,
                                                   latency(t) if math.isfinite(latency(t)) else math.inf))
    rows, rank = [], 0
    for t in ordered:
        ok = t.valid and not t.error
        rank += ok
        lat = latency(t)
        status = ("valid" if ok else f"failed: {t.error}" if t.error
                  else f"not valid: {t.reason or 'beyond the budget'}")
        rows.append({"rank": rank if ok else None, "configuration": t.label, "runtime": t.backend,
                     "precision": t.precision, "p50_ms": lat if math.isfinite(lat) else None,
                     "speedup": baseline / lat if baseline and math.isfinite(lat) and lat > 0 else None,
                     "error": t.metric_drop if result.error_axis == "metric_drop" else t.rel_l2,
                     "status": status, "best": t is result.best})
    frame = pd.DataFrame(rows)
    return frame.astype({"rank": "Int64"}) if not frame.empty else frame


class FastestRuntime(widgets.VBox):
    """Which runtime and precision is fastest here, validated. See the module docstring.

    Args:
        model: the zoo model (or, outside a published app, path) picked at start; None for none.
        runtimes: the runtimes offered (default: every runtime autotune can try here).
        ticked: the runtimes ticked at start (default: those that run the ONNX export as it is; the ones
            that need a conversion of their own, which can take long (TVM compiles), are offered unticked).
        precisions: the precisions offered (all ticked at start; those the CPU cannot compute are
            skipped and listed).
        max_metric_drop: the accuracy budget at start (the largest drop of the task metric; for models
            without evaluation data, the outputs are held to the tolerance of their precision).
        duration_s: the timing budget per configuration (default 0.2 s with ``WORKBENCH_QUICK=1``, else 0.5 s).
        published: a published app's view (no paths, no code shown); default: the picker's rule.

    ``.run(background=False)`` returns the ``TuneResult`` (``background=True``: a ``progress.Task``);
    ``.result`` is the last one, ``.ranking()`` its ranking, ``.cancel()`` stops a run, ``.code()`` is the
    Python that runs the same search.
    """

    def __init__(self, model: Any = "digits-cnn", *, runtimes: Sequence[str] | None = None,
                 ticked: Sequence[str] | None = None, precisions: Sequence[str] = PRECISIONS,
                 max_metric_drop: float = 0.01, duration_s: float | None = None, published: bool | None = None):
        self.picker = ModelPicker(None, published=published)
        self.published = self.picker.published
        offered = list(runtimes) if runtimes is not None else runtimes_here()
        strangers = [n for n in offered if n not in registry.runtimes()]
        if strangers:
            raise WorkbenchError(f"unknown runtime(s) {strangers}", f"choose among {', '.join(registry.runtimes())}")
        unknown = [p for p in precisions if p not in PRECISIONS]
        if unknown:
            raise WorkbenchError(f"unknown precision(s) {unknown}", f"choose among {', '.join(PRECISIONS)}")
        if max_metric_drop not in {b for _, b in BUDGETS}:
            raise WorkbenchError(f"max_metric_drop={max_metric_drop} is not one of the budgets offered",
                                 f"choose among {', '.join(str(b) for _, b in BUDGETS)}")
        self.duration_s = duration_s if duration_s is not None else (0.2 if settings.quick() else 0.5)
        self.result: Any = None
        self.task: progress.Task | None = None
        self._lock = threading.Lock()
        # the Cancel click (kernel's main thread) and the search's end (its thread) race: the end's message
        # must win, so "cancelling" is said only under this lock and only while the search is not over
        self._ui_lock = threading.Lock()
        self._over = True
        self._token: progress.CancelToken | None = None
        if ticked is None:
            direct = set(registry.runtimes_for("onnx"))
            ticked = [n for n in offered if n in direct] or offered
        self.runtime_boxes = {n: widgets.Checkbox(value=n in ticked, description=n, indent=False,
                                                  layout=widgets.Layout(width="auto")) for n in offered}
        self.precision_boxes = {p: widgets.Checkbox(value=True, description=p, indent=False,
                                                    layout=widgets.Layout(width="auto")) for p in precisions}
        self.budget = widgets.Dropdown(options=list(BUDGETS), value=max_metric_drop,
                                       description="accuracy budget", style={"description_width": "initial"})
        self.run_button = widgets.Button(description="Find the fastest", button_style="primary", icon="play")
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", disabled=True)
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.board = widgets.Box(layout=widgets.Layout(width="100%"))
        self.run_button.on_click(lambda _b: self._start())
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.code_box = None if self.published else CodeBox(self.code)
        for box in [*self.runtime_boxes.values(), *self.precision_boxes.values()]:
            box.observe(lambda _c: self._refresh_code(), "value")
        self.budget.observe(lambda _c: self._refresh_code(), "value")
        form = [
            widgets.HTML("<h3 style='margin:4px 0'>Which runtime is fastest here?</h3>"),
            self.picker,
            widgets.HBox([widgets.Label("runtimes:"), *self.runtime_boxes.values()],
                         layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox([widgets.Label("precisions:"), *self.precision_boxes.values()]),
            widgets.HBox([self.budget, self.run_button, self.cancel_button]),
            self.status, self.table, self.board,
        ]
        super().__init__(children=form + ([self.code_box] if self.code_box is not None else []))
        self.add_class("wb-fastest-runtime")
        self.picker.on_pick(lambda _m: self._picked())
        if model is not None and model != "":
            try:
                self.picker.pick(model)
            except WorkbenchError as err:  # shown by the picker as well
                self._say(f"could not load {model!r}: {err}", error=True)

    # -- the Python API ------------------------------------------------------------------------------
    @property
    def model(self) -> Model | None:
        return self.picker.model

    def space(self) -> dict[str, list[Any]]:
        """The autotune space the ticked boxes stand for."""
        return {"backends": [n for n, b in self.runtime_boxes.items() if b.value],
                "precisions": [p for p, b in self.precision_boxes.items() if b.value], **KNOBS}

    def run(self, background: bool = True) -> Any:
        """Search the ticked runtimes × precisions for the picked model; returns the ``TuneResult`` (with
        ``background=True`` a ``progress.Task`` at once, its result the same)."""
        model = self.model
        if model is None:
            raise WorkbenchError("no model is picked", "pick a zoo model or upload a file first")
        space = self.space()
        if not space["backends"] or not space["precisions"]:
            raise WorkbenchError("no runtime or no precision is ticked", "tick at least one of each")
        if not self._lock.acquire(blocking=False):
            raise WorkbenchError("a search is already running", "wait for it, or press Cancel")
        self._token = progress.CancelToken()
        self._over = False
        self.run_button.disabled, self.cancel_button.disabled = True, False
        self.table.value, self.board.children = "", []
        self._say(f"searching {len(space['backends'])} runtime(s) × {len(space['precisions'])} precision(s) "
                  f"for {html.escape(model.name)} …")
        if background:
            self.task = progress.run_in_background(self._work, model, space, name="fastest runtime",
                                                   token=self._token)
            return self.task
        with progress.cancellable(self._token):
            return self._work(model, space)

    def cancel(self) -> None:
        """Stop the running search at its next safe point (the trials measured so far are shown)."""
        with self._ui_lock:
            if self._token is None or self._over:
                return
            self._say("cancelling after the running configuration …")
            self._token.cancel()

    def ranking(self) -> Any:
        """The last result's ranking (``ranking(self.result)``); an empty frame before any run."""
        import pandas as pd

        return ranking(self.result) if self.result is not None else pd.DataFrame()

    def code(self) -> str:
        """The Python that runs the same search (runs as is)."""
        if self.model is None:
            return self.picker.code().rstrip() + "\n"
        return self.picker.script(
                "from workbench.ui.fastest_runtime import ranking\n",
                f"result = wb.autotune(m, max_metric_drop={self.budget.value!r}, space={self.space()!r},\n"
                f"                     duration_s={self.duration_s!r}, confirm=2)\n"
                "print(ranking(result))\n")

    # -- the work, in the background ---------------------------------------------------------------
    def _start(self) -> None:
        """The button: run in the background; a refusal (nothing ticked, a run going on) is shown."""
        try:
            self.run(background=True)
        except WorkbenchError as err:
            self._say(str(err), error=True)

    def _work(self, model: Model, space: dict[str, list[Any]]) -> Any:
        from workbench.api import autotune

        try:
            result = autotune(model, max_metric_drop=self.budget.value, space=space, duration_s=self.duration_s,
                              confirm=2, progress=self._on_event)
        except progress.Cancelled as err:
            result = err.partial
            if result is None:
                self._say("cancelled before any configuration was measured", error=True)
                return None
        except WorkbenchError as err:
            self._say(str(err), error=True)
            raise
        finally:
            with self._ui_lock:
                self._over = True
            self.run_button.disabled, self.cancel_button.disabled = False, True
            self._lock.release()
        self.result = result
        self._show(result)
        return result

    def _on_event(self, event: progress.Event) -> None:
        if progress.cancel_requested():
            return  # "cancelling" stays until the end's message
        count = f" ({event.done}/{event.total})" if event.total else ""
        self._say(f"{html.escape(event.label or event.status)}{count} {html.escape(event.detail)}")

    def _show(self, result: Any) -> None:
        frame = ranking(result)
        best = result.best
        if best is None:
            head = "no configuration passed validation: nothing is ranked"
        else:
            head = (f"fastest valid here: <b>{html.escape(best.label)}</b>"
                    + (" (cancelled: the configurations measured before the cancel)" if result.cancelled else ""))
        skipped = "".join(f"<li>{html.escape(s)}</li>" for s in result.skipped)
        self._say(head + (f"<details><summary>not tried here ({len(result.skipped)})</summary><ul>{skipped}</ul>"
                          "</details>" if skipped else ""), raw=True)
        self.table.value = self._table_html(frame, "metric drop" if result.error_axis == "metric_drop" else "rel. L2")
        self.board.children = [self._board(result)]

    @staticmethod
    def _table_html(frame: Any, error_label: str = "error") -> str:
        if frame.empty:
            return ""
        shown = frame.drop(columns=["best"]).rename(columns={"p50_ms": "p50 (ms)", "speedup": "speed-up",
                                                             "error": error_label})
        body = shown.to_html(escape=True, border=0, index=False, na_rep="",
                             formatters={"p50 (ms)": lambda v: "" if v is None or v != v else f"{v:.3f}",
                                         "speed-up": lambda v: "" if v is None or v != v else f"{v:.2f}×",
                                         error_label: lambda v: "" if v is None or v != v else f"{v:.4g}"})
        return f"{TABLE_CSS}<div class='wb-table wb-ranking' style='overflow:auto'>{body}</div>"

    @staticmethod
    def _board(result: Any) -> Any:
        try:
            from workbench.ui.compare_board import CompareBoard
        except ImportError:  # an older install without the board: the benchmark dashboard
            from workbench.ui.bench_view import BenchView

            return BenchView(result)
        return CompareBoard(result, title="Every configuration tried")

    def _picked(self) -> None:
        self.result, self.table.value, self.board.children = None, "", []
        self._say("")
        self._refresh_code()

    def _refresh_code(self) -> None:
        if self.code_box is not None:
            self.code_box.refresh()

    def _say(self, text: str, error: bool = False, raw: bool = False) -> None:
        colour = "#b00020" if error else "#333"
        body = text if raw or not error else html.escape(text)
        self.status.value = f"<div style='color:{colour};margin:4px 0'>{body}</div>" if text else ""

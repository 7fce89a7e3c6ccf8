"""``wb.Workbench()``: the whole app in one widget, built from the workbench's widgets — pick a model
(``ModelPicker``: the zoo, an uploaded file, or a path), see it (Model: describe and the runtimes here;
Graph: ``wb.show``), step it to deployment (Deploy: ``PipelineStepper``, with each step's options, the
plan, progress, cancel and each step's check), time the results (Benchmark: ``CompareBoard`` over
``wb.benchmark``, run in the background with progress and Cancel), and debug its INT8 (Quantization:
``QuantDebugView``).

A thin view: every action calls the public engine API and renders the result objects. The report and
each artifact are downloaded through the browser (``DownloadButton``: a published app's visitor has no
server path to open), and every tab shows its code. Published as a Voilà app
(``notebooks/apps/workbench_app.ipynb``) it offers visitors choices only — zoo models, uploads of
pure-data formats, the steps' declared options — never a place to type code or a path.
"""

from __future__ import annotations

import html
import io
import threading
import zipfile
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

import workbench as wb
from workbench.core import progress, registry
from workbench.core.errors import WorkbenchError, one_line
from workbench.core.model import Model
from workbench.ui.download import CodeBox, DownloadButton
from workbench.ui.model_picker import ModelPicker
from workbench.ui.pipeline_stepper import (  # noqa: F401 - the app's step helpers, re-exported
    PipelineStepper,
    StepChoice,
    choices_for,
    pipeline_for,
    runnable_steps,
)

#: the tabs, in order; ``QUANT_TAB`` is the index of the "Quantization" tab
TABS = ("Model", "Graph", "Deploy", "Benchmark", "Quantization")
GRAPH_TAB, DEPLOY_TAB, BENCH_TAB, QUANT_TAB = 1, 2, 3, 4

_STYLE = """<style>
.wb-app table.wb-backends { border-collapse: collapse; font-family: sans-serif; font-size: 13px; }
.wb-app table.wb-backends th, .wb-app table.wb-backends td { padding: 4px 10px; border-bottom: 1px solid #d0d7de;
  text-align: left; }
.wb-app .wb-downloads { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center; }
</style>"""


def _error_line(err: BaseException) -> str:
    return str(err) if isinstance(err, WorkbenchError) else f"{type(err).__name__}: {one_line(err, 400)}"


def _box(text: str, kind: str = "info") -> str:
    colour = {"info": "#1f6feb", "ok": "#1a7f37", "error": "#cf222e"}[kind]
    return (f'<div class="wb-message wb-{kind}" style="border-left:4px solid {colour};padding:4px 8px;'
            f'margin:4px 0;font-family:sans-serif">{html.escape(text)}</div>')


def artifact_file(model: Model) -> Any:
    """What downloading ``model`` sends: its file, its folder (zipped by ``DownloadButton``), or a zip of
    its files when it has several (an OpenVINO ``.xml`` with its ``.bin``)."""
    if model.path is None:
        raise WorkbenchError(f"{model.name} is in memory: it has no file to download",
                             "export or convert it first (the Deploy tab's steps write files)")
    files = [f for f in registry.get_format(model.format).files(model.path) if f.is_file()]
    if len(files) <= 1 or model.path.is_dir():
        return model.path
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f.name)
    return f"{model.path.stem}.zip", buf.getvalue(), "application/zip"


class Workbench(widgets.VBox):
    """The workbench app.

    Args:
        model: the zoo model (or, outside a published app, path) loaded at start.
        models: the zoo models offered (default: every zoo model installed here).
        steps: the deployment steps offered (default: ``choices_for`` each picked model's format, from
            the registry).
        bench_seconds: time budget per configuration in the Benchmark tab.

    From Python: ``select(name_or_path)`` picks a model, ``run_steps()`` runs the Deploy tab's steps
    (and waits), ``run_benchmark()`` times the original and every result (and waits), ``results`` maps
    each step's label to its result, ``report_file()`` is the report the Download button sends.
    """

    def __init__(self, model: str = "digits-cnn", *, models: Sequence[str] | None = None,
                 steps: Sequence[StepChoice] | None = None, bench_seconds: float = 1.0):
        from workbench import zoo

        names = list(models) if models is not None else [n for n in zoo.names() if zoo.extra_missing(n) is None]
        if model in zoo.names() and model not in names:
            raise WorkbenchError(f"{model!r} is not among the offered models", f"choose one of {names}")
        self.bench_seconds = bench_seconds
        self.model: Model | None = None
        self.bench_report: Any = None
        self.bench_task: progress.Task | None = None
        # the Cancel click (kernel's main thread) and the benchmark's end (its thread) race: the end's
        # status must win, so both change the tab's status under this lock
        self._bench_lock = threading.Lock()
        self._bench_over = True
        self._comparison: tuple[tuple[int, ...], Any] | None = None  # (the results' ids, wb.compare of them)

        self.status = widgets.HTML()
        self.stepper = PipelineStepper(choices=steps)
        self.stepper.on_done(lambda _results: self._on_steps_done())
        # Model tab
        self.describe = widgets.HTML()
        self.backends_table = widgets.HTML(_box("checking the runtimes…"))
        self.model_code = CodeBox(self._model_code)
        # Graph tab
        self.viewer = widgets.ToggleButtons(options=[("Workbench graph", "native"), ("Netron", "netron")],
                                            value="native")
        self.graph_box = widgets.VBox()
        self.graph_code = CodeBox(self._graph_code)
        # Deploy tab
        self.report_button = DownloadButton("Report (HTML)", self.report_file,
                                            tooltip="each step's check against the original, and the benchmark")
        self.artifact_box = widgets.HBox()
        self.artifact_box.add_class("wb-downloads")
        # Benchmark tab
        self.bench_button = widgets.Button(description="Benchmark", icon="clock-o", button_style="primary")
        self.bench_cancel = widgets.Button(description="Cancel", icon="stop", button_style="warning",
                                           layout={"display": "none"})
        self.bench_progress = widgets.IntProgress(min=0, max=1, layout={"width": "220px", "display": "none"})
        self.bench_status = widgets.HTML()
        self.bench_output = widgets.VBox()
        self.bench_code = CodeBox(self._bench_code)
        # Quantization tab: made when first opened
        self.quant_box = widgets.VBox()

        self.tabs = widgets.Tab(children=[
            widgets.VBox([self.describe, widgets.HTML("<h4>Runtimes on this machine</h4>"), self.backends_table,
                          self.model_code]),
            widgets.VBox([self.viewer, self.graph_box, self.graph_code]),
            widgets.VBox([widgets.HTML("Each step's result is run on the same inputs as the original and compared "
                                       "with it; zoo models with real data also report their task metric."),
                          self.stepper,
                          widgets.HTML("<h4>Downloads</h4>"),
                          widgets.HBox([self.report_button, self.artifact_box])]),
            widgets.VBox([widgets.HTML("Times the original and every step's result on its runtime."),
                          widgets.HBox([self.bench_button, self.bench_cancel, self.bench_progress, self.bench_status]),
                          self.bench_output, self.bench_code]),
            self.quant_box,
        ])
        for i, title in enumerate(TABS):
            self.tabs.set_title(i, title)

        self.picker = ModelPicker(None, models=names)
        self.picker.on_pick(self._on_pick)
        super().__init__([widgets.HTML(_STYLE), self.picker, self.status, self.tabs])
        self.add_class("wb-app")

        self.tabs.observe(lambda change: self._on_tab(change["new"]), names="selected_index")
        self.viewer.observe(lambda _change: self._show_graph(), names="value")
        self.bench_button.on_click(lambda _b: self._safely(self.run_benchmark, background=True))
        self.bench_cancel.on_click(lambda _b: self.cancel_benchmark())
        # wb.backends() checks every runtime (seconds): off the start's path
        threading.Thread(target=self._fill_backends, daemon=True, name="workbench backends").start()
        self.select(model)

    # -- actions (each callable from Python too) -----------------------------------------------
    def select(self, name: str) -> Model | None:
        """Pick ``name`` (a zoo model, or outside a published app a path) and reset the results."""
        try:
            return self.picker.pick(name)
        except WorkbenchError as err:
            self.status.value = _box(str(err), "error")
            return None

    def _on_pick(self, model: Model) -> None:
        """A model was picked (in the browser or from Python): every tab starts over with it."""
        self.model = model
        self.bench_report = None
        try:
            self.stepper.set_model(model)
        except WorkbenchError as err:
            self.status.value = _box(str(err), "error")
        self.describe.value = f"<pre class='wb-describe'>{html.escape(model.describe())}</pre>"
        self.bench_output.children = ()
        self.bench_code.layout.display = ""
        self.bench_status.value = ""
        self.graph_box.children = ()
        self.quant_box.children = ()
        self.artifact_box.children = ()
        self.status.value = _box(f"{model.name} loaded", "ok")
        for box in (self.model_code, self.graph_code, self.bench_code):
            box.refresh()
        if self.tabs.selected_index == GRAPH_TAB:
            self._show_graph()
        elif self.tabs.selected_index == QUANT_TAB:
            self._show_quant()

    @property
    def results(self) -> dict[str, Model]:
        """The Deploy tab's results: step label -> Model."""
        return self.stepper.results

    def run_steps(self, background: bool = False) -> Any:
        """Run the Deploy tab's ticked steps (a ``wb.Pipeline``), each validated against the original."""
        return self.stepper.run(background=background)

    def script_text(self) -> str:
        """The Deploy tab's steps as a plain Python script (``wb.Pipeline.to_script``)."""
        return self.stepper.code()

    def _on_steps_done(self) -> None:
        buttons = []
        for label, m in self.stepper.results.items():
            if m.path is not None:
                buttons.append(DownloadButton(f"{label} ({m.path.name})", lambda m=m: artifact_file(m),
                                              tooltip=f"the {m.format} artifact"))
        self.artifact_box.children = tuple(buttons)
        self.bench_code.refresh()
        if self.tabs.selected_index == GRAPH_TAB:
            self._show_graph()

    def run_benchmark(self, background: bool = False) -> Any:
        """Time the original and every step's result (``wb.benchmark``) and show them on a CompareBoard;
        in the background (the Cancel button stops it between configurations) or here, waiting."""
        if self.model is None:
            raise WorkbenchError("no model to benchmark", "pick a model first")
        if self.bench_task is not None and not self.bench_task.done:
            raise WorkbenchError("a benchmark is running", "wait for it, or cancel it")
        models = [self.model, *self.stepper.results.values()]
        self.bench_button.disabled = True
        self.bench_cancel.layout.display = ""
        self.bench_cancel.disabled = False
        self.bench_progress.layout.display = ""
        self.bench_progress.value = 0
        self.bench_status.value = _box("timing…")
        self._bench_over = False
        task = progress.run_in_background(self._bench_work, models, name="benchmark")
        self.bench_task = task
        if not background:
            task.wait()
        return task

    def _safely(self, action: Any, *args: Any, **kwargs: Any) -> None:
        """A button's action: its refusal (a benchmark already running, no model) is shown, not raised."""
        try:
            action(*args, **kwargs)
        except WorkbenchError as err:
            self.bench_status.value = _box(str(err), "error")

    def cancel_benchmark(self) -> None:
        """Stop the benchmark (within a fraction of a second, inside the timing loop too); what ran is kept
        and shown."""
        with self._bench_lock:
            if self.bench_task is None or self._bench_over:
                return
            self.bench_cancel.disabled = True
            self.bench_status.value = _box("cancelling… (the configurations already timed are kept)")
            self.bench_task.cancel()

    def _bench_work(self, models: list[Model]) -> Any:
        def on_event(event: progress.Event) -> None:
            if event.total:
                self.bench_progress.max = event.total
                self.bench_progress.value = min(event.done or 0, event.total)
            if event.status == "running" and event.label and not progress.cancel_requested():
                self.bench_status.value = _box(f"timing {event.label} {event.detail}".strip())

        report, status = None, ""
        try:
            report = wb.benchmark(models, duration_s=self.bench_seconds, progress=on_event)
        except progress.Cancelled as err:
            report = err.partial
            status = _box("cancelled: what ran before is shown" if report is not None
                          else "cancelled before a configuration finished", "info")
        except Exception as err:  # noqa: BLE001 - shown in the tab; the kernel carries on
            status = _box(_error_line(err), "error")
        finally:
            with self._bench_lock:
                self._bench_over = True
                self.bench_status.value = status
                self.bench_button.disabled = False
                self.bench_cancel.layout.display = "none"
                self.bench_progress.layout.display = "none"
        if report is not None:
            self.bench_report = report
            self._show_board(report, self._step_comparison())
        return report

    def _step_comparison(self) -> Any:
        """``wb.compare`` of the original with the Deploy tab's results (once per run's results), so the
        board marks a step that FAILs accuracy instead of ranking it as a speed-up; None without results."""
        results = list(self.stepper.results.values())
        if not results or self.model is None:
            return None
        key = tuple(id(m) for m in results)
        if self._comparison is None or self._comparison[0] != key:
            try:
                self._comparison = (key, wb.compare(self.model, results))
            except Exception:  # noqa: BLE001 - the board still shows the timings; each step showed its check
                return None
        return self._comparison[1]

    def _show_board(self, report: Any, comparison: Any = None) -> None:
        try:
            try:
                from workbench.ui.compare_board import CompareBoard
            except ImportError:  # a checkout without the board: the table view
                from workbench.ui.bench_view import BenchView

                self.bench_output.children = (BenchView(report),)
            else:
                parts = (report,) if comparison is None else (report, comparison)
                self.bench_output.children = (CompareBoard(*parts, title=f"Benchmark of {report_title(self.model)}"),)
        except Exception as err:  # noqa: BLE001
            self.bench_output.children = (widgets.HTML(_box(_error_line(err), "error")),)
        self.bench_code.refresh()
        # the board shows its own code (the benchmark it ran): no second Show code under it
        self.bench_code.layout.display = "none" if hasattr(self.bench_output.children[0], "code") else ""

    def report_file(self) -> tuple[str, bytes, str]:
        """The HTML report the Download button sends: each step's comparison with the original and the
        last benchmark (``workbench.analysis.report.html_report``)."""
        from workbench.analysis.report import html_report

        if self.model is None:
            raise WorkbenchError("no model picked", "pick a model first")
        parts: list[Any] = []
        comparison = self._step_comparison()
        if comparison is not None:
            parts.append(comparison)
        if self.bench_report is not None:
            parts.append(self.bench_report)
        if not parts:
            raise WorkbenchError("there is nothing to report yet", "run the Deploy tab's steps or a benchmark first")
        title = f"Workbench report: {report_title(self.model)}"
        page = html_report(*parts, title=title)
        stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.model.name)[:60] or "model"
        return f"workbench-report-{stem}.html", page.encode("utf-8"), "text/html"

    # -- rendering -----------------------------------------------------------------------------
    def _load_code(self) -> str:
        text = self.picker.code().strip()
        return text if "wb.load" in text else "import workbench as wb\nm = wb.load('digits-cnn')"

    def _model_code(self) -> str:
        return f"{self._load_code()}\nprint(m.describe())\nwb.backends()\n"

    def _graph_code(self) -> str:
        source = self._graph_source()
        if source is not None and source is not self.model and source.path is not None:
            load = f"import workbench as wb\nm = wb.load({str(source.path)!r})"
        else:
            load = self._load_code()
        return f"{load}\nwb.show(m, viewer={self.viewer.value!r})\n"

    def _bench_code(self) -> str:
        board = self.bench_output.children[0] if self.bench_output.children else None
        if board is not None and hasattr(board, "code"):
            return board.code()
        steps = self.stepper.code()
        if steps and self.stepper.results:
            n = len(self.stepper.records)
            made = ", ".join(f"m{i}" for i in range(n + 1))
            return f"{steps}\nreport = wb.benchmark([{made}], duration_s={self.bench_seconds!r})\nreport\n"
        return f"{self._load_code()}\nreport = wb.benchmark([m], duration_s={self.bench_seconds!r})\nreport\n"

    def _fill_backends(self) -> None:
        try:
            table = wb.backends()[["available", "version", "reason"]].reset_index()  # one header row
            self.backends_table.value = table.to_html(classes="wb-backends", index=False, na_rep="")
        except Exception as err:  # noqa: BLE001
            self.backends_table.value = _box(_error_line(err), "error")

    def _on_tab(self, index: int | None) -> None:
        if index == GRAPH_TAB and not self.graph_box.children:
            self._show_graph()
        elif index == QUANT_TAB and not self.quant_box.children:
            self._show_quant()

    def _show_quant(self) -> None:
        """The quantization debugger for the picked model: per-tensor INT8 (the plain scheme, the one that
        breaks depthwise nets), its accuracy against the budget, the layers to blame, the fix."""
        from workbench.ui.quant_debug_view import QuantDebugView

        if self.model is None:
            return
        task = self.model.task
        if task is None or not task.has_evaluation:
            self.quant_box.children = (widgets.HTML(_box(
                f"{self.model.name} has no evaluation data: the debugger needs a task metric (pick digits-cnn, "
                "digits-mobilenet or minilm)", "error")),)
            return
        self.quant_box.children = (QuantDebugView(self.model, budget=0.01, samples=16, bench_seconds=0.3,
                                                  options={"per_channel": False}),)

    def _graph_source(self) -> Model | None:
        graphs = [m for m in self.stepper.results.values() if m.format == "onnx"]  # the exported graph, if made
        return graphs[0] if graphs else self.model

    def _show_graph(self) -> None:
        source = self._graph_source()
        if source is None:
            return
        view = None
        try:
            view = wb.show(source, viewer=self.viewer.value)
            self.graph_box.children = (view,)
        except Exception as err:  # noqa: BLE001
            self.graph_box.children = (widgets.HTML(_box(_error_line(err), "error")),)
        self.graph_code.refresh()
        # a view with its own Show code (the graph widget) needs no second one
        self.graph_code.layout.display = "none" if hasattr(view, "code") else ""


def report_title(model: Model | None) -> str:
    return "no model" if model is None else f"{model.name} ({model.format})"

"""``wb.Workbench()``: the whole app in one widget — pick a model, see it, step it to deployment,
check every step against the original, time the results.

It is a thin view: every button calls the public engine API (``wb.load``, ``wb.Pipeline``,
``wb.benchmark``) and renders the result objects. The steps it offers are the registered steps that
declare an ``@offer`` (``workbench.steps.base.offer``) and take the loaded model's format; running them
runs a ``wb.Pipeline``, whose progress the app follows on the progress channel.
Published as a Voilà app (``notebooks/apps/workbench_app.ipynb``) it offers visitors choices only —
zoo models and predefined steps — never a place to type code or a path.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

import workbench as wb
from workbench.core import progress, registry
from workbench.core.errors import WorkbenchError
from workbench.core.model import Model


@dataclass(frozen=True)
class StepChoice:
    """A step the app offers: a registered step as a ``wb.Pipeline`` item (``(kind, target, {options})``),
    its label, and the label of the choice whose result it starts from (none: the loaded model)."""

    label: str
    spec: tuple[Any, ...]
    needs: tuple[str, ...] = ()
    ticked: bool = True  # ticked when a model opens (``@offer(..., ticked=...)``)


def choices_for(fmt: str) -> list[StepChoice]:
    """The steps the registry offers for a model of format ``fmt`` (``@offer`` on a registered step),
    chained: exports, then conversions, then quantizations, each from the result it takes (the one in
    its own format first, else the latest, else the loaded model)."""
    made: list[tuple[str, str]] = []  # (label, format) of the choices so far
    out: list[StepChoice] = []
    for kind in registry.STEP_KINDS:
        for plugin in registry.steps(kind):
            offered = getattr(plugin.func, "app_offer", None)
            if offered is None:
                continue
            label, options = offered
            produces = plugin.result_format(options)
            inputs = [(lab, f) for lab, f in made if f in plugin.accepts]
            source = next((lab for lab, f in inputs if f == produces), inputs[-1][0] if inputs else None)
            if source is None and fmt not in plugin.accepts:
                continue
            out.append(StepChoice(label, (kind, plugin.target, options) if options else (kind, plugin.target),
                                  (source,) if source else (), getattr(plugin.func, "app_ticked", True)))
            made.append((label, produces))
    return out


def pipeline_for(chosen: Sequence[StepChoice]) -> Any:
    """The ``wb.Pipeline`` that does what the chosen steps do (each from the result it needs); a step
    whose input step is not chosen is left out, as the app refuses to run it."""
    runnable = runnable_steps(chosen)
    position = {step.label: i for i, step in enumerate(runnable, start=1)}
    items = []
    for step in runnable:
        kind, target, *rest = step.spec
        options = dict(rest[0]) if rest else {}
        options["source"] = position.get(step.needs[0], 0) if step.needs else 0
        items.append((kind, target, options))
    return wb.Pipeline(items, name="workbench-app")


def runnable_steps(chosen: Sequence[StepChoice]) -> list[StepChoice]:
    """The chosen steps whose input step is chosen too (or that start from the loaded model)."""
    runnable: list[StepChoice] = []
    for step in chosen:
        if all(need in {r.label for r in runnable} for need in step.needs):
            runnable.append(step)
    return runnable


_STYLE = """<style>
.wb-app table.wb-steps, .wb-app table.wb-backends { border-collapse: collapse; font-family: sans-serif; font-size: 13px; }
.wb-app table.wb-steps th, .wb-app table.wb-steps td, .wb-app table.wb-backends th, .wb-app table.wb-backends td
  { padding: 4px 10px; border-bottom: 1px solid #d0d7de; text-align: left; }
.wb-app .wb-pass { color: #1a7f37; } .wb-app .wb-fail { color: #cf222e; }
</style>"""


#: the index of the "Quantization" tab
QUANT_TAB = 4


def _error_line(err: BaseException) -> str:
    if isinstance(err, WorkbenchError):
        return str(err)
    return f"{type(err).__name__}: {err}".splitlines()[0][:400]


def _box(text: str, kind: str = "info") -> str:
    colour = {"info": "#1f6feb", "ok": "#1a7f37", "error": "#cf222e"}[kind]
    return (f'<div class="wb-message wb-{kind}" style="border-left:4px solid {colour};padding:4px 8px;'
            f'margin:4px 0;font-family:sans-serif">{html.escape(text)}</div>')


class Workbench(widgets.VBox):
    """The workbench app.

    Args:
        model: the zoo model selected at start.
        models: the zoo models offered (default: every zoo model installed here).
        steps: the deployment steps offered (default: ``choices_for`` the first model's format, from
            the registry).
        bench_seconds: time budget per configuration in the benchmark tab.
    """

    def __init__(self, model: str = "digits-cnn", *, models: Sequence[str] | None = None,
                 steps: Sequence[StepChoice] | None = None, bench_seconds: float = 1.0):
        from workbench import zoo

        names = list(models) if models is not None else [n for n in zoo.names() if zoo.extra_missing(n) is None]
        if model not in names:
            raise WorkbenchError(f"{model!r} is not among the offered models", f"choose one of {names}")
        self.steps: list[StepChoice] = list(steps or ())
        self.fixed_steps = steps is not None  # else: the registry's choices for each loaded model's format
        self.bench_seconds = bench_seconds
        self.model: Model | None = None
        self.results: dict[str, Model] = {}

        self.picker = widgets.Dropdown(options=names, value=model, description="Model")
        self.status = widgets.HTML()
        self.describe = widgets.HTML()
        self.backends_table = widgets.HTML()
        self.graph_box = widgets.VBox()
        self.viewer = widgets.ToggleButtons(options=[("Workbench graph", "native"), ("Netron", "netron")],
                                            value="native")
        self.step_boxes: list[widgets.Checkbox] = []
        self.steps_row = widgets.HBox()
        self.run_button = widgets.Button(description="Run steps", button_style="primary", icon="play")
        self.progress = widgets.IntProgress(min=0, max=len(self.steps), layout={"width": "300px"})
        self.steps_table = widgets.HTML()
        self.script = widgets.HTML()
        self.script_box = widgets.Accordion(children=[self.script], titles=("The same as a Python script",))
        self.script_box.selected_index = None
        self.bench_button = widgets.Button(description="Benchmark", icon="clock-o")
        self.bench_output = widgets.VBox()
        self.quant_box = widgets.VBox()  # the quantization debugger, made when its tab is first opened

        self.tabs = widgets.Tab(children=[
            widgets.VBox([self.describe, widgets.HTML("<h4>Runtimes on this machine</h4>"), self.backends_table]),
            widgets.VBox([self.viewer, self.graph_box]),
            widgets.VBox([widgets.HTML("Each step's result is run on the same inputs as the original and compared "
                                       "with it; zoo models with real data also report their task metric."),
                          self.steps_row, widgets.HBox([self.run_button, self.progress]),
                          self.steps_table, self.script_box]),
            widgets.VBox([widgets.HTML("Times the original and every step's result on its runtime."),
                          self.bench_button, self.bench_output]),
            self.quant_box,
        ])
        for i, title in enumerate(["Model", "Graph", "Deploy", "Benchmark", "Quantization"]):
            self.tabs.set_title(i, title)
        super().__init__([widgets.HTML(_STYLE), widgets.HBox([self.picker, self.status]), self.tabs])
        self.add_class("wb-app")

        self.picker.observe(lambda change: self.select(change["new"]), names="value")
        self.tabs.observe(lambda change: self._on_tab(change["new"]), names="selected_index")
        self.viewer.observe(lambda change: self._show_graph(), names="value")
        self.run_button.on_click(lambda _b: self.run_steps())
        self._set_steps(self.steps)
        self.bench_button.on_click(lambda _b: self.run_benchmark())
        self.backends_table.value = wb.backends()[["available", "version", "reason"]].to_html(classes="wb-backends")
        self.select(model)

    # -- actions (each callable from Python too) -----------------------------------------------
    def select(self, name: str) -> None:
        """Load zoo model ``name`` and reset the results."""
        self.status.value = _box(f"loading {name}…")
        try:
            self.model = wb.load(name)
        except Exception as err:  # noqa: BLE001 - shown in the app; the kernel carries on
            self.status.value = _box(_error_line(err), "error")
            return
        self.results = {}
        if not self.fixed_steps:
            offered = choices_for(self.model.format)
            if offered != self.steps:
                self._set_steps(offered)
        self.describe.value = f"<pre class='wb-describe'>{html.escape(self.model.describe())}</pre>"
        self.steps_table.value = ""
        self.bench_output.children = ()
        self.graph_box.children = ()
        self.quant_box.children = ()
        self.status.value = _box(f"{name} loaded", "ok")
        self._show_script()
        if self.tabs.selected_index == 1:
            self._show_graph()
        elif self.tabs.selected_index == QUANT_TAB:
            self._show_quant()

    def _set_steps(self, steps: Sequence[StepChoice]) -> None:
        self.steps = list(steps)
        self.step_boxes = [widgets.Checkbox(value=s.ticked, description=s.label, indent=False)
                           for s in self.steps]
        for box in self.step_boxes:
            box.observe(lambda _change: self._show_script(), names="value")
        self.steps_row.children = tuple(self.step_boxes)

    def run_steps(self) -> None:
        """Run the ticked steps as a ``wb.Pipeline``, validating each against the original model."""
        assert self.model is not None
        chosen = [s for s, box in zip(self.steps, self.step_boxes, strict=True) if box.value]
        runnable = runnable_steps(chosen)
        refused = [{"step": s.label, "error": f"needs the result of {', '.join(s.needs)}: tick it too"}
                   for s in chosen if s not in runnable]
        self.results = {}
        rows: dict[int, dict[str, Any]] = {}
        self.progress.max, self.progress.value = max(len(chosen), 1), len(refused)
        self.steps_table.value = self._rows_html(refused)
        if not runnable:
            return

        def on_progress(event: progress.Event) -> None:  # a step of the pipeline finished
            rec = event.payload
            if event.status not in progress.FINAL or rec is None or rec.index in rows:
                return
            if rec.model is None and event.status in ("done", "cached"):  # reported from inside the step
                return
            rows[rec.index] = self._row(runnable[rec.index - 1].label, rec)
            self.progress.value += 1
            self.steps_table.value = self._rows_html([*(rows[i] for i in sorted(rows)), *refused])

        self.run_button.disabled = True
        try:
            run = pipeline_for(chosen).run(self.model, progress=on_progress, raise_errors=False)
        finally:
            self.run_button.disabled = False
        for step, rec in zip(runnable, run.records, strict=True):
            if rec.model is not None:
                self.results[step.label] = rec.model

    def _row(self, label: str, rec: Any) -> dict[str, Any]:
        """A row of the steps table from a pipeline's ``StepRecord``."""
        result = rec.model
        if result is None:
            return {"step": label, "error": rec.error or rec.status}
        row: dict[str, Any] = {"step": label, "format": result.format, "seconds": rec.seconds,
                               "size_mb": (result.size_bytes or 0) / 1e6}
        validation = getattr(result, "validation", None)  # every step validates its result (steps/validate.py)
        if validation is None or validation.skipped:
            row["error"] = validation.skipped if validation is not None else "not validated"
            return row
        row.update(passed=bool(validation), rel_l2=validation.figures.get("rel_l2"),
                   cosine=validation.figures.get("cosine"))
        metric = self.model.task.metric_name if self.model is not None and self.model.task is not None else None
        if validation.metrics and metric in validation.metrics:
            row[metric] = validation.metrics[metric]
        return row

    def run_benchmark(self) -> None:
        """Time the original and every step's result; show the report."""
        assert self.model is not None
        from workbench.ui.bench_view import BenchView

        self.bench_button.disabled = True
        self.bench_output.children = (widgets.HTML(_box("timing…")),)
        try:
            report = wb.benchmark([self.model, *self.results.values()], duration_s=self.bench_seconds)
            self.bench_output.children = (BenchView(report),)
        except Exception as err:  # noqa: BLE001
            self.bench_output.children = (widgets.HTML(_box(_error_line(err), "error")),)
        finally:
            self.bench_button.disabled = False

    # -- rendering -----------------------------------------------------------------------------
    def script_text(self) -> str:
        """The ticked steps as a plain Python script (``wb.Pipeline.to_script``)."""
        chosen = [s for s, box in zip(self.steps, self.step_boxes, strict=True) if box.value and s.spec]
        if not chosen or self.model is None:
            return ""
        return pipeline_for(chosen).to_script(self.picker.value)

    def _show_script(self) -> None:
        try:
            text = self.script_text()
        except Exception as err:  # noqa: BLE001
            text = f"# {_error_line(err)}"
        self.script.value = f"<pre class='wb-script'>{html.escape(text)}</pre>"

    def _on_tab(self, index: int | None) -> None:
        if index == 1 and not self.graph_box.children:
            self._show_graph()
        elif index == QUANT_TAB and not self.quant_box.children:
            self._show_quant()

    def _show_quant(self) -> None:
        """The quantization debugger for the selected model: per-tensor INT8 (the plain scheme, the one that
        breaks depthwise nets), its accuracy against the budget, the layers to blame, the fix."""
        from workbench.ui.quant_debug_view import QuantDebugView

        assert self.model is not None
        task = self.model.task
        if task is None or not task.has_evaluation:
            self.quant_box.children = (widgets.HTML(_box(
                f"{self.model.name} has no evaluation data: the debugger needs a task metric (pick digits-cnn, "
                "digits-mobilenet or minilm)", "error")),)
            return
        self.quant_box.children = (QuantDebugView(self.model, budget=0.01, samples=16, bench_seconds=0.3,
                                                  options={"per_channel": False}),)

    def _show_graph(self) -> None:
        assert self.model is not None
        graphs = [m for m in self.results.values() if m.format == "onnx"]  # the exported graph, if one was made
        source = graphs[0] if graphs else self.model
        try:
            self.graph_box.children = (wb.show(source, viewer=self.viewer.value),)
        except Exception as err:  # noqa: BLE001
            self.graph_box.children = (widgets.HTML(_box(_error_line(err), "error")),)

    def _rows_html(self, rows: list[dict[str, Any]]) -> str:
        metric = self.model.task.metric_name if self.model and self.model.task else None
        head = ["step", "format", "size (MB)", "seconds", "rel. L2 vs original", "cosine", metric or "", "check"]
        out = ["<table class='wb-steps'><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head if h) + "</tr>"]
        for r in rows:
            if "format" not in r:
                out.append(f"<tr><td>{html.escape(r['step'])}</td><td colspan='{len(head) - 1}'>"
                           f"{_box(r['error'], 'error')}</td></tr>")
                continue

            def fmt(v: Any, spec: str) -> str:
                return format(v, spec) if isinstance(v, int | float) else "—"

            check = ("<b class='wb-pass'>PASS</b>" if r.get("passed") else "<b class='wb-fail'>FAIL</b>") \
                if "passed" in r else _box(r.get("error", ""), "error")
            cells = [r["step"], r["format"], fmt(r["size_mb"], ".2f"), fmt(r["seconds"], ".1f"),
                     fmt(r.get("rel_l2"), ".2e"), fmt(r.get("cosine"), ".6f")]
            if metric:
                cells.append(fmt(r.get(metric), ".4f"))
            out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + f"<td>{check}</td></tr>")
        return "".join(out) + "</table>"

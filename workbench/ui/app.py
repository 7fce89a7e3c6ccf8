"""``wb.Workbench()``: the whole app in one widget — pick a model, see it, step it to deployment,
check every step against the original, time the results.

It is a thin view: every button calls the public engine API (``wb.load``, ``wb.export``,
``wb.convert``, ``wb.quantize``, ``wb.compare``, ``wb.benchmark``) and renders the result objects.
Published as a Voilà app (``notebooks/apps/workbench_app.ipynb``) it offers visitors choices only —
zoo models and predefined steps — never a place to type code or a path.
"""

from __future__ import annotations

import html
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

import workbench as wb
from workbench.core.errors import WorkbenchError
from workbench.core.model import Model


@dataclass(frozen=True)
class StepChoice:
    """A step the app offers: ``run(original, results_so_far) -> Model``, and the same step as a
    ``wb.Pipeline`` item (``(kind, target, {options})``) for the script the app shows."""

    label: str
    run: Callable[[Model, dict[str, Model]], Model]
    needs: tuple[str, ...] = ()  # labels of steps whose result this one starts from
    spec: tuple[Any, ...] = ()


def _onnx(original: Model, done: dict[str, Model]) -> Model:
    return wb.export(original, "onnx")


def _openvino(original: Model, done: dict[str, Model]) -> Model:
    return wb.convert(done["ONNX export"], "openvino")


def _ort_int8(original: Model, done: dict[str, Model]) -> Model:
    return wb.quantize(done["ONNX export"], "onnxruntime", "static")  # calibrated on the model's own data


def _nncf_int8(original: Model, done: dict[str, Model]) -> Model:
    return wb.quantize(done["OpenVINO IR"], "nncf")


STEPS: list[StepChoice] = [
    StepChoice("ONNX export", _onnx, spec=("export", "onnx")),
    StepChoice("OpenVINO IR", _openvino, needs=("ONNX export",), spec=("convert", "openvino")),
    StepChoice("ONNX Runtime static INT8", _ort_int8, needs=("ONNX export",),
               spec=("quantize", "onnxruntime", {"method": "static"})),
    StepChoice("OpenVINO NNCF INT8", _nncf_int8, needs=("OpenVINO IR",), spec=("quantize", "nncf")),
]


def pipeline_for(chosen: Sequence[StepChoice]) -> Any:
    """The ``wb.Pipeline`` that does what the chosen steps do (each from the result it needs); a step
    whose input step is not chosen is left out, as the app refuses to run it."""
    runnable: list[StepChoice] = []
    for step in chosen:
        if all(need in {r.label for r in runnable} for need in step.needs):
            runnable.append(step)
    position = {step.label: i for i, step in enumerate(runnable, start=1)}
    items = []
    for step in runnable:
        kind, target, *rest = step.spec
        options = dict(rest[0]) if rest else {}
        options["source"] = position.get(step.needs[0], 0) if step.needs else 0
        items.append((kind, target, options))
    return wb.Pipeline(items, name="workbench-app")


_STYLE = """<style>
.wb-app table.wb-steps, .wb-app table.wb-backends { border-collapse: collapse; font-family: sans-serif; font-size: 13px; }
.wb-app table.wb-steps th, .wb-app table.wb-steps td, .wb-app table.wb-backends th, .wb-app table.wb-backends td
  { padding: 4px 10px; border-bottom: 1px solid #d0d7de; text-align: left; }
.wb-app .wb-pass { color: #1a7f37; } .wb-app .wb-fail { color: #cf222e; }
</style>"""


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
        steps: the deployment steps offered (default ``STEPS``: ONNX, OpenVINO IR, ONNX Runtime static
            INT8, NNCF INT8).
        bench_seconds: time budget per configuration in the benchmark tab.
    """

    def __init__(self, model: str = "digits-cnn", *, models: Sequence[str] | None = None,
                 steps: Sequence[StepChoice] = STEPS, bench_seconds: float = 1.0):
        from workbench import zoo

        names = list(models) if models is not None else [n for n in zoo.names() if zoo.extra_missing(n) is None]
        if model not in names:
            raise WorkbenchError(f"{model!r} is not among the offered models", f"choose one of {names}")
        self.steps = list(steps)
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
        self.step_boxes = [widgets.Checkbox(value=True, description=s.label, indent=False) for s in self.steps]
        self.run_button = widgets.Button(description="Run steps", button_style="primary", icon="play")
        self.progress = widgets.IntProgress(min=0, max=len(self.steps), layout={"width": "300px"})
        self.steps_table = widgets.HTML()
        self.script = widgets.HTML()
        self.script_box = widgets.Accordion(children=[self.script], titles=("The same as a Python script",))
        self.script_box.selected_index = None
        self.bench_button = widgets.Button(description="Benchmark", icon="clock-o")
        self.bench_output = widgets.VBox()

        self.tabs = widgets.Tab(children=[
            widgets.VBox([self.describe, widgets.HTML("<h4>Runtimes on this machine</h4>"), self.backends_table]),
            widgets.VBox([self.viewer, self.graph_box]),
            widgets.VBox([widgets.HTML("Each step's result is run on the same inputs as the original and compared "
                                       "with it; zoo models with real data also report their task metric."),
                          widgets.HBox(self.step_boxes), widgets.HBox([self.run_button, self.progress]),
                          self.steps_table, self.script_box]),
            widgets.VBox([widgets.HTML("Times the original and every step's result on its runtime."),
                          self.bench_button, self.bench_output]),
        ])
        for i, title in enumerate(["Model", "Graph", "Deploy", "Benchmark"]):
            self.tabs.set_title(i, title)
        super().__init__([widgets.HTML(_STYLE), widgets.HBox([self.picker, self.status]), self.tabs])
        self.add_class("wb-app")

        self.picker.observe(lambda change: self.select(change["new"]), names="value")
        self.tabs.observe(lambda change: self._on_tab(change["new"]), names="selected_index")
        self.viewer.observe(lambda change: self._show_graph(), names="value")
        self.run_button.on_click(lambda _b: self.run_steps())
        for box in self.step_boxes:
            box.observe(lambda _change: self._show_script(), names="value")
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
        self.describe.value = f"<pre class='wb-describe'>{html.escape(self.model.describe())}</pre>"
        self.steps_table.value = ""
        self.bench_output.children = ()
        self.graph_box.children = ()
        self.status.value = _box(f"{name} loaded", "ok")
        self._show_script()
        if self.tabs.selected_index == 1:
            self._show_graph()

    def run_steps(self) -> None:
        """Run the ticked steps in order, validating each against the original model."""
        assert self.model is not None
        chosen = [s for s, box in zip(self.steps, self.step_boxes, strict=True) if box.value]
        self.results, rows = {}, []
        self.progress.max, self.progress.value = max(len(chosen), 1), 0
        self.run_button.disabled = True
        try:
            for step in chosen:
                rows.append(self._run_one(step))
                self.progress.value += 1
                self.steps_table.value = self._rows_html(rows)
        finally:
            self.run_button.disabled = False

    def _run_one(self, step: StepChoice) -> dict[str, Any]:
        assert self.model is not None
        missing = [n for n in step.needs if n not in self.results]
        if missing:
            return {"step": step.label, "error": f"needs the result of {', '.join(missing)}: tick it too"}
        start = time.perf_counter()
        try:
            result = step.run(self.model, self.results)
        except Exception as err:  # noqa: BLE001
            return {"step": step.label, "error": _error_line(err), "detail": traceback.format_exc(limit=3)}
        self.results[step.label] = result
        row: dict[str, Any] = {"step": step.label, "format": result.format, "seconds": time.perf_counter() - start,
                               "size_mb": (result.size_bytes or 0) / 1e6}
        validation = getattr(result, "validation", None)  # every step validates its result (steps/validate.py)
        if validation is None or validation.skipped:
            row["error"] = validation.skipped if validation is not None else "not validated"
            return row
        row.update(passed=bool(validation), rel_l2=validation.figures.get("rel_l2"),
                   cosine=validation.figures.get("cosine"))
        metric = self.model.task.metric_name if self.model.task is not None else None
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

    def _show_graph(self) -> None:
        assert self.model is not None
        source = self.results.get("ONNX export", self.model)
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

"""``QuantDebugView``: run INT8, see it fail the budget, open the debugger, see the layers lit up on the graph,
accept the fix, see the new accuracy and the speed it kept.

A thin view: every button calls the engine (``wb.quantize``, ``wb.quantize_debug``, ``wb.quantize(...,
accuracy_budget=)``, ``wb.benchmark``) and renders its result; the same calls are shown as a script.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from workbench import api
from workbench.core import registry
from workbench.core.errors import WorkbenchError, one_line
from workbench.core.model import Model


def _box(text: str, kind: str = "info") -> str:
    colors = {"info": "#eef4fb", "ok": "#e8f5e9", "bad": "#fdecea"}
    return (f'<div class="wb-qd-{kind}" style="background:{colors[kind]};padding:6px 10px;margin:4px 0;'
            f'font-family:sans-serif">{html.escape(text)}</div>')


class QuantDebugView(widgets.VBox):
    """The quantization debugger as an app panel.

    Args:
        model: a float ONNX model with a task (or a zoo name / path: loaded and exported to ONNX).
        tool: the quantization tool (default: the one named after ONNX's own runtime, ONNX Runtime's static
            INT8; or ``"nncf"``).
        budget: the largest acceptable drop of ``metric``.
        metric: which of the task's metrics (default its main one).
        samples: inputs the debugger measures on.
        options: the quantization's options (e.g. ``{"per_channel": False}``: per-tensor weights), used for
            the INT8 run and the fix alike.
    """

    def __init__(self, model: Any = "minilm", *, tool: str | None = None, budget: float = 0.02,
                 metric: str | None = None, samples: int = 16, bench_seconds: float = 0.5,
                 options: dict[str, Any] | None = None):
        self.source = model
        self.options = dict(options or {})
        self.tool = tool or registry.default_runtime("onnx")
        self.budget, self.metric, self.samples = float(budget), metric, samples
        self.bench_seconds = bench_seconds
        self.float_model: Model | None = None
        self.int8: Model | None = None
        self.report: Any = None
        self.fixed: Model | None = None
        self.status = widgets.HTML(_box(f"Budget: the metric may drop by at most {self.budget:g}."))
        self.int8_button = widgets.Button(description="Run INT8", button_style="primary", icon="play")
        self.debug_button = widgets.Button(description="Open the debugger", icon="search", disabled=True,
                                           layout=widgets.Layout(width="auto"))  # the default 148 px cuts the label
        self.fix_button = widgets.Button(description="Accept the fix", icon="check", disabled=True,
                                         layout=widgets.Layout(width="auto"))
        self.table = widgets.HTML()
        self.graph_box = widgets.VBox()
        self.result = widgets.HTML()
        self.int8_button.on_click(lambda _b: self._guard(self.run_int8))
        self.debug_button.on_click(lambda _b: self._guard(self.debug))
        self.fix_button.on_click(lambda _b: self._guard(self.accept_fix))
        from workbench.ui.download import CodeBox

        self.code_box = CodeBox(self.code)
        super().__init__([widgets.HBox([self.int8_button, self.debug_button, self.fix_button]), self.status,
                          self.table, self.graph_box, self.result, self.code_box])
        self.add_class("wb-quant-debug")

    def code(self) -> str:
        """The calls the panel made so far, as a script that runs as is (before any click: the INT8 run)."""
        from workbench.ui.show_code import model_expr

        source, notes = model_expr(self.source)
        if isinstance(self.source, Model) and self.source.task is not None and source != repr(self.source.name):
            # its evaluation data (the task) lives in the Model, not in its file: a reload would lose it
            source, notes = "model", ["# model: the Model you passed (its task, the evaluation data, is not "
                                      "stored in its file): define model = ... first"]
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        metric = repr(self.metric) if self.metric else "fp.task.metric_name"
        lines = ["import workbench as wb", "", *notes, f"m = wb.load({source})" if source != "model" else "m = model",
                 'fp = m if m.format == "onnx" else wb.export(m, "onnx")',
                 f"int8 = wb.quantize(fp, {self.tool!r}{opts})", f"name = {metric}",
                 "f, q = fp.evaluate()[name], int8.evaluate()[name]",
                 f'print(f"{{name}}: FP32 {{f:.4f}}, INT8 {{q:.4f}}, drop {{f - q:+.4f}} (budget {self.budget:g})")']
        if self.report is not None or self.fixed is not None:
            lines += ["", "# which layers carry the INT8 error",
                      f"report = wb.quantize_debug(fp, int8, samples={self.samples}, alone=None, metric=name)",
                      "print(report.summary(3))"]
        if self.fixed is not None:
            report = ", report=report" if self.report is not None else ""
            lines += ["", "# the fewest layers kept float (or on a finer scheme) that meet the budget",
                      f"fixed = wb.quantize(fp, {self.tool!r}, accuracy_budget={self.budget!r}{report}, metric=name{opts})",
                      'print(fixed.metadata["accuracy_budget"].summary())',
                      f"print(wb.benchmark([fp, int8, fixed], duration_s={self.bench_seconds!r}).summary())"]
        return "\n".join(lines) + "\n"

    def _guard(self, action: Any) -> None:
        """Run a button's action; a failure becomes a message, never a dead kernel or a lost result."""
        try:
            action()
        except WorkbenchError as err:
            self.status.value = _box(f"{err.problem} — {err.fix}" if hasattr(err, "fix") else str(err), "bad")
        except Exception as err:  # noqa: BLE001 - a runtime's own error: one line, the view keeps working
            self.status.value = _box(f"{type(err).__name__}: {one_line(err)}", "bad")

    def _metric_name(self, model: Model) -> str:
        return self.metric or (model.task.metric_name if model.task is not None else "")

    # -- actions (each callable from Python too) --------------------------------------------------------
    def run_int8(self) -> None:
        """Quantize the model and score it against the float one."""
        self.status.value = _box("Quantizing…")
        m = api.model_of(self.source)
        self.float_model = m if m.format == "onnx" else api.export(m, "onnx")
        self.int8 = api.quantize(self.float_model, self.tool, **self.options)
        name = self._metric_name(self.float_model)
        f, q = self.float_model.evaluate()[name], self.int8.evaluate()[name]
        ok = f - q <= self.budget
        self.status.value = _box(f"{name}: FP32 {f:.4f}, INT8 {q:.4f} (drop {f - q:+.4f}): "
                                 + ("within the budget." if ok else f"FAILS the budget of {self.budget:g}."),
                                 "ok" if ok else "bad")
        self.debug_button.disabled = False
        self.code_box.refresh()

    def debug(self) -> None:
        """Rank the layers by their share of the INT8 error; light them up on the INT8 graph."""
        if self.int8 is None:
            self.run_int8()
        self.status.value = _box("Measuring every quantized layer…")
        self.report = api.quantize_debug(self.float_model, self.int8, samples=self.samples, alone=None,
                                         metric=self._metric_name(self.float_model))
        frame = self.report.to_frame()[["node", "op_type", "score", "share", "alone", "weight_spread", "channel_spread",
                                        "clipped", "cause"]].head(10)
        frame["fix"] = [r.fix for r in self.report.ranked[:10]]
        self.table.value = frame.to_html(classes="wb-qd-table", float_format=lambda v: f"{v:.3g}")
        from workbench.ui.graph_view import GraphView

        self.graph_box.children = [GraphView(self.int8, height=420).overlay(self.report.per_node("score"),
                                                                       label="share of INT8 error (or error alone)")]
        self.status.value = _box(self.report.summary(3).splitlines()[0])
        self.fix_button.disabled = False
        self.code_box.refresh()

    def accept_fix(self) -> None:
        """Keep the fewest layers float that bring the metric within the budget; time the result."""
        if self.float_model is None:
            self.run_int8()
        self.status.value = _box("Searching the fewest layers to move to a finer scheme or keep float…")
        report = self.report if self.report is not None and self.int8 is not None \
            and self.report.quantized == self.int8.name else None
        self.fixed = api.quantize(self.float_model, self.tool, accuracy_budget=self.budget, report=report,
                                  metric=self._metric_name(self.float_model), **self.options)
        search = self.fixed.metadata["accuracy_budget"]
        bench = api.benchmark([self.float_model, self.int8, self.fixed], duration_s=self.bench_seconds)
        frame = bench.to_frame()
        p50 = frame["latency_p50_ms"].tolist() if "latency_p50_ms" in frame else []
        speed = (f" Latency p50: FP32 {p50[0]:.2f} ms, INT8 {p50[1]:.2f} ms, fixed {p50[2]:.2f} ms."
                 if len(p50) == 3 else "")
        kept = ", ".join(k["node"] for k in search.kept_float) or "none"
        finer = ", ".join(f"{f['node']} ({f['scheme']})" for f in search.finer) or "none"
        verdict = "PASS: within the budget" if search.met else "FAIL: the budget was not met"
        self.result.value = _box(f"{verdict}. {search.summary()}. Kept float: {kept}. Finer scheme: {finer}. "
                                 f"{search.int8_fraction:.0%} of the layers INT8.{speed}",
                                 "ok" if search.met else "bad")
        self.status.value = _box("Fix accepted." if search.met else "The budget was not met: see below.",
                                 "ok" if search.met else "bad")
        self.code_box.refresh()

"""``PipelineStepper``: the deployment steps the registry offers for a model, each with its options form,
the plan they make (which step feeds which), and a run of that plan with progress per named step, a
Cancel button, "cached" marks, PASS/FAIL badges with figures, and for a failure its error, fix and what
to try (``workbench.steps.hints``).

A thin view over ``wb.Pipeline``: the steps come from the registry (``choices_for``: registered steps
with an ``@offer``), their options from the step functions (``workbench.steps.options``), the run is
``Pipeline.run`` in a background thread (``progress.run_in_background``, so the kernel takes the Cancel
click), and ``code()`` is ``Pipeline.to_script()``. The browser half is ``widgets/src/pipeline_stepper/``.

The browser only asks: tick a step, set an option, apply a hint, run, cancel (custom messages). Every
value it sends is checked in the kernel against the step's declared options (type, choices, bounds), so
nothing a visitor of a published app sends becomes code or a path.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anywidget
import traitlets

from workbench.core import progress, registry, settings
from workbench.core.errors import WorkbenchError, one_line
from workbench.core.model import Model
from workbench.steps import hints as step_hints
from workbench.steps import options as step_options
from workbench.ui import assets
from workbench.ui.show_code import code_trait


@dataclass(frozen=True)
class StepChoice:
    """A step the app offers: a registered step as a ``wb.Pipeline`` item (``(kind, target, {options})``),
    its label, and the label of the choice whose result it starts from (none: the loaded model)."""

    label: str
    spec: tuple[Any, ...]
    needs: tuple[str, ...] = ()
    ticked: bool = True  # ticked when a model opens (``@offer(..., ticked=...)``)

    @property
    def kind(self) -> str:
        return self.spec[0]

    @property
    def target(self) -> str:
        return self.spec[1]

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.spec[2]) if len(self.spec) > 2 else {}

    def plugin(self) -> registry.StepPlugin:
        return registry.get_step(self.kind, self.target)

    def with_options(self, values: Mapping[str, Any]) -> StepChoice:
        """This choice running with ``values`` over its offered options."""
        merged = {**self.options, **values}
        return dataclasses.replace(self, spec=(self.kind, self.target, merged) if merged else (self.kind, self.target))


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


def runnable_steps(chosen: Sequence[StepChoice]) -> list[StepChoice]:
    """The chosen steps whose input step is chosen too (or that start from the loaded model)."""
    runnable: list[StepChoice] = []
    for step in chosen:
        if all(need in {r.label for r in runnable} for need in step.needs):
            runnable.append(step)
    return runnable


def pipeline_for(chosen: Sequence[StepChoice]) -> Any:
    """The ``wb.Pipeline`` that does what the chosen steps do (each from the result it needs); a step
    whose input step is not chosen is left out, as the app refuses to run it."""
    import workbench as wb

    runnable = runnable_steps(chosen)
    position = {step.label: i for i, step in enumerate(runnable, start=1)}
    items = []
    for step in runnable:
        options = step.options
        options["source"] = position.get(step.needs[0], 0) if step.needs else 0
        items.append((step.kind, step.target, options))
    return wb.Pipeline(items, name="workbench-app")


#: in a published app, the most a visitor may ask of options that scale the work (calibration samples,
#: TVM tuning trials)
PUBLISHED_MAX = {"samples": 128, "tune_trials": 64}


def _error_text(err: BaseException) -> str:
    return str(err) if isinstance(err, WorkbenchError) else one_line(err, 400)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value == value else None


class PipelineStepper(anywidget.AnyWidget):
    """Deployment steps for a model: choose them and their options, see the plan, run it, read each
    step's check.

    Args:
        model: the model to deploy (a ``Model``, or anything ``wb.load`` takes); ``set_model`` changes it.
        choices: the steps offered (default: ``choices_for`` the model's format, from the registry).
        published: a published app's view (default: ``settings.published()``); the same checks apply
            either way, it only says so in the view.

    ``run()`` runs the ticked steps (in the background by default), ``cancel()`` stops the run at the
    next safe point, ``results`` maps each step's label to its result, ``records`` are the last run's
    ``StepRecord``s, ``on_done(callback)`` is called with ``results`` after each run, and ``code()`` is
    the run as a plain Python script.
    """

    _esm = assets.esm("pipeline_stepper")
    _css = assets.css("pipeline_stepper")
    model_name = traitlets.Unicode("").tag(sync=True)
    steps = traitlets.List().tag(sync=True)  # StepperStep
    plan = traitlets.List().tag(sync=True)  # StepperPlanRow
    rows = traitlets.List().tag(sync=True)  # StepperRow, one per step of the last run
    running = traitlets.Bool(False).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)  # a line: what runs now, or how the last run ended
    error = traitlets.Unicode("").tag(sync=True)  # the last refused request (a bad option, no model)
    code_text = code_trait()
    published = traitlets.Bool(False).tag(sync=True)

    def __init__(self, model: Any = None, *, choices: Sequence[StepChoice] | None = None,
                 published: bool | None = None, **kwargs: Any):
        assets.require("pipeline_stepper")
        from workbench.ui.kernel_lab import in_voila

        super().__init__(published=bool(settings.published() or (in_voila() if published is None else published)),
                         **kwargs)
        self.model: Model | None = None
        self._fixed = list(choices) if choices is not None else None
        self.choices: list[StepChoice] = list(choices or ())
        self._ticked: dict[str, bool] = {}
        self._values: dict[str, dict[str, Any]] = {}  # label -> options set by the user (checked)
        self.results: dict[str, Model] = {}
        self.records: list[Any] = []
        self.run_record: Any = None  # the last PipelineRun
        self.task: progress.Task | None = None
        self._pipeline: Any = None
        self._callbacks: list[Callable[[dict[str, Model]], None]] = []
        self._lock = threading.Lock()
        self._runnable: list[StepChoice] = []
        self.on_msg(self._on_msg)
        if model is not None:
            self.set_model(model)
        else:
            self._refresh()

    # -- the public API ----------------------------------------------------------------------------
    def set_model(self, model: Any) -> None:
        """Deploy ``model`` (a Model or anything ``wb.load`` takes): its format's steps, results reset."""
        if self.running:
            raise WorkbenchError("a run is in progress", "cancel it or wait for it before changing the model")
        if not isinstance(model, Model):
            import workbench as wb

            model = wb.load(model)
        self.model = model
        self.model_name = f"{model.name} ({model.format})"
        if self._fixed is None:
            offered = choices_for(model.format)
            if [c.label for c in offered] != [c.label for c in self.choices]:
                self._values = {c.label: v for c, v in ((c, self._values.get(c.label)) for c in offered) if v}
            self.choices = offered
        self._ticked = {c.label: self._ticked.get(c.label, c.ticked) for c in self.choices}
        self.results, self.records, self.run_record = {}, [], None
        self.rows = []
        self.status = ""
        self.error = ""
        self._refresh()

    def tick(self, label: str, on: bool = True) -> None:
        """Tick (or untick) the step labelled ``label``."""
        self._choice(label)
        self._ticked[label] = bool(on)
        self._refresh()

    def set_options(self, label: str, **values: Any) -> None:
        """Set options of the step ``label`` (checked against its declared options; a ``StepError``
        names a bad one). ``None`` for an optional option means its default behaviour ("auto")."""
        choice = self._choice(label)
        current = dict(self._values.get(label, {}))
        if "method" in values and values["method"] != current.get("method", choice.options.get("method")):
            current = {}  # another method has other options
        current.update(values)
        declared = self.options_of(label, current.get("method"))
        checked = step_options.check_values(declared, current)
        offered = choice.options
        self._values[label] = {k: v for k, v in checked.items()
                               if k in offered and offered[k] != v
                               or k not in offered and v != next(o.default for o in declared if o.name == k)}
        self._refresh()

    def reset_options(self, label: str) -> None:
        """Back to the options the step is offered with."""
        self._choice(label)
        self._values.pop(label, None)
        self._refresh()

    def options_of(self, label: str, method: str | None = None) -> list[step_options.Option]:
        """The options form of step ``label`` (for a quantization tool: of ``method``, default the one
        it runs with now)."""
        choice = self._choice(label)
        if method is None:
            method = self._values.get(label, {}).get("method", choice.options.get("method"))
        declared = step_options.step_options(choice.plugin(), method)
        if self.published:  # a visitor's options also bound the work they ask of a shared server
            declared = [dataclasses.replace(o, maximum=min(o.maximum, PUBLISHED_MAX[o.name]))
                        if o.name in PUBLISHED_MAX and o.maximum is not None else o for o in declared]
        return declared

    def chosen(self) -> list[StepChoice]:
        """The ticked steps with their options."""
        return [c.with_options(self._values.get(c.label, {})) for c in self.choices if self._ticked.get(c.label)]

    def pipeline(self) -> Any:
        """The ``wb.Pipeline`` the ticked steps make (a ``StepError`` when none is ticked)."""
        return pipeline_for(self.chosen())

    def code(self) -> str:
        """The run as a plain Python script (``wb.Pipeline.to_script()``, with the chosen options)."""
        if self.model is None or not runnable_steps(self.chosen()):
            return ""
        return self.pipeline().to_script(self.model)

    def on_done(self, callback: Callable[[dict[str, Model]], None]) -> None:
        """Call ``callback(results)`` after each run (finished, failed or cancelled)."""
        self._callbacks.append(callback)

    def run(self, background: bool = True) -> Any:
        """Run the ticked steps on the model, each validated against the original. Returns the
        ``PipelineRun`` when it has run here, or at once with ``background`` the ``progress.Task`` running it
        (``wait()`` joins it, ``task.result()`` is the run); either way ``results``/``records`` hold it after."""
        with self._lock:
            if self.running:
                raise WorkbenchError("a run is already in progress", "wait for it, or cancel it")
            if self.model is None:
                raise WorkbenchError("no model to deploy", "pick a model first")
            chosen = self.chosen()
            runnable = runnable_steps(chosen)
            if not runnable:
                raise WorkbenchError("no step is ticked", "tick at least one step")
            pipeline = pipeline_for(chosen)
            self._pipeline = pipeline
            self.running = True
        self.error = ""
        self.results, self.records = {}, []
        self._runnable = runnable
        self.rows = [self._planned_row(i, c) for i, c in enumerate(runnable, start=1)] + [
            {"index": 0, "label": c.label, "status": "skipped", "final": True, "detail": "", "seconds": None, "cached": False,
             "verdict": "", "figures": [], "error": f"needs the result of {', '.join(c.needs)}: tick it too",
             "fix": "", "hints": [], "artifact": ""} for c in chosen if c not in runnable]
        self.status = f"starting {len(runnable)} step(s)…"
        if background:
            self.task = progress.run_in_background(self._work, pipeline, name="pipeline")
            return self.task
        self.task = None
        return self._work(pipeline)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background run to end; True when it has."""
        return True if self.task is None else self.task.wait(timeout)

    def cancel(self) -> None:
        """Stop the run at its next safe point (between steps, and inside a step where the engine checks)."""
        with self._lock:  # the run's end (its thread) takes it too: its "finished" is never overwritten
            if not self.running:
                return
            self.status = "cancelling…"
            if self._pipeline is not None:
                self._pipeline.cancel()
            if self.task is not None:
                self.task.cancel()

    # -- running -------------------------------------------------------------------------------------
    def _work(self, pipeline: Any) -> Any:
        run = None
        try:
            run = pipeline.run(self.model, progress=self._on_event, raise_errors=False)
        except (progress.Cancelled, KeyboardInterrupt):
            run = pipeline.last_run
        except Exception as err:  # noqa: BLE001 - shown in the view; the kernel carries on
            run = pipeline.last_run
            self.error = _error_text(err)
        finally:
            self._finish(run)
        return run

    def _finish(self, run: Any) -> None:
        if run is not None:
            self.run_record = run
            self.records = list(run.records)
            for choice, rec in zip(self._runnable, run.records, strict=False):
                if rec.model is not None:
                    self.results[choice.label] = rec.model
                self._set_row(rec)
        rows = [r for r in self.rows if r["index"]]
        counts = {s: sum(r["status"] == s or r["verdict"] == s for r in rows)
                  for s in ("PASS", "FAIL", "failed", "cancelled")}
        parts = [f"{n} {word}" for word, n in counts.items() if n]
        cached = sum(r["status"] == "cached" for r in rows)  # also counted by their verdict above
        if cached:
            parts.append(f"{cached} of them from the cache")
        with self._lock:
            self.status = "finished: " + (", ".join(parts) if parts else "nothing ran")
            self.running = False
        for callback in list(self._callbacks):
            try:
                callback(dict(self.results))
            except Exception as err:  # noqa: BLE001 - a listener's error is shown, the run is kept
                self.error = f"on_done callback failed: {_error_text(err)}"

    def _on_event(self, event: progress.Event) -> None:
        rec = event.payload
        if rec is None or not hasattr(rec, "index") or not hasattr(rec, "label"):
            return
        if event.status in ("running", "validating", "cached") or event.status in progress.FINAL:
            status = event.status
            self._set_row(rec, status=status, detail=event.detail)
        if event.status in ("running", "validating"):
            n = len(self._runnable)
            phase = "validating against the original" if event.status == "validating" else "running"
            self.status = f"step {rec.index}/{n}: {self._runnable[rec.index - 1].label} — {phase}"

    def _planned_row(self, index: int, choice: StepChoice) -> dict[str, Any]:
        return {"index": index, "label": choice.label, "status": "planned", "final": False, "detail": "", "seconds": None,
                "cached": False, "verdict": "", "figures": [], "error": "", "fix": "", "hints": [],
                "artifact": ""}

    def _set_row(self, rec: Any, status: str | None = None, detail: str = "") -> None:
        """Update the row of ``rec`` (a pipeline ``StepRecord``)."""
        if not 1 <= rec.index <= len(self._runnable):
            return
        choice = self._runnable[rec.index - 1]
        status = status or rec.status
        rows = list(self.rows)
        row = dict(rows[rec.index - 1])
        row["status"] = status
        row["detail"] = (detail or "")[:300] if status not in progress.FINAL else ""
        if status == "cached":
            row["cached"] = True
        # a step reports "done"/"cached" from inside before the pipeline records its result and time:
        # the row is final when the pipeline reports it (with the model, or failed/cancelled/skipped)
        if status in progress.FINAL and not (status in ("done", "cached") and rec.model is None):
            row.update(self._outcome(choice, rec), final=True)
            row["cached"] = row["cached"] or rec.status == "cached"
        rows[rec.index - 1] = row
        self.rows = rows

    def _outcome(self, choice: StepChoice, rec: Any) -> dict[str, Any]:
        """The finished step's seconds, artifact, verdict, figures, and for a failure its error, fix and hints."""
        out: dict[str, Any] = {"seconds": None if rec.status == "cached" else round(rec.seconds, 2)}
        result: Model | None = rec.model
        if rec.status == "failed" and rec.error:
            problem, fix = step_hints.split_error(rec.error)
            out.update(error=problem, fix=fix, verdict="",
                       hints=[h.to_json() for h in step_hints.failure_hints(
                           choice.kind, choice.target, choice.options, error=rec.error,
                           error_type=self._error_type(rec), model=self.model)])
            return out
        if rec.status in ("cancelled", "skipped"):
            out.update(error=rec.error if rec.error and rec.error not in ("cancelled", "interrupted") else "")
            return out
        if result is None:
            return out
        out["artifact"] = result.path.name if result.path is not None else ""
        out["size_mb"] = round((result.size_bytes or 0) / 1e6, 3)
        v = getattr(result, "validation", None)
        if v is None:
            out["verdict"] = ""
            return out
        if v.skipped:
            out["verdict"] = "SKIPPED"
            out["fix"] = v.skipped
            return out
        out["verdict"] = "PASS" if v else "FAIL"
        out["figures"] = self._figures(v)
        if not v:
            out["error"] = "the result differs from the original beyond the tolerance of its precision" + (
                f" ({', '.join(v.figures.get('metric_exceeded') or [])} dropped too far)"
                if v.figures.get("metric_exceeded") else "")
            out["hints"] = [h.to_json() for h in step_hints.failure_hints(
                choice.kind, choice.target, choice.options, result=result, model=self.model)]
        return out

    def _error_type(self, rec: Any) -> str | None:
        err = getattr(self.run_record or getattr(self._pipeline, "last_run", None), "error", None)
        return type(err).__name__ if err is not None and str(err) == rec.error else None

    def _figures(self, v: Any) -> list[dict[str, Any]]:
        """The validation's figures as (name, value, text) rows: rel. L2, cosine, the task metric and its drop."""
        f = v.figures
        out = []
        for name, key, spec in (("rel. L2", "rel_l2", ".2e"), ("cosine", "cosine", ".6f"),
                                ("embedding cosine", "embedding_cosine_mean", ".4f"), ("top-1", "top1", ".3f")):
            value = _num(f.get(key))
            if value is not None:
                out.append({"name": name, "value": value, "text": format(value, spec)})
        for metric, value in (v.metrics or {}).items():
            value = _num(value)
            if value is None:
                continue
            drop = _num((v.metric_drop or {}).get(metric))
            out.append({"name": metric, "value": value, "text": f"{value:.4f}"})
            if drop is not None:
                out.append({"name": f"{metric} drop", "value": drop, "text": f"{drop:+.4f}"})
        return out

    # -- the browser's requests ----------------------------------------------------------------------
    def set_state(self, sync_data: dict[str, Any]) -> None:
        """State from the browser: none (it asks by message; every trait here is the kernel's to set)."""

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        try:
            if kind == "cancel":
                self.cancel()
                return
            if self.running:
                raise WorkbenchError("a run is in progress", "wait for it to finish, or cancel it")
            label = content.get("label")
            if kind in ("tick", "option", "reset", "apply") and not isinstance(label, str):
                raise WorkbenchError("the request names no step", "reload the page")
            if kind == "tick":
                self.tick(label, bool(content.get("on")))
            elif kind == "option":
                name = content.get("name")
                if not isinstance(name, str):
                    raise WorkbenchError("the request names no option", "reload the page")
                self.set_options(label, **{name: content.get("value")})
            elif kind == "apply":
                values = content.get("options")
                if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
                    raise WorkbenchError("the hint's options are not a mapping", "reload the page")
                self.set_options(label, **values)
                self.tick(label, True)
            elif kind == "reset":
                self.reset_options(label)
            elif kind == "run":
                self.run(background=True)
            else:
                return  # nothing else is accepted from the browser
            self.error = ""
        except WorkbenchError as err:
            self.error = str(err)
        except Exception as err:  # noqa: BLE001 - shown in the view; the kernel carries on
            self.error = _error_text(err)

    # -- state for the browser -----------------------------------------------------------------------
    def _choice(self, label: str) -> StepChoice:
        for c in self.choices:
            if c.label == label:
                return c
        raise WorkbenchError(f"there is no step {label!r} here",
                             f"choose one of {', '.join(c.label for c in self.choices) or '(none: pick a model)'}")

    def _refresh(self) -> None:
        """Recompute what the browser shows from the choices, ticks and options."""
        steps = []
        for c in self.choices:
            values = {**c.options, **self._values.get(c.label, {})}
            try:
                declared = self.options_of(c.label)
                plugin = c.plugin()
                doc = (plugin.func.__doc__ or "").strip()
                description = doc.split("\n\n")[0].replace("``", "").replace("\n", " ") if doc else ""
            except WorkbenchError:
                declared, description = [], ""
            options = []
            for o in declared:
                d = o.to_json()
                d["value"] = values.get(o.name, o.default)
                d["changed"] = o.name in self._values.get(c.label, {})
                options.append(d)
            steps.append({"label": c.label, "kind": c.kind, "target": c.target, "description": description,
                          "ticked": bool(self._ticked.get(c.label)), "needs": list(c.needs), "options": options})
        self.steps = steps
        self.plan = self._plan_rows()
        try:
            self.code_text = self.code()
        except WorkbenchError as err:
            self.code_text = f"# {err}"

    def _plan_rows(self) -> list[dict[str, Any]]:
        """The plan of the ticked steps: which step feeds which, what each takes and gives."""
        chosen = self.chosen()
        runnable = runnable_steps(chosen)
        if not runnable or self.model is None:
            return []
        rows = []
        for choice, row in zip(runnable, self.pipeline().plan(self.model), strict=True):
            rows.append({"index": row["step"], "label": choice.label, "what": row["what"], "source": row["from"],
                         "takes": str(row["takes"]), "gives": str(row["gives"]), "ok": bool(row["ok"]),
                         "problem": row["problem"]})
        for c in chosen:
            if c not in runnable:
                rows.append({"index": 0, "label": c.label, "what": f"{c.kind} {c.target}", "source": "",
                             "takes": "", "gives": "", "ok": False,
                             "problem": f"needs the result of {', '.join(c.needs)}: tick it too"})
        return rows

"""Pipelines: a list of planned steps, shown before they run, run with progress, cancellable between
steps, cached by content hash, and printable as the equivalent plain Python script.

    p = wb.Pipeline([
        ("export", "onnx"),
        ("quantize", "onnxruntime", {"method": "static", "calibrate": "minmax"}),
        ("convert", "openvino", {"source": 0}),     # from the input model, not the previous step
        ("quantize", "nncf", {"method": "ptq"}),
    ])
    p                      # the plan
    run = p.run("digits-cnn")      # progress per step; run.final, run.to_frame()
    print(p.to_script())   # the same thing as a script: wb.load / wb.export / wb.convert / wb.quantize

A step is a ``Step``, a tuple ``(kind, target[, {options}])``, a string ``"export:onnx"``, or a
callable ``fn(model, **options) -> Model`` (a custom step; ``Step.custom(fn, isolate=True)`` runs it
in the worker subprocess, where its result must be saved to a file). Each step takes the result of
the step before it, or of the step numbered by its ``source`` option (0 is the input model).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core import progress as channel
from workbench.core import registry
from workbench.core.errors import StepError, WorkbenchError
from workbench.core.model import LineageEntry, Model
from workbench.steps import script
from workbench.steps.base import as_model, portable, validate_and_record

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: the registered step kinds, and "custom" (a function of your own)
KINDS = (*registry.STEP_KINDS, "custom")
_RUN_OPTIONS = ("source", "isolate", "timeout", "path")


@dataclass
class Step:
    """One planned step: ``kind`` (export, convert, quantize, custom), its ``target`` (export/convert
    target or quantization tool) and ``options`` (passed to ``wb.export`` / ``convert`` / ``quantize``).
    ``source``: the index of the result this step takes (0: the pipeline's input; None: the previous)."""

    kind: str
    target: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    source: int | None = None
    func: Callable[..., Model] | None = None
    name: str | None = None

    @classmethod
    def custom(cls, func: Callable[..., Model], name: str | None = None, *, isolate: bool = False,
               timeout: float | None = None, **options: Any) -> Step:
        """A step of your own: ``func(model, **options) -> Model``. With ``isolate=True`` it runs in the
        worker subprocess (a crash or hang there cannot kill this process) and must save its result to a file."""
        opts = dict(options)
        opts["isolate"] = isolate
        if timeout is not None:
            opts["timeout"] = timeout
        return cls("custom", None, opts, func=func, name=name or getattr(func, "__name__", "custom"))

    @classmethod
    def parse(cls, item: Any) -> Step:
        """A Step from a Step, ``(kind, target[, options])``, ``"kind:target"`` or a callable."""
        if isinstance(item, Step):
            return item
        if callable(item):
            return cls.custom(item)
        if isinstance(item, str):
            kind, _, target = item.partition(":")
            item = (kind, target or None)
        if isinstance(item, tuple | list) and item and isinstance(item[0], str):
            kind = item[0]
            target = item[1] if len(item) > 1 and not isinstance(item[1], dict) else None
            options = next((x for x in item[1:] if isinstance(x, dict)), {})
            if kind not in registry.STEP_KINDS:
                raise StepError(f"unknown step kind {kind!r}",
                                f"use one of {', '.join(registry.STEP_KINDS)}, or a callable")
            if target is None:
                raise StepError(f"step {kind!r} needs a target", f"e.g. ('{kind}', 'onnx')" if kind != "quantize"
                                else "e.g. ('quantize', 'onnxruntime', {'method': 'static'})")
            opts = dict(options)
            source = opts.pop("source", None)
            return cls(kind, target, opts, source=source)
        raise StepError(f"cannot make a pipeline step from {item!r}",
                        "pass ('export', 'onnx'), 'convert:openvino', ('quantize', 'nncf', {...}) or a callable")

    @property
    def label(self) -> str:
        if self.kind == "custom":
            return f"custom {self.name}"
        opts = {k: v for k, v in self.options.items() if k not in ("calibration",)}
        text = f"{self.kind} {self.target}"
        if opts:
            text += " (" + ", ".join(f"{k}={v!r}" for k, v in opts.items()) + ")"
        if "calibration" in self.options:
            text += " [calibration given]"
        return text

    def __call__(self, model: Model) -> Model:
        if self.kind == "custom":
            return run_custom(model, self)
        from workbench.steps import convert, export, quantize

        generic = {"export": export.export, "convert": convert.convert, "quantize": quantize.quantize}
        return generic[self.kind](model, self.target, **self.options)

    def plugin(self) -> registry.StepPlugin | None:
        """The registered step this one runs (None for a custom step or an unknown target)."""
        if self.kind == "custom" or self.target is None:
            return None
        try:
            return registry.get_step(self.kind, self.target)
        except WorkbenchError:
            return None


def run_custom(parent: Model, step: Step) -> Model:
    """Run a custom step; record its lineage and manifest entry and validate its result."""
    from workbench.steps.workspace import record

    say = channel.report
    opts = {k: v for k, v in step.options.items() if k not in ("isolate", "timeout")}
    say("running")
    start = time.perf_counter()
    if step.options.get("isolate"):
        from workbench.steps.worker import run_isolated

        made = run_isolated(_custom_in_worker, step.func, portable(parent), opts,
                            timeout=step.options.get("timeout"), label=f"custom step {step.name} of {parent.name}")
        from workbench.core.detect import load_path

        result = load_path(Path(made))
    else:
        result = step.func(parent, **opts)
    if not isinstance(result, Model):
        raise StepError(f"custom step {step.name} returned a {type(result).__name__}, not a Model",
                        "return a workbench Model (e.g. wb.load(path_you_wrote))")
    seconds = time.perf_counter() - start
    if not result.lineage or result.lineage[-1].parent is not parent:
        entry = LineageEntry(f"custom:{step.name}", opts, parent, {}, seconds)
        result = parent.derive(result.format, result.path, entry, inputs=result.inputs, outputs=result.outputs,
                               native=result._native, native_loader=result._native_loader,
                               metadata=result.metadata)
        entry.size_bytes = result.size_bytes
    if result.path is not None:
        record(result)
        say("validating")
        validate_and_record(result, parent)
    say("done")
    return result


def _custom_in_worker(func: Callable[..., Model], source: Model, options: dict[str, Any]) -> str:
    result = func(source, **options)
    if not isinstance(result, Model) or result.path is None:
        raise StepError("an isolated custom step must return a Model saved to a file",
                        "save the result (e.g. with wb.export / onnx.save) and return wb.load(path)")
    return str(result.path)


@dataclass
class StepRecord:
    """What happened to one step of a run."""

    index: int
    label: str
    status: str = "planned"  # planned | running | validating | done | cached | failed | cancelled | skipped
    model: Model | None = None
    seconds: float = 0.0
    error: str | None = None


class PipelineRun:
    """The results of ``Pipeline.run``: ``run.models`` (input first), ``run.final``, ``run.to_frame()``."""

    def __init__(self, pipeline: Pipeline, model: Model):
        self.pipeline = pipeline
        self.input = model
        self.records = [StepRecord(i + 1, s.label) for i, s in enumerate(pipeline.steps)]
        self.error: BaseException | None = None
        self.background = False  # run in a thread (Pipeline.run(background=True)): a view's Cancel can be clicked

    @property
    def models(self) -> list[Model | None]:
        return [self.input, *[r.model for r in self.records]]

    @property
    def final(self) -> Model | None:
        done = [r.model for r in self.records if r.model is not None]
        return done[-1] if done else None

    def __getitem__(self, index: int) -> Model | None:
        return self.models[index]

    def __len__(self) -> int:
        return len(self.records) + 1

    @property
    def passed(self) -> bool:
        """Every step ran and its validation passed (or could not run here, e.g. Core ML on Linux)."""
        return all(r.status in ("done", "cached") for r in self.records) and all(
            r.model is None or getattr(r.model, "validation", None) is None or r.model.validation.skipped
            or bool(r.model.validation) for r in self.records)

    def to_frame(self) -> pd.DataFrame:
        """One row per step: status, artifact, size, seconds, precision and the validation figures."""
        import pandas as pd

        rows = []
        for r in self.records:
            row: dict[str, Any] = {"step": r.index, "what": r.label, "status": r.status, "seconds": round(r.seconds, 3)}
            m = r.model
            if m is not None:
                row.update(artifact=str(m.path.name) if m.path else "", format=m.format, size_bytes=m.size_bytes,
                           precision=m.metadata.get("precision"))
                v = getattr(m, "validation", None)
                if v is not None:
                    d = v.to_dict()
                    row.update(valid="SKIPPED" if v.skipped else ("PASS" if v else "FAIL"), rel_l2=d.get("rel_l2"),
                               cosine=d.get("cosine"), top1=d.get("top1"))
                    for k, val in (v.metrics or {}).items():
                        row[k] = val
            if r.error:
                row["error"] = r.error
            rows.append(row)
        return pd.DataFrame(rows).set_index("step")

    def __repr__(self) -> str:
        lines = [f"<PipelineRun of {self.input.name}: {'PASS' if self.passed else 'not all passed'}>"]
        for r in self.records:
            v = getattr(r.model, "validation", None) if r.model is not None else None
            tail = v.summary() if v is not None else (r.error or "")
            where = r.model.path.name if r.model is not None and r.model.path else ""
            lines.append(f"  {r.index}. [{r.status}] {r.label} -> {where}  {tail}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.to_frame()._repr_html_()


class Pipeline:
    """A list of planned steps (see the module docstring)."""

    def __init__(self, steps: Iterable[Any], *, name: str = "pipeline"):
        self.steps = [Step.parse(s) for s in steps]
        if not self.steps:
            raise StepError("a pipeline needs at least one step", "pass e.g. [('export', 'onnx')]")
        for i, s in enumerate(self.steps, start=1):
            if s.source is not None and not 0 <= s.source < i:
                raise StepError(f"step {i} ({s.label}) takes source={s.source}, which is not an earlier result",
                                f"use 0 (the input) to {i - 1} (the step before it)")
        self.name = name
        self._cancel = channel.CancelToken()
        self.last_run: PipelineRun | None = None
        self._model: Model | None = None
        self._source_expr: str | None = None

    # -- the plan ------------------------------------------------------------------------------
    def plan(self, model: Any = None) -> list[dict[str, Any]]:
        """The steps as rows (what, takes, gives); with a model, each step's input format is checked."""
        fmt = as_model(model).format if model is not None else None
        formats: list[str | None] = [fmt]
        rows = []
        for i, s in enumerate(self.steps, start=1):
            src = s.source if s.source is not None else i - 1
            takes = formats[src]
            plugin = s.plugin()
            if s.kind != "custom" and plugin is None:
                ok, gives = False, None
                problem = f"is not registered (registered {s.kind} targets: {', '.join(registry.step_targets(s.kind))})"
            else:
                accepts = plugin.accepts if plugin is not None else None
                ok = takes is None or accepts is None or takes in accepts
                gives = plugin.result_format(s.options) if plugin is not None else None
                problem = "" if ok else f"needs {' or '.join(accepts or ())}, gets {takes}"
            rows.append({"step": i, "what": s.label, "from": "input" if src == 0 else f"step {src}",
                         "takes": takes or "?", "gives": gives or "?", "ok": ok, "problem": problem})
            formats.append(gives)
        return rows

    def check(self, model: Any) -> None:
        """Raise a StepError before anything runs when a step cannot take what the step before gives."""
        for row in self.plan(model):
            if not row["ok"]:
                raise StepError(f"step {row['step']} ({row['what']}) {row['problem']}",
                                "reorder the steps, add a conversion, or set the step's source= to an earlier result")

    def __repr__(self) -> str:
        lines = [f"Pipeline {self.name!r}: {len(self.steps)} step(s)"]
        for row in self.plan(self._model):
            lines.append(f"  {row['step']}. {row['what']}   (from {row['from']})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import pandas as pd

        return pd.DataFrame(self.plan(self._model)).set_index("step")._repr_html_()

    # -- running -------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop after the step now running (its result is kept); the next steps are marked cancelled and
        ``run`` returns. A token of the caller's (``workbench.core.progress.cancellable``) stops it the same
        way, and then ``run`` raises ``progress.Cancelled`` carrying the run (unless ``raise_errors=False``)."""
        self._cancel.cancel()

    def run(self, model: Model, *, progress: str | bool | Callable[[channel.Event], None] | None = "auto",
            raise_errors: bool = True, background: bool = False) -> PipelineRun:
        """Run every step on ``model`` and return a PipelineRun (``wb.Pipeline`` also takes names and paths).

        Args:
            progress: where the steps' progress goes (``workbench.core.progress``): ``"auto"`` (nothing
                of its own when a view already listens, as the app's does; else the notebook's view,
                or tqdm bars), ``"tqdm"``, ``"widget"`` (the view ``workbench.ui`` registers), a callable
                receiving each ``Event``, or False.
            raise_errors: raise the first step's error (after marking it in the run); False keeps going
                with the steps that do not depend on the failed one.
            background: run in a thread and return at once (the widget's Cancel button works then);
                ``run.wait()`` joins it.
        """
        model = as_model(model)
        self._model = model
        self._source_expr = script.source_expr(model)
        self.check(model)
        self._cancel = channel.CancelToken()
        run = PipelineRun(self, model)
        run.background = background
        self.last_run = run
        view = self._view(run, progress)
        if background:
            context = contextvars.copy_context()  # the caller's subscribers listen to the thread too
            thread = threading.Thread(target=context.run, args=(self._execute, run, view, False), daemon=True)
            run.thread = thread  # type: ignore[attr-defined]
            run.wait = thread.join  # type: ignore[attr-defined]
            thread.start()
            return run
        self._execute(run, view, raise_errors)
        return run

    def _view(self, run: PipelineRun, progress: Any) -> Any:
        if callable(progress):
            return progress
        if progress in (False, None, "none"):
            return None
        if progress in ("auto", True):
            if channel.subscribed():
                return None
            progress = "widget" if channel.in_notebook() else "tqdm"
        return channel.make_view(str(progress), self, run)

    def _execute(self, run: PipelineRun, view: Any, raise_errors: bool) -> None:
        def track(event: channel.Event) -> None:  # the steps' phases become the records' statuses
            if any(r is event.payload for r in run.records):
                event.payload.status = event.status

        def show(rec: StepRecord) -> None:
            channel.report(rec.status, key=rec.index, label=rec.label, payload=rec, detail=rec.error or "")

        results: list[Model | None] = [run.input]
        with ExitStack() as stack:
            if view is not None:
                stack.enter_context(channel.subscribe(view))
                if hasattr(view, "close"):
                    stack.callback(view.close)
            stack.enter_context(channel.subscribe(track))
            stack.enter_context(channel.cancellable(self._cancel))
            for i, (step, rec) in enumerate(zip(self.steps, run.records, strict=True), start=1):
                if channel.cancel_requested():
                    for r in run.records[i - 1:]:
                        r.status = "cancelled"
                        show(r)
                    if raise_errors and not self._cancel.cancelled:  # cancelled by the caller's token
                        raise channel.Cancelled(f"pipeline {self.name!r} (before step {i})", run)
                    break
                src = step.source if step.source is not None else i - 1
                parent = results[src]
                if parent is None:
                    rec.status, rec.error = "skipped", f"its input (step {src}) did not run"
                    results.append(None)
                    show(rec)
                    continue
                start = time.perf_counter()
                try:
                    with channel.scope(rec.index, rec.label, rec):
                        rec.model = step(parent)
                    if rec.status != "cached":
                        rec.status = "done"
                except (KeyboardInterrupt, channel.Cancelled) as err:  # stopped inside the step
                    rec.status, rec.error = "cancelled", "interrupted" if isinstance(err, KeyboardInterrupt) \
                        else "cancelled"
                    for r in run.records[i - 1:]:
                        r.status = "cancelled"
                        show(r)
                    if raise_errors or isinstance(err, KeyboardInterrupt):
                        raise
                    break
                except Exception as err:  # noqa: BLE001 - recorded, shown, then raised (or not)
                    rec.status, rec.error = "failed", str(err)
                    run.error = err
                    results.append(None)
                    rec.seconds = time.perf_counter() - start
                    show(rec)
                    if raise_errors:
                        for r in run.records[i:]:
                            r.status = "cancelled"
                            show(r)
                        raise
                    continue
                rec.seconds = time.perf_counter() - start
                results.append(rec.model)
                show(rec)

    # -- the script ----------------------------------------------------------------------------
    def to_script(self, model: Model | None = None, *, workspace: str | None = None) -> str:
        """The equivalent plain Python script (``wb.load`` / ``wb.export`` / ``wb.convert`` / ``wb.quantize``).

        ``model``: what to load (default: the model of the last run); ``workspace``: write the artifacts
        there (default: ``$WORKBENCH_ARTIFACTS`` or ``./workbench-artifacts``, as for any run).
        """
        source = script.source_expr(as_model(model)) if model is not None else self._source_expr
        calls = [script.StepCall(s.kind, s.target, s.options, s.source, s.func, s.name) for s in self.steps]
        return script.pipeline_script(calls, source, workspace=workspace)

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

import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import StepError
from workbench.core.model import LineageEntry, Model

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

KINDS = ("export", "convert", "quantize", "custom")
#: the format each step produces (for checking a plan before it runs)
_RESULT_FORMAT = {
    ("export", "onnx"): "onnx", ("export", "torchscript"): "torchscript",
    ("export", "exported_program"): "exported_program",
    ("convert", "onnx-optimized"): "onnx", ("convert", "onnx-simplified"): "onnx", ("convert", "openvino"): "openvino",
    ("convert", "coreml"): "coreml",
    ("quantize", "onnxruntime"): "onnx", ("quantize", "nncf"): "openvino", ("quantize", "coreml"): "coreml",
}
_ACCEPTS = {
    ("export", None): ("torch", "hf", "exported_program"),
    ("convert", "onnx-optimized"): ("onnx",), ("convert", "onnx-simplified"): ("onnx",),
    ("convert", "openvino"): ("onnx", "torch", "hf", "exported_program"),
    ("convert", "coreml"): ("torch", "hf", "exported_program"),
    ("quantize", "onnxruntime"): ("onnx",), ("quantize", "nncf"): ("openvino", "onnx"),
    ("quantize", "coreml"): ("coreml",), ("quantize", "torch"): ("torch", "hf", "exported_program"),
}
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
            if kind not in KINDS[:3]:
                raise StepError(f"unknown step kind {kind!r}", f"use one of {', '.join(KINDS[:3])}, or a callable")
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

        func = {"export": export.export, "convert": convert.convert, "quantize": quantize.quantize}[self.kind]
        return func(model, self.target, **self.options)


def run_custom(parent: Model, step: Step) -> Model:
    """Run a custom step; record its lineage and manifest entry and validate its result."""
    from workbench.steps.base import PROGRESS, _validate_and_record
    from workbench.steps.workspace import record

    say = PROGRESS.get() or (lambda _phase: None)
    opts = {k: v for k, v in step.options.items() if k not in ("isolate", "timeout")}
    say("running")
    start = time.perf_counter()
    if step.options.get("isolate"):
        from workbench.steps.base import portable
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
        _validate_and_record(result, parent)
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
        self._cancel = threading.Event()
        self.last_run: PipelineRun | None = None
        self._model: Model | None = None
        self._source_expr: str | None = None

    # -- the plan ------------------------------------------------------------------------------
    def plan(self, model: Any = None) -> list[dict[str, Any]]:
        """The steps as rows (what, takes, gives); with a model, each step's input format is checked."""
        fmt = _load(model).format if model is not None else None
        formats: list[str | None] = [fmt]
        rows = []
        for i, s in enumerate(self.steps, start=1):
            src = s.source if s.source is not None else i - 1
            takes = formats[src]
            accepts = _ACCEPTS.get((s.kind, None if s.kind == "export" else s.target))
            ok = takes is None or accepts is None or takes in accepts
            gives = _result_format(s, takes)
            rows.append({"step": i, "what": s.label, "from": "input" if src == 0 else f"step {src}",
                         "takes": takes or "?", "gives": gives or "?", "ok": ok,
                         "problem": "" if ok else f"needs {' or '.join(accepts or ())}, gets {takes}"})
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
        """Stop after the step now running (its result is kept); the next steps are marked cancelled."""
        self._cancel.set()

    def run(self, model: Any, *, progress: str | bool | None = "auto", raise_errors: bool = True,
            background: bool = False) -> PipelineRun:
        """Run every step on ``model`` (a Model, zoo name or path) and return a PipelineRun.

        Args:
            progress: ``"auto"`` (a widget in a notebook, tqdm in a terminal), ``"tqdm"``, ``"widget"``,
                or False.
            raise_errors: raise the first step's error (after marking it in the run); False keeps going
                with the steps that do not depend on the failed one.
            background: run in a thread and return at once (the widget's Cancel button works then);
                ``run.wait()`` joins it.
        """
        model = _load(model)
        self._model = model
        self._source_expr = _source_expr(model)
        self.check(model)
        self._cancel.clear()
        run = PipelineRun(self, model)
        self.last_run = run
        view = _progress_view(self, run, progress)
        if background:
            thread = threading.Thread(target=self._execute, args=(run, view, False), daemon=True)
            run.thread = thread  # type: ignore[attr-defined]
            run.wait = thread.join  # type: ignore[attr-defined]
            thread.start()
            return run
        self._execute(run, view, raise_errors)
        return run

    def _execute(self, run: PipelineRun, view: Any, raise_errors: bool) -> None:
        from workbench.steps.base import PROGRESS

        results: list[Model | None] = [run.input]
        try:
            for i, (step, rec) in enumerate(zip(self.steps, run.records, strict=True), start=1):
                if self._cancel.is_set():
                    for r in run.records[i - 1:]:
                        r.status = "cancelled"
                    view.update(rec)
                    break
                src = step.source if step.source is not None else i - 1
                parent = results[src]
                if parent is None:
                    rec.status, rec.error = "skipped", f"its input (step {src}) did not run"
                    results.append(None)
                    view.update(rec)
                    continue

                def phase(name: str, rec: StepRecord = rec) -> None:
                    rec.status = name
                    view.update(rec)

                token = PROGRESS.set(phase)
                start = time.perf_counter()
                try:
                    rec.model = step(parent)
                    if rec.status not in ("cached",):
                        rec.status = "done"
                except KeyboardInterrupt:
                    rec.status, rec.error = "cancelled", "interrupted"
                    for r in run.records[i:]:
                        r.status = "cancelled"
                    raise
                except Exception as err:  # noqa: BLE001 - recorded, shown, then raised (or not)
                    rec.status, rec.error = "failed", str(err)
                    run.error = err
                    results.append(None)
                    rec.seconds = time.perf_counter() - start
                    view.update(rec)
                    if raise_errors:
                        for r in run.records[i:]:
                            r.status = "cancelled"
                            view.update(r)
                        raise
                    continue
                finally:
                    PROGRESS.reset(token)
                rec.seconds = time.perf_counter() - start
                results.append(rec.model)
                view.update(rec)
        finally:
            view.close()

    # -- the script ----------------------------------------------------------------------------
    def to_script(self, model: Any = None, *, workspace: str | None = None) -> str:
        """The equivalent plain Python script (``wb.load`` / ``wb.export`` / ``wb.convert`` / ``wb.quantize``).

        ``model``: what to load (default: the model of the last run); ``workspace``: write the artifacts
        there (default: ``$WORKBENCH_ARTIFACTS`` or ``./workbench-artifacts``, as for any run).
        """
        source = _source_expr(_load(model)) if model is not None else self._source_expr
        lines = ['"""Generated by workbench Pipeline.to_script(): the same steps as plain Python."""',
                 "import workbench as wb"]
        if workspace is not None:
            lines += ["from workbench.steps.workspace import set_workspace", "", f"set_workspace({str(workspace)!r})"]
        lines.append("")
        if source is None:
            lines.append("m0 = wb.load(...)  # the model this pipeline was written for: put it here")
        else:
            lines.append(f"m0 = {source}")
        for i, s in enumerate(self.steps, start=1):
            src = s.source if s.source is not None else i - 1
            lines += _step_code(s, i, src)
        lines += ["", f"for m in ({', '.join(f'm{i}' for i in range(1, len(self.steps) + 1))},):",
                  "    print(m.lineage[-1].step, m.path, m.validation.summary() if m.validation is not None else '')"]
        return "\n".join(lines) + "\n"


def _step_code(s: Step, i: int, src: int) -> list[str]:
    if s.kind == "custom":
        mod, qual = getattr(s.func, "__module__", None), getattr(s.func, "__qualname__", "")
        opts = {k: v for k, v in s.options.items() if k not in ("isolate", "timeout")}
        args = "".join(f", {k}={v!r}" for k, v in opts.items())
        if mod and mod != "__main__" and "<locals>" not in qual:
            return [f"from {mod} import {qual.split('.')[0]}", f"m{i} = {qual}(m{src}{args})"]
        return [f"m{i} = {s.name}(m{src}{args})  # a custom step defined in your session: paste its definition above"]
    pre: list[str] = []
    opts = dict(s.options)
    args = [f"m{src}", repr(s.target)]
    if s.kind == "quantize" and "method" in opts:
        args.append(repr(opts.pop("method")))
    cal = opts.pop("calibration", None)
    if cal is not None:
        if isinstance(cal, str | Path):
            args.append(f"calibration={str(cal)!r}")
        else:
            pre.append(f"calibration_{i} = ...  # the calibration samples given to step {i}: a list of input dicts")
            args.append(f"calibration=calibration_{i}")
    args += [f"{k}={v!r}" for k, v in opts.items()]
    return [*pre, f"m{i} = wb.{s.kind}({', '.join(args)})"]


def _result_format(s: Step, takes: str | None) -> str | None:
    if s.kind == "custom":
        return None
    if s.kind == "quantize" and s.target in ("torch", "pytorch"):
        return "exported_program" if s.options.get("method") == "pt2e" else "torchscript"
    target = s.target
    if s.kind == "convert":
        from workbench.steps.convert import ALIASES

        target = ALIASES.get(target, target)
    if s.kind == "quantize":
        from workbench.steps.quantize import TOOL_ALIASES

        target = TOOL_ALIASES.get(target, target)
    return _RESULT_FORMAT.get((s.kind, target), takes)


def _load(model: Any) -> Model:
    from workbench.api import load

    return model if isinstance(model, Model) else load(model)


def _source_expr(model: Model) -> str | None:
    """How a script would load ``model``: a zoo name or a path; None for an in-memory module."""
    from workbench import zoo

    root = model.original
    if root.format == "torch" and root.path is None:
        return f"wb.load({root.name!r})" if root.name in zoo.names() and root.task is not None else None
    if root.path is not None:
        return f"wb.load({str(Path(root.path).resolve())!r})"
    return None


# -- progress --------------------------------------------------------------------------------------
class _NoView:
    def update(self, rec: StepRecord) -> None:
        pass

    def close(self) -> None:
        pass


class _TqdmView:
    """A tqdm bar per step: running → validating → done."""

    PHASES = {"planned": 0, "running": 1, "validating": 2, "done": 3, "cached": 3}

    def __init__(self, run: PipelineRun):
        from tqdm import tqdm

        self.tqdm = tqdm
        self.bars: dict[int, Any] = {}
        self.run = run

    def update(self, rec: StepRecord) -> None:
        bar = self.bars.get(rec.index)
        if bar is None:
            bar = self.tqdm(total=3, desc=f"{rec.index}. {rec.label}"[:60], leave=True, file=sys.stderr,
                            bar_format="{desc:60} {bar:20} {postfix}")
            self.bars[rec.index] = bar
        bar.n = self.PHASES.get(rec.status, bar.n)
        post = rec.status
        if rec.model is not None and getattr(rec.model, "validation", None) is not None:
            v = rec.model.validation
            post += "  " + ("SKIPPED" if v.skipped else ("PASS" if v else "FAIL"))
        if rec.error:
            post += f"  {rec.error[:80]}"
        bar.set_postfix_str(post, refresh=True)
        if rec.status in ("done", "cached", "failed", "cancelled", "skipped"):
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _progress_view(pipeline: Pipeline, run: PipelineRun, progress: str | bool | None) -> Any:
    if progress in (False, None, "none"):
        return _NoView()
    if progress == "widget" or (progress in ("auto", True) and _in_notebook()):
        try:
            from workbench.ui.pipeline_view import PipelineView

            view = PipelineView(pipeline, run)
            view.display()
            return view
        except ImportError:
            pass
    return _TqdmView(run)

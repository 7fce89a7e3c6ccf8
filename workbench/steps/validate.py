"""Validation after every step: does the step's output still compute the same thing?

The result is run on the same inputs as its parent and as the original model (each on its natural
runtime; OpenVINO at fp32 inference precision, so the artifact is judged and not the runtime's bf16
default), and compared with both (``workbench.core.metrics``: max abs, relative L2, cosine, top-k agreement
for logits). The tolerance is the one for the precision of the step (``workbench/core/tolerances.py``):
against the parent, the looser of the two models' precisions; against the original, the loosest
precision of the whole lineage. Where the model has evaluation data, the task metric is computed too
(digits accuracy; MiniLM's Spearman and the cosine of its sentence embeddings to the original's).

Outputs of a model are computed once and kept (weakly) with the model, so the original is run once
however many steps follow it.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.results import plain, result_type

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from workbench.core.metrics import Comparison
    from workbench.core.model import Model

Feeds = dict[str, np.ndarray]
N_INPUT_SETS = 3
BATCH = 4  # rows per input set where the batch axis is dynamic (top-k agreement over 12 rows)

# model -> {"outputs": [...], "metrics": {...}, "embeddings": array, "precision": str}
_runs: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


@result_type("validation")
@dataclass
class Validation:
    """How a step's result compares with its parent and with the original.

    ``bool(v)`` is True when both comparisons passed (a skipped validation is not a pass).
    ``metrics`` is the task metric of the result, ``original_metrics`` the original's, and
    ``metric_drop`` the original's minus the result's (for metrics where larger is better).
    """

    step: str
    precision: str
    vs_parent: Comparison | None = None
    vs_original: Comparison | None = None
    metrics: dict[str, float] | None = None
    original_metrics: dict[str, float] | None = None
    metric_drop: dict[str, float] | None = None
    skipped: str | None = None
    backend: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)  # the figures, also when restored from JSON

    def __bool__(self) -> bool:
        return self.skipped is None and bool(self.figures.get("passed"))

    @property
    def passed(self) -> bool:
        return bool(self)

    @classmethod
    def skipped_because(cls, model: Model, reason: str) -> Validation:
        step = model.lineage[-1].step if model.lineage else "load"
        return cls(step, model.metadata.get("precision", "fp32"), skipped=reason,
                   figures={"passed": False, "skipped": reason})

    def summary(self) -> str:
        """One line: PASS/FAIL/SKIPPED with the worst error against the original and the metric."""
        if self.skipped:
            return f"SKIPPED {self.step}: {self.skipped}"
        f = self.figures
        # figures read back from JSON hold None where the value was NaN or infinite
        rel_l2, cosine = (math.nan if f.get(k) is None else f[k] for k in ("rel_l2", "cosine"))
        text = (f"{'PASS' if self else 'FAIL'} {self.step} [{self.precision}] vs original: "
                f"rel_l2={rel_l2:.2e} cos={cosine:.6f}")
        if f.get("max_abs") is not None:  # from the output where it is worst, which may be another one
            text += f" max_abs={f['max_abs']:.2e}" + (f" ({f['max_abs_output']})"
                                                       if f.get("max_abs_output") != f.get("rel_l2_output") else "")
        if f.get("top1") is not None:
            text += f" top1={f['top1']:.3f}"
        if self.metrics:
            text += " | " + ", ".join(f"{k}={v:.4f}" for k, v in self.metrics.items())
            if self.metric_drop:
                text += " (drop " + ", ".join(f"{k}={v:+.4f}" for k, v in self.metric_drop.items()) + ")"
        return text

    def __repr__(self) -> str:
        return f"<Validation {self.summary()}>"

    def _repr_html_(self) -> str:
        from html import escape

        parts = [f"<b>{escape(self.summary())}</b>"]
        for title, comp in (("vs parent", self.vs_parent), ("vs original", self.vs_original)):
            if comp is not None:
                parts.append(f"<div><i>{title}</i>{comp._repr_html_()}</div>")
        return "<div>" + "".join(parts) + "</div>"

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain JSON-able data (what the manifest keeps)."""
        out = {"step": self.step, "precision": self.precision, "passed": bool(self), "skipped": self.skipped,
               "backend": self.backend, "metrics": self.metrics, "original_metrics": self.original_metrics,
               "metric_drop": self.metric_drop}
        out.update({k: v for k, v in self.figures.items() if k not in out})
        return plain(out)

    def json_extras(self) -> dict[str, Any]:
        """Derived figures a reader of ``to_json()`` wants (``workbench.core.results``)."""
        return {"passed": bool(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Validation:
        """Rebuild from ``to_dict()`` (the comparisons themselves are not kept, their figures are)."""
        return cls(data.get("step", "?"), data.get("precision", "fp32"), metrics=data.get("metrics"),
                   original_metrics=data.get("original_metrics"), metric_drop=data.get("metric_drop"),
                   skipped=data.get("skipped"), backend=data.get("backend"), figures=dict(data))

    def to_frame(self) -> pd.DataFrame:
        """One row per (against, output) with every metric."""
        import pandas as pd

        frames = []
        for title, comp in (("parent", self.vs_parent), ("original", self.vs_original)):
            if comp is not None:
                frame = comp.to_frame().reset_index()
                frame.insert(0, "against", title)
                frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame([self.to_dict()])


# -- running ---------------------------------------------------------------------------------------
def runner_for(model: Model) -> tuple[str, dict[str, Any]] | None:
    """The backend (and options) a step's result is validated on, or None where it cannot run here."""
    from workbench.core.registry import get_runtime as get_backend
    from workbench.steps.routing import default_backend

    backend = default_backend(model)
    if not get_backend(backend).availability():
        return None
    return backend, get_backend(backend).reference_options()


def validation_inputs(original: Model, candidate: Model) -> list[Feeds]:
    """The input sets every model of a lineage is run on (seeded, from the task's data)."""
    batch = None
    if candidate.inputs and candidate.inputs[0].shape:
        first = candidate.inputs[0].shape[0]
        batch = first if isinstance(first, int) else BATCH
    return [original.example_inputs(batch=batch, seed=s) for s in range(N_INPUT_SETS)]


def _run_model(model: Model, inputs: list[Feeds], key: str, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    """Outputs of ``model`` on ``inputs`` (cached per model and input key), its metric and precision.

    ``limits``: run it in the worker process with these ``timeout``/``memory`` limits (see
    ``validate_step``); None: in this process."""
    from workbench.core.precision import loosest, precision_of

    store = _runs.setdefault(model, {})
    if key in store:
        return store[key]
    if limits is not None:
        from workbench.steps.isolation import run_model_isolated

        info = run_model_isolated(run_model_here, model, inputs, label="validation", **limits)
        # the lineage stays here (the worker gets a light copy): the precision rule needs both
        info["precision"] = loosest(precision_of(model), info["precision"])
    else:
        info = run_model_here(model, inputs)
    store[key] = info
    return info


def run_model_here(model: Model, inputs: list[Feeds]) -> dict[str, Any]:
    """Run ``model`` on ``inputs`` in this process: outputs, precision, the task's metrics."""
    from workbench.core.data import feeds_for
    from workbench.core.precision import precision_of
    from workbench.steps.routing import runner

    choice = runner_for(model)
    if choice is None:
        raise WorkbenchError(f"{model.format} models cannot run here", None)
    backend, options = choice
    info: dict[str, Any] = {"backend": backend}
    with runner(model, backend, **options) as r:
        info["outputs"] = [{k: np.asarray(v) for k, v in r.infer(feeds_for(r.model, f)).items()} for f in inputs]
        info["precision"] = precision_of(model, r)
        task = model.task
        if task is not None and task.has_evaluation:
            infer = _renaming(r)
            info["metrics"] = task.evaluate(infer, batch_size=_fixed_batch(model))
            if hasattr(task, "embeddings"):
                info["embeddings"] = task.embeddings(infer, batch_size=_fixed_batch(model))
    return info


def _renaming(r: Any) -> Any:
    from workbench.core.data import feeds_for

    return lambda feeds: r.infer(feeds_for(r.model, feeds))


def _fixed_batch(model: Model) -> int | None:
    first = model.inputs[0].shape[0] if model.inputs and model.inputs[0].shape else None
    return first if isinstance(first, int) else None


def validate_step(result: Model, parent: Model, *, isolate: bool | None = None, timeout: float | None = None,
                  memory: int | None = None) -> Validation:
    """Run ``result``, ``parent`` and the original on the same inputs and compare (see the module doc).

    ``isolate``: run each model in the worker process, each run bounded by ``timeout`` seconds and
    ``memory`` bytes (the worker's limits; a run past them is a ``StepError``, which the step records
    as a validation that could not run). Default: ``isolation_default()`` (on in a published app).
    """
    from workbench.steps.isolation import isolation_default

    if isolate is None:
        isolate = isolation_default()
    limits = {"timeout": timeout, "memory": memory} if isolate else None
    from workbench.core.metrics import compare_outputs, worst_per_measure
    from workbench.core.precision import loosest

    step = result.lineage[-1].step if result.lineage else "load"
    original = result.original
    if runner_for(result) is None:
        from workbench.core.registry import get_runtime as get_backend
        from workbench.steps.routing import default_backend

        avail = get_backend(default_backend(result)).availability()
        return Validation.skipped_because(result, f"{avail.reason or 'its runtime is unavailable'}"
                                          + (f" ({avail.fix})" if avail.fix else ""))
    inputs = validation_inputs(original, result)
    key = _inputs_key(inputs)
    cand = _run_model(result, inputs, key, limits)
    orig = _run_model(original, inputs, key, limits)
    par = orig if parent is original else _run_model(parent, inputs, key, limits)
    precisions = [cand["precision"], orig["precision"]]
    precisions += [_precision_from(e.parent) for e in result.lineage if e.parent is not None]
    p_original = loosest(*precisions)
    p_parent = loosest(cand["precision"], par["precision"])
    vs_parent = compare_outputs(par["outputs"], cand["outputs"], precision=p_parent, label=f"{step} vs parent")
    vs_original = compare_outputs(orig["outputs"], cand["outputs"], precision=p_original,
                                  label=f"{step} vs original")
    metrics = cand.get("metrics")
    original_metrics = orig.get("metrics")
    drop = None
    if metrics and original_metrics:
        sign = 1.0 if getattr(result.task, "higher_is_better", True) else -1.0
        drop = {k: sign * (original_metrics[k] - metrics[k]) for k in metrics if k in original_metrics}
    figures: dict[str, Any] = {"passed": bool(vs_parent) and bool(vs_original)}
    # a task may bound its metric's drop by precision (a causal LM's perplexity: formats/hf_perplexity.py)
    bound = getattr(result.task, "metric_tolerance", None)
    if drop and original_metrics and bound is not None:
        allowed = bound(p_original, original_metrics)
        figures["metric_tolerance"] = allowed
        exceeded = sorted(k for k, v in drop.items() if k in allowed and not v <= allowed[k])
        if exceeded:
            figures["passed"] = False
            figures["metric_exceeded"] = exceeded
    # the headline: each measure from the output where it is worst, with that output's name
    worst = worst_per_measure(vs_original.results)
    figures.update({k: worst.get(k) for k in ("max_abs", "rel_l2", "cosine", "top1", "topk")})
    figures.update({k: v for k, v in worst.items() if k.endswith("_output")})
    pw = worst_per_measure(vs_parent.results)
    figures.update({f"parent_{k}": pw[k] for k in ("rel_l2", "cosine", "max_abs") if k in pw})
    if "embeddings" in cand and "embeddings" in orig:
        a, b = cand["embeddings"], orig["embeddings"]
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
        figures["embedding_cosine_mean"] = float(cos.mean())
        figures["embedding_cosine_min"] = float(cos.min())
    figures["parent_precision"] = p_parent
    return Validation(step, p_original, vs_parent, vs_original, metrics, original_metrics, drop,
                      backend=cand["backend"], figures=figures)


def _precision_from(model: Model) -> str | None:
    info = _runs.get(model)
    if info:
        for v in info.values():
            return v.get("precision")
    return None


def _inputs_key(inputs: list[Feeds]) -> str:
    import hashlib

    h = hashlib.sha256()
    for feeds in inputs:
        for k, v in feeds.items():
            h.update(k.encode())
            h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()

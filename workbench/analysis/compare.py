"""``wb.compare``: run models on the same inputs and compare their outputs (after Polygraphy's
``run --compare``).

Each model runs on its natural runtime (or one you name); per candidate and output the metrics of
``workbench.core.metrics`` are measured (max and mean absolute error, relative L2 error, cosine
similarity, top-1 / top-k agreement for logits, PSNR for images, NaN and Inf counts, shape and dtype),
and each output passes or fails against a tolerance:

* by default the **precision** of the candidate decides (``workbench/core/tolerances.py``), by the one
  rule of ``workbench.core.precision.precision_of``: the model's lineage, its stored graph, and the
  runtime's own precision (OpenVINO computes in bf16 by default on CPUs with AVX-512 BF16 or AMX);
* or Polygraphy's checks (``Check``), per output or for all.

The models are ``Model`` objects (the facade, ``workbench.api``, turns names and paths into Models).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.data import feeds_for, input_sets
from workbench.core.errors import InputError, WorkbenchError
from workbench.core.metrics import (
    CandidateInfo,
    Check,
    Comparison,
    OutputResult,
    compare_arrays,
    compare_outputs,
    criterion,
    match_outputs,
    output_kind,
    plain_options,
)
from workbench.core.model import Model
from workbench.core.precision import loosest, precision_of
from workbench.core.runner import Runner
from workbench.steps import routing

__all__ = ["Check", "Comparison", "OutputResult", "Target", "as_model", "as_target", "compare", "compare_arrays",
           "compare_outputs", "output_kind", "precision_of", "target_label"]

Feeds = dict[str, np.ndarray]


def as_model(item: Any, what: str = "model") -> Model:
    """``item`` if it is a Model; else a clear error (names and paths are loaded by ``workbench.api``)."""
    if isinstance(item, Model):
        return item
    raise WorkbenchError(f"the {what} must be a workbench Model, got {type(item).__name__} {str(item)[:60]!r}",
                         "load it first: wb.load(...) (the wb.* functions do this for you)")


@dataclass
class Target:
    """A model to run, how, and (once run) what it is."""

    model: Model
    backend: str
    options: dict[str, Any]
    runner: Runner | None = None  # given by the user: used as is, not closed
    label: str = ""


def as_target(item: Any, backend: str | None = None, options: dict[str, Any] | None = None) -> Target:
    """A Target from a Model, a ``(model, backend[, options])`` tuple or a Runner (used as is)."""
    if isinstance(item, Runner):
        return Target(item.model, item.name, dict(item.options), runner=item)
    if isinstance(item, tuple):
        if not 2 <= len(item) <= 3 or not isinstance(item[1], str):
            raise WorkbenchError(f"cannot compare a tuple of {len(item)} items",
                                 "pass (model, 'backend') or (model, 'backend', {options})")
        opts = dict(item[2]) if len(item) == 3 else {}
        return as_target(item[0], item[1], {**(options or {}), **opts})
    model = as_model(item)
    return Target(model, backend or routing.default_backend(model), dict(options or {}))


def target_label(t: Target, used: set[str]) -> str:
    """A label for ``t`` unique among ``used`` (and added to it): file stem, format, runtime, options."""
    # an artifact is named by its file (digits-cnn-int8), since a step's result keeps the original's name
    name = t.model.path.stem if t.model.path is not None else t.model.name
    label = f"{name} ({t.model.format} on {t.backend})"
    interesting = {k: v for k, v in t.options.items() if k not in ("config", "session_config")}
    if interesting:
        label = label[:-1] + ", " + ", ".join(f"{k}={v}" for k, v in interesting.items()) + ")"
    base, i = label, 2
    while label in used:
        label, i = f"{base} #{i}", i + 1
    used.add(label)
    return label


def _run(t: Target, inputs: list[Feeds]) -> tuple[list[Feeds], str]:
    """Run ``t`` on every input set; return the outputs and the precision it computed in."""
    own = t.runner is None
    r = t.runner or routing.runner(t.model, t.backend, **t.options)
    try:
        if not r.is_prepared:
            r.prepare()
        outs = [{k: np.asarray(v) for k, v in r.infer(feeds_for(r.model, feeds)).items()} for feeds in inputs]
        return outs, precision_of(t.model, r)
    finally:
        if own:
            r.close()


def compare(
    reference: Any,
    candidates: Any,
    inputs: Feeds | Iterable[Feeds] | None = None,
    *,
    tolerances: Any = None,
    backends: str | Sequence[str | None] | None = None,
    reference_backend: str | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    mode: str = "elemwise",
    quantile: float = 0.99,
    topk: int = 5,
    kinds: dict[str, str] | None = None,
    n_inputs: int = 3,
    batch: int | None = None,
) -> Comparison:
    """Run ``reference`` and each candidate on the same inputs and compare their outputs.

    Args:
        reference: a Model, a ``(model, backend)`` or
            ``(model, backend, {options})`` pair, or a prepared Runner.
        candidates: one or a list of the same kinds. Each runs on its natural runtime
            (``workbench.steps.routing.default_backend``) unless a backend is given.
        inputs: a dict of arrays, or a list of them (default: ``n_inputs`` seeded example input sets
            of the reference, at ``batch``).
        tolerances: the pass criterion. None: from each candidate's precision (``tolerances.py``).
            A precision name (``"bf16"``), a ``Tolerance``, a ``Check(atol=, rtol=, mode=)``, or a dict
            ``{output name: any of these}`` (outputs not named keep the default).
        backends: a backend name for every candidate, or a list (None entries: natural runtime).
        reference_backend: the reference's backend (default: its natural runtime).
        atol, rtol, mode, quantile: shorthand for ``tolerances=Check(atol, rtol, mode, quantile)``,
            Polygraphy's check, for every output.
        topk: k for the top-k agreement of logits; kinds: ``{output: "logits" | "image" | "tensor"}``
            to override the guess of which outputs are logits or images.

    Returns:
        a Comparison: ``bool(c)`` is pass/fail; ``c.to_frame()``, ``c.summary()``, ``c.to_json()``.

    A candidate that fails to load or run is reported as failed (with the error) rather than raising,
    so the others are still compared; an error in the reference raises.
    """
    single = not isinstance(candidates, list | tuple) or (
        isinstance(candidates, tuple) and len(candidates) in (2, 3) and isinstance(candidates[1], str))
    cand_items = [candidates] if single else list(candidates)
    if not cand_items:
        raise WorkbenchError("no candidates to compare", "pass a model or a list of models as candidates")
    if isinstance(backends, str) or backends is None:
        backend_list: list[str | None] = [backends] * len(cand_items)
    else:
        backend_list = list(backends)
        if len(backend_list) != len(cand_items):
            raise WorkbenchError(f"{len(backend_list)} backends for {len(cand_items)} candidates",
                                 "pass one backend name for all, or a list as long as the candidates")
    if atol is not None or rtol is not None:
        if tolerances is not None and not isinstance(tolerances, dict):
            raise WorkbenchError("both tolerances= and atol=/rtol= given", "pass one of them")
        default_spec: Any = Check(atol if atol is not None else 0.0, rtol if rtol is not None else 0.0, mode, quantile)
    else:
        default_spec = None if isinstance(tolerances, dict) else tolerances
    per_output = tolerances if isinstance(tolerances, dict) else {}

    ref_t = as_target(reference, reference_backend)
    used: set[str] = set()
    ref_t.label = target_label(ref_t, used)
    if inputs is None:
        feeds_list = input_sets(ref_t.model, n_inputs, batch)
    elif isinstance(inputs, dict):
        feeds_list = [inputs]
    else:
        feeds_list = list(inputs)
        if not feeds_list or not all(isinstance(f, dict) for f in feeds_list):
            raise InputError("inputs must be a dict of arrays or a non-empty list of such dicts",
                             "pass inputs={name: array} or [{name: array}, ...], or leave it out")
    ref_outs, ref_precision = _run(ref_t, feeds_list)
    ref_info = CandidateInfo(ref_t.label, ref_t.model.name, ref_t.model.format, ref_t.backend, ref_precision,
                             plain_options(ref_t.options), path=_file(ref_t.model))

    infos: list[CandidateInfo] = []
    results: list[OutputResult] = []
    for item, be in zip(cand_items, backend_list, strict=True):
        try:
            t = as_target(item, be)
        except WorkbenchError as err:
            label = f"candidate {len(infos) + 1}"
            infos.append(CandidateInfo(label, str(item)[:60], "?", be or "?", "?", error=str(err)))
            results.append(OutputResult(label, "*", passed=False, reason=f"could not load: {err}"))
            continue
        t.label = target_label(t, used)
        try:
            outs, precision = _run(t, feeds_list)
        except Exception as err:  # noqa: BLE001 - one broken candidate must not hide the others' results
            msg = str(err).strip().splitlines()[0][:300] if str(err) else type(err).__name__
            prec = precision_of(t.model)
            infos.append(CandidateInfo(t.label, t.model.name, t.model.format, t.backend, prec, plain_options(t.options), msg,
                                       path=_file(t.model)))
            results.append(OutputResult(t.label, "*", passed=False, reason=f"could not run: {msg}", precision=prec))
            continue
        effective = loosest(precision, ref_precision)
        infos.append(CandidateInfo(t.label, t.model.name, t.model.format, t.backend, effective, plain_options(t.options),
                                   path=_file(t.model)))
        for ref_name, cand_name in match_outputs(ref_outs[0], outs[0]):
            crit = criterion(per_output.get(ref_name, default_spec), effective)
            if cand_name is None:
                results.append(OutputResult(t.label, ref_name, passed=False, precision=effective,
                                            reason=f"output {ref_name!r} is missing (outputs: {list(outs[0])})"))
                continue
            res = compare_arrays([o[ref_name] for o in ref_outs], [o[cand_name] for o in outs], crit,
                                 name=ref_name, label=t.label, precision=effective,
                                 kind=(kinds or {}).get(ref_name), topk=topk)
            if cand_name != ref_name:
                res.notes.append(f"matched by position to the candidate's {cand_name!r}")
            results.append(res)
    return Comparison(ref_info, infos, results, len(feeds_list), topk)


def _file(model: Any) -> str | None:
    """The model's file as a string, where it has one (recorded so a report's code can load it again)."""
    return str(model.path) if getattr(model, "path", None) is not None else None

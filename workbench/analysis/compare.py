"""Output comparison: do these models compute the same thing? (after Polygraphy's ``run --compare``)

``wb.compare(reference, candidates)`` runs every model on the same inputs, each on its natural runtime
(or one you name), and measures per candidate and output: max and mean absolute error, relative L2
error, cosine similarity, top-1 / top-k agreement for logits, PSNR for images, NaN and Inf counts, shape
and dtype. Each output passes or fails against a tolerance:

* by default the **precision** of the candidate decides (``workbench/core/tolerances.py``: fp32, fp16, bf16,
  int8, int4), with errors measured relative to the output's scale; the precision comes from the
  model's lineage (a quantize step), its metadata, and the runtime (OpenVINO computes in bf16 by
  default on CPUs with AVX-512 BF16, as here);
* or Polygraphy's checks, per output or for all: ``atol`` / ``rtol`` with ``mode="elemwise"`` (every
  element within ``atol`` *or* within ``rtol`` of the reference), or a statistic of the error
  (``"max"``, ``"mean"``, ``"median"``, ``"quantile"`` with ``quantile=0.99``) within them.

NaN in an output always fails; Inf fails unless the reference has the same Inf at the same place; a
shape mismatch fails; a dtype of another kind (int vs float) fails, a narrower float (fp16) is noted.
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import InputError, WorkbenchError
from workbench.core.tolerances import Tolerance, metrics, tolerance

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from workbench.core.model import Model
    from workbench.core.runner import Runner

Feeds = dict[str, np.ndarray]

#: precisions from tightest to loosest; a model computed in several takes the loosest
PRECISION_ORDER = ("fp32", "fp16", "bf16", "int8", "int4")
CHECK_MODES = ("elemwise", "max", "mean", "median", "quantile")


def normalize_precision(value: Any) -> str | None:
    """``"bfloat16"``, ``"<Type: 'bfloat16'>"``, ``"f16"``, ``"uint8"``, ``"w4a16"`` … → a key of
    ``PRECISION_ORDER``, or None when the text names no precision."""
    text = str(value).lower()
    for needles, key in ((("bf16", "bfloat16"), "bf16"),
                         (("int4", "nf4", "w4", "u4", "i4", "4bit", "4-bit"), "int4"),
                         (("int8", "uint8", "qint8", "quint8", "i8", "u8", "w8", "8bit", "8-bit"), "int8"),
                         (("fp16", "float16", "f16", "half"), "fp16"),
                         (("fp32", "float32", "f32", "float"), "fp32")):
        if any(n in text for n in needles):
            return key
    return None


def loosest(*precisions: str | None) -> str:
    """The loosest of the given precisions (``"fp32"`` when none is given)."""
    known = [p for p in precisions if p in PRECISION_ORDER]
    return max(known, key=PRECISION_ORDER.index) if known else "fp32"


def _graph_precision(model: Model) -> str | None:
    """Quantized or half-precision graphs, recognised by their ops (QDQ, FakeQuantize) or weights."""
    try:
        if model.format == "onnx":
            proto = model.native()
            ops = {n.op_type for n in proto.graph.node}
            if ops & {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger",
                      "ConvInteger", "DynamicQuantizeLinear", "MatMulNBits"}:
                return "int4" if "MatMulNBits" in ops else "int8"
            if any(t.data_type == 10 for t in proto.graph.initializer):  # FLOAT16 weights
                return "fp16"
        elif model.format == "openvino":
            ops = {op.get_type_name() for op in model.native().get_ordered_ops()}
            if "FakeQuantize" in ops or "FakeConvert" in ops:
                return "int8"
    except Exception:  # noqa: BLE001 - a graph we cannot read says nothing about precision
        return None
    return None


def precision_of(model: Model, runner: Runner | None = None) -> str:
    """The precision ``model`` is computed in (on ``runner`` if given): the loosest of its lineage's
    quantize/convert options, ``metadata["precision"]``, its graph's ops and the runtime's own precision."""
    found: list[str | None] = [normalize_precision(model.metadata.get("precision", "fp32"))]
    quantized = False
    for entry in model.lineage:
        opts = entry.options or {}
        for key in ("precision", "weights", "dtype", "weight_dtype", "mode"):
            if key in opts and opts[key] is not None:
                found.append(normalize_precision(opts[key]))
        if entry.step.startswith("quantize"):
            quantized = True
    if quantized and not any(p in ("int8", "int4", "fp16", "bf16") for p in found):  # e.g. ORT's fp16 "quantization"
        found.append("int8")
    if not quantized:
        found.append(_graph_precision(model))
    if runner is not None:
        found.append(normalize_precision(runner.options.get("precision") or runner.options.get("dtype") or ""))
        if hasattr(runner, "inference_precision") and runner.is_prepared:
            try:
                found.append(normalize_precision(runner.inference_precision))
            except Exception:  # noqa: BLE001 - not every runtime can say
                pass
    return loosest(*found)


@dataclass(frozen=True)
class Check:
    """Polygraphy's per-output check: an element matches when its absolute error is within ``atol``
    *or* its relative error (to the reference) within ``rtol``.

    ``mode="elemwise"`` requires every element to match; ``"max"``, ``"mean"``, ``"median"`` and
    ``"quantile"`` (at ``quantile``) compare that statistic of the absolute and relative errors instead.
    """

    atol: float = 1e-5
    rtol: float = 1e-5
    mode: str = "elemwise"
    quantile: float = 0.99

    def __post_init__(self) -> None:
        if self.mode not in CHECK_MODES:
            raise WorkbenchError(f"unknown check mode {self.mode!r}", f"use one of {', '.join(CHECK_MODES)}")
        if not 0.0 <= self.quantile <= 1.0:
            raise WorkbenchError(f"quantile must be in [0, 1], got {self.quantile}", "pass e.g. quantile=0.99")

    def describe(self) -> str:
        stat = "" if self.mode == "elemwise" else f", {self.mode}" + (f" {self.quantile}" if self.mode == "quantile" else "")
        return f"atol={self.atol:g} or rtol={self.rtol:g}{stat}"

    def passes(self, absdiff: np.ndarray, reldiff: np.ndarray) -> bool:
        if absdiff.size == 0:
            return True
        if self.mode == "elemwise":
            return not bool(np.any((absdiff > self.atol) & (reldiff > self.rtol)))
        stat: Callable[[np.ndarray], float] = {
            "max": np.max, "mean": np.mean, "median": np.median,
            "quantile": lambda a: np.quantile(a, self.quantile)}[self.mode]
        return bool(stat(absdiff) <= self.atol or stat(reldiff) <= self.rtol)


Criterion = Tolerance | Check


def _criterion(spec: Any, precision: str) -> Criterion:
    """A Tolerance or Check from what a user may pass: None, a precision name, a Tolerance, a Check,
    or a dict of Check fields."""
    if spec is None:
        return tolerance(precision)
    if isinstance(spec, Tolerance | Check):
        return spec
    if isinstance(spec, str):
        try:
            return tolerance(normalize_precision(spec) or spec)
        except KeyError:
            raise WorkbenchError(f"unknown tolerance {spec!r}",
                                 "pass a precision (fp32, fp16, bf16, int8, int4), a Check(atol=, rtol=) or a dict") from None
    if isinstance(spec, dict):
        try:
            return Check(**spec)
        except TypeError as err:
            raise WorkbenchError(f"bad tolerance {spec!r}: {err}", "use keys atol, rtol, mode, quantile") from None
    raise WorkbenchError(f"cannot use a {type(spec).__name__} as a tolerance",
                         "pass a precision name, a Tolerance, a Check(atol=, rtol=) or {output: ...}")


@dataclass
class OutputResult:
    """How one output of one candidate compares with the reference (all inputs together)."""

    candidate: str
    output: str
    passed: bool
    reason: str = ""
    precision: str = "fp32"
    criterion: str = ""
    kind: str = "tensor"  # "logits", "image" or "tensor": which extra metrics apply
    max_abs: float = math.nan
    mean_abs: float = math.nan
    max_rel: float = math.nan
    quantile_abs: float = math.nan  # the 0.99 quantile of |error| (or the Check's quantile)
    rel_l2: float = math.nan
    max_abs_rel: float = math.nan  # max |error| / max |reference|
    cosine: float = math.nan
    top1: float | None = None  # share of rows with the same arg-max (logits)
    topk: float | None = None  # mean overlap of the top-k sets (logits)
    psnr: float | None = None  # dB (images)
    nan_count: int = 0
    inf_count: int = 0
    shape: tuple[int, ...] | None = None
    ref_shape: tuple[int, ...] | None = None
    dtype: str = ""
    ref_dtype: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class CandidateInfo:
    """Which model ran where, for the report."""

    label: str
    model: str
    format: str
    backend: str
    precision: str
    options: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Comparison:
    """The result of ``wb.compare``: per candidate and output, the metrics and pass/fail.

    ``bool(c)`` is True when every output of every candidate passed. ``c.to_frame()`` gives one row per
    (candidate, output); ``c.failures()`` only the failed ones; ``c.to_json()`` the whole result.
    """

    reference: CandidateInfo
    candidates: list[CandidateInfo]
    results: list[OutputResult]
    n_inputs: int
    topk: int = 5

    def __bool__(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def passed(self) -> bool:
        return bool(self)

    def result(self, candidate: str | int = 0, output: str | int = 0) -> OutputResult:
        """The result for one candidate (label or index) and output (name or index)."""
        label = self.candidates[candidate].label if isinstance(candidate, int) else candidate
        rows = [r for r in self.results if r.candidate == label]
        if not rows:
            raise KeyError(f"no candidate {candidate!r}; candidates: {[c.label for c in self.candidates]}")
        if isinstance(output, int):
            return rows[output]
        for r in rows:
            if r.output == output:
                return r
        raise KeyError(f"no output {output!r}; outputs: {[r.output for r in rows]}")

    def to_frame(self) -> pd.DataFrame:
        """One row per (candidate, output) with every metric."""
        import pandas as pd

        rows = []
        for r in self.results:
            row = asdict(r)
            row["notes"] = "; ".join(r.notes)
            row["shape"] = str(r.shape) if r.shape is not None else ""
            row["ref_shape"] = str(r.ref_shape) if r.ref_shape is not None else ""
            rows.append(row)
        return pd.DataFrame(rows).set_index(["candidate", "output"]) if rows else pd.DataFrame()

    def failures(self) -> pd.DataFrame:
        frame = self.to_frame()
        return frame[~frame["passed"]] if len(frame) else frame

    def summary(self) -> str:
        """A few lines: PASS/FAIL per candidate, with the worst output's error and the reason."""
        lines = [f"reference: {self.reference.label}   ({self.n_inputs} input set(s))"]
        for cand in self.candidates:
            rows = [r for r in self.results if r.candidate == cand.label]
            ok = bool(rows) and all(r.passed for r in rows)
            worst = max(rows, key=lambda r: r.rel_l2 if not math.isnan(r.rel_l2) else math.inf) if rows else None
            detail = ""
            if worst is not None and not math.isnan(worst.rel_l2):
                detail = f"rel_l2={worst.rel_l2:.2e} max_abs={worst.max_abs:.2e} cos={worst.cosine:.6f}"
                if worst.top1 is not None:
                    detail += f" top1={worst.top1:.3f}"
            reasons = "; ".join(f"{r.output}: {r.reason}" for r in rows if not r.passed)
            lines.append(f"  {'PASS' if ok else 'FAIL'}  {cand.label} [{cand.precision}]  {detail}"
                         + (f"  — {reasons}" if reasons else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Comparison {'PASS' if self else 'FAIL'}>\n{self.summary()}"

    def _repr_html_(self) -> str:
        from workbench.analysis.report import comparison_table_html

        return comparison_table_html(self)

    def to_dict(self) -> dict[str, Any]:
        return {"reference": asdict(self.reference), "candidates": [asdict(c) for c in self.candidates],
                "n_inputs": self.n_inputs, "topk": self.topk, "passed": bool(self),
                "results": [asdict(r) for r in self.results]}

    def to_json(self, indent: int | None = 2) -> str:
        """JSON with ``schema: "workbench.comparison"`` and a schema version."""
        from workbench.analysis.report import to_json_text

        return to_json_text("comparison", self.to_dict(), indent=indent)


# -- metrics -------------------------------------------------------------------------------------


def output_kind(name: str, shape: Sequence[int], dtype: Any) -> str:
    """``"logits"`` (class scores on the last axis), ``"image"`` (N×C×H×W or N×H×W×C with C in 1, 3, 4)
    or ``"tensor"``: decides whether top-k agreement or PSNR is reported."""
    if np.dtype(dtype).kind != "f" or len(shape) < 2:
        return "tensor"
    lname = name.lower()
    if len(shape) == 4 and (any(k in lname for k in ("image", "pixel", "img", "rgb"))
                            or ((shape[1] in (1, 3, 4) or shape[-1] in (1, 3, 4)) and min(shape[2], shape[1]) >= 8
                                and min(shape[-1], shape[-2]) >= 1)):
        return "image"
    if shape[-1] >= 2 and (any(k in lname for k in ("logit", "score", "prob", "class", "cls"))
                           or len(shape) == 2):
        return "logits"
    return "tensor"


def _topk_agreement(ref: np.ndarray, cand: np.ndarray, k: int) -> tuple[float, float]:
    """(share of rows with the same arg-max, mean |top-k(ref) ∩ top-k(cand)| / k) over the last axis."""
    classes = ref.shape[-1]
    r = ref.reshape(-1, classes)
    c = cand.reshape(-1, classes)
    top1 = float(np.mean(r.argmax(axis=1) == c.argmax(axis=1)))
    k = min(k, classes)
    rk = np.argpartition(-r, k - 1, axis=1)[:, :k]
    ck = np.argpartition(-c, k - 1, axis=1)[:, :k]
    overlap = [len(set(a) & set(b)) / k for a, b in zip(rk.tolist(), ck.tolist(), strict=True)]
    return top1, float(np.mean(overlap))


def _psnr(ref: np.ndarray, cand: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, the peak being the reference's range."""
    mse = float(np.mean((ref - cand) ** 2))
    peak = float(ref.max() - ref.min()) if ref.size else 0.0
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(max(peak, 1e-12) ** 2 / mse)


def compare_arrays(
    reference: Sequence[np.ndarray] | np.ndarray,
    candidate: Sequence[np.ndarray] | np.ndarray,
    criterion: Criterion,
    *,
    name: str = "output",
    label: str = "candidate",
    precision: str = "fp32",
    kind: str | None = None,
    topk: int = 5,
) -> OutputResult:
    """Compare one output (a list of arrays, one per input set, or one array) with its reference."""
    refs = [np.asarray(a) for a in (reference if isinstance(reference, list | tuple) else [reference])]
    cands = [np.asarray(a) for a in (candidate if isinstance(candidate, list | tuple) else [candidate])]
    res = OutputResult(label, name, passed=False, precision=precision,
                       criterion=criterion.describe() if isinstance(criterion, Check) else
                       f"{precision}: rel_l2≤{criterion.rel_l2:g}, max_abs≤{criterion.max_abs:g}·max|ref|, "
                       f"cos≥{criterion.cosine:g}")
    res.ref_shape, res.shape = tuple(refs[0].shape), tuple(cands[0].shape)
    res.ref_dtype, res.dtype = str(refs[0].dtype), str(cands[0].dtype)
    res.kind = kind or output_kind(name, refs[0].shape, refs[0].dtype)
    shapes_differ = [(r.shape, c.shape) for r, c in zip(refs, cands, strict=True) if r.shape != c.shape]
    if shapes_differ:
        # A size-1 axis that one runtime keeps and another squeezes is a real interface difference too.
        res.reason = f"shape {shapes_differ[0][1]} differs from the reference's {shapes_differ[0][0]}"
        return res
    rk, ck = refs[0].dtype.kind, cands[0].dtype.kind
    if rk != ck and not (rk in "iu" and ck in "iu"):  # float vs int, bool vs float, …: another interface
        res.reason = f"dtype {cands[0].dtype} differs in kind from the reference's {refs[0].dtype}"
        return res
    if refs[0].dtype != cands[0].dtype:
        res.notes.append(f"dtype {cands[0].dtype} vs reference {refs[0].dtype}")

    ref = np.concatenate([r.astype(np.float64, copy=False).ravel() for r in refs])
    cand = np.concatenate([c.astype(np.float64, copy=False).ravel() for c in cands])
    reasons = []
    cand_nan, ref_nan = np.isnan(cand), np.isnan(ref)
    res.nan_count = int(cand_nan.sum())
    cand_inf = np.isinf(cand)
    # An Inf the reference has too, at the same place and with the same sign, is agreement.
    matched_inf = cand_inf & np.isinf(ref) & (np.sign(cand) == np.sign(ref))
    res.inf_count = int(cand_inf.sum())
    if res.nan_count:
        reasons.append(f"{res.nan_count} NaN value(s)")
    if int((cand_inf & ~matched_inf).sum()):
        reasons.append(f"{int((cand_inf & ~matched_inf).sum())} Inf value(s) the reference does not have")
    if int(ref_nan.sum()):
        reasons.append(f"the reference itself has {int(ref_nan.sum())} NaN value(s)")
    finite = np.isfinite(ref) & np.isfinite(cand)
    r, c = ref[finite], cand[finite]
    if r.size:
        diff = c - r
        absdiff = np.abs(diff)
        with np.errstate(divide="ignore", invalid="ignore"):
            reldiff = np.where(absdiff == 0, 0.0, absdiff / np.abs(r))
        q = criterion.quantile if isinstance(criterion, Check) and criterion.mode == "quantile" else 0.99
        res.max_abs, res.mean_abs = float(absdiff.max()), float(absdiff.mean())
        res.max_rel = float(reldiff.max())
        res.quantile_abs = float(np.quantile(absdiff, q))
        res.rel_l2, res.max_abs_rel, res.cosine = metrics(r, c)  # the measures tolerances.py is stated in
        if isinstance(criterion, Check):
            ok = criterion.passes(absdiff, reldiff)
            if not ok:
                reasons.append(f"error beyond {criterion.describe()} (max abs {res.max_abs:.3g}, "
                               f"max rel {res.max_rel:.3g})")
        elif not criterion.check(res.rel_l2, res.max_abs_rel, res.cosine):
            over = []
            if res.rel_l2 > criterion.rel_l2:
                over.append(f"rel_l2 {res.rel_l2:.3g} > {criterion.rel_l2:g}")
            if res.max_abs_rel > criterion.max_abs:
                over.append(f"max_abs/max|ref| {res.max_abs_rel:.3g} > {criterion.max_abs:g}")
            if res.cosine < criterion.cosine:
                over.append(f"cosine {res.cosine:.6f} < {criterion.cosine:g}")
            reasons.append(f"beyond the {precision} tolerance: " + ", ".join(over))
        if res.kind == "logits" and all(np.isfinite(a).all() for a in cands):
            res.top1, res.topk = _topk_agreement(np.concatenate([a.reshape(-1, a.shape[-1]) for a in refs]),
                                                 np.concatenate([a.reshape(-1, a.shape[-1]) for a in cands]), topk)
        elif res.kind == "image":
            res.psnr = _psnr(r, c)
    elif ref.size and not reasons:
        reasons.append("no finite values to compare")
    res.reason = "; ".join(reasons)
    res.passed = not reasons
    return res


# -- running models -------------------------------------------------------------------------------


@dataclass
class _Target:
    """A model to run, how, and (once run) what it is."""

    model: Model
    backend: str
    options: dict[str, Any]
    runner: Runner | None = None  # given by the user: used as is, not closed
    callable_: Callable[[Feeds], Feeds] | None = None
    label: str = ""


def _as_target(item: Any, backend: str | None = None, options: dict[str, Any] | None = None) -> _Target:
    from workbench.api import load
    from workbench.core.model import Model
    from workbench.core.runner import Runner
    from workbench.steps.routing import default_backend

    if isinstance(item, Runner):
        return _Target(item.model, item.name, dict(item.options), runner=item)
    if isinstance(item, tuple):
        if not 2 <= len(item) <= 3 or not isinstance(item[1], str):
            raise WorkbenchError(f"cannot compare a tuple of {len(item)} items",
                                 "pass (model, 'backend') or (model, 'backend', {options})")
        opts = dict(item[2]) if len(item) == 3 else {}
        return _as_target(item[0], item[1], {**(options or {}), **opts})
    model = item if isinstance(item, Model) else load(item)
    return _Target(model, backend or default_backend(model), dict(options or {}))


def _label(t: _Target, used: set[str]) -> str:
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


def _feeds_for(model: Model, feeds: Feeds) -> Feeds:
    """``feeds`` renamed to ``model``'s input names by position when the names differ (a converted model
    may rename its inputs)."""
    names = model.input_names
    if not names or all(n in feeds for n in names):
        return {n: feeds[n] for n in names} if names else feeds
    if len(names) == len(feeds):
        return dict(zip(names, feeds.values(), strict=True))
    raise InputError(f"inputs {list(feeds)} do not match {model.name}'s inputs {names}",
                     "pass inputs= with the model's input names")


def _run(t: _Target, inputs: list[Feeds]) -> tuple[list[Feeds], str]:
    """Run ``t`` on every input set; return the outputs and the precision it computed in."""
    from workbench.steps.routing import runner as make_runner

    own = t.runner is None
    r = t.runner or make_runner(t.model, t.backend, **t.options)
    try:
        if not r.is_prepared:
            r.prepare()
        outs = [{k: np.asarray(v) for k, v in r.infer(_feeds_for(r.model, feeds)).items()} for feeds in inputs]
        return outs, precision_of(t.model, r)
    finally:
        if own:
            r.close()


def _match_outputs(ref: Feeds, cand: Feeds) -> list[tuple[str, str | None]]:
    """Pairs (reference output name, candidate output name): by name, else by position."""
    if all(n in cand for n in ref):
        return [(n, n) for n in ref]
    if len(ref) == len(cand):
        return list(zip(ref, cand, strict=True))
    return [(n, n if n in cand else None) for n in ref]


def default_inputs(model: Model, n: int = 3, batch: int | None = None) -> list[Feeds]:
    """``n`` seeded input sets from the model's task (or its input specs)."""
    return [model.example_inputs(batch=batch, seed=seed) for seed in range(n)]


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
        reference: a Model (or anything ``wb.load`` takes), a ``(model, backend)`` or
            ``(model, backend, {options})`` pair, or a prepared Runner.
        candidates: one or a list of the same kinds. Each runs on its natural runtime
            (``workbench.api.default_backend``) unless a backend is given.
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

    ref_t = _as_target(reference, reference_backend)
    used: set[str] = set()
    ref_t.label = _label(ref_t, used)
    if inputs is None:
        feeds_list = default_inputs(ref_t.model, n_inputs, batch)
    elif isinstance(inputs, dict):
        feeds_list = [inputs]
    else:
        feeds_list = list(inputs)
        if not feeds_list or not all(isinstance(f, dict) for f in feeds_list):
            raise InputError("inputs must be a dict of arrays or a non-empty list of such dicts",
                             "pass inputs={name: array} or [{name: array}, ...], or leave it out")
    ref_outs, ref_precision = _run(ref_t, feeds_list)
    ref_info = CandidateInfo(ref_t.label, ref_t.model.name, ref_t.model.format, ref_t.backend, ref_precision,
                             _plain(ref_t.options))

    infos: list[CandidateInfo] = []
    results: list[OutputResult] = []
    for item, be in zip(cand_items, backend_list, strict=True):
        try:
            t = _as_target(item, be)
        except WorkbenchError as err:
            label = f"candidate {len(infos) + 1}"
            infos.append(CandidateInfo(label, str(item)[:60], "?", be or "?", "?", error=str(err)))
            results.append(OutputResult(label, "*", passed=False, reason=f"could not load: {err}"))
            continue
        t.label = _label(t, used)
        try:
            outs, precision = _run(t, feeds_list)
        except Exception as err:  # noqa: BLE001 - one broken candidate must not hide the others' results
            msg = str(err).strip().splitlines()[0][:300] if str(err) else type(err).__name__
            prec = precision_of(t.model)
            infos.append(CandidateInfo(t.label, t.model.name, t.model.format, t.backend, prec, _plain(t.options), msg))
            results.append(OutputResult(t.label, "*", passed=False, reason=f"could not run: {msg}", precision=prec))
            continue
        effective = loosest(precision, ref_precision)
        infos.append(CandidateInfo(t.label, t.model.name, t.model.format, t.backend, effective, _plain(t.options)))
        for ref_name, cand_name in _match_outputs(ref_outs[0], outs[0]):
            criterion = _criterion(per_output.get(ref_name, default_spec), effective)
            if cand_name is None:
                results.append(OutputResult(t.label, ref_name, passed=False, precision=effective,
                                            reason=f"output {ref_name!r} is missing (outputs: {list(outs[0])})"))
                continue
            res = compare_arrays([o[ref_name] for o in ref_outs], [o[cand_name] for o in outs], criterion,
                                 name=ref_name, label=t.label, precision=effective,
                                 kind=(kinds or {}).get(ref_name), topk=topk)
            if cand_name != ref_name:
                res.notes.append(f"matched by position to the candidate's {cand_name!r}")
            results.append(res)
    return Comparison(ref_info, infos, results, len(feeds_list), topk)


def compare_outputs(
    reference: Feeds | list[Feeds],
    candidate: Feeds | list[Feeds],
    *,
    precision: str = "fp32",
    tolerances: Any = None,
    label: str = "candidate",
    topk: int = 5,
) -> Comparison:
    """Compare outputs already computed (``{name: array}`` or a list of them, one per input set)."""
    refs = [reference] if isinstance(reference, dict) else list(reference)
    cands = [candidate] if isinstance(candidate, dict) else list(candidate)
    if len(refs) != len(cands):
        raise InputError(f"{len(refs)} reference output sets but {len(cands)} candidate ones",
                         "pass outputs for the same input sets")
    per_output = tolerances if isinstance(tolerances, dict) else {}
    default_spec = None if isinstance(tolerances, dict) else tolerances
    results = []
    for ref_name, cand_name in _match_outputs(refs[0], cands[0]):
        crit = _criterion(per_output.get(ref_name, default_spec), precision)
        if cand_name is None:
            results.append(OutputResult(label, ref_name, passed=False, precision=precision,
                                        reason=f"output {ref_name!r} is missing"))
            continue
        results.append(compare_arrays([o[ref_name] for o in refs], [o[cand_name] for o in cands], crit,
                                      name=ref_name, label=label, precision=precision, topk=topk))
    ref_info = CandidateInfo("reference", "reference", "arrays", "-", "fp32")
    return Comparison(ref_info, [CandidateInfo(label, label, "arrays", "-", precision)], results, len(refs), topk)


def _plain(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, bool | int | float | str | type(None)) else str(v) for k, v in options.items()}


# -- layer-wise comparison -----------------------------------------------------------------------------

#: suffixes quantizers give a tensor's quantized copy; stripping them finds its float twin
QDQ_SUFFIXES = ("_DequantizeLinear_Output", "_QuantizeLinear_Output", "_dequantized", "_quantized", "_output_0_DQ")
_FLOAT_TYPES = {1, 10, 11, 16}  # ONNX FLOAT, FLOAT16, DOUBLE, BFLOAT16
_ONNX_ITEMSIZE = {1: 4, 10: 2, 11: 8, 16: 2}


@dataclass
class LayerRow:
    """The error of one node's output on one runtime, against the reference's same (or twin) tensor."""

    backend: str
    index: int  # position of the node in the graph (topological order)
    node: str
    op_type: str
    tensor: str
    ref_tensor: str
    module: str  # the torch module the node came from, where the export kept it
    passed: bool
    precision: str
    rel_l2: float = math.nan
    max_abs: float = math.nan
    max_abs_rel: float = math.nan
    cosine: float = math.nan
    note: str = ""


@dataclass
class LayerReport:
    """Per-node error of a model's intermediate tensors on each runtime, against a reference.

    ``first_divergent`` is the earliest node (graph order) whose error exceeds its runtime's tolerance;
    ``per_node(backend)`` gives ``{node: rel_l2}`` for ``GraphView.overlay``; ``bool(report)`` is True
    when no node diverges.
    """

    rows: list[LayerRow]
    backends: list[str]
    reference: str
    model: str
    tolerances: dict[str, str] = field(default_factory=dict)
    chunks: int = 1
    errors: dict[str, str] = field(default_factory=dict)  # backend -> why it could not run

    def __bool__(self) -> bool:
        return not self.errors and all(r.passed for r in self.rows)

    def first_divergent_on(self, backend: str) -> LayerRow | None:
        failed = [r for r in self.rows if r.backend == backend and not r.passed]
        return min(failed, key=lambda r: r.index) if failed else None

    @property
    def first_divergent(self) -> LayerRow | None:
        """The earliest diverging node on any runtime (None when every node is within tolerance)."""
        found = [r for r in (self.first_divergent_on(b) for b in self.backends) if r is not None]
        return min(found, key=lambda r: (r.index, self.backends.index(r.backend))) if found else None

    def per_node(self, backend: str | None = None, metric: str = "rel_l2") -> dict[str, float]:
        """``{node name: error}`` on ``backend`` (default: the first), the worst of a node's outputs."""
        backend = backend or self.backends[0]
        pick = min if metric == "cosine" else max  # the worst output of a node
        out: dict[str, float] = {}
        for r in self.rows:
            value = getattr(r, metric)
            if r.backend == backend and not math.isnan(value):
                out[r.node] = pick(out[r.node], value) if r.node in out else value
        return out

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.rows])

    def summary(self) -> str:
        lines = [f"{self.model}: {len({r.node for r in self.rows})} nodes compared with {self.reference} "
                 f"on {', '.join(self.backends)}"]
        for b in self.backends:
            if b in self.errors:
                lines.append(f"  {b}: could not run: {self.errors[b]}")
                continue
            first = self.first_divergent_on(b)
            n_fail = sum(1 for r in self.rows if r.backend == b and not r.passed)
            lines.append(f"  {b} [{self.tolerances.get(b, '')}]: " + (
                "every node within tolerance" if first is None else
                f"{n_fail} node output(s) beyond tolerance; first: {first.node} ({first.op_type}"
                + (f", module {first.module}" if first.module else "") + f") rel_l2={first.rel_l2:.3g}"))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<LayerReport>\n{self.summary()}"

    def to_json(self, indent: int | None = 2) -> str:
        from workbench.analysis.report import to_json_text

        first = self.first_divergent
        return to_json_text("layer_report", {
            "model": self.model, "reference": self.reference, "backends": self.backends,
            "tolerances": self.tolerances, "chunks": self.chunks, "errors": self.errors, "passed": bool(self),
            "first_divergent": asdict(first) if first else None, "rows": [asdict(r) for r in self.rows]},
            indent=indent)

    html_title = "Layer-wise comparison"

    def html_sections(self) -> list[str]:
        from html import escape

        from workbench.analysis.report import svg_scatter

        parts = [f"<pre>{escape(self.summary())}</pre>"]
        for b in self.backends:
            first = self.first_divergent_on(b)
            pts = [{"x": r.index, "y": r.rel_l2, "label": f"{r.node} ({r.op_type})", "highlight": not r.passed,
                    "annotate": r is first} for r in self.rows if r.backend == b]
            parts.append(svg_scatter(pts, f"Relative L2 error per node on {b} (orange: beyond tolerance; "
                                     "labelled: the first)",
                                     "node index (graph order)", "rel L2", log_y=True))
        return parts


def _node_module(node: Any) -> str:
    """The torch module path (and class) a node came from, from the exporter's metadata or its name."""
    try:
        from workbench.core.graph import _onnx_scope

        scope = _onnx_scope(node)
    except Exception:  # noqa: BLE001 - metadata we cannot read: no module
        scope = ()
    path = scope[-1] if scope else ""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.class_hierarchy" and path:
            try:
                import ast

                classes = ast.literal_eval(prop.value)
                if len(classes) >= 2:
                    return f"{path} ({str(classes[-2]).rsplit('.', 1)[-1]})"
            except (ValueError, SyntaxError):
                pass
    return path


def _twin(name: str, ref_names: set[str]) -> str | None:
    if name in ref_names:
        return name
    for suffix in QDQ_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in ref_names:
            return name[: -len(suffix)]
    return None


def _onnx_model(model: Any) -> Model:
    from workbench.api import load
    from workbench.core.model import Model
    from workbench.steps.routing import prepare_for

    model = model if isinstance(model, Model) else load(model)
    if model.format == "onnx":
        return model
    if model.format in ("torch", "hf", "exported_program"):
        return prepare_for(model, "onnxruntime")
    raise WorkbenchError(f"compare_layers needs an ONNX model, got {model.format}",
                         "export it first: wb.export(model, 'onnx')")


def _tensor_types(proto: Any) -> dict[str, tuple[int, list[int | None]]]:
    """Tensor name -> (ONNX elem type, dims with None for unknown), from shape inference."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(proto, data_prop=False).graph
    except Exception:  # noqa: BLE001 - models shape inference cannot handle: types unknown
        inferred = proto.graph
    out = {}
    for vi in [*inferred.value_info, *inferred.output, *inferred.input]:
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        out[vi.name] = (t.elem_type, dims)
    return out


def _run_with_outputs(proto: Any, names: list[str], types: dict[str, tuple[int, list[int | None]]],
                      backend: str, options: dict[str, Any], feeds: Feeds, folder: str) -> tuple[Feeds, str]:
    """Run ``proto`` with ``names`` as its outputs; returns the outputs and the precision it ran in."""
    import os

    import onnx
    from onnx import helper

    from workbench.api import load
    from workbench.steps.routing import runner

    saved = list(proto.graph.output)
    del proto.graph.output[:]
    for n in names:
        elem = types.get(n, (0, []))[0]
        proto.graph.output.append(helper.make_tensor_value_info(n, elem, None) if elem
                                  else helper.make_empty_tensor_value_info(n))
    path = os.path.join(folder, f"layers-{backend}.onnx")
    try:
        big = proto.ByteSize() > 1_800_000_000  # protobuf's 2 GB limit: weights go to a side file
        onnx.save_model(proto, path, save_as_external_data=big, location=os.path.basename(path) + ".data")
    finally:
        del proto.graph.output[:]
        proto.graph.output.extend(saved)
    model = load(path)
    with runner(model, backend, **options) as r:
        outs = r.infer(_feeds_for(model, feeds))
        return outs, precision_of(model, r)


@dataclass
class _LayerTarget:
    """One tensor to compare: where it is in the candidate, and its twin in the reference."""

    index: int
    node: str
    op_type: str
    module: str
    tensor: str  # its name in the candidate (an ONNX tensor name, or the OpenVINO port's label)
    twin: str  # the reference's tensor name
    nbytes: int
    port: tuple[str, int] | None = None  # OpenVINO: (op friendly name, output index)


def _onnx_targets(proto: Any, types: dict[str, tuple[int, list[int | None]]], ref_names: set[str],
                  wanted: set[str] | None, batch: int) -> list[_LayerTarget]:
    consumers: dict[str, set[str]] = {}
    for node in proto.graph.node:
        for i in node.input:
            consumers.setdefault(i, set()).add(node.op_type)
    targets = []
    for index, node in enumerate(proto.graph.node):
        if wanted is not None and node.name not in wanted and node.op_type not in wanted:
            continue
        if node.op_type in ("Constant", "QuantizeLinear", "Shape"):
            continue
        for out in node.output:
            elem, dims = types.get(out, (0, []))
            twin = _twin(out, ref_names)
            if not out or twin is None or (elem and elem not in _FLOAT_TYPES):
                continue
            if consumers.get(out) == {"QuantizeLinear"}:
                # only quantized next: its Q→DQ copy is the tensor the model uses (and a quantizer may have
                # dropped a ReLU into the quantization range, so the raw tensor is pre-activation)
                continue
            size = _ONNX_ITEMSIZE.get(elem, 4) * int(np.prod([d if d else batch for d in dims])) if dims else 4 << 20
            targets.append(_LayerTarget(index, node.name, node.op_type, _node_module(node), out, twin, size))
    return targets


_OV_SKIP = {"Parameter", "Constant", "Result", "ShapeOf", "Convert"}


def _openvino_targets(ov_model: Any, ref_names: set[str], producers: dict[str, str], wanted: set[str] | None,
                      batch: int) -> list[_LayerTarget]:
    """The float outputs of an OpenVINO IR's ops that have a twin in the reference: by tensor name
    (the ONNX frontend keeps them), and for NNCF's FakeQuantize the tensor it quantizes. Rows are named
    after the reference node that produced the twin, so they line up with the ONNX graph."""
    targets = []
    for index, op in enumerate(ov_model.get_ordered_ops()):
        kind, name = op.get_type_name(), op.get_friendly_name()
        if kind in _OV_SKIP or (wanted is not None and name not in wanted and kind not in wanted):
            continue
        for port in op.outputs():
            if not port.get_element_type().is_real():
                continue
            names = port.get_names()
            if kind == "FakeQuantize":
                names = op.input(0).get_source_output().get_names()
            twin = next((n for n in sorted(names) if n in ref_names), None)
            if twin is None:
                continue
            if kind != "FakeQuantize" and {t.get_node().get_type_name() for t in port.get_target_inputs()} == {"FakeQuantize"}:
                continue  # only quantized next: the FakeQuantize output is compared instead
            shape = port.get_partial_shape()
            dims = [d.get_length() if d.is_static else batch for d in shape] if shape.rank.is_static else None
            size = 4 * int(np.prod(dims)) if dims else 4 << 20
            label = f"{twin} (FakeQuantize)" if kind == "FakeQuantize" else twin
            targets.append(_LayerTarget(index, producers.get(twin, name), kind, "", label, twin, size,
                                        (name, port.get_index())))
    return targets


def _run_openvino_ports(path: str, ports: list[tuple[str, int]], options: dict[str, Any],
                        feeds: Feeds) -> tuple[list[np.ndarray], str]:
    """Run the IR at ``path`` with the given op output ports added as outputs; their values in order."""
    import openvino as ov

    from workbench.core.model import Model
    from workbench.formats.openvino import specs_of
    from workbench.steps.routing import runner

    ov_model = ov.Core().read_model(path)
    by_name = {op.get_friendly_name(): op for op in ov_model.get_ordered_ops()}
    ov_model.add_outputs([by_name[name].output(i) for name, i in ports])  # no-op for a port already an output
    # each model output is a Result node: the port it reads is the one asked for
    sources = []
    for out in ov_model.outputs:
        src = out.get_node().input(0).get_source_output()
        sources.append((src.get_node().get_friendly_name(), src.get_index()))
    inputs, outputs = specs_of(ov_model)
    model = Model("openvino", name="layers", inputs=inputs, outputs=outputs, native=ov_model)
    with runner(model, "openvino", **options) as r:
        values = list(r.infer(_feeds_for(model, feeds)).values())
        precision = precision_of(model, r)
    found = dict(zip(sources, values, strict=True))
    return [found[p] for p in ports], precision


def compare_layers(
    model: Any,
    backends: str | Sequence[str | tuple[str, dict[str, Any]]] = ("onnxruntime", "openvino"),
    *,
    reference: Any = None,
    nodes: Iterable[str] | None = None,
    inputs: Feeds | None = None,
    tolerances: Any = None,
    chunk_bytes: int = 256 * 2**20,
) -> LayerReport:
    """Compare the output of every node (or the chosen ones) of ``model`` on each runtime with a reference.

    Args:
        model: an ONNX model (a torch model is exported first), or an OpenVINO IR (e.g. NNCF's INT8)
            with ``reference=`` its float ONNX model; an IR runs on ``"openvino"`` only.
        backends: runtimes to check, names or ``(name, {options})`` (e.g. ``("openvino", {"precision": "fp32"})``).
        reference: the float model whose tensors are the truth, matched by name (a quantized model's
            QDQ tensors are matched to their float twins: ``x_DequantizeLinear_Output`` ↔ ``x``, and
            NNCF's FakeQuantize outputs to the tensor they quantize).
            Default: ``model`` itself on ONNX Runtime with graph optimisations off (the ONNX semantics).
        nodes: node names or op types to compare (default: every node with a float output).
        inputs: one set of feeds (default: the model's example inputs).
        tolerances: as for ``wb.compare`` (default: from each runtime's precision, ``tolerances.py``).
        chunk_bytes: the intermediate tensors of one run are kept under about this many bytes; a large
            model is run in several passes, so memory stays bounded on a model of thousands of nodes.

    Returns:
        a LayerReport: ``first_divergent``, ``per_node()``, ``to_frame()``, ``to_json()``.
    """
    import tempfile

    from workbench.api import load
    from workbench.core.model import Model

    given = model if isinstance(model, Model) else load(model)
    is_ir = given.format == "openvino"
    if is_ir and reference is None:
        raise WorkbenchError("comparing an OpenVINO IR's layers needs the float model it came from",
                             "pass reference= the ONNX model the IR was converted or quantized from")
    cand = given if is_ir else _onnx_model(given)
    ref = _onnx_model(reference) if reference is not None else cand
    ref_proto = ref.native()
    # the task's real data where either model has it (a quantized model's calibration range fits it)
    feeds = inputs if inputs is not None else (cand if cand.task is not None else ref).example_inputs()
    specs: list[tuple[str, dict[str, Any]]] = []
    for b in [backends] if isinstance(backends, str) else list(backends):
        specs.append((b, {}) if isinstance(b, str) else (b[0], dict(b[1])))
    if not specs:
        raise WorkbenchError("no backends to compare", "pass backends=['onnxruntime', 'openvino']")
    labels = []
    for name, opts in specs:
        label = name + (" (" + ", ".join(f"{k}={v}" for k, v in opts.items()) + ")" if opts else "")
        labels.append(label if label not in labels else f"{label} #{len(labels) + 1}")

    ref_types = _tensor_types(ref_proto)
    ref_names = {o for n in ref_proto.graph.node for o in n.output} | {i.name for i in ref_proto.graph.input}
    wanted = set(nodes) if nodes is not None else None
    batch = max([int(np.shape(v)[0]) for v in feeds.values() if np.ndim(v)] or [1])
    if is_ir:
        proto, types = None, {}
        producers = {o: n.name for n in ref_proto.graph.node for o in n.output}
        targets = _openvino_targets(cand.native(), ref_names, producers, wanted, batch)
    else:
        proto = cand.native()
        types = ref_types if proto is ref_proto else _tensor_types(proto)
        targets = _onnx_targets(proto, types, ref_names, wanted, batch)
    if not targets:
        raise WorkbenchError("no node outputs to compare", "check nodes= (node names or op types of the model)")
    chunks: list[list[_LayerTarget]] = [[]]
    used = 0
    for t in targets:
        if chunks[-1] and used + t.nbytes > chunk_bytes:
            chunks.append([])
            used = 0
        chunks[-1].append(t)
        used += t.nbytes

    per_output = tolerances if isinstance(tolerances, dict) else {}
    default_spec = None if isinstance(tolerances, dict) else tolerances
    rows: list[LayerRow] = []
    errors: dict[str, str] = {}
    precisions: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="wb-layers-") as tmp:
        for chunk in chunks:
            twins = list(dict.fromkeys(t.twin for t in chunk))
            ref_outs, ref_precision = _run_with_outputs(ref_proto, twins, ref_types, "onnxruntime",
                                                        {"graph_optimization_level": "disable"}, feeds, tmp)
            for label, (backend, opts) in zip(labels, specs, strict=True):
                if label in errors:
                    continue
                try:
                    if is_ir:
                        if backend != "openvino":
                            raise WorkbenchError(f"{backend} cannot run an OpenVINO IR", "compare on 'openvino'")
                        values, prec = _run_openvino_ports(str(cand.path), [t.port for t in chunk], opts, feeds)
                    else:
                        outs, prec = _run_with_outputs(proto, [t.tensor for t in chunk], types, backend, opts,
                                                       feeds, tmp)
                        values = [outs[t.tensor] for t in chunk]
                except Exception as err:  # noqa: BLE001 - report the runtime that failed, keep the others
                    errors[label] = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
                    continue
                # the candidate's own precision (QDQ / FakeQuantize: int8) and its runtime's (OpenVINO: bf16)
                precision = loosest(prec, ref_precision, precision_of(cand))
                precisions[label] = precision
                for t, value in zip(chunk, values, strict=True):
                    crit = _criterion(per_output.get(t.tensor, default_spec), precision)
                    res = compare_arrays(ref_outs[t.twin], value, crit, name=t.tensor, label=label,
                                         precision=precision, kind="tensor")
                    rows.append(LayerRow(label, t.index, t.node, t.op_type, t.tensor, t.twin, t.module, res.passed,
                                         precision, res.rel_l2, res.max_abs, res.max_abs_rel, res.cosine, res.reason))
                del values
            del ref_outs
    tol_text = {}
    for label, prec in precisions.items():
        crit = _criterion(default_spec, prec)
        tol_text[label] = crit.describe() if isinstance(crit, Check) else f"{prec}: rel_l2≤{crit.rel_l2:g}, cos≥{crit.cosine:g}"
    return LayerReport(rows, labels, "float reference" if reference is not None else "ONNX Runtime, no optimisations",
                       cand.name, tol_text, len(chunks), errors)


class _CallableModule(types.ModuleType):
    """``wb.compare`` names both this module and its function: importing the module (``from
    workbench.analysis.compare import Check``) makes Python set ``workbench.analysis.compare`` to the module, hiding the
    lazily exported function. Calling the module calls the function, so ``wb.compare(...)`` always works."""

    def __call__(self, *args: Any, **kwargs: Any) -> Comparison:
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

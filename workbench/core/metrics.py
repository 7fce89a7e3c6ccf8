"""Output metrics: do these outputs agree? (after Polygraphy's ``run --compare``; the runs are elsewhere)

Per output of a candidate against its reference: max and mean absolute error, relative L2 error,
cosine similarity, top-1 / top-k agreement for logits, PSNR for images, NaN and Inf counts, shape and
dtype. Each output passes or fails against a criterion:

* a ``Tolerance`` for a precision (``workbench/core/tolerances.py``: fp32, fp16, bf16, int8, int4), with
  errors measured relative to the output's scale; the precision comes from ``workbench.core.precision``;
* or Polygraphy's ``Check``: ``atol`` / ``rtol`` with ``mode="elemwise"`` (every element within ``atol``
  *or* within ``rtol`` of the reference), or a statistic of the error (``"max"``, ``"mean"``, ``"median"``,
  ``"quantile"`` with ``quantile=0.99``) within them.

NaN in an output always fails; Inf fails unless the reference has the same Inf at the same place; a
shape mismatch fails; a dtype of another kind (int vs float) fails, a narrower float (fp16) is noted.

``compare_outputs`` compares outputs already computed; ``workbench.analysis.compare.compare`` runs models
and uses the same metrics; step validation (``workbench.steps.validate``) does too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import InputError, WorkbenchError
from workbench.core.precision import normalize_precision
from workbench.core.results import result_type, to_json
from workbench.core.tolerances import Tolerance, metrics, tolerance

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

Feeds = dict[str, np.ndarray]

CHECK_MODES = ("elemwise", "max", "mean", "median", "quantile")


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


def criterion(spec: Any, precision: str) -> Criterion:
    """The criterion one output is held to, from what a user may pass: None (the ``precision``'s
    Tolerance), a precision name, a Tolerance, a Check, or a dict of Check fields."""
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
    path: str | None = None  # the model's file, where it has one (so a report's code can load it again)


@result_type("comparison")
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
            worst = worst_per_measure(rows)
            detail = ""
            if "rel_l2" in worst:
                several = len({r.output for r in rows}) > 1
                detail = " ".join(f"{m}={worst[m]:{fmt}}" + (f" ({worst[m + '_output']})" if several else "")
                                  for m, fmt in (("rel_l2", ".2e"), ("max_abs", ".2e"), ("cosine", ".6f"),
                                                 ("top1", ".3f")) if m in worst)
            reasons = "; ".join(f"{r.output}: {r.reason}" for r in rows if not r.passed)
            lines.append(f"  {'PASS' if ok else 'FAIL'}  {cand.label} [{cand.precision}]  {detail}"
                         + (f"  — {reasons}" if reasons else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Comparison {'PASS' if self else 'FAIL'}>\n{self.summary()}"

    def _repr_html_(self) -> str:
        from html import escape

        columns = ["passed", "precision", "max_abs", "mean_abs", "rel_l2", "cosine", "top1", "psnr", "nan_count"]
        frame = self.to_frame()
        # the figures one line per output; a failure's reason (long text) is a numbered note under the table
        reasons = [(f"{r.candidate} · {r.output}", r.reason) for r in self.results if r.reason]
        if len(frame):
            frame = frame[columns].copy()
            marks = iter(range(1, len(reasons) + 1))
            frame["note"] = [f"[{next(marks)}]" if r.reason else "" for r in self.results]
        table = frame.to_html(float_format=lambda v: f"{v:.3g}") if len(frame) else ""
        table = table.replace("<td>", '<td style="white-space:nowrap">')
        notes = "".join(f"<li>{escape(who)}: {escape(why)}</li>" for who, why in reasons)
        return (f"<div><b>Comparison with {escape(self.reference.label)} on {self.n_inputs} input set(s): "
                f"{'PASS' if self else 'FAIL'}</b>{table}"
                + (f"<ol style='font-size:11px;margin:2px 0 8px'>{notes}</ol>" if notes else "") + "</div>")

    def json_extras(self) -> dict[str, Any]:
        """Derived figures a reader of the JSON wants (``workbench.core.results``)."""
        return {"passed": bool(self)}

    def to_dict(self) -> dict[str, Any]:
        return {"reference": asdict(self.reference), "candidates": [asdict(c) for c in self.candidates],
                "n_inputs": self.n_inputs, "topk": self.topk, "passed": bool(self),
                "results": [asdict(r) for r in self.results]}

    def to_json(self, indent: int | None = 2) -> str:
        """JSON with ``schema: "workbench.comparison"`` and a schema version."""
        return to_json(self, indent=indent)


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
    if not all(_numeric(a) for a in (*refs, *cands)):  # strings and other objects: equal or not
        return _compare_exact(refs, cands, res)
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


#: the measures a headline reports, and whether larger is worse (errors) or better (agreements)
HEADLINE_MEASURES = (("max_abs", True), ("rel_l2", True), ("max_abs_rel", True), ("mean_abs", True),
                     ("cosine", False), ("top1", False), ("topk", False))


def worst_per_measure(results: Sequence[OutputResult]) -> dict[str, Any]:
    """The worst value of each measure over ``results`` (the outputs of one candidate), each from the
    output where it is worst, and that output's name: ``{"max_abs": 2.6e-2, "max_abs_output":
    "last_hidden_state", "rel_l2": …, "rel_l2_output": …}``. Measures no output has (NaN, None) are left out.

    One output's rel_l2 can be the worst while another's max_abs is: a headline taken from a single
    "worst" output would understate the other measure.
    """
    out: dict[str, Any] = {}
    for measure, larger_is_worse in HEADLINE_MEASURES:
        rows = [(getattr(r, measure), r.output) for r in results
                if getattr(r, measure) is not None and not math.isnan(getattr(r, measure))]
        if rows:
            value, name = (max if larger_is_worse else min)(rows, key=lambda t: t[0])
            out[measure], out[f"{measure}_output"] = value, name
    return out


def _numeric(arr: np.ndarray) -> bool:
    """Whether an array's values are numbers (NumPy's, or ml_dtypes' bfloat16 / float8 / int4)."""
    kind = arr.dtype.kind
    if kind in "biuf":
        return True
    if kind == "V":
        try:
            arr[:0].astype(np.float64)
        except (TypeError, ValueError):
            return False
        return True
    return False


def _compare_exact(refs: list[np.ndarray], cands: list[np.ndarray], res: OutputResult) -> OutputResult:
    """Non-numeric outputs (strings, objects): every element must be equal; the error measures stay NaN."""
    res.kind = "tensor"
    if any(r.shape != c.shape for r, c in zip(refs, cands, strict=True)):
        pair = next((r.shape, c.shape) for r, c in zip(refs, cands, strict=True) if r.shape != c.shape)
        res.reason = f"shape {pair[1]} differs from the reference's {pair[0]}"
        return res
    total = sum(r.size for r in refs)
    differ = sum(int((r.astype(object) != c.astype(object)).sum()) for r, c in zip(refs, cands, strict=True))
    res.notes.append(f"{res.dtype} values compared for equality")
    if differ:
        first = next((r.astype(object)[r.astype(object) != c.astype(object)].ravel()[0],
                      c.astype(object)[r.astype(object) != c.astype(object)].ravel()[0])
                     for r, c in zip(refs, cands, strict=True) if (r.astype(object) != c.astype(object)).any())
        res.reason = f"{differ} of {total} values differ (first: {first[1]!r} instead of {first[0]!r})"
    res.passed = not differ
    return res


def _leaves(value: Any) -> tuple[Any, list[np.ndarray]]:
    """(structure, arrays) of an output that is a sequence / optional / map: the structure says which
    items are None, how long each list is and each array's shape; the arrays are the leaves in order."""
    if value is None:
        return None, []
    if isinstance(value, dict):
        parts = [_leaves(value[k]) for k in sorted(value, key=str)]
        return ("map", tuple(sorted(map(str, value))), tuple(p[0] for p in parts)), [a for p in parts for a in p[1]]
    if isinstance(value, list | tuple):
        parts = [_leaves(v) for v in value]
        return ("seq", tuple(p[0] for p in parts)), [a for p in parts for a in p[1]]
    arr = np.asarray(value)
    return ("tensor", arr.shape), [arr]


def compare_values(reference: list[Any], candidate: list[Any], criterion: Criterion, *, name: str,
                   label: str, precision: str, topk: int = 5) -> OutputResult:
    """Compare an output that is not one array (a sequence, an optional, a map) over the input sets: the
    structure must match (the same items present, list lengths and shapes), then the leaves are compared
    as one array (``compare_arrays``; strings for equality)."""
    structure = [(_leaves(r), _leaves(c)) for r, c in zip(reference, candidate, strict=True)]
    for (rs, _), (cs, _) in structure:
        if rs != cs:
            res = OutputResult(label, name, passed=False, precision=precision)
            res.reason = f"the output's structure {_describe(cs)} differs from the reference's {_describe(rs)}"
            return res
    refs = [a for (_, leaves), _ in structure for a in leaves]
    cands = [a for _, (_, leaves) in structure for a in leaves]
    if not refs:  # every value absent (an empty optional), in both
        res = OutputResult(label, name, passed=True, precision=precision, notes=["no value (None) in both"])
        return res
    flat_r = [r.ravel() for r in refs]
    flat_c = [c.ravel() for c in cands]
    numeric = all(_numeric(a) for a in (*flat_r, *flat_c))
    ref_all = np.concatenate([a.astype(np.float64) if numeric else a.astype(object) for a in flat_r])
    cand_all = np.concatenate([a.astype(np.float64) if numeric else a.astype(object) for a in flat_c])
    res = compare_arrays(ref_all, cand_all, criterion, name=name, label=label, precision=precision, kind="tensor",
                         topk=topk)
    res.notes.append(f"{len(refs)} array(s) of a {_describe(structure[0][0][0])} compared as one")
    return res


def _describe(structure: Any) -> str:
    if structure is None:
        return "None"
    if structure[0] == "seq":
        return f"sequence of {len(structure[1])}"
    if structure[0] == "map":
        return f"map of {len(structure[1])} keys"
    return f"tensor {structure[1]}"


def match_outputs(ref: Feeds, cand: Feeds) -> list[tuple[str, str | None]]:
    """Output pairs (reference output name, candidate output name): by name, else by position."""
    if all(n in cand for n in ref):
        return [(n, n) for n in ref]
    if len(ref) == len(cand):
        return list(zip(ref, cand, strict=True))
    return [(n, n if n in cand else None) for n in ref]


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
    for ref_name, cand_name in match_outputs(refs[0], cands[0]):
        crit = criterion(per_output.get(ref_name, default_spec), precision)
        if cand_name is None:
            results.append(OutputResult(label, ref_name, passed=False, precision=precision,
                                        reason=f"output {ref_name!r} is missing"))
            continue
        ref_values, cand_values = [o[ref_name] for o in refs], [o[cand_name] for o in cands]
        if not all(isinstance(v, np.ndarray | np.generic) for v in (*ref_values, *cand_values)):
            results.append(compare_values(ref_values, cand_values, crit, name=ref_name, label=label,
                                          precision=precision, topk=topk))
            continue
        results.append(compare_arrays(ref_values, cand_values, crit, name=ref_name, label=label,
                                      precision=precision, topk=topk))
    ref_info = CandidateInfo("reference", "reference", "arrays", "-", "fp32")
    return Comparison(ref_info, [CandidateInfo(label, label, "arrays", "-", precision)], results, len(refs), topk)


def plain_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options with every value a JSON scalar (others as their ``str``), for reports."""
    return {k: v if isinstance(v, bool | int | float | str | type(None)) else str(v) for k, v in options.items()}

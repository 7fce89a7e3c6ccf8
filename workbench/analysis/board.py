"""One row per candidate over benchmark and accuracy results: what the CompareBoard widget and the HTML
report's tables show.

``board_rows(*results)`` joins what the results say about each candidate (a benchmark configuration, a
compared model, an autotune or sweep trial): its latency and throughput, its accuracy verdict, whether it
ran at all, and the long text (noise reasons, errors) kept apart from the figures so that a table stays
one line per candidate. A benchmark row and a comparison candidate are the same candidate when their
labels match (``wb.benchmark`` and ``wb.compare`` label targets the same way).

Three states, never confused:

* ``"ok"``: it ran (and passed where accuracy was checked);
* ``"fail"``: it ran but FAILs the accuracy check: its speed is no speed-up and it is never "best";
* ``"error"``: it did not run; the error's first line says why.

Nothing here is computed that the results do not already hold, except the speed-up against the
reference (the reference p50 over the row's p50 at the same batch) and the worst accuracy figures over
a candidate's outputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: per-call latencies kept per row for the distribution plot (quantiles of the kept ones)
MAX_SAMPLES = 200

#: the result types a board shows
KINDS = ("BenchReport", "Comparison", "TuneResult", "SweepResult")


def _num(v: Any) -> float | None:
    """A finite float or None (JSON has no NaN)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _one_line(text: Any, limit: int = 300) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0][:limit] if lines else ""


def _samples(values: Sequence[float]) -> list[float]:
    """At most ``MAX_SAMPLES`` values with the same distribution: evenly spaced quantiles when there are more."""
    xs = sorted(float(v) for v in values if v is not None and math.isfinite(float(v)))
    if len(xs) <= MAX_SAMPLES:
        return [round(x, 6) for x in xs]
    step = (len(xs) - 1) / (MAX_SAMPLES - 1)
    return [round(xs[round(i * step)], 6) for i in range(MAX_SAMPLES)]


def _row(label: str, group: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "", "label": label, "group": group, "backend": "", "format": "", "precision": "", "batch": None,
        "status": "ok", "reference": False, "p50_ms": None, "p90_ms": None, "p99_ms": None, "mean_ms": None,
        "throughput": None, "first_ms": None, "rss_mb": None, "size_mb": None, "speedup": None, "passed": None,
        "rel_l2": None, "max_abs": None, "cosine": None, "top1": None, "metric_drop": None, "noisy": False,
        "notes": [], "error": "", "samples_ms": [],
    }
    row.update(kw)
    return row


def _accuracy(comparison: Any) -> dict[str, dict[str, Any]]:
    """Per candidate label of a Comparison: the verdict and the worst figures over its outputs."""
    out: dict[str, dict[str, Any]] = {}
    for cand in comparison.candidates:
        rows = [r for r in comparison.results if r.candidate == cand.label]
        failed = [r for r in rows if not r.passed]

        def worst(attr: str, pick: Any, rows: list[Any] = rows) -> float | None:
            vals = [v for v in (_num(getattr(r, attr, None)) for r in rows) if v is not None]
            return pick(vals) if vals else None

        notes = [f"{r.output}: {r.reason}" if r.output != "*" else r.reason for r in failed if r.reason]
        notes += [f"{r.output}: {n}" for r in rows for n in getattr(r, "notes", [])]
        out[cand.label] = {
            "passed": bool(rows) and not failed and not cand.error, "error_text": _one_line(cand.error),
            "reason": _one_line(notes[0]) if notes else "", "notes": notes,
            "rel_l2": worst("rel_l2", max), "max_abs": worst("max_abs", max), "cosine": worst("cosine", min),
            "top1": worst("top1", min), "precision": cand.precision, "backend": cand.backend, "format": cand.format,
        }
    return out


def _bench_rows(report: Any, accuracy: dict[str, dict[str, Any]], reference_label: str | None) -> list[dict[str, Any]]:
    results = list(report.results)
    labels = [r.label for r in results]
    ref_label = reference_label if reference_label in labels else (labels[0] if labels else None)
    refs = {r.batch: r for r in results if r.label == ref_label and r.ok and r.latency is not None}
    rows = []
    for r in results:
        lat = r.latency
        row = _row(r.label, "benchmark", backend=r.backend, format=r.format, precision=r.precision or "",
                   batch=r.batch or None, reference=r.label == ref_label, noisy=bool(r.noisy), notes=list(r.noise))
        if not r.ok:
            row.update(status="error", error=_one_line(r.error) or "did not run")
        elif lat is not None:
            row.update(p50_ms=_num(lat.p50), p90_ms=_num(lat.p90), p99_ms=_num(lat.p99), mean_ms=_num(lat.mean),
                       throughput=_num(r.throughput), samples_ms=_samples(r.latencies_ms))
        first = _num(r.first_inference_s)
        row["first_ms"] = first * 1e3 if first is not None else None
        row["rss_mb"] = r.peak_rss_bytes / 2**20 if r.peak_rss_bytes and r.ok else None
        row["size_mb"] = r.size_bytes / 2**20 if r.size_bytes else None
        acc = accuracy.get(r.label)
        if acc is not None:
            _merge_accuracy(row, acc)
        if row["reference"] and accuracy:
            row.update(passed=None, rel_l2=0.0, max_abs=0.0, cosine=1.0, top1=1.0)
        base = refs.get(r.batch)
        if row["status"] == "ok" and base is not None and row["p50_ms"]:
            row["speedup"] = base.latency.p50 / row["p50_ms"]
        rows.append(row)
    return rows


def _merge_accuracy(row: dict[str, Any], acc: dict[str, Any]) -> None:
    row.update(passed=acc["passed"], rel_l2=acc["rel_l2"], max_abs=acc["max_abs"], cosine=acc["cosine"],
               top1=acc["top1"])
    row["notes"] = [*row["notes"], *acc["notes"]]
    if row["status"] == "ok" and acc["error_text"]:
        row.update(status="error", error=acc["error_text"])
    elif row["status"] == "ok" and not acc["passed"]:
        row.update(status="fail", error=f"FAILs accuracy: {acc['reason']}" if acc["reason"] else "FAILs accuracy")
        row["notes"] = [n for n in row["notes"] if n != acc["reason"]]  # said once, in the error


def _comparison_rows(c: Any, accuracy: dict[str, dict[str, Any]], shown: set[str]) -> list[dict[str, Any]]:
    rows = []
    ref = c.reference
    if ref.label not in shown:
        rows.append(_row(ref.label, "comparison", backend=ref.backend, format=ref.format, precision=ref.precision,
                         reference=True, rel_l2=0.0, max_abs=0.0, cosine=1.0, top1=1.0))
    for cand in c.candidates:
        if cand.label in shown:
            continue
        row = _row(cand.label, "comparison", backend=cand.backend, format=cand.format, precision=cand.precision)
        _merge_accuracy(row, accuracy[cand.label])
        rows.append(row)
    return rows


def _tune_rows(t: Any) -> list[dict[str, Any]]:
    rows = []
    for trial in t.trials:
        row = _row(trial.label, "autotune", backend=trial.backend, format="", precision=trial.precision,
                   p50_ms=_num(trial.latency_ms), p90_ms=_num(trial.p90_ms), throughput=_num(trial.throughput),
                   rel_l2=_num(trial.rel_l2), cosine=_num(trial.cosine), top1=_num(trial.top1),
                   metric_drop=_num(trial.metric_drop), noisy=bool(trial.noisy), passed=bool(trial.valid))
        if trial.error:
            row.update(status="error", error=_one_line(trial.error), passed=None, p50_ms=None, p90_ms=None)
        elif not trial.valid:
            row.update(status="fail", error=_one_line(f"FAILs the budget: {trial.reason}" if trial.reason
                                                      else "FAILs the accuracy budget"))
        if trial.reason and trial.valid:
            row["notes"].append(trial.reason)
        rows.append(row)
    for s in getattr(t, "skipped", []) or []:
        rows.append(_row(_one_line(s, 80), "autotune", status="error", error=_one_line(s)))
    return rows


def _sweep_rows(s: Any) -> list[dict[str, Any]]:
    rows = []
    for trial in s.trials:
        row = _row(trial.label, "sweep", backend=trial.runtime, precision=trial.precision,
                   p50_ms=_num(trial.p50_ms), p90_ms=_num(trial.p90_ms), throughput=_num(trial.throughput),
                   rel_l2=_num(trial.rel_l2), cosine=_num(trial.cosine), max_abs=_num(trial.max_abs),
                   top1=_num(trial.top1), passed=trial.passed, noisy=bool(trial.noisy))
        if trial.status == "failed" or trial.error:
            row.update(status="error", error=_one_line(trial.error) or "failed", passed=None)
        elif trial.passed is False:
            row.update(status="fail", error="FAILs validation against the original")
        if trial.status == "cached":
            row["notes"].append("from the result cache")
        rows.append(row)
    return rows


def board_rows(*results: Any) -> list[dict[str, Any]]:
    """One row per candidate (schema ``BoardRow`` in ``widgets/schema/compare_board.schema.json``) over
    BenchReports, Comparisons, TuneResults and SweepResults; raises ``TypeError`` for anything else."""
    for r in results:
        if type(r).__name__ not in KINDS:
            raise TypeError(f"a board shows {', '.join(KINDS)}, not a {type(r).__name__}")
    comparisons = [r for r in results if type(r).__name__ == "Comparison"]
    accuracy: dict[str, dict[str, Any]] = {}
    for c in comparisons:
        accuracy.update(_accuracy(c))
    reference = comparisons[0].reference.label if comparisons else None
    rows: list[dict[str, Any]] = []
    shown: set[str] = set()
    for r in results:
        kind = type(r).__name__
        if kind == "BenchReport":
            new = _bench_rows(r, accuracy, reference)
            shown.update(row["label"] for row in new)
        elif kind == "TuneResult":
            new = _tune_rows(r)
        elif kind == "SweepResult":
            new = _sweep_rows(r)
        else:
            continue  # comparisons: after every benchmark, for the candidates no benchmark timed
        rows += new
    for c in comparisons:
        new = _comparison_rows(c, accuracy, shown)
        shown.update(row["label"] for row in new)
        rows += new
    seen: dict[str, int] = {}
    for row in rows:
        base = f"{row['group']}:{row['label']}" + (f":b{row['batch']}" if row["batch"] else "")
        n = seen.get(base, 0)
        seen[base] = n + 1
        row["id"] = base if n == 0 else f"{base}#{n + 1}"
    return rows


def error_axis(rows: Sequence[dict[str, Any]]) -> str:
    """The accuracy measure to plot against latency: an autotune's metric drop when some row has one,
    else the relative L2 error, else '' (nothing measured)."""
    if any(r["metric_drop"] is not None for r in rows):
        return "metric_drop"
    if any(r["rel_l2"] is not None and not r["reference"] for r in rows):
        return "rel_l2"
    return ""


def environment_line(results: Sequence[Any]) -> str:
    """Where the numbers were measured, in one line (the first result with an environment)."""
    for r in results:
        env = getattr(r, "environment", None) or {}
        if env:
            libs = ", ".join(f"{k} {v}" for k, v in (env.get("libraries") or {}).items()
                             if k != "deployment-workbench")
            cores = env.get("logical_cores")
            return f"{env.get('cpu', '?')}" + (f", {cores} logical cores" if cores else "") + (f"; {libs}" if libs else "")
    return ""


def report_notes(results: Sequence[Any]) -> list[str]:
    """Footnotes for the whole board: noise, the timing settings, configurations skipped."""
    notes = []
    for r in results:
        kind = type(r).__name__
        if kind == "BenchReport":
            s = r.settings or {}
            timing = (f"{s.get('iterations')} timed calls" if s.get("iterations") else
                      f"{s.get('duration_s')} s of timed calls") + " per configuration"
            notes.append(f"Benchmark: {timing}, {s.get('warmup')} warm-up calls, {s.get('mode')} mode"
                         + (", inference only" if s.get("inference_only") else ", whole infer() calls"))
            if r.noisy:
                notes.append("Noisy: the machine was busy during some runs (marked ~); measure again on a quiet machine.")
        elif kind == "Comparison":
            notes.append(f"Accuracy: against {r.reference.label} on {r.n_inputs} input set(s)")
        elif kind == "TuneResult":
            notes.append(f"Autotune of {r.model}: error axis {r.error_axis}, budget {r.budget}")
        elif kind == "SweepResult":
            notes.append(f"Sweep of {len(r.trials)} trials on {r.executor} in {r.wall_s:.1f} s")
    return notes


def board_payload(*results: Any, title: str = "Compare and benchmark") -> dict[str, Any]:
    """The CompareBoard's payload (schema ``BoardPayload``)."""
    rows = board_rows(*results)
    return {"title": title, "rows": rows, "error_axis": error_axis(rows), "notes": report_notes(results),
            "environment": environment_line(results), "kinds": list(dict.fromkeys(type(r).__name__ for r in results))}

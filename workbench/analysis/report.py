"""Reports: JSON with a schema version, interactive plotly figures, and standalone HTML with static SVG.

Every result object (Comparison, BenchReport, LayerReport, NodeProfile, TuneResult) serialises through
``workbench.core.results`` (one rule for every type: non-finite floats become ``null``, the document
carries ``{"schema": "workbench.<kind>", "schema_version": N}``) and reads back with ``from_json``.

``html_report(*results, path=...)`` writes one self-contained HTML page (no JavaScript, no network):
latency distributions per backend, speed-up bars, throughput, memory and size bars, the
accuracy-vs-latency Pareto front, and the tables. The page and its tables are Jinja2 templates with
autoescaping (every name and message from a model or a runtime is escaped); the plots are SVG drawn
here, so the page renders anywhere (e-mail, CI artifacts, a Voilà page without a kernel). In notebooks,
``report.plot()`` gives plotly figures instead.
"""

from __future__ import annotations

import functools
import html
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.results import plain

if TYPE_CHECKING:  # pragma: no cover
    import jinja2

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac",
           "#eeca3b")


# -- static SVG charts (no JavaScript, no plotting library) -----------------------------------------


def _fmt(v: float) -> str:
    if v == 0 or not math.isfinite(v):
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.1:
        return f"{v:.2f}".rstrip("0").rstrip(".")
    return f"{v:.3g}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int(math.ceil((hi - start) / step)) + 1)]


def _frame(title: str, height: int, width: int = 720) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img">',
            f"<title>{html.escape(title)}</title>",
            f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">'
            f"{html.escape(title)}</text>"]


def _x_axis(parts: list[str], lo: float, hi: float, left: int, right: int, y0: int, y1: int, unit: str,
            log: bool = False) -> Any:
    def sx(v: float) -> float:
        if log:
            v, a, b = math.log10(max(v, 1e-12)), math.log10(lo), math.log10(hi)
        else:
            a, b = lo, hi
        return left + (v - a) / ((b - a) or 1.0) * (right - left)

    ticks = [10 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)] if log \
        else _ticks(lo, hi)
    for t in ticks:
        if lo - 1e-12 <= t <= hi + 1e-12:
            x = sx(t)
            parts.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1}" stroke="#e5e5e5"/>')
            parts.append(f'<text x="{x:.1f}" y="{y1 + 14}" text-anchor="middle">{_fmt(t)}</text>')
    parts.append(f'<text x="{(left + right) / 2}" y="{y1 + 30}" text-anchor="middle">{html.escape(unit)}</text>')
    return sx


def svg_box(groups: dict[str, Sequence[float]], title: str, unit: str = "ms") -> str:
    """Horizontal box plots: box p25–p75, median line, whiskers p1–p99, mean dot."""
    import numpy as np

    groups = {k: np.asarray(v, float) for k, v in groups.items() if len(v)}
    if not groups:
        return ""
    left, right, row = 260, 700, 30
    height = 50 + row * len(groups) + 40
    stats = {k: np.percentile(v, [1, 25, 50, 75, 99]).tolist() + [float(v.mean())] for k, v in groups.items()}
    lo = min(s[0] for s in stats.values())
    hi = max(s[4] for s in stats.values())
    parts = _frame(title, height)
    y_end = 40 + row * len(groups)
    if lo > 0 and hi / lo > 50:  # runtimes orders of magnitude apart: a log axis keeps every box visible
        sx = _x_axis(parts, lo / 1.3, hi * 1.3, left, right, 30, y_end, unit + " (log scale)", log=True)
    else:
        pad = (hi - lo) * 0.05 or hi * 0.05 or 1.0
        sx = _x_axis(parts, max(0.0, lo - pad), hi + pad, left, right, 30, y_end, unit)
    for i, (name, (p1, p25, p50, p75, p99, mean)) in enumerate(stats.items()):
        y = 40 + i * row + row / 2
        c = PALETTE[i % len(PALETTE)]
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{html.escape(name[:42])}</text>')
        parts.append(f'<line x1="{sx(p1):.1f}" y1="{y}" x2="{sx(p99):.1f}" y2="{y}" stroke="{c}"/>')
        parts.append(f'<rect x="{sx(p25):.1f}" y="{y - 9}" width="{max(1.0, sx(p75) - sx(p25)):.1f}" height="18" '
                     f'fill="{c}" fill-opacity="0.35" stroke="{c}"/>')
        parts.append(f'<line x1="{sx(p50):.1f}" y1="{y - 9}" x2="{sx(p50):.1f}" y2="{y + 9}" stroke="{c}" '
                     f'stroke-width="2"><title>median {_fmt(p50)} {unit}</title></line>')
        parts.append(f'<circle cx="{sx(mean):.1f}" cy="{y}" r="2.5" fill="#222"><title>mean {_fmt(mean)} {unit}'
                     "</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(values: dict[str, float], title: str, unit: str = "", reference: float | None = None) -> str:
    """Horizontal bars with their values; ``reference`` draws a dashed line (e.g. speed-up 1.0)."""
    values = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}
    if not values:
        return ""
    left, right, row = 260, 660, 26
    height = 50 + row * len(values) + 40
    hi = max([*values.values(), reference or 0.0]) * 1.1 or 1.0
    parts = _frame(title, height)
    y_end = 40 + row * len(values)
    sx = _x_axis(parts, 0.0, hi, left, right, 30, y_end, unit)
    for i, (name, v) in enumerate(values.items()):
        y = 40 + i * row
        c = PALETTE[i % len(PALETTE)]
        parts.append(f'<text x="{left - 6}" y="{y + row / 2 + 4}" text-anchor="end">{html.escape(name[:42])}</text>')
        parts.append(f'<rect x="{left}" y="{y + 4}" width="{max(0.5, sx(v) - left):.1f}" height="{row - 8}" fill="{c}"/>')
        parts.append(f'<text x="{sx(v) + 4:.1f}" y="{y + row / 2 + 4}">{_fmt(v)}</text>')
    if reference is not None:
        x = sx(reference)
        parts.append(f'<line x1="{x:.1f}" y1="30" x2="{x:.1f}" y2="{y_end}" stroke="#444" stroke-dasharray="4 3"/>')
    parts.append("</svg>")
    return "".join(parts)


def svg_scatter(points: Sequence[dict[str, Any]], title: str, x_label: str, y_label: str,
                log_y: bool = False) -> str:
    """Points ``{"x", "y", "label", "front": bool, "highlight": bool, "annotate": bool, "valid": bool}``:
    front points are joined by a line; front and highlighted points are orange; front and annotated ones
    labelled; ``valid=False`` (it FAILs its accuracy check) is a hollow red circle."""
    pts = [p for p in points if p.get("x") is not None and p.get("y") is not None
           and math.isfinite(p["x"]) and math.isfinite(p["y"])]
    if not pts:
        return ""
    width, height = 720, 420
    left, right, top, bottom = 70, 690, 30, 360
    xs, ys = [p["x"] for p in pts], [p["y"] for p in pts]
    x_lo, x_hi = 0.0, max(xs) * 1.08
    if log_y:
        smallest = max(min(y for y in ys if y > 0) if any(y > 0 for y in ys) else 1e-6, 1e-12)
        y_lo = 10 ** math.floor(math.log10(smallest))  # whole decades, so the axis has ticks at both ends
        y_hi = 10 ** math.ceil(math.log10(max(max(ys), y_lo * 10)))
    else:
        y_lo, y_hi = min(0.0, min(ys)), (max(ys) * 1.1) or 1.0
    parts = _frame(title, height, width)
    sx = _x_axis(parts, x_lo, x_hi, left, right, top, bottom, x_label)

    def sy(v: float) -> float:
        if log_y:
            a, b, v = math.log10(y_lo), math.log10(y_hi), math.log10(max(v, y_lo))
        else:
            a, b = y_lo, y_hi
        return bottom - (v - a) / ((b - a) or 1.0) * (bottom - top)

    y_ticks = [10 ** e for e in range(math.floor(math.log10(y_lo)), math.ceil(math.log10(y_hi)) + 1)] if log_y \
        else _ticks(y_lo, y_hi)
    clamped = log_y and any(y < y_lo for y in ys)  # zeros (exact agreement) sit on the bottom line
    for t in y_ticks:
        if y_lo <= t <= y_hi:
            text = ("≤" if clamped and t == y_lo else "") + _fmt(t)
            parts.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{right}" y2="{sy(t):.1f}" stroke="#e5e5e5"/>')
            parts.append(f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" text-anchor="end">{html.escape(text)}</text>')
    parts.append(f'<text x="14" y="{(top + bottom) / 2}" transform="rotate(-90 14 {(top + bottom) / 2})" '
                 f'text-anchor="middle">{html.escape(y_label)}</text>')
    front = sorted((p for p in pts if p.get("front")), key=lambda p: p["x"])
    if len(front) > 1:
        path = " ".join(f"{sx(p['x']):.1f},{sy(p['y']):.1f}" for p in front)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[1]}" stroke-width="1.5"/>')
    for p in pts:
        on = bool(p.get("front") or p.get("highlight"))
        failed = p.get("valid") is False  # FAILs its accuracy check: hollow and red, never a plain point
        fill = 'fill="white" stroke="#cf222e" stroke-width="2"' if failed else \
            f'fill="{PALETTE[1] if on else PALETTE[0]}" fill-opacity="{1 if on else 0.6}"'
        parts.append(f'<circle cx="{sx(p["x"]):.1f}" cy="{sy(p["y"]):.1f}" r="{5 if on or failed else 3.5}" {fill}>'
                     f"<title>{html.escape(str(p.get('label', '')))}{' (FAILs accuracy)' if failed else ''}: "
                     f"{_fmt(p['x'])}, {_fmt(p['y'])}</title></circle>")
        if p.get("annotate", p.get("front")):
            parts.append(f'<text x="{sx(p["x"]) + 7:.1f}" y="{sy(p["y"]) - 5:.1f}" font-size="10">'
                         f"{html.escape(str(p.get('label', ''))[:40])}</text>")
    parts.append("</svg>")
    return "".join(parts)


# -- benchmark plots and tables ----------------------------------------------------------------------


def _result_name(r: Any) -> str:
    return f"{r.label} b={r.batch}" if r.batch else r.label


def bench_figure(report: Any, kind: str = "latency") -> Any:
    """A plotly figure of a BenchReport: ``"latency"``, ``"speedup"``, ``"throughput"``, ``"memory"``."""
    import plotly.graph_objects as go

    ok = [r for r in report.results if r.ok]
    fig = go.Figure()
    if kind == "latency":
        for r in ok:
            fig.add_trace(go.Box(x=r.latencies_ms, name=_result_name(r), boxmean=True, orientation="h"))
        fig.update_layout(title="Latency per call", xaxis_title="ms", showlegend=False)
    elif kind == "speedup":
        sp = report.speedups()
        fig.add_trace(go.Bar(x=sp["speedup"], y=[f"{a} b={b}" for a, b in sp.index], orientation="h"))
        fig.add_vline(x=1.0, line_dash="dash")
        fig.update_layout(title=f"Speed-up over {report.results[0].label} (median latency)", xaxis_title="x")
    elif kind == "throughput":
        fig.add_trace(go.Bar(x=[r.throughput for r in ok], y=[_result_name(r) for r in ok], orientation="h"))
        fig.update_layout(title="Throughput", xaxis_title="samples / s")
    elif kind == "memory":
        fig.add_trace(go.Bar(x=[(r.peak_rss_bytes or 0) / 2**20 for r in ok], y=[_result_name(r) for r in ok],
                             orientation="h", name="peak RSS"))
        fig.add_trace(go.Bar(x=[(r.size_bytes or 0) / 2**20 for r in ok], y=[_result_name(r) for r in ok],
                             orientation="h", name="size on disk"))
        fig.update_layout(title="Memory and size", xaxis_title="MB", barmode="group")
    else:
        from workbench.core.errors import WorkbenchError

        raise WorkbenchError(f"unknown plot kind {kind!r}", "use 'latency', 'speedup', 'throughput' or 'memory'")
    fig.update_layout(height=max(300, 60 + 40 * len(ok)), margin={"l": 10, "r": 10, "t": 50, "b": 40})
    failed = [r for r in report.results if not r.ok]
    if failed:  # never dropped silently: say which did not run
        text = "not shown (did not run): " + "; ".join(_result_name(r) for r in failed)
        fig.add_annotation(text=html.escape(text[:300]), xref="paper", yref="paper", x=0, y=-0.12, showarrow=False,
                           xanchor="left", font={"size": 11, "color": "#cf222e"})
        fig.update_layout(margin={"b": 70})
    return fig


# -- HTML (Jinja2 templates, autoescaped) -------------------------------------------------------------

TEMPLATES = {
    "table.html": """\
<table class="wb"><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{%- for row in rows %}<tr>{% for cell in row %}<td
{%- if cell.ok is not none %} style="color:{{ '#1a7f37' if cell.ok else '#cf222e' }};font-weight:bold"{% endif %}>
{{- cell.text }}</td>{% endfor %}</tr>{% endfor %}</table>""",
    "bench_table.html": """\
<div><b>Benchmark</b> ({{ cpu }})
{%- if noisy %} — <b style='color:#9a6700'>noisy: the machine was busy, repeat the run</b>{% endif %}
{{- table }}</div>""",
    # one line per candidate: numbers right-aligned and unbroken, units in the header, long text (errors,
    # noise, reasons) in numbered footnotes under the table; inline styles, so a notebook renders it too
    "board_table.html": """\
<div class="wb-board" style="overflow-x:auto;max-width:100%">
<table class="wb wb-board-table" style="border-collapse:collapse;font-size:12px;margin:6px 0;white-space:nowrap">
<thead><tr>
{%- for c in columns %}<th style="text-align:{{ 'right' if c.num else 'left' }};padding:3px 6px;background:#f6f8fa;\
border-bottom:1px solid #d0d7de;white-space:nowrap" title="{{ c.title }}">{{ c.header }}</th>{% endfor %}</tr></thead>
<tbody>
{%- for row in rows %}<tr class="wb-row wb-{{ row.status }}" data-status="{{ row.status }}"\
{%- if row.reference %} style="background:#f6f8fa"{% endif %}>
<td style="padding:3px 6px;white-space:nowrap">
{%- if row.status == 'error' %}<b style="color:#cf222e;border:1px solid #ff8182;background:#ffebe9;border-radius:8px;\
padding:0 5px;font-size:10px">ERROR</b>
{%- elif row.status == 'fail' %}<b style="color:#cf222e;border:1px solid #ff8182;background:#ffebe9;border-radius:8px;\
padding:0 5px;font-size:10px">FAIL</b>
{%- elif row.passed %}<b style="color:#1a7f37;font-size:10px">PASS</b>{% endif %}
{%- if row.reference %} <b style="font-size:10px;color:#57606a">REF</b>{% endif %}
{%- if row.mark %} <sup><a href="#{{ anchor }}-{{ row.mark }}">[{{ row.mark }}]</a></sup>{% endif %}</td>
<td style="padding:3px 6px;white-space:nowrap;max-width:340px;overflow:hidden;text-overflow:ellipsis\
{%- if row.status != 'ok' %};color:#cf222e{% endif %}" title="{{ row.label }}"><span style="display:inline-block;\
max-width:250px;overflow:hidden;text-overflow:ellipsis;vertical-align:bottom">{{ row.label }}</span></td>
{%- if row.status == 'error' %}<td colspan="{{ columns|length - 2 }}" style="position:relative;padding:3px 6px;\
color:#cf222e;font-style:italic" title="{{ row.error }}"><span style="position:absolute;left:8px;right:8px;top:3px;\
white-space:nowrap;overflow:hidden;text-overflow:ellipsis">did not run: {{ row.error }}</span>&nbsp;</td>
{%- else %}{% for cell in row.cells %}<td style="padding:3px 6px;white-space:nowrap;\
{%- if cell.num %}text-align:right;font-variant-numeric:tabular-nums{% endif %}" {% if cell.title %}title="{{ cell.title }}"{% endif %}>\
{{ cell.text }}</td>{% endfor %}{% endif %}</tr>
{%- endfor %}</tbody></table>
{%- if notes %}<ol class="wb-footnotes" style="font-size:11px;color:#57606a;margin:2px 0 8px;padding-left:22px">
{%- for n in notes %}<li id="{{ anchor }}-{{ loop.index }}" style="white-space:normal">{{ n }}</li>{% endfor %}</ol>{% endif %}
</div>""",
    "comparison_table.html": """\
<div><b>Comparison with {{ reference }} on {{ n_inputs }} input set(s): {{ 'PASS' if passed else 'FAIL' }}</b>
{{- table }}</div>""",
    "environment.html": "<details><summary>Environment</summary>{{ table }}</details>",
    "page.html": """\
<!DOCTYPE html><html><head><meta charset='utf-8'><title>{{ title }}</title><style>{{ css }}</style></head><body>
<h1>{{ title }}</h1><p>Created {{ created }}</p>
{%- for heading, parts in sections %}
<h2>{{ heading }}</h2>
{%- for part in parts %}
{{ part }}
{%- endfor %}
{%- endfor %}
</body></html>
""",
}


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=False)


def render(template: str, **context: Any) -> str:
    """Render one of ``TEMPLATES`` with autoescaping; pass ready-made HTML (an SVG, a nested table)
    wrapped in ``markupsafe.Markup`` so it is kept as it is."""
    return _environment().get_template(template).render(**context)


def _markup(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)  # noqa: S704 - HTML this module (or a result's html_sections) built, names escaped there


def _cell_text(v: Any) -> str:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else _fmt(v)
    if isinstance(v, bool):
        return "✔" if v else "✘"
    return "" if v is None else str(v)


def _table(rows: list[dict[str, Any]], columns: Sequence[str], highlight: str | None = None) -> str:
    cells = [[{"text": _cell_text(row.get(c)),
               "ok": row.get(c) if c == highlight and isinstance(row.get(c), bool) else None} for c in columns]
             for row in rows]
    return render("table.html", columns=columns, rows=cells)


#: the candidate table's columns: (row key, header with the unit, tooltip, kind); a column empty in every
#: row is left out
BOARD_COLUMNS = (
    ("batch", "batch", "batch size", "text"),
    ("precision", "precision", "the precision it computed in", "text"),
    ("p50_ms", "p50 (ms)", "median latency per call", "ms"),
    ("p90_ms", "p90 (ms)", "90th percentile latency", "ms"),
    ("p99_ms", "p99 (ms)", "99th percentile latency", "ms"),
    ("throughput", "thrpt (/s)", "throughput: samples per second", "ms"),
    ("speedup", "speed-up", "the reference's p50 over this one's, at the same batch (×)", "ratio"),
    ("rel_l2", "rel. L2", "relative L2 error against the reference (worst output)", "error"),
    ("metric_drop", "metric drop", "drop of the task metric against the original", "error"),
    ("first_ms", "first (ms)", "load + compile + first call", "ms"),
)  # peak memory and size on disk have their own charts under the table


def _board_cell(v: Any, kind: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if kind == "text" or not isinstance(v, int | float):
        return str(v)
    if kind == "ratio":
        return f"{v:.2f}"
    if kind == "error":
        return "0" if v == 0 else (f"{v:.1e}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.2g}")
    return _fmt(float(v))


def board_table_html(rows: Sequence[dict[str, Any]], anchor: str = "note") -> str:
    """One line per candidate (rows of ``workbench.analysis.board.board_rows``): status badge, label,
    the figures right-aligned and unbroken with units in the header; errors, noise and reasons go to
    numbered footnotes, a failed row says why in one truncated cell (the whole text in its footnote)."""
    cols = [c for c in BOARD_COLUMNS if any(r.get(c[0]) not in (None, "") for r in rows)]
    if all(r.get("batch") in (None, 1) for r in rows):
        cols = [c for c in cols if c[0] != "batch"]
    notes: list[str] = []
    out_rows = []
    for r in rows:
        mark = 0
        texts = ([r["error"]] if r.get("error") else []) + list(r.get("notes", []))
        if texts:  # one footnote per row, with everything long it has to say
            notes.append(f"{r['label']}: " + "; ".join(dict.fromkeys(texts)))
            mark = len(notes)
        cells = []
        for key, _header, _title, kind in cols:
            text = _board_cell(r.get(key), kind)
            title = ""
            if key == "speedup" and r["status"] == "fail":
                text, title = "—", "fails the accuracy check: not a speed-up"
            if key == "p50_ms" and r.get("noisy") and text:
                text, title = text + " ~", "noisy: " + "; ".join(r.get("notes", []))
            cells.append({"text": text, "num": kind != "text", "title": title})
        out_rows.append({**r, "cells": cells, "mark": mark})
    columns = [{"header": "", "title": "status", "num": False}, {"header": "candidate", "title": "", "num": False}]
    columns += [{"header": h, "title": t, "num": kind != "text"} for _key, h, t, kind in cols]
    return render("board_table.html", columns=columns, rows=out_rows, notes=notes, anchor=anchor)


def bench_table_html(report: Any, context: Sequence[Any] = ()) -> str:
    """The table of a BenchReport (also its notebook view): one line per configuration; with the
    Comparisons of ``context``, its accuracy verdict too (a candidate that FAILs is marked, no speed-up)."""
    from workbench.analysis.board import board_rows

    comparisons = [c for c in context if type(c).__name__ == "Comparison"]
    rows = [r for r in board_rows(report, *comparisons) if r["group"] == "benchmark"]
    table = board_table_html(rows, anchor=f"bench-{id(report):x}")
    return render("bench_table.html", cpu=report.environment.get("cpu", ""), noisy=report.noisy,
                  table=_markup(table))


def _bench_sections(report: Any, context: Sequence[Any] = ()) -> list[str]:
    from workbench.analysis.board import board_rows

    comparisons = [c for c in context if type(c).__name__ == "Comparison"]
    rows = {(r["label"], r["batch"] or 0): r for r in board_rows(report, *comparisons) if r["group"] == "benchmark"}
    status = {_result_name(r): rows.get((r.label, r.batch or 0), {}).get("status", "ok") for r in report.results}
    ok = [r for r in report.results if r.ok]
    # a candidate that fails the accuracy check is timed but is no speed-up: never charted as one
    fast = [r for r in ok if status[_result_name(r)] == "ok"]
    out = [bench_table_html(report, context)]

    def name(r: Any) -> str:  # a FAILing candidate is marked wherever it is drawn
        return ("✘ " if status[_result_name(r)] == "fail" else "") + _result_name(r)

    out.append(svg_box({name(r): r.latencies_ms for r in ok}, "Latency per call (p1–p99, box p25–p75; ✘ FAILs accuracy)"))
    sp = report.speedups() if ok else None
    names_fast = {(r.label, r.batch) for r in fast}
    if sp is not None and len(sp) > 1:
        out.append(svg_bars({f"{a} b={b}": v for (a, b), v in sp["speedup"].items() if (a, b) in names_fast},
                            f"Speed-up over {report.results[0].label} (median latency)", "x", reference=1.0))
    out.append(svg_bars({name(r): r.throughput for r in ok}, "Throughput", "samples / s"))
    out.append(svg_bars({name(r): (r.peak_rss_bytes or 0) / 2**20 for r in ok}, "Peak RSS", "MB"))
    sizes = {name(r): r.size_bytes / 2**20 for r in ok if r.size_bytes}
    if sizes:
        out.append(svg_bars(sizes, "Model size on disk", "MB"))
    left = [f"{name} (did not run)" for name, st in status.items() if st == "error"]
    left += [f"{name} (FAILs accuracy: not a speed-up)" for name, st in status.items() if st == "fail"]
    if left:
        out.append(f"<p class='wb-left-out' style='color:#9a6700;font-size:12px'>Not in the speed-up chart: "
                   f"{html.escape('; '.join(left))}.</p>")
    out.append(_environment_html(report.environment))
    return out


def _environment_html(env: dict[str, Any]) -> str:
    rows = [{"key": k, "value": json.dumps(plain(v)) if isinstance(v, dict | list) else str(v)}
            for k, v in env.items()]
    return render("environment.html", table=_markup(_table(rows, ("key", "value"))))


COMPARISON_COLUMNS = ("candidate", "output", "passed", "precision", "max_abs", "mean_abs", "rel_l2", "cosine",
                      "top1", "psnr", "nan", "reason")


def comparison_table_html(c: Any) -> str:
    """The table of a Comparison, PASS/FAIL coloured (also its notebook view); the reasons of failures
    are numbered footnotes under the table, so the figures stay one line per output."""
    notes: list[str] = []
    rows = []
    for r in c.results:
        mark = ""
        if r.reason:
            notes.append(f"{r.candidate} · {r.output}: {r.reason}")
            mark = f"[{len(notes)}]"
        rows.append({"candidate": r.candidate, "output": r.output, "passed": r.passed, "precision": r.precision,
                     "max_abs": r.max_abs, "mean_abs": r.mean_abs, "rel_l2": r.rel_l2, "cosine": r.cosine,
                     "top1": r.top1, "psnr": r.psnr, "nan": r.nan_count, "reason": mark})
    columns = [col for col in COMPARISON_COLUMNS if col in ("candidate", "output", "passed", "reason")
               or any(row[col] not in (None, "") and not (isinstance(row[col], float) and not math.isfinite(row[col]))
                      for row in rows)]
    table = _table(rows, columns, highlight="passed")
    if notes:
        table += ("<ol style='font-size:11px;color:#57606a;margin:2px 0 8px;padding-left:22px'>"
                  + "".join(f"<li style='white-space:normal'>{html.escape(n)}</li>" for n in notes) + "</ol>")
    return render("comparison_table.html", reference=c.reference.label, n_inputs=c.n_inputs, passed=bool(c),
                  table=_markup(table))


def _comparison_sections(c: Any) -> list[str]:
    out = [comparison_table_html(c)]
    errs = {f"{r.candidate} · {r.output}": r.rel_l2 for r in c.results if math.isfinite(r.rel_l2)}
    if errs:
        out.append(svg_bars(errs, "Relative L2 error", "‖Δ‖ / ‖ref‖"))
    return out


def sections(obj: Any, context: Sequence[Any] = ()) -> tuple[str, list[str]]:
    """``(heading, [HTML parts])`` of one result in a report; TypeError for what cannot be shown.

    BenchReport and Comparison are laid out here; any other result provides ``html_title`` and
    ``html_sections()`` (LayerReport, NodeProfile, TuneResult). ``context`` is the report's other results:
    a benchmark's table marks the candidates their Comparisons FAIL (and leaves them out of the
    speed-up chart)."""
    kind = type(obj).__name__
    if kind == "BenchReport":
        return "Benchmark", _bench_sections(obj, context)
    if kind == "Comparison":
        return "Output comparison", _comparison_sections(obj)
    if hasattr(obj, "html_sections"):
        return obj.html_title, obj.html_sections()
    raise TypeError(f"cannot put a {kind} in a report")


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#1f2328;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:28px}
table.wb{border-collapse:collapse;font-size:12px;margin:8px 0}table.wb td,table.wb th{border:1px solid #d0d7de;
padding:3px 6px;text-align:left;white-space:nowrap}table.wb th{background:#f6f8fa;position:sticky;top:0}
table.wb-board-table td,table.wb-board-table th{border:0;border-bottom:1px solid #eaeef2}
details table.wb td{white-space:normal;word-break:break-word}.wb-footnotes li{white-space:normal}svg{display:block;margin:10px 0;max-width:100%;height:auto}"""


def html_report(*results: Any, path: str | os.PathLike | None = None, title: str = "Workbench report",
                overwrite: bool = False) -> str:
    """A standalone HTML page of the results (BenchReport, Comparison, LayerReport, NodeProfile,
    TuneResult): tables and static SVG plots, no JavaScript. Written to ``path`` if given (an existing
    file is not overwritten unless ``overwrite=True``); the HTML text is returned either way."""
    from workbench.core.errors import WorkbenchError

    parts = []
    for obj in results:
        heading, html_parts = sections(obj, results)
        parts.append((heading, [_markup(p) for p in html_parts if p]))
    page = render("page.html", title=title, css=_markup(CSS), created=time.strftime("%Y-%m-%d %H:%M:%S"),
                  sections=parts)
    if path is not None:
        target = Path(path)
        if target.exists() and not overwrite:
            raise WorkbenchError(f"{target} already exists", "pass another path, or overwrite=True")
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, target)
    return page

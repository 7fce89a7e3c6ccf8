"""``CompareBoard``: benchmark and accuracy results side by side, readable at 1000 px.

One line per candidate (``workbench.analysis.board.board_rows``: a benchmark configuration, a compared
model, an autotune or sweep trial) with a sticky header, numbers right-aligned under their unit,
sortable columns, the reference and the best marked. A configuration that did not run, or that FAILs
the accuracy check, is shown and marked (a red badge; a click shows its error) and never drawn as a
speed-up nor called best. The plots (latency per call, accuracy against latency with the Pareto front)
are SVG drawn in the browser from the payload; a checkbox per row takes a candidate out of them.
"Download report" saves the standalone HTML report (``workbench.analysis.report.html_report``) or the
results' JSON in the browser, so a visitor of a published app gets them without a server path.
"Show code" gives the Python that reproduces the results.

The browser half is ``widgets/src/compare_board/`` (bundled to ``workbench/widgets/compare_board.js``);
the browser may change nothing but ``hidden`` (which candidates are toggled off), and its only message
asks for one of the two downloads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from workbench.analysis.board import KINDS, board_payload
from workbench.core.errors import WorkbenchError
from workbench.ui import assets
from workbench.ui.download import file_payload, send_file
from workbench.ui.show_code import code_trait

_FIX_KINDS = "pass BenchReport (wb.benchmark), Comparison (wb.compare), TuneResult (wb.autotune) or SweepResult (wb.sweep)"


class CompareBoard(anywidget.AnyWidget):
    """Compare and benchmark results on one board.

    Args:
        *results: BenchReport, Comparison, TuneResult or SweepResult (a benchmark row and a comparison
            candidate with the same label are one row).
        title: the board's title (and the report's).
        sources: ``{label: model, path or zoo name}`` for the candidates, used by ``code()`` where a
            result does not record the file a candidate ran (the workbench's own artifacts are found in
            the artifacts folder by name).

    Example::

        report = wb.benchmark([m, x, q])
        board = wb.ui.CompareBoard(report, wb.compare(m, [x, q]))
        board            # the widget; board.hidden lists the candidates toggled off in the browser
        print(board.code())
    """

    _esm = assets.esm("compare_board")
    _css = assets.css("compare_board")
    _FROM_BROWSER = frozenset({"hidden"})
    payload = traitlets.Dict().tag(sync=True)
    #: ids of the rows toggled off in the browser (not plotted, never best)
    hidden = traitlets.List(traitlets.Unicode()).tag(sync=True)
    code_text = code_trait()

    def __init__(self, *results: Any, title: str = "Compare and benchmark",
                 sources: Mapping[str, Any] | None = None, **kwargs: Any):
        assets.require("compare_board")
        super().__init__(**kwargs)
        self.title = title
        self.sources: dict[str, Any] = dict(sources or {})
        self.results: list[Any] = []
        self.on_msg(self._on_msg)
        self.set_results(*results)

    def set_results(self, *results: Any) -> CompareBoard:
        """Show these results instead (toggles of candidates still present are kept); returns the board."""
        if not results:
            raise WorkbenchError("a CompareBoard needs at least one result", _FIX_KINDS)
        for r in results:
            if type(r).__name__ not in KINDS:
                raise WorkbenchError(f"a CompareBoard cannot show a {type(r).__name__}", _FIX_KINDS)
        payload = board_payload(*results, title=self.title)
        self.results = list(results)
        ids = {row["id"] for row in payload["rows"]}
        self.hidden = [i for i in self.hidden if i in ids]
        self.payload = payload
        self.code_text = self._safe_code()
        return self

    # -- what the browser may change ---------------------------------------------------------------
    def set_state(self, sync_data: dict[str, Any]) -> None:
        """State from the browser: only ``hidden``, and only ids of rows that exist."""
        data = {k: v for k, v in (sync_data or {}).items() if k in self._FROM_BROWSER}
        if "hidden" in data:
            ids = {row["id"] for row in self.payload.get("rows", [])}
            values = data["hidden"] if isinstance(data["hidden"], list) else []
            data["hidden"] = [v for v in values if isinstance(v, str) and v in ids][:len(ids)]
        if data:
            super().set_state(data)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("kind") != "request":
            return
        what = content.get("what")
        if what not in ("html", "json"):
            return  # the browser chooses between the two files, nothing else
        send_file(self, lambda: file_payload(self.report_file() if what == "html" else self.json_file()))

    # -- files ---------------------------------------------------------------------------------------
    def _file_stem(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", self.title.strip().lower()).strip("-.") or "report"

    def html(self) -> str:
        """The standalone HTML report of the results (tables and static SVG plots, no JavaScript)."""
        from workbench.analysis.report import html_report

        return html_report(*self.results, title=self.title)

    def report_file(self) -> tuple[str, bytes, str]:
        """What "Download report" saves: ``(name, bytes, mime)`` of the HTML report."""
        return f"{self._file_stem()}.html", self.html().encode("utf-8"), "text/html"

    def to_json(self, indent: int | None = 2) -> str:
        """The results as JSON: one result's document (``from_json`` reads it back), or a list of them.
        Benchmarks keep their per-call latencies."""
        docs = [json.loads(r.to_json(indent=None, latencies=True)) if type(r).__name__ == "BenchReport"
                else json.loads(r.to_json(indent=None)) for r in self.results]
        return json.dumps(docs[0] if len(docs) == 1 else docs, indent=indent, allow_nan=False)

    def json_file(self) -> tuple[str, bytes, str]:
        """What "JSON" saves: ``(name, bytes, mime)``."""
        return f"{self._file_stem()}.json", self.to_json().encode("utf-8"), "application/json"

    def save(self, path: str | Path | None = None) -> str:
        """Write the HTML report to ``path`` (default: a new file in the artifacts folder; an existing file
        is never overwritten); returns its path. In a browser, "Download report" does the same."""
        from workbench.analysis.report import html_report

        if path is None:
            from workbench.steps.workspace import unique_path

            target = unique_path(self._file_stem(), ".html")  # reserves a new name
            html_report(*self.results, path=target, title=self.title, overwrite=True)  # over our placeholder
            return str(target)
        html_report(*self.results, path=path, title=self.title)
        return str(path)

    # -- Show code -------------------------------------------------------------------------------------
    def code(self) -> str:
        """Python that reproduces the results and shows them on a board (runs as is)."""
        return board_code(self.results, title=self.title, sources=self.sources)

    def _safe_code(self) -> str:
        try:
            return self.code()
        except Exception as err:  # noqa: BLE001 - the board renders even when its code cannot be written
            return f"# the code could not be written: {type(err).__name__}: {err}"


# -- the code a board stands for ------------------------------------------------------------------------


def _source_of(label: str, model: str, fmt: str, backend: str, sources: Mapping[str, Any],
               recorded: str | None = None) -> str | None:
    """What ``wb.load`` takes for a candidate: the given source, the file the result recorded (if it is
    still there), the file in the artifacts folder named like the label, or the model's name (a zoo name);
    None when none is known."""
    from workbench.steps.workspace import workspace

    given = sources.get(label)
    if given is not None:
        path = getattr(given, "path", None) if not isinstance(given, str | Path) else given
        if path is None and hasattr(given, "name"):
            path = given.name
        return str(path) if path is not None else None
    if recorded and Path(recorded).exists():
        return recorded
    stem = label.split(" (", 1)[0]
    folder = workspace()  # where the workbench's steps wrote their artifacts
    if folder.is_dir():
        # the steps' artifacts, then the files uploaded to the app (ModelPicker: uploads/<unique>/), newest first
        for pattern in (f"{_glob_escape(stem)}.*", f"uploads/*/{_glob_escape(stem)}.*"):
            found = sorted((p for p in folder.glob(pattern) if p.stem == stem),
                           key=lambda p: p.stat().st_mtime, reverse=True)
            for suffix in _suffixes(fmt):  # the format's own suffixes, in its order of preference
                for p in found:
                    if p.suffix == suffix:
                        return str(p)
    if stem == model:
        from workbench import zoo

        if model in zoo.names():
            return model
    return model if stem == model and Path(model).exists() else None


def _suffixes(fmt: str) -> tuple[str, ...]:
    from workbench.core import registry

    try:
        return tuple(registry.formats()[fmt].suffixes)
    except (KeyError, AttributeError):
        return ()


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]])", r"[\1]", text)


def _target_code(label: str, model: str, fmt: str, backend: str, options: Mapping[str, Any],
                 sources: Mapping[str, Any], missing: list[str], recorded: str | None = None) -> str:
    src = _source_of(label, model, fmt, backend, sources, recorded)
    if src is None:
        missing.append(label)
        src = label.split(" (", 1)[0]
    opts = {k: v for k, v in options.items() if isinstance(v, bool | int | float | str | type(None))}
    return f"({src!r}, {backend!r}" + (f", {opts!r})" if opts else ")")


def _bench_code(report: Any, sources: Mapping[str, Any], missing: list[str]) -> str:
    s = report.settings or {}
    seen: dict[str, str] = {}
    for r in report.results:
        if r.label in seen:
            continue
        opts = dict(r.options)
        if s.get("threads") is not None:
            opts.pop("threads", None)
        seen[r.label] = _target_code(r.label, r.model, r.format, r.backend, opts, sources, missing,
                                     getattr(r, "path", None))
    kwargs = []
    sizes = s.get("batch_sizes")
    if isinstance(sizes, list) and sizes and sizes != [1]:
        kwargs.append(f"batch_sizes={sizes!r}")
    if s.get("iterations"):
        kwargs.append(f"iterations={s['iterations']!r}")
    elif s.get("duration_s") is not None:
        kwargs.append(f"duration_s={s['duration_s']!r}")
    for key, default in (("warmup", 5), ("mode", "sync"), ("threads", None), ("streams", None),
                         ("inference_only", True)):
        if key in s and s[key] != default:
            kwargs.append(f"{key}={s[key]!r}")
    items = "".join(f"    {t},\n" for t in seen.values())
    note = "  # it timed inputs you gave: pass them again as inputs=" if sizes == "given" else ""
    return "wb.benchmark([\n" + items + "]" + "".join(f", {k}" for k in kwargs) + ")" + note


def _comparison_code(c: Any, sources: Mapping[str, Any], missing: list[str]) -> str:
    ref = c.reference
    ref_code = _target_code(ref.label, ref.model, ref.format, ref.backend, ref.options, sources, missing,
                            getattr(ref, "path", None))
    cands = []
    for cand in c.candidates:
        if cand.format == "?":  # could not even be loaded: what it was is not recorded
            missing.append(cand.label)
            continue
        cands.append(_target_code(cand.label, cand.model, cand.format, cand.backend, cand.options, sources, missing,
                                  getattr(cand, "path", None)))
    items = "".join(f"    {t},\n" for t in cands)
    criteria = sorted({r.criterion for r in c.results if r.criterion})
    note = f"  # pass criteria: {'; '.join(criteria)}"[:200] if criteria else ""
    return f"wb.compare({ref_code}, [\n{items}], n_inputs={c.n_inputs}, topk={c.topk}){note}"


def _tune_code(t: Any) -> str:
    b = t.budget or {}
    kwargs = [f"{k}={b[k]!r}" for k in ("max_metric_drop", "max_error", "batch", "duration_s")
              if isinstance(b.get(k), int | float) and not isinstance(b.get(k), bool)]
    if "max_metric_drop" not in b or b.get("max_metric_drop") is None:
        kwargs.insert(0, "max_metric_drop=None")
    return f"wb.autotune({t.model!r}" + "".join(f", {k}" for k in kwargs) + ")"


def _sweep_code(s: Any) -> str:
    g = s.grid or {}
    kwargs = [f"{k}={g[k]!r}" for k in ("runtimes", "precisions", "threads") if g.get(k)]
    steps = [v for v in g.get("steps", []) if v]
    note = f"  # steps variants {steps}: pass them as steps=" if steps else ""
    return f"wb.sweep({list(g.get('models', []))!r}" + "".join(f", {k}" for k in kwargs) + f"){note}"


def board_code(results: Sequence[Any], *, title: str = "Compare and benchmark",
               sources: Mapping[str, Any] | None = None) -> str:
    """The Python that reproduces ``results`` (benchmark, compare, autotune, sweep calls) and shows them
    on a CompareBoard."""
    sources = sources or {}
    missing: list[str] = []
    names = {"BenchReport": "report", "Comparison": "comparison", "TuneResult": "tuned", "SweepResult": "swept"}
    lines = ["import workbench as wb", "from workbench.ui import CompareBoard", ""]
    used: dict[str, int] = {}
    variables = []
    for r in results:
        kind = type(r).__name__
        base = names[kind]
        used[base] = used.get(base, 0) + 1
        if kind == "BenchReport" and not r.results:  # cancelled before a configuration finished
            lines.append("# a benchmark was cancelled before any configuration finished: nothing to reproduce")
            continue
        var = base if used[base] == 1 else f"{base}{used[base]}"
        if kind == "BenchReport":
            call = _bench_code(r, sources, missing)
        elif kind == "Comparison":
            call = _comparison_code(r, sources, missing)
        elif kind == "TuneResult":
            call = _tune_code(r)
        else:
            call = _sweep_code(r)
        lines.append(f"{var} = {call}")
        variables.append(var)
    if not variables:
        return "\n".join(lines[:1] + lines[3:]) + "\n"
    title_arg = "" if title == "Compare and benchmark" else f", title={title!r}"
    lines += ["", f"board = CompareBoard({', '.join(variables)}{title_arg})", "board"]
    if missing:
        lines.insert(3, "# the files of " + ", ".join(dict.fromkeys(missing)) + " are not recorded in the results: "
                     "replace their names below with their paths")
    return "\n".join(lines) + "\n"

"""CompareBoard: real benchmark and comparison results (digits-cnn on ONNX Runtime, its dynamic INT8
quantization FAILing a strict check, a TensorRT configuration that cannot run here) on one board: the
payload against the schema and through the results' JSON, failed rows marked and never charted as a
speed-up, the code that reproduces the results, what the browser may send, the static HTML report, and
in Voilà with Debian's Chromium at 1000 px: one line per candidate, the failed row marked, a toggle
taking a candidate out of the plots."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import workbench as wb
from workbench.analysis.bench import BenchReport
from workbench.core.errors import WorkbenchError
from workbench.core.metrics import Comparison
from workbench.ui import assets
from workbench.ui.compare_board import CompareBoard


@pytest.fixture(scope="module")
def results(digits_onnx):
    q = wb.quantize(digits_onnx, "onnxruntime", method="dynamic")
    report = wb.benchmark([digits_onnx, q, (digits_onnx, "tensorrt")], iterations=20, progress=False)
    comparison = wb.compare(digits_onnx, [q], tolerances="fp32")  # INT8 against FP32's tolerance: FAILs
    assert not comparison and report.results[0].ok and not report.results[2].ok
    return report, comparison


def _rows(board: CompareBoard) -> dict[tuple[str, str], dict]:
    return {(r["label"].split(" (")[0], r["backend"]): r for r in board.payload["rows"]}


def test_payload_matches_the_schema_and_survives_the_results_json(results):
    report, comparison = results
    board = CompareBoard(report, comparison)
    assets.validate(board.payload, "BoardPayload")
    back = CompareBoard(BenchReport.from_json(report.to_json(latencies=True)), Comparison.from_json(comparison.to_json()))
    assert back.payload == board.payload
    # the JSON download is the results' own documents, read back by from_json
    docs = json.loads(board.to_json())
    assert [d["schema"] for d in docs] == ["workbench.benchmark", "workbench.comparison"]
    assert BenchReport.from_json(json.dumps(docs[0])).results[0].latencies_ms == report.results[0].latencies_ms


def test_failed_rows_are_marked_and_never_a_speedup(results):
    report, comparison = results
    rows = _rows(CompareBoard(report, comparison))
    ref, int8 = rows["digits-cnn", "onnxruntime"], rows["digits-cnn-int8-dynamic", "onnxruntime"]
    trt = rows["digits-cnn", "tensorrt"]
    assert ref["reference"] and ref["status"] == "ok" and ref["speedup"] == 1.0 and len(ref["samples_ms"]) == 20
    assert int8["status"] == "fail" and int8["passed"] is False and int8["speedup"] is None
    assert int8["p50_ms"] > 0 and int8["error"].startswith("FAILs accuracy") and int8["rel_l2"] > 0
    assert trt["status"] == "error" and "NVIDIA" in trt["error"] and trt["p50_ms"] is None
    assert "\n" not in trt["error"] and len(trt["error"]) <= 300
    # the static report: rows marked, the FAILing INT8 model out of the speed-up chart
    page = CompareBoard(report, comparison).html()
    assert 'data-status="error"' in page and 'data-status="fail"' in page and "did not run: " in page
    speedup_svg = re.search(r"<svg[^>]*>\s*<title>Speed-up over.*?</svg>", page, re.S)
    assert speedup_svg is None or "int8" not in speedup_svg.group(0)
    assert "Not in the speed-up chart" in page and "FAILs accuracy: not a speed-up" in page
    assert "<script" not in page


def test_code_reproduces_a_board_with_the_same_candidates(results):
    report, comparison = results
    board = CompareBoard(report, comparison, title="digits")
    code = board.code()
    assert board.code_text == code and "wb.benchmark([" in code and "iterations=20" in code
    namespace: dict = {}
    exec(compile(code, "<board code>", "exec"), namespace)  # noqa: S102 - the code the board shows
    again = namespace["board"]
    assert isinstance(again, CompareBoard) and again.title == "digits"
    assert [(r["label"], r["status"] == "error") for r in again.payload["rows"]] == \
        [(r["label"], r["status"] == "error") for r in board.payload["rows"]]


def test_code_loads_a_file_from_where_it_was_even_outside_the_workspace(digits_onnx, tmp_path):
    """Results record each model's file, so the code names it wherever it lies (no guessing by name)."""
    import shutil

    elsewhere = tmp_path / "my models" / "mine.onnx"
    elsewhere.parent.mkdir()
    shutil.copy(digits_onnx.path, elsewhere)
    report = wb.benchmark([str(elsewhere)], iterations=5, progress=False)
    comparison = wb.compare(digits_onnx, [str(elsewhere)])
    assert report.results[0].path == str(elsewhere) and comparison.candidates[0].path == str(elsewhere)
    again = type(report).from_json(report.to_json())
    assert again.results[0].path == str(elsewhere)
    code = CompareBoard(again, comparison).code()
    assert code.count(repr(str(elsewhere))) == 2 and "not recorded" not in code


def test_the_browser_chooses_a_download_and_toggles_nothing_else(results):
    report, comparison = results
    board = CompareBoard(report, comparison)
    sent: list[tuple[dict, list]] = []
    board.send = lambda content, buffers=None: sent.append((content, buffers or []))
    board._on_msg(board, {"kind": "request", "what": "html", "path": "/etc/passwd"}, [])
    board._on_msg(board, {"kind": "request", "what": "json"}, [])
    board._on_msg(board, {"kind": "request", "what": "/etc/passwd"}, [])
    board._on_msg(board, "request", [])
    assert [c["name"] for c, _ in sent] == ["compare-and-benchmark.html", "compare-and-benchmark.json"]
    assert sent[0][1][0].startswith(b"<!DOCTYPE html>") and json.loads(sent[1][1][0])
    ids = [r["id"] for r in board.payload["rows"]]
    board.set_state({"hidden": [ids[1], "made-up", 7], "payload": {}, "code_text": "import os"})
    assert board.hidden == [ids[1]] and board.payload["rows"] and "import os" not in board.code_text
    board.set_results(report)  # a toggled candidate still there stays toggled
    assert board.hidden == [ids[1]] and board.payload["kinds"] == ["BenchReport"]
    with pytest.raises(WorkbenchError, match="cannot show a dict"):
        board.set_results({})
    with pytest.raises(WorkbenchError, match="at least one result"):
        CompareBoard()


def test_bench_view_is_the_board_with_a_browser_download(results, tmp_path):
    from workbench.steps import workspace
    from workbench.ui.bench_view import BenchView

    report, comparison = results
    view = BenchView(report, comparison)
    assert isinstance(view.board, CompareBoard) and view.tabs is None
    name, data, mime = view.download.payload()
    assert name.endswith(".html") and mime == "text/html" and b"<svg" in data
    assert "wb.compare(" in view.code_box.pre.value
    with workspace.using_workspace(tmp_path):
        first, second = view.save(), view.save()
    assert first != second and "<svg" in Path(first).read_text()  # a new file each time


def test_autotune_and_sweep_trials_are_rows_too():
    from workbench.analysis.autotune import Trial, TuneResult
    from workbench.analysis.sweep import SweepResult, SweepTrial

    bad = Trial(backend="onnxruntime", precision="int8", options={}, model="a.onnx", p50_ms=0.5, p90_ms=0.6,
                rel_l2=0.3, valid=False, reason="rel_l2 0.3 > 0.01")
    good = Trial(backend="onnxruntime", precision="fp32", options={"threads": 1}, model="b.onnx", p50_ms=1.0,
                 p90_ms=1.1, rel_l2=1e-7, valid=True, on_front=True)
    broken = Trial(backend="openvino", precision="int8", options={}, model="c.xml", error="NNCF is not installed")
    tuned = TuneResult(model="digits-cnn", trials=[bad, good, broken], best=good, error_axis="rel_l2",
                       budget={"max_metric_drop": None, "max_error": 0.01, "batch": 1, "duration_s": 0.2}, script="")
    trial = {"model": "digits-cnn", "steps": "", "runtime": "onnxruntime", "threads": 1}
    swept = SweepResult(trials=[SweepTrial(index=0, precision="fp32", status="done", passed=True, p50_ms=1.0,
                                           rel_l2=1e-7, **trial),
                                SweepTrial(index=1, precision="int8", status="done", passed=False, p50_ms=0.4,
                                           rel_l2=0.2, **trial),
                                SweepTrial(index=2, precision="bf16", status="failed", error="no bf16 here", **trial)],
                        executor="sequential", address=None, wall_s=1.0,
                        grid={"models": ["digits-cnn"], "steps": [""], "runtimes": ["onnxruntime"],
                              "precisions": ["fp32", "int8", "bf16"], "threads": [1]})
    board = CompareBoard(tuned, swept)
    assets.validate(board.payload, "BoardPayload")
    rows = board.payload["rows"]
    assert [r["status"] for r in rows] == ["fail", "ok", "error", "ok", "fail", "error"]
    assert rows[0]["error"].startswith("FAILs the budget") and rows[2]["error"] == "NNCF is not installed"
    assert board.payload["error_axis"] == "rel_l2" and rows[4]["speedup"] is None
    code = board.code()
    assert "wb.autotune('digits-cnn', max_metric_drop=None, max_error=0.01, batch=1, duration_s=0.2)" in code and "wb.sweep(['digits-cnn']" in code
    compile(code, "<board code>", "exec")  # running it is an autotune and a sweep: test_autotune's business
    back = CompareBoard(TuneResult.from_json(tuned.to_json()), SweepResult.from_json(swept.to_json()))
    assert back.payload == board.payload


# -- in a browser ----------------------------------------------------------------------------------------

NOTEBOOK_CELLS = [
    "from pathlib import Path\nfrom workbench.analysis.bench import BenchReport\nfrom workbench.core.metrics import Comparison\n"
    "from workbench.ui import CompareBoard\n"
    "report = BenchReport.from_json(Path('report.json').read_text())\n"
    "comparison = Comparison.from_json(Path('comparison.json').read_text())",
    "board = CompareBoard(report, comparison)\nboard",
]


@pytest.mark.browser
def test_board_in_voila_at_1000_px(results, browser, tmp_path):
    import nbformat

    from tests.ui.jupyter_servers import CHROMIUM, SCREENSHOTS, voila

    if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs Debian's chromium
        pytest.skip("Debian's chromium is not installed")
    report, comparison = results
    (tmp_path / "report.json").write_text(report.to_json(latencies=True))
    (tmp_path / "comparison.json").write_text(comparison.to_json())
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "board.ipynb")
    ctx = browser.new_context(viewport={"width": 1000, "height": 900})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        with voila(tmp_path, "board.ipynb") as url:
            page.goto(url, timeout=120_000)
            page.wait_for_selector(".wb-cb svg.wb-cb-latency", timeout=120_000)
            try:
                _check_board(page)
            finally:
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / "compare-board-voila-1000px.png"), full_page=True)
    finally:
        ctx.close()
    assert not errors, errors


def _check_board(page) -> None:
    rows = page.locator("tr.wb-cb-row")
    assert rows.count() == 3
    heights = [rows.nth(i).bounding_box()["height"] for i in range(3)]
    assert max(heights) <= 40, heights  # one line per candidate at 1000 px
    table = page.locator(".wb-cb-table-wrap").evaluate("(e) => [e.scrollWidth, e.clientWidth]")
    assert table[0] <= table[1] + 1, table  # every column on screen: nothing to scroll sideways to
    # the failed row is shown and marked, its error a click away (and the row still one line)
    failed = page.locator("tr.wb-cb-row[data-status=error]")
    assert failed.locator(".wb-cb-bad").inner_text() == "ERROR" and "did not run" in failed.inner_text()
    int8 = page.locator("tr.wb-cb-row[data-status=fail]")
    assert int8.locator(".wb-cb-bad").inner_text() == "FAIL" and "—" in int8.inner_text()
    failed.locator("td.wb-cb-label").click()
    detail = page.locator(f"tr.wb-cb-detail[data-id='{failed.get_attribute('data-id')}']")
    assert detail.is_visible() and "NVIDIA" in detail.inner_text()
    # the FAILing INT8 model is drawn hollow red, never best
    assert page.locator(".wb-cb-accuracy g.wb-cb-failed").count() == 1
    assert int8.locator(".wb-cb-best").count() == 0
    # toggling a candidate off takes it out of the plots
    ok_id = page.locator("tr.wb-cb-row[data-status=ok]").first.get_attribute("data-id")
    marks = f".wb-cb-latency g[data-id='{ok_id}']"
    assert page.locator(marks).count() == 1
    page.locator(f"tr.wb-cb-row[data-id='{ok_id}'] input[type=checkbox]").uncheck()
    page.wait_for_function(f"document.querySelectorAll(\"{marks}\").length === 0", timeout=10_000)
    page.locator(".wb-cb .wb-show-code summary").click()
    assert "wb.benchmark(" in page.locator(".wb-cb .wb-show-code pre").inner_text()

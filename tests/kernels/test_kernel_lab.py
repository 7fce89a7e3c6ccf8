"""KernelLab, Python side: the buttons' actions (sent as the browser sends them) run the engine."""

import pytest

from workbench.ui.kernel_lab import KernelLab


def _press(lab, action):
    lab._on_message(lab, {"action": action}, None)  # exactly what the browser's button sends


def test_default_lab_runs_checks_and_benchmarks(kernel_mode):
    lab = KernelLab()
    assert lab.mode_name == kernel_mode.name and lab.mode_text == kernel_mode.describe()
    _press(lab, "run")
    assert lab.status == "ok" and "ran without errors" in lab.output
    _press(lab, "check")
    assert lab.status == "ok" and "all 4 cases pass" in lab.output
    assert lab.last_report
    _press(lab, "bench")
    assert lab.status == "ok" and lab.last_bench.ms > 0
    if kernel_mode.interpreted:
        assert "no meaning for GPU speed" in lab.output


def test_errors_point_at_the_editor_line_and_the_lab_keeps_working():
    lab = KernelLab()
    lab.code = lab.code.replace("mask = offs < n\n", "mask = offs < nn\n")  # line 4
    _press(lab, "check")
    assert lab.status == "fail" and "NameError" in lab.output and lab.error_line == 4
    lab.code = "def broken(:\n"
    _press(lab, "run")
    assert lab.status == "error" and lab.error_line == 1 and "SyntaxError" in lab.output
    other = KernelLab("x = 1\n", entry="missing", reference=lambda x: x)
    _press(other, "check")
    assert other.status == "error" and "no function named 'missing'" in other.output
    _press(lab, "unknown-action")  # ignored
    lab.code = KernelLab().code
    _press(lab, "check")
    assert lab.status == "ok" and lab.error_line == 0


def test_exercise_lab_checks_with_the_exercise_checker():
    lab = KernelLab.from_exercise("softmax.log_softmax")
    assert "TODO" in lab.code and lab.entry == "log_softmax" and "log-softmax" in lab.title
    _press(lab, "check")
    assert lab.status == "fail" and "never written" in lab.output
    from workbench.kernels.puzzles import exercise

    lab.code = exercise("softmax.log_softmax").solution_source()
    _press(lab, "check")
    assert lab.status == "ok", lab.output


def test_published_lab_is_read_only_and_runs_only_the_authors_code(monkeypatch):
    monkeypatch.setenv("VOILA_KERNEL_ID", "test")
    lab = KernelLab()
    assert lab.editable is False
    lab.code = "import os\nos.environ['PWNED'] = '1'\n"  # what a visitor could send from the browser
    _press(lab, "run")
    assert lab.status == "ok"
    import os

    assert "PWNED" not in os.environ


@pytest.mark.parametrize("ns_shared", [True, False])
def test_namespace_can_be_the_notebooks(ns_shared):
    ns = {} if ns_shared else None
    lab = KernelLab(namespace=ns)
    _press(lab, "run")
    assert ("add" in ns) if ns_shared else ("add" in lab.namespace)


def test_check_shows_the_access_map_and_benchmark_reports_bandwidth(kernel_mode):
    lab = KernelLab()
    _press(lab, "check")
    if kernel_mode.interpreted:
        m = lab.access_map
        assert m["kernel"] == "add_kernel" and [t["name"] for t in m["tensors"]] == ["x_ptr", "y_ptr", "out_ptr"]
        out = m["tensors"][2]
        assert out["counts"]["written"] == out["counts"]["elements"] and sum(map(sum, out["writes"])) > 0
        assert m["races"] == []
    _press(lab, "bench")
    r = lab.last_bench
    n = (1 << 16) if kernel_mode.interpreted else (1 << 24)
    assert r.bytes == 3 * n * 4 and r.gbps > 0  # two inputs read, one output written
    assert "GB/s" in lab.output


def test_show_code_is_the_lab_as_a_script_that_runs(capsys):
    lab = KernelLab()
    assert lab.code_text == lab.script() and "wb.kernels.run(CODE)" in lab.code_text
    lab.code = lab.code.replace("256", "128")  # an edit (grid and block) shows in the script
    assert "BLOCK=128" in lab.code_text and "256" not in lab.code_text
    exec(compile(lab.code_text, "<kernel lab script>", "exec"), {})  # noqa: S102 - the code the lab shows
    assert "all 4 cases pass" in capsys.readouterr().out
    ex = KernelLab.from_exercise("softmax.log_softmax")
    assert "wb.kernels.exercise('softmax.log_softmax').check(log_softmax)" in ex.code_text
    # a reference defined in the notebook cannot be imported by a script: the script says so
    assert "define reference" in KernelLab("def f(x):\n    return x\n", entry="f", reference=lambda x: x).code_text

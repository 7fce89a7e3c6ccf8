"""The progress channel's cancel contract, and progress by default on benchmark and autotune."""

from __future__ import annotations

import threading
import time

import pytest

from workbench.core import progress
from workbench.core.errors import WorkbenchError


def test_cancel_token_is_context_local_and_nests():
    outer, inner = progress.CancelToken(), progress.CancelToken()
    progress.check_cancelled()  # no token: nothing to cancel
    with progress.cancellable(outer):
        with progress.cancellable(inner):
            progress.check_cancelled()
            outer.cancel()  # an enclosing block's token counts too
            with pytest.raises(progress.Cancelled) as info:
                progress.check_cancelled("the sweep", partial=[1, 2])
        assert info.value.partial == [1, 2] and progress.last_partial() == [1, 2]
        assert isinstance(info.value, WorkbenchError) and "the sweep was cancelled" in str(info.value)
        assert "fix:" in str(info.value)
    progress.check_cancelled()  # outside the block the token does not apply
    assert not inner.cancelled and outer.cancelled


def test_cancel_from_another_thread_stops_background_work():
    steps = []

    def work():
        for i in range(1000):
            progress.check_cancelled("counting", partial=list(steps))
            steps.append(i)
            time.sleep(0.005)
        return steps

    task = progress.run_in_background(work, name="counting")
    while len(steps) < 3:
        time.sleep(0.005)
    threading.Thread(target=task.cancel).start()
    assert task.wait(10)
    assert isinstance(task.error, progress.Cancelled) and 3 <= len(task.partial) < 1000
    with pytest.raises(progress.Cancelled):
        task.result()
    assert "cancelled" in repr(task)
    # a token does not leak out of the task's thread
    progress.check_cancelled()


def _events(into):
    return lambda event: into.append(event)


def test_benchmark_reports_each_configuration_and_cancels_between_them(digits_onnx):
    import workbench as wb

    seen = []
    token = progress.CancelToken()

    def listen(event):
        seen.append(event)
        if event.status == "done" and event.key == 0:
            token.cancel()  # the Cancel button, pressed while the first configuration finishes

    with progress.cancellable(token), pytest.raises(progress.Cancelled) as info:
        wb.benchmark([digits_onnx, (digits_onnx, "openvino")], iterations=15, warmup=1, progress=listen)
    partial = info.value.partial
    assert partial.cancelled and len(partial) == 1 and partial[0].ok and "cancelled" in repr(partial)
    running = [e for e in seen if e.status == "running"]
    assert len(running) == 1 and "onnxruntime" in running[0].label and "batch 1" in running[0].label
    assert (running[0].done, running[0].total) == (0, 2)
    assert [e.status for e in seen] == ["running", "done", "cancelled"] and seen[1].done == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_benchmark_cancel_stops_a_long_timing_loop_in_the_background(digits_onnx, mode):
    import workbench as wb

    seen = []
    start = time.perf_counter()
    task = wb.benchmark(digits_onnx, duration_s=120, mode=mode, streams=2, progress=_events(seen), background=True)
    assert isinstance(task, progress.Task)
    while not any(e.status == "running" for e in seen) and time.perf_counter() - start < 60:
        time.sleep(0.05)
    time.sleep(1.0)  # inside the 120 s timing loop now
    cancelled_at = time.perf_counter()
    task.cancel()
    assert task.wait(20), "the cancel did not stop the timing loop"
    assert time.perf_counter() - cancelled_at < 5
    assert isinstance(task.error, progress.Cancelled) and task.partial.cancelled and len(task.partial) == 0
    assert seen[-1].status == "cancelled"


def test_interrupt_during_a_benchmark_keeps_the_finished_part(digits_onnx):
    import _thread

    import workbench as wb

    def listen(event):
        if event.status == "running":  # a real interrupt of the main thread (what Ctrl-C / Interrupt sends)
            threading.Timer(0.5, _thread.interrupt_main).start()

    start = time.perf_counter()
    with pytest.raises(progress.Cancelled) as info:
        wb.benchmark(digits_onnx, duration_s=60, warmup=1, progress=listen)
    assert time.perf_counter() - start < 20
    assert info.value.interrupted and "interrupted" in str(info.value)
    assert info.value.partial.cancelled and progress.last_partial() is info.value.partial
    wb.benchmark(digits_onnx, iterations=10, warmup=1, progress=False)  # the runtime is fine afterwards


def test_autotune_reports_trials_and_returns_the_partial_result_on_cancel(fresh_workspace):
    import workbench as wb

    seen = []
    token = progress.CancelToken()

    def listen(event):
        seen.append(event)
        if event.status == "done" and event.done == 1:
            token.cancel()

    space = {"backends": ["onnxruntime"], "precisions": ["fp32"], "threads": [None, 1],
             "graph_optimization_level": ["all"]}
    with progress.cancellable(token), pytest.raises(progress.Cancelled) as info:
        wb.autotune("digits-cnn", space=space, duration_s=0.1, include_torch=False, progress=listen)
    tuned = info.value.partial
    assert tuned.cancelled and len(tuned.trials) == 1 and tuned.trials[0].p50_ms > 0
    assert tuned.best is tuned.trials[0] and "CANCELLED" in tuned.summary()
    trials = [e for e in seen if e.status == "running" and e.detail.startswith("(trial")]
    assert trials and trials[0].label.startswith("onnxruntime fp32") and "trial 1/2" in trials[0].detail
    assert seen[-1].status == "cancelled"
    assert all(e.key == "autotune" for e in seen)  # the trials' inner benchmarks and steps do not garble the counts


def test_notebook_task_view_names_the_running_step_and_cancels(digits_onnx):
    pytest.importorskip("ipywidgets")
    from workbench.ui.pipeline_view import TaskView

    token = progress.CancelToken()
    view = TaskView(token, "benchmark: 2 configurations")
    view(progress.Event("running", 0, "onnxruntime batch 1", "(1/2)", done=0, total=2))
    assert "onnxruntime batch 1" in view.running.value and view.bar.max == 2 and view.bar.value == 0
    view(progress.Event("done", 0, "onnxruntime batch 1", done=1, total=2))
    assert view.bar.value == 1 and view.count.value == "1/2"
    view.cancel_button.click()
    assert token.cancelled and view.cancel_button.disabled
    view.close()
    assert view.cancel_button.description == "Cancelled"
    foreground = TaskView(None, "autotune")  # the kernel is busy: the button cannot work, and says so
    assert foreground.cancel_button.disabled and "Interrupt" in foreground.cancel_button.tooltip


def test_a_cancel_click_racing_the_tasks_end_leaves_the_ends_state():
    """The click runs on the kernel's main thread, the task ends on its own: under load the task can see the
    cancel and close its view before the click's handler has finished; the view must still end "Cancelled"
    (it once stayed "Cancelling…"), and a click that arrives after the end changes nothing."""
    pytest.importorskip("ipywidgets")
    from workbench.ui.pipeline_view import TaskView

    closed = threading.Event()

    class DescheduledAfterCancel(progress.CancelToken):
        def cancel(self) -> None:
            super().cancel()
            closed.wait(1.0)  # the click's thread stalls right after cancelling: the task ends meanwhile

    token = DescheduledAfterCancel()
    view = TaskView(token, "benchmark: 4 configurations")

    def task() -> None:
        while not token.cancelled:
            time.sleep(0.01)
        view.close()
        closed.set()

    worker = threading.Thread(target=task)
    worker.start()
    view.cancel_button.click()
    worker.join(5)
    assert view.cancel_button.description == "Cancelled" and "cancelled" in view.running.value

    done = TaskView(progress.CancelToken(), "benchmark: 1 configuration")
    done.close()
    done.cancel_button.click()  # a click message still in flight when the task finished
    assert done.cancel_button.description == "Finished" and not done.token.cancelled


def test_cached_steps_are_labelled_cached_not_timed(zoo, tmp_path):
    import workbench as wb
    from workbench.steps.workspace import using_workspace

    pytest.importorskip("ipywidgets")
    from workbench.ui.pipeline_view import PipelineView, status_text

    with using_workspace(tmp_path):
        wb.Pipeline([("export", "onnx")]).run(zoo("digits-cnn"), progress=False)
        p = wb.Pipeline([("export", "onnx")])
        run = p.run(zoo("digits-cnn"), progress=False)
    rec = run.records[0]
    assert rec.status == "cached" and status_text(rec).startswith("cached")
    view = PipelineView(p, run)
    view.update(rec)
    assert "cached" in view.status[1].value and " s" not in view.status[1].value.split("→")[0]


def test_auto_progress_shows_a_bar_for_long_work_only(digits_onnx, capsys):
    import workbench as wb

    wb.benchmark(digits_onnx, duration_s=0.1, warmup=1)  # over in a moment: no bar (e.g. one call of a loop)
    assert "benchmark" not in capsys.readouterr().err
    wb.benchmark(digits_onnx, iterations=10, warmup=1)  # length unknown: a bar, named by the configuration
    err = capsys.readouterr().err
    assert "benchmark: 1 configuration" in err and "onnxruntime" in err and "1/1" in err
    with progress.subscribe(lambda e: None):  # a view already listens (the app's): nothing of its own
        wb.benchmark(digits_onnx, iterations=10, warmup=1)
    assert "benchmark" not in capsys.readouterr().err


def test_pipeline_stops_between_steps_on_a_callers_token(zoo):
    import workbench as wb
    from workbench.steps.pipeline import Step

    token = progress.CancelToken()

    def press_cancel(model):
        token.cancel()
        return model

    def never(model):  # pragma: no cover - must not run
        raise AssertionError("ran after the cancel")

    p = wb.Pipeline([Step.custom(press_cancel), Step.custom(never)])
    with progress.cancellable(token), pytest.raises(progress.Cancelled) as info:
        p.run(zoo("digits-cnn"), progress=False)
    assert [r.status for r in info.value.partial.records] == ["done", "cancelled"]
    with progress.cancellable(token):  # raise_errors=False (the app's, a background run): the run comes back
        run = p.run(zoo("digits-cnn"), progress=False, raise_errors=False)
    assert [r.status for r in run.records] == ["cancelled", "cancelled"]

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

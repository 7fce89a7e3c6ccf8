"""A native step that crashes or hangs runs in the worker subprocess: the caller (a real Jupyter
kernel here) gets an error it can show, survives, and keeps its earlier artifacts."""

from __future__ import annotations

import os
import textwrap
import time

import pytest

import workbench as wb
from workbench.core.errors import StepError
from workbench.steps.pipeline import Step
from workbench.steps.worker import run_isolated
from workbench.steps.workspace import using_workspace


def crash_on_purpose(model):
    """A 'converter' that segfaults (a signal, as native code would)."""
    import signal

    print("converting… about to crash", flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)


def hang_on_purpose(model):
    time.sleep(600)


def test_crash_and_hang_give_errors_and_the_next_step_works(zoo, tmp_path):
    m = zoo("digits-cnn")
    with using_workspace(tmp_path):
        x = wb.export(m, "onnx")
        digest = x.path.read_bytes()
        with pytest.raises(StepError) as info:
            wb.Pipeline([Step.custom(crash_on_purpose, isolate=True)]).run(x, progress=False)
        text = str(info.value)
        assert "SIGSEGV" in text and "kernel and earlier artifacts are intact" in text
        assert "about to crash" in text  # the native output is quoted
        with pytest.raises(StepError, match="did not finish within 2 s"):
            run_isolated(hang_on_purpose, None, timeout=2, label="hang")
        assert x.path.read_bytes() == digest
        # a fresh worker takes the next step
        assert wb.convert(x, "openvino", cache=False).validation


def test_kernel_survives_a_crashing_step(tmp_path):
    """The same in a real Jupyter kernel: the kernel lives on, with its variables and artifacts."""
    jupyter_client = pytest.importorskip("jupyter_client")
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3", cwd=str(tmp_path),
                                                     env={**os.environ, "WORKBENCH_ARTIFACTS": str(tmp_path / "art")})
    try:
        code = textwrap.dedent("""
            import os, signal, workbench as wb
            from workbench.steps.pipeline import Step
            m = wb.load("digits-cnn")
            def crash(model):
                os.kill(os.getpid(), signal.SIGSEGV)
            p = wb.Pipeline([("export", "onnx"), Step.custom(crash, isolate=True)])
            try:
                p.run(m, progress=False)
            except wb.WorkbenchError as err:
                message = str(err)
            x = p.last_run.final
            print("ERR:", message.split(" — ")[0])
            print("KEPT:", x.path.exists(), x.validation.passed)
        """)
        reply = kc.execute_interactive(code, timeout=240, output_hook=_collect(out := []))
        assert reply["content"]["status"] == "ok", out
        text = "".join(out)
        assert "ERR:" in text and "SIGSEGV" in text
        assert "KEPT: True True" in text
        assert km.is_alive()
        reply = kc.execute_interactive("print(type(m).__name__, 6 * 7)", timeout=30, output_hook=_collect(out2 := []))
        assert "Model 42" in "".join(out2)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _collect(sink):
    def hook(msg):
        if msg["msg_type"] == "stream":
            sink.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            sink.append("\n".join(msg["content"]["traceback"]))
    return hook


def test_a_model_that_cannot_be_pickled_runs_in_process(tmp_path):
    import threading

    import torch

    class Locked(torch.nn.Module):  # a lock cannot be pickled, so the worker cannot have it
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)
            self.lock = threading.Lock()

        def forward(self, x):
            return self.fc(x)

    m = wb.load(Locked().eval(), example_inputs=torch.randn(2, 3))
    with using_workspace(tmp_path):
        x = wb.export(m, "onnx")
    assert x.validation
    assert any("ran in this process" in n for n in x.metadata["notes"])

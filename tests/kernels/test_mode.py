"""Mode selection in fresh processes: the interpreter is switched on whatever was imported first."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json
    import torch
    import triton                      # the user imports triton first, before the lab
    import triton.language as tl

    @triton.jit                        # ... and decorates a kernel in compiled mode
    def early(x_ptr, n, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        x = tl.load(x_ptr + offs, mask=offs < n, other=-1e9)
        tl.store(x_ptr + offs, x - tl.max(x, axis=0), mask=offs < n)

    import workbench.kernels as k
    mode = k.setup()
    x = torch.tensor([1.0, 5.0, 3.0])
    early[(1,)](x, 3, BLOCK=4)
    print(json.dumps({"mode": mode.name, "reason": mode.reason, "x": x.tolist()}))
""")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU path")
def test_triton_imported_first_still_runs_in_the_interpreter(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TRITON_INTERPRET", None)
    script = tmp_path / "user_script.py"  # Triton reads kernel source from a file
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["mode"] == "interpreter"
    assert "routed to the interpreter" in result["reason"]
    assert result["x"] == [-4.0, 0.0, -2.0]


def test_mode_is_shown(kernel_mode):
    text = kernel_mode.describe()
    assert kernel_mode.name in ("compiled", "interpreter")
    if kernel_mode.interpreted:
        assert "interpreter mode on the CPU" in text and "timings say nothing" in text
        assert os.environ["TRITON_INTERPRET"] == "1"
        assert kernel_mode.device == "cpu"
    assert kernel_mode.name in kernel_mode._repr_html_() or "interpreter" in kernel_mode._repr_html_()


def test_wrong_device_and_missing_driver_errors_are_translated():
    from workbench.kernels.modes import KernelError, as_error

    err = as_error(RuntimeError("0 active drivers ([]). There should only be one."))
    assert isinstance(err, KernelError) and "no GPU driver" in str(err) and "fix:" in str(err)
    other = ValueError("x")
    assert as_error(other) is other


def test_import_workbench_kernels_is_light():
    code = "import sys, workbench.kernels; print(any(m in sys.modules for m in ('torch', 'triton', 'ipywidgets')))"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_public_names_are_the_functions_even_after_every_submodule_was_imported():
    import workbench as wb
    import workbench.kernels.checker  # noqa: F401
    import workbench.kernels.modes  # noqa: F401
    import workbench.kernels.puzzles  # noqa: F401
    import workbench.kernels.timing  # noqa: F401

    for name in ("check", "bench", "mode", "setup", "exercise", "exercises", "run", "register_op", "with_kernels"):
        assert callable(getattr(wb.kernels, name)) and not isinstance(getattr(wb.kernels, name), type(wb)), name


def test_interpret_setting_is_read_without_triton_knobs(monkeypatch):
    """Triton < 3.4 has no triton.knobs: the environment variable is read instead."""
    import builtins

    from workbench.kernels import modes

    real_import = builtins.__import__

    def no_knobs(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "triton" and fromlist and "knobs" in fromlist:
            raise ImportError("cannot import name 'knobs' from 'triton'")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", no_knobs)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert modes._decorates_interpreted() is True
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert modes._decorates_interpreted() is False

"""The %%triton cell magic on a real IPython shell: mode line, namespace, errors at the cell's line."""

import pytest
from IPython.testing.globalipapp import get_ipython

from workbench.kernels.magic import run_source
from workbench.kernels.modes import KernelError

ADD_CELL = """\
@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)

x = torch.arange(10, dtype=torch.float32, device=DEVICE)
out = torch.empty_like(x)
add_kernel[(triton.cdiv(10, 4),)](x, x, out, 10, BLOCK=4)
"""


@pytest.fixture(scope="module")
def ip():
    shell = get_ipython()
    shell.run_line_magic("load_ext", "workbench.kernels")
    return shell


def test_magic_runs_the_cell_in_the_notebook_namespace(ip, kernel_mode, capsys):
    ip.user_ns["DEVICE"] = kernel_mode.device
    result = ip.run_cell("%%triton\n" + ADD_CELL)
    assert result.success, result.error_in_exec
    assert ip.user_ns["out"].tolist() == [2.0 * i for i in range(10)]
    assert f"[{kernel_mode.name}]" in capsys.readouterr().out


def test_error_inside_a_kernel_points_at_the_cell_line(ip, kernel_mode):
    ip.user_ns["DEVICE"] = kernel_mode.device
    cell = ADD_CELL.replace("mask = offs < n", "mask = offs < n_elements")  # line 5, counting %%triton
    result = ip.run_cell("%%triton --quiet\n" + cell)
    err = result.error_in_exec
    assert isinstance(err, KernelError)
    assert str(err).startswith("line 5 of the cell (`mask = offs < n_elements`): NameError")
    assert "fix:" in str(err)
    assert err._render_traceback_()[0].endswith(str(err))  # IPython shows just this line
    assert ip.run_cell("1 + 1").result == 2  # the shell is fine afterwards


def test_syntax_error_points_at_the_line():
    with pytest.raises(KernelError, match=r"^line 2 of the cell .*SyntaxError"):
        run_source("x = 1\ny = (2,\n", {})


def test_out_of_bounds_in_a_cell_names_the_kernel_line(kernel_mode):
    if not kernel_mode.interpreted:
        pytest.skip("bounds are checked in interpreter mode")
    cell = ADD_CELL.replace(", mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)",
                            ") + tl.load(y_ptr + offs))")
    with pytest.raises(KernelError) as info:
        run_source(cell, {"DEVICE": "cpu"})
    text = str(info.value)
    assert "out-of-bounds load in kernel `add_kernel` at line 5" in text
    assert "2 of 4 active lanes" in text


def test_run_source_provides_triton_tl_torch():
    ns = run_source("ok = (triton.__name__, tl.__name__, torch.__name__)", {})
    assert ns["ok"] == ("triton", "triton.language", "torch")


def test_a_triton_compilation_error_maps_to_the_cell_line():
    # On a GPU, Triton reports compile errors relative to the kernel's `def`; the cell line is found
    # from that. Raised here by hand (as Triton's code generator raises it), since CI has no GPU.
    cell = '''import ast
from triton.compiler.errors import CompilationError
@triton.jit
def k(x_ptr):
    y = 1
    z = unsupported_thing(y)
src = "def k(x_ptr):\\n    y = 1\\n    z = unsupported_thing(y)\\n"
raise CompilationError(src, ast.parse(src).body[0].body[1], "unsupported_thing is not a Triton function")
'''
    with pytest.raises(KernelError, match=r"^line 6 of the cell \(`z = unsupported_thing\(y\)`\): CompilationError"):
        run_source(cell, {})

"""The ``%%triton`` cell magic and its engine, ``run_source``, which the KernelLab widget uses too.

A cell run this way gets ``triton``, ``tl`` and ``torch`` in its namespace, after the mode was chosen
(``TRITON_INTERPRET=1`` is set first when there is no GPU, so the kernels it defines run in the
interpreter). Its source is registered with ``linecache`` under a name of its own, so Triton can read
the kernels' source and errors can name the line *of the cell*: ``KernelError: line 7 of the cell
(`y = tl.load(x_ptr + offs)`): …``. Errors are raised as ``KernelError`` (one line, with the fix);
the Jupyter kernel keeps running.

    %load_ext workbench.kernels
    %%triton
    @triton.jit
    def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr): ...
"""

from __future__ import annotations

import itertools
import linecache
import traceback
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from workbench.kernels.modes import KernelError, as_error, setup

_counter = itertools.count(1)


@dataclass
class CellError:
    """Where a cell failed: the line in the cell (1-based), its text, and the error."""

    line: int | None
    text: str
    error: BaseException

    def message(self) -> str:
        err = self.error
        cause = err.__cause__ if type(err).__name__ == "InterpreterError" and err.__cause__ else err
        what = getattr(cause, "problem", None) or str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        where = f"line {self.line} of the cell (`{self.text}`): " if self.line else ""
        return f"{where}{type(cause).__name__}: {what}"


def _register(source: str) -> str:
    filename = f"<triton-cell-{next(_counter)}>"
    lines = source.splitlines(keepends=True)
    # an mtime of None keeps linecache.checkcache from dropping an entry that has no file on disk
    linecache.cache[filename] = (len(source), None, lines, filename)
    return filename


def _frames(err: BaseException) -> list[tuple[str, int]]:
    """(filename, line) of every frame in the error's traceback and those of its causes, innermost last."""
    seen: list[tuple[str, int]] = []
    chain: list[BaseException] = []
    e: BaseException | None = err
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:  # outer errors first: the root cause's frames are the innermost, last
        tb: TracebackType | None = e.__traceback__
        for fs in traceback.extract_tb(tb):
            seen.append((fs.filename, fs.lineno or 0))
    return seen


def locate(err: BaseException, filename: str, first_line: int = 1) -> CellError:
    """Find the cell line an error comes from: the innermost traceback frame in the cell, or the
    position a Triton ``CompilationError`` gives inside a kernel defined in the cell."""
    line = None
    node = getattr(err, "node", None)
    src_fn = getattr(err, "src", None)
    if node is not None and hasattr(node, "lineno") and src_fn is not None:
        # CompilationError: node.lineno counts from the kernel's `def` line; find that line in the cell
        starting = _kernel_start(err, filename)
        if starting is not None:
            line = starting + node.lineno - 1
    if line is None:
        for fname, lineno in reversed(_frames(err)):
            if fname == filename:
                line = lineno
                break
    if isinstance(err, SyntaxError) and err.filename == filename:
        line = err.lineno
    text = linecache.getline(filename, line).strip() if line else ""
    return CellError(line + first_line - 1 if line else None, text, err)


def _kernel_start(err: BaseException, filename: str) -> int | None:
    src = getattr(err, "src", None)
    lines = linecache.getlines(filename)
    if not src or not lines:
        return None
    first = src.strip().splitlines()[0].strip() if isinstance(src, str) else None
    if not first:
        return None
    for i, text in enumerate(lines, 1):
        if text.strip() == first:
            return i
    return None


def prepare_namespace(namespace: dict[str, Any]) -> dict[str, Any]:
    """Choose the mode, then put ``triton``, ``tl`` and ``torch`` into ``namespace`` if missing."""
    setup()
    import torch
    import triton
    import triton.language as tl

    namespace.setdefault("triton", triton)
    namespace.setdefault("tl", tl)
    namespace.setdefault("torch", torch)
    namespace.setdefault("wrap_triton", torch.library.wrap_triton)  # launchers torch.compile can trace
    return namespace


def run_source(source: str, namespace: dict[str, Any] | None = None, *, first_line: int = 1) -> dict[str, Any]:
    """Execute ``source`` (a cell) in ``namespace`` with the kernel lab's mode and error mapping.

    Returns the namespace. On an error raises ``KernelError`` whose message starts with the line of
    the cell; the original error is its ``__cause__`` and ``.cell_error`` has the details.
    """
    ns = prepare_namespace(namespace if namespace is not None else {})
    filename = _register(source)
    try:
        code = compile(source, filename, "exec")
        exec(code, ns)  # noqa: S102 - running the user's own cell is the point
    except Exception as err:  # noqa: BLE001 - every error is mapped to a cell line
        mapped = as_error(err)
        where = locate(err, filename, first_line)
        if mapped is not err:
            problem, fix = mapped.problem, mapped.fix  # type: ignore[attr-defined]
        else:
            problem = where.message()
            fix = getattr(err, "fix", None) or _fix_for(err)
        if mapped is not err and where.line:
            problem = f"line {where.line} of the cell (`{where.text}`): {problem}"
        new = KernelError(problem, fix)
        new.cell_error = where  # type: ignore[attr-defined]
        raise new from err
    return ns


def _fix_for(err: BaseException) -> str:
    name = type(err).__name__
    cause = err.__cause__ if name == "InterpreterError" and err.__cause__ else err
    text = str(cause)
    if isinstance(cause, SyntaxError):
        return "correct the Python syntax on that line"
    if isinstance(cause, NameError):
        return "define the name, or pass it to the kernel as an argument (kernels see only their arguments, globals and tl)"
    if "constexpr" in text or "arange" in text:
        return "block sizes given to tl.arange must be tl.constexpr powers of two"
    if name == "CompilationError":
        return "fix the kernel at that line (Triton compiles a subset of Python: see the message)"
    return "fix the cell at that line and run it again"


def triton_cell_magic(line: str, cell: str) -> None:
    """The ``%%triton`` magic: run the cell in the notebook's namespace in the lab's mode.

    ``%%triton --quiet`` leaves out the line that says which mode the kernels run in.
    """
    from IPython import get_ipython

    ip = get_ipython()
    ns = ip.user_ns if ip is not None else {}
    mode = setup()
    if "--quiet" not in line.split():
        print(f"[{mode.name}] {mode.describe()}")
    try:
        # a leading newline stands for the %%triton line, so line numbers match what the user sees
        run_source("\n" + cell, ns)
    except KernelError as err:
        # IPython shows a KernelError as its one line (KernelError._render_traceback_), no deep traceback
        raise err.with_traceback(None) from None


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext workbench.kernels`` registers the ``%%triton`` cell magic."""
    ipython.register_magic_function(triton_cell_magic, magic_kind="cell", magic_name="triton")

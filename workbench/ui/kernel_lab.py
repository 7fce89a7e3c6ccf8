"""``KernelLab``: write a Triton kernel in an editor, run it, check it against a reference, time it.

A thin view over the engine (``workbench.kernels``): **Run** executes the editor's code with
``wb.kernels.run`` (the ``%%triton`` engine: mode chosen automatically, errors at the editor's line),
**Check** calls ``wb.kernels.check`` (or the exercise's checker) on the launcher named ``entry``,
**Benchmark** calls ``wb.kernels.bench`` on realistic sizes (the default lab: 2**24 elements on a GPU,
2**16 in the interpreter; ``bench_inputs=`` for others) and reports GB/s from the bytes the inputs and
outputs occupy. In interpreter mode **Check** also records access maps: the panel under the editor
shows, per tensor argument, which elements each program read (blue) and wrote (red), and any race.
The browser half is ``workbench/widgets/kernel_lab.js``: a
Python-highlighting editor, the three buttons, the mode badge and the output panel.

Published as a Voilà app, the lab is read-only: the editor is locked and the buttons run only the
code the notebook's author gave, so visitors cannot run code of their choosing. That decision is made
in the kernel and kept there: the synced ``editable`` trait only tells the browser how to draw the
editor, and the browser may change nothing but ``code`` (and that only while the kernel allows
edits). A visitor who rewrites the widget's state over the websocket (``editable: true``, new
``code``, another ``entry``) changes nothing the kernel runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import anywidget
import traitlets

from workbench.core.errors import WorkbenchError
from workbench.ui import assets
from workbench.ui.show_code import code_trait

DEFAULT_CODE = '''\
@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, x + y, mask=mask)


def add(x, y):
    out = torch.empty_like(x)
    add_kernel[(triton.cdiv(x.numel(), 256),)](x, y, out, x.numel(), BLOCK=256)
    return out
'''


def in_voila() -> bool:
    """True inside a kernel that serves visitors: started by Voilà (a published app, preheated or not)
    or by the app's kernel launcher (``WORKBENCH_PUBLISHED``, set by ``workbench.ui.app_kernel``)."""
    from workbench.core import settings

    return (settings.published() or any(k in os.environ for k in ("VOILA_KERNEL_ID", "VOILA_PREHEAT"))
            or os.environ.get("SERVER_SOFTWARE", "").startswith("voila"))


class KernelLab(anywidget.AnyWidget):
    """An editor for a Triton kernel and its launcher, with Run, Check and Benchmark buttons.

    Args:
        code: the starting code (a kernel and its launcher); default: vector add.
        entry: the launcher's name, called by Check and Benchmark (default ``"add"``).
        reference: the torch function the launcher must match (default for the vector add: ``x + y``).
        shapes, dtypes, make_inputs, tolerances: passed to ``wb.kernels.check``.
        bench_inputs: ``() -> tuple of tensors`` for Benchmark (default: inputs of the last shape).
        namespace: where the code runs (default: a fresh dict; pass ``globals()`` to share the notebook's).
        editable: allow editing (default: True; always False inside Voilà, whatever is passed:
            a published app never runs a visitor's code).
    """

    _esm = assets.esm("kernel_lab")  # built from widgets/src/kernel_lab/ (TypeScript)
    _css = assets.css("kernel_lab")

    # the only state the browser may send, and only while the kernel allows edits (``set_state``)
    _FROM_BROWSER = frozenset({"code"})

    code = traitlets.Unicode("").tag(sync=True)
    title = traitlets.Unicode("Kernel lab").tag(sync=True)
    mode_name = traitlets.Unicode("").tag(sync=True)
    mode_text = traitlets.Unicode("").tag(sync=True)
    entry = traitlets.Unicode("add").tag(sync=True)
    output = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("idle").tag(sync=True)  # idle | running | ok | fail | error
    error_line = traitlets.Int(0).tag(sync=True)  # the editor line an error points at (0: none)
    editable = traitlets.Bool(True).tag(sync=True)
    can_check = traitlets.Bool(True).tag(sync=True)
    access_map = traitlets.Dict({}).tag(sync=True)  # AccessMap.to_json() of the last check (interpreter)
    #: "Show code": ``script()``, the lab as a plain script (``code`` is the editor's text)
    code_text = code_trait()

    def __init__(
        self,
        code: str | None = None,
        *,
        entry: str = "add",
        reference: Callable[..., Any] | None = None,
        shapes: Sequence[Any] | None = None,
        dtypes: Sequence[Any] | None = None,
        make_inputs: Callable[..., Any] | None = None,
        tolerances: dict[Any, tuple[float, float]] | None = None,
        bench_inputs: Callable[[], Sequence[Any]] | None = None,
        namespace: dict[str, Any] | None = None,
        editable: bool | None = None,
        title: str = "Kernel lab",
        exercise: Any = None,
    ) -> None:
        from workbench.kernels.modes import setup

        assets.require("kernel_lab")
        mode = setup()
        self._default_add = code is None and reference is None and entry == "add"
        if self._default_add:
            code, shapes = DEFAULT_CODE, shapes or [(1,), (7,), (1000,), (4099,)]
            reference = _add_reference
        editable = (not in_voila()) if editable is None else (editable and not in_voila())
        self._edits_allowed = editable  # the kernel's decision; the synced trait only mirrors it
        super().__init__(
            code=code or "", entry=entry, title=title, mode_name=mode.name, mode_text=mode.describe(),
            editable=editable, can_check=reference is not None or exercise is not None,
        )
        self._authored_code = self.code
        self.reference = reference
        self.shapes = shapes
        self.dtypes = dtypes
        self.make_inputs = make_inputs
        self.tolerances = tolerances
        self.bench_inputs = bench_inputs
        self.exercise = exercise
        self.namespace: dict[str, Any] = namespace if namespace is not None else {}
        self.last_report: Any = None
        self.last_bench: Any = None
        self.on_msg(self._on_message)
        self._refresh_script()

    @classmethod
    def from_exercise(cls, key: str, **kwargs: Any) -> KernelLab:
        """A lab loaded with an exercise's stub, checked by the exercise's checker."""
        from workbench.kernels.puzzles import exercise

        ex = exercise(key)
        kwargs.setdefault("title", f"Exercise {ex.key}: {ex.title}")
        return cls(ex.stub, entry=ex.entry, reference=ex.reference, exercise=ex, **kwargs)

    # -- actions (the buttons call these; they are the engine's functions, shown) ----------------------
    def _source(self) -> str:
        # decided from kernel-side state only: never from a trait the browser could have written
        return self.code if self._edits_allowed and not in_voila() else self._authored_code

    @traitlets.observe("code", "entry")
    def _code_changed(self, _change: dict[str, Any]) -> None:
        if hasattr(self, "exercise"):  # after __init__
            self._refresh_script()

    def _refresh_script(self) -> None:
        try:
            self.code_text = self.script()
        except Exception as err:  # noqa: BLE001 - the lab renders even when its script cannot be written
            self.code_text = f"# the script could not be written: {type(err).__name__}: {err}"

    def script(self) -> str:
        """The lab as a plain script ("Show code"): the code the lab runs, run with ``wb.kernels.run``
        (compiled on a GPU, Triton's interpreter elsewhere), then the check Check does. A reference
        the script cannot import (a lambda, a function of the notebook) is left for you to define.
        (``code`` is the editor's text, so this method is not called ``code()``.)"""
        from workbench.ui.show_code import function_ref, py_string, py_value

        lines = ["import workbench as wb", "", f"CODE = {py_string(self._source())}", "",
                 "ns = wb.kernels.run(CODE)  # compiled on an NVIDIA GPU, Triton's interpreter elsewhere",
                 f"{self.entry} = ns[{self.entry!r}]"]
        if self.exercise is not None:
            lines += [f"report = wb.kernels.exercise({self.exercise.key!r}).check({self.entry})", "print(report.summary())"]
            return "\n".join(lines) + "\n"
        if self.reference is None:
            return "\n".join(lines) + "\n"
        if self.reference is _add_reference:
            ref, imports = "lambda x, y: x + y", []
        else:
            ref, imports = function_ref(self.reference)
        if ref is None:
            name = getattr(self.reference, "__name__", "reference")
            lines += ["", f"# the reference ({name}) is a function of your notebook: define reference(...) here, "
                      "then check:", f"# report = wb.kernels.check({self.entry}, reference)"]
            return "\n".join(lines) + "\n"
        args = [self.entry, ref]
        for key in ("shapes", "dtypes", "tolerances"):
            value = getattr(self, key)
            if value:
                args.append(f"{key}={py_value(list(value) if key != 'tolerances' else dict(value), len(key) + 1)}")
        if self.make_inputs is not None:
            make, more = function_ref(self.make_inputs)
            if make is not None:
                args.append(f"make_inputs={make}")
                imports += more
        if self.dtypes or self.tolerances:  # written as torch.float32, …
            imports.insert(0, "import torch")
        lines[0:0] = imports
        lines += [f"report = wb.kernels.check({', '.join(args)})", "print(report.summary())"]
        return "\n".join(lines) + "\n"

    @traitlets.observe("editable")
    def _editable_changed(self, change: dict[str, Any]) -> None:
        # reached only from kernel-side code (``set_state`` drops ``editable`` from the browser):
        # the notebook's author may unlock or lock the lab; inside Voilà it stays locked
        self._edits_allowed = bool(change["new"]) and not in_voila()
        if self._edits_allowed != change["new"]:
            self.editable = self._edits_allowed

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """State from the browser: only ``code``, and only while the kernel allows edits."""
        allowed = self._FROM_BROWSER if self._edits_allowed and not in_voila() else frozenset()
        sync_data = {k: v for k, v in (sync_data or {}).items() if k in allowed}
        if sync_data:
            super().set_state(sync_data)

    def run(self) -> bool:
        """Execute the editor's code; True on success. The output panel shows prints and errors."""
        from workbench.kernels.magic import run_source
        from workbench.kernels.modes import KernelError

        self.status, self.error_line = "running", 0
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                run_source(self._source(), self.namespace)
        except KernelError as err:
            cell = getattr(err, "cell_error", None)
            self.error_line = (cell.line or 0) if cell is not None else 0
            self._show(buf.getvalue() + f"KernelError: {err}", "error")
            return False
        self._show(buf.getvalue() + "✔ ran without errors", "ok")
        return True

    def check(self) -> Any:
        """Run the code, then check ``entry`` against the reference on every shape; returns the report."""
        from workbench.kernels.checker import check

        fn = self._run_for_entry()
        if fn is None:
            return None
        if self.exercise is not None:
            report = self.exercise.check(fn, quiet=True)
        elif self.reference is not None:
            report = check(fn, self.reference, shapes=self.shapes, dtypes=self.dtypes,
                           make_inputs=self.make_inputs, tolerances=self.tolerances)
        else:
            self._show("nothing to check against: give the lab a reference= function", "error")
            return None
        self.last_report = report
        maps = report.access_maps
        self.access_map = maps[-1].to_json() if maps else {}
        self._show(report.summary(), "ok" if report else "fail")
        failed_at = re.search(r"line (\d+) of the cell", report.failures[0].error or "") if not report else None
        self.error_line = int(failed_at.group(1)) if failed_at else 0
        return report

    def bench(self) -> Any:
        """Run the code, then time ``entry`` (and the reference) on the largest check shape."""
        from workbench.kernels.timing import bench

        fn = self._run_for_entry()
        if fn is None:
            return None
        try:
            args = tuple(self.bench_inputs()) if self.bench_inputs else self._default_bench_inputs()
            result = bench(fn, *args, reference=self.reference, name=self.entry, bytes=_bytes_moved(fn, args))
        except Exception as err:  # shown in the panel: the widget must keep working
            self._show(f"benchmark failed: {type(err).__name__}: {err}", "error")
            return None
        self.last_bench = result
        self._show(result.summary(), "ok")
        return result

    # -- helpers -------------------------------------------------------------------------------------
    def _run_for_entry(self) -> Callable[..., Any] | None:
        """Run the code; the entry function when that worked (status "running"), else None (shown)."""
        if not self.run():
            return None
        fn = self._entry_fn()
        if fn is not None:
            self.status = "running"
        return fn

    def _entry_fn(self) -> Callable[..., Any] | None:
        fn = self.namespace.get(self.entry)
        if not callable(fn):
            self._show(f"the code defines no function named {self.entry!r} — define the launcher "
                       f"`def {self.entry}(...)` or set lab.entry", "error")
            return None
        return fn

    def _default_bench_inputs(self) -> tuple[Any, ...]:
        import torch

        from workbench.kernels.checker import DEFAULT_SHAPES, n_tensor_params, random_tensor
        from workbench.kernels.modes import device, mode

        ex = self.exercise
        if self._default_add:  # a size where bandwidth, not launch overhead, sets the time
            n = (1 << 16) if mode().interpreted else (1 << 24)
            gen = torch.Generator().manual_seed(0)
            return tuple(torch.randn(n, generator=gen).to(device()) for _ in range(2))
        shapes = list(ex.shapes) if ex is not None else list(self.shapes or DEFAULT_SHAPES)
        make = ex.make_inputs if ex is not None else self.make_inputs
        shape = shapes[-1]
        dtype = getattr(torch, ex.dtypes[0]) if ex is not None else (self.dtypes or [torch.float32])[0]
        gen = torch.Generator().manual_seed(0)
        if make is not None:
            args = tuple(make(shape, dtype, gen))
        else:
            per = shape if isinstance(shape, tuple) and shape and isinstance(shape[0], tuple) else None
            fn = self.namespace[self.entry]
            args = tuple(random_tensor(s, dtype, gen, "cpu") for s in (per or (shape,) * n_tensor_params(fn)))
        return tuple(a.to(device()) if isinstance(a, torch.Tensor) else a for a in args)

    def _show(self, text: str, status: str) -> None:
        self.output = text
        self.status = status

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        actions = {"run": self.run, "check": self.check, "bench": self.bench}
        if action not in actions:
            return
        try:
            actions[action]()
        except WorkbenchError as err:
            self._show(str(err), "error")
        except Exception as err:  # the kernel must survive anything typed into the editor
            self._show(f"{type(err).__name__}: {err}", "error")


def _bytes_moved(fn: Callable[..., Any], args: Sequence[Any]) -> int | None:
    """The least traffic of one call: every tensor argument read once, every output written once."""
    import torch

    out = fn(*args)
    outs = out if isinstance(out, tuple | list) else (out,)
    tensors = [t for t in (*args, *outs) if isinstance(t, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors) or None


def _add_reference(x: Any, y: Any) -> Any:
    return x + y

"""Run native steps in a worker subprocess, so a crash or a hang never takes the kernel down.

Converters and quantizers are C++ underneath: a segfault there would kill the notebook's kernel, and a
runaway calibration would block it. ``run_isolated(fn, *args)`` sends the call to a worker process (a
fresh ``python -m workbench.steps.worker``, kept warm between steps so torch and the runtimes are
imported once) and waits for the answer with a timeout. When the worker crashes or runs past the
timeout it is stopped and a ``StepError`` says what happened, with the last lines the native code
printed; the next call starts a new worker. A call may also be given a memory limit (``memory=``,
default ``$WORKBENCH_WORKER_MEMORY``): the worker lowers its own ``RLIMIT_AS`` for that call, so a
model that declares a huge tensor fails in the worker with an error naming the limit instead of
growing the notebook's process. The kernel's interrupt (``KeyboardInterrupt`` while waiting) stops
the worker at once.

Why not ``fork``: a process that has run torch's OpenMP thread pool deadlocks when a forked child
uses it again (measured here: the child hangs in a futex). Why not ``multiprocessing``'s spawn: it
re-imports the user's ``__main__`` script. The call travels by cloudpickle, so a step defined in a
notebook cell (or an ``nn.Module`` whose class is local to a function) reaches the worker by value.
"""

from __future__ import annotations

import atexit
import os
import pickle
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from workbench.core import settings
from workbench.core.errors import StepError, WorkbenchError

_HEADER = struct.Struct("!Q")


def _dumps(obj: Any) -> bytes:
    try:
        import cloudpickle

        return cloudpickle.dumps(obj)
    except ImportError:  # pragma: no cover - cloudpickle is a dependency; plain pickle covers importables
        return pickle.dumps(obj)


def _write_msg(fd: int, payload: bytes) -> None:
    data = _HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    """``n`` bytes from ``fd``; None on end of file; TimeoutError past ``deadline``."""
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_msg(fd: int, deadline: float | None) -> bytes | None:
    head = _read_exact(fd, _HEADER.size, deadline)
    if head is None:
        return None
    (size,) = _HEADER.unpack(head)
    return _read_exact(fd, size, deadline)


class Worker:
    """One worker subprocess. Its stdout/stderr (native chatter) go to a log file we can quote."""

    def __init__(self) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix="workbench-worker-", suffix=".log")[1])
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child owns it from here
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the worker imports what we can
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.steps.worker", str(req_r), str(resp_w)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(req_r, resp_w), env=env,
            cwd=os.getcwd(), start_new_session=True,  # a Ctrl-C in the kernel does not kill it mid-write
        )
        log.close()
        os.close(req_r)
        os.close(resp_w)
        self.req_w, self.resp_r = req_w, resp_r
        self.log_offset = 0
        self.memory = 0  # the current call's memory limit (bytes beyond the worker's size; 0: none)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 6) -> str:
        """The last lines the current call printed (progress bars and colours removed)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
        keep = [ln.split("\r")[-1].strip() for ln in text.splitlines()]
        keep = [ln for ln in keep if ln][-lines:]
        return " | ".join(ln[:200] for ln in keep)

    def call(self, fn: Any, args: tuple, kwargs: dict, timeout: float | None, label: str,
             memory: int = 0) -> Any:
        try:
            self.log_offset = self.log_path.stat().st_size
        except OSError:
            self.log_offset = 0
        self.memory = memory
        try:
            payload = _dumps((fn, args, kwargs, memory))
        except Exception as err:  # noqa: BLE001 - pickling raises many types
            raise NotIsolatable(f"{label}: the call cannot be sent to the worker ({type(err).__name__}: {err})") from err
        try:
            _write_msg(self.req_w, payload)
        except BrokenPipeError:
            raise self._crashed(label) from None
        deadline = time.monotonic() + timeout if timeout else None
        try:
            raw = _read_msg(self.resp_r, deadline)
        except KeyboardInterrupt:  # the kernel was interrupted: stop the step, keep nothing half-done
            self.stop()
            raise
        except TimeoutError:
            self.stop()
            raise StepError(
                f"{label} did not finish within {timeout:g} s; the worker process was stopped "
                "(the kernel and earlier artifacts are intact)",
                "pass a larger timeout= (or set WORKBENCH_STEP_TIMEOUT), or use a smaller calibration set / "
                "subset_size",
            ) from None
        if raw is None:
            raise self._crashed(label)
        status, value = pickle.loads(raw)
        if status == "ok":
            return value
        if status == "memory":
            type_name, message = value
            raise StepError(
                f"{label} went past its memory limit in the worker ({_size(memory)} beyond the worker's own "
                f"size, enforced with RLIMIT_AS): {type_name}: {message[:300]}",
                "pass a larger memory= (or set WORKBENCH_WORKER_MEMORY), or smaller inputs; "
                "the kernel and earlier artifacts are intact")
        if status == "workbench_error":
            cls_name, problem, fix = value
            from workbench.core import errors

            cls = getattr(errors, cls_name, StepError)
            raise cls(problem, fix)
        type_name, message, tb = value
        err = StepError(f"{label} failed in the worker: {type_name}: {message}",
                        "see the traceback in err.worker_traceback; try other step options")
        err.worker_traceback = tb
        raise err from _RemoteTraceback(tb)

    def _crashed(self, label: str) -> StepError:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.stop()
            code = self.proc.returncode
        how = f"was killed by signal {signal.Signals(-code).name}" if code and code < 0 else f"exited with code {code}"
        tail = self.log_tail()
        self.stop()
        limit = (f"; it ran under a memory limit of {_size(self.memory)} beyond its own size (RLIMIT_AS), "
                 "which an allocation may have hit" if self.memory else "")
        return StepError(
            f"{label}: the worker process {how} (a crash in native code){limit}; the kernel and earlier "
            f"artifacts are intact" + (f"; its last output: {tail}" if tail else ""),
            "try other options (another opset, exporter or method), or report the crash to the tool's authors "
            f"with the log {self.log_path}",
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.proc.wait()
        if self.proc.returncode == 0 or self.proc.returncode == -signal.SIGKILL:
            self.log_path.unlink(missing_ok=True)  # a crash log (other codes) stays for the report
        for fd in (self.req_w, self.resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.req_w = self.resp_r = -1


class NotIsolatable(Exception):
    """The step's inputs cannot be pickled to the worker (the caller may run it in-process instead)."""


class _RemoteTraceback(Exception):
    """The worker's traceback, chained under the StepError the caller sees."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0])


_worker: Worker | None = None
_worker_lock = threading.Lock()


def run_isolated(fn: Any, *args: Any, timeout: float | None = None, label: str = "step",
                 memory: int | None = None, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in the worker subprocess; its return value must pickle.

    Raises ``StepError`` when the worker crashes (a signal, an abort), runs past ``timeout``
    seconds (default ``$WORKBENCH_STEP_TIMEOUT`` or 3600) or allocates more than ``memory`` bytes
    beyond what the worker already maps (default ``$WORKBENCH_WORKER_MEMORY``; 0: no limit; enforced
    with ``RLIMIT_AS``, so it counts address space); a ``WorkbenchError`` raised in the worker arrives
    as itself. A ``KeyboardInterrupt`` (the kernel's interrupt) stops the worker and is raised here.
    One call at a time (the worker is single-threaded).
    """
    global _worker
    timeout = settings.step_timeout_s() if timeout is None else timeout
    memory = settings.worker_memory() if memory is None else int(memory)
    with _worker_lock:
        if _worker is None or not _worker.alive:
            _worker = Worker()
        worker = _worker
        try:
            return worker.call(fn, args, kwargs, timeout, label, memory)
        finally:
            if not worker.alive:
                _worker = None


def shutdown() -> None:
    """Stop the worker (it also exits by itself when this process ends)."""
    global _worker
    with _worker_lock:
        if _worker is not None:
            _worker.stop()
            _worker = None


atexit.register(shutdown)


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _address_space() -> int:
    """This process's mapped address space in bytes (VmSize)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # pragma: no cover - not Linux
        return 0


def _limit_memory(extra: int) -> None:
    """Let this process map at most ``extra`` more bytes (soft ``RLIMIT_AS``); 0 lifts the limit
    back to the hard limit (a published app's kernel may have set one: it is never raised)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = hard if not extra else _address_space() + extra
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _out_of_memory(err: BaseException) -> bool:
    """An allocation failure, as Python and the native runtimes report it."""
    if isinstance(err, MemoryError):
        return True
    text = f"{type(err).__name__} {err}".lower()
    return any(w in text for w in ("bad_alloc", "failed to allocate", "allocation fail", "out of memory",
                                   "cannot allocate", "unable to allocate"))


def _serve(req_fd: int, resp_fd: int) -> None:
    """The worker's loop: read a call, run it, answer; exit when the parent closes the pipe."""
    while True:
        raw = _read_msg(req_fd, None)
        if raw is None:
            return
        memory = 0
        try:
            fn, args, kwargs, memory = pickle.loads(raw)
            _limit_memory(memory)
            answer: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001 - everything goes back to the caller
            if memory and _out_of_memory(err):  # a runtime's error wrapping a failed allocation, too
                answer = ("memory", (type(err).__name__, str(err)[:2000]))
            elif isinstance(err, WorkbenchError):
                answer = ("workbench_error", (type(err).__name__, err.problem, err.fix))
            else:
                answer = ("error", (type(err).__name__, str(err)[:2000], traceback.format_exc()[-8000:]))
        finally:
            _limit_memory(0)  # the answer itself must not fail for want of memory
        try:
            payload = pickle.dumps(answer)
        except Exception as err:  # noqa: BLE001 - an unpicklable result
            payload = pickle.dumps(("error", (type(err).__name__, f"the step's result cannot be sent back: {err}", "")))
        sys.stdout.flush()
        sys.stderr.flush()
        _write_msg(resp_fd, payload)
        del raw, answer, payload
        fn = args = kwargs = None  # the call's inputs (calibration data, models) go too
        _release_memory()


def _release_memory() -> None:
    """Between calls: free the last call's garbage and hand glibc's freed heap back to the system, so an
    idle worker beside the kernel holds what it imported, not the peak of its largest call."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: its allocator keeps the pages
        pass


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))

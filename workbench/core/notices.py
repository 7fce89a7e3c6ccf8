"""Known notices of optional libraries that say nothing to a workbench user, dropped at their source.

Each entry names the logger a library writes the notice to and a pattern of that one message; a
``logging.Filter`` on that logger drops only records matching it, so every other warning or error of the
same library still shows. ``install()`` runs when ``workbench`` is imported (here and in the worker
subprocess), before any of these libraries is: a logger's filter applies to the records it creates, and
``logging.getLogger(name)`` returns the same object the library gets later.

Python ``warnings`` of the same kind are filtered where the call that raises them is made
(``warnings.catch_warnings`` around it), never process-wide. Add a notice here only with the reason it
is noise; never a whole logger, a level, or a blanket pattern.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr

#: logger name -> [(pattern of the message, why it is noise)]
KNOWN: dict[str, list[tuple[str, str]]] = {
    "coremltools": [
        (r"^Failed to load _ML\w+Proxy: No module named 'coremltools\.libcoremlpython'",
         "the Core ML framework exists only on macOS; the runner says so when asked to predict"),
        (r"^scikit-learn version \S+ is not supported\. .*Disabling scikit-learn conversion API",
         "the workbench does not convert scikit-learn models"),
        (r"^Torch version \S+ has not been tested with coremltools",
         "every conversion is validated against the original, which is the test that matters"),
    ],
    "torchao": [
        (r"^Failed to load \S+\.so: ",
         "torchao's CUDA kernels (mxfp8, cutlass) cannot load on a CPU-only build; the CPU paths do not use them"),
    ],
    "torch.utils._pytree": [
        (r"^<enum '\w+'> is an Enum subclass and is now natively supported by torch\.compile",
         "a deprecation torchao triggers at import, about torchao's code, not the user's"),
    ],
    "root": [
        (r"^Please consider (to run )?pre-processing before quantization",
         "ONNX Runtime static quantization: the workbench runs quant_pre_process itself (preprocess=True)"),
    ],
}


class KnownNotices(logging.Filter):
    """Drops the records of one logger whose message matches one of ``patterns``."""

    def __init__(self, patterns: list[str]) -> None:
        super().__init__()
        self.patterns = [re.compile(p) for p in patterns]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record: let logging report it as it would
            return True
        return not any(p.search(text) for p in self.patterns)


_installed: set[str] = set()


def install() -> None:
    """Put a ``KnownNotices`` filter on each logger of ``KNOWN`` (once per process)."""
    for name, entries in KNOWN.items():
        if name in _installed:
            continue
        logger = logging.getLogger() if name == "root" else logging.getLogger(name)
        logger.addFilter(KnownNotices([pattern for pattern, _why in entries]))
        _installed.add(name)


@contextmanager
def native_notices(*patterns: str) -> Iterator[None]:
    """Around one call into a native library that writes a known notice straight to file descriptor 2
    (LiteRT's "Created TensorFlow Lite XNNPACK delegate for CPU.") or through ``sys.stderr`` in pieces
    (ExecuTorch's log): capture both for the call, then write every captured line that matches none of
    ``patterns`` to ``sys.stderr`` — nothing else is lost, and an error the library prints still shows
    (also when the call raises)."""
    compiled = [re.compile(p) for p in patterns]
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (an embedded interpreter): leave it as it is
        yield
        return
    # some bindings write through Python's sys.stderr (in a Jupyter kernel, not descriptor 2), in pieces
    python_side = io.StringIO()
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            with redirect_stderr(python_side):
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace") + "\n" + python_side.getvalue()
            kept = [line for line in text.splitlines() if line.strip() and not any(p.search(line) for p in compiled)]
            if kept:
                print("\n".join(kept), file=sys.stderr)

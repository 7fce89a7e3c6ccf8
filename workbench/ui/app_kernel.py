"""The published app's kernel: ``python -m workbench.ui.app_kernel [--memory BYTES] -- KERNEL CMD``.

The app's kernel manager (``workbench.ui.app_server``) starts every visitor's kernel through this
launcher: it caps the process's address space (``RLIMIT_AS``, inherited by the worker process
the kernel starts for steps) so that one visitor cannot take the machine's memory, marks the kernel
as published (``WORKBENCH_PUBLISHED=1``: views lock themselves, nothing a visitor sends chooses code
to run) and then execs the kernel's own command. An allocation past the cap fails in that kernel alone
(``MemoryError``, or a runtime's own allocation error), the server and the other visitors carry on.
"""

from __future__ import annotations

import os
import sys

DEFAULT_MEMORY = 4 << 30  # bytes of address space per kernel (the app's kernel maps ~1.8 GB at start)


def cap_memory(limit: int) -> None:
    """Cap this process's address space (and its children's) at ``limit`` bytes (``RLIMIT_AS``)."""
    import resource

    if limit <= 0:
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str] | None = None) -> None:
    """``--memory BYTES -- KERNEL COMMAND...``: cap, mark published, then become the kernel (exec)."""
    args = list(sys.argv[1:] if argv is None else argv)
    limit = DEFAULT_MEMORY
    if args[:1] == ["--memory"]:
        limit, args = int(float(args[1])), args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        raise SystemExit("usage: python -m workbench.ui.app_kernel [--memory BYTES] -- KERNEL COMMAND...")
    cap_memory(limit)  # kept across exec, inherited by every process the kernel starts
    os.environ["WORKBENCH_PUBLISHED"] = "1"  # the views lock themselves: visitors choose no code
    os.execvp(args[0], args)


if __name__ == "__main__":
    main()

"""Run a snippet in a child interpreter where some modules cannot be imported (as if their extra were not
installed): ``sys.modules[name] = None`` before anything else, so ``import name`` and
``importlib.util.find_spec`` fail there while the shared environment stays as it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_hidden(modules: list[str], code: str, timeout: float = 240) -> dict:
    """Run ``code`` with ``modules`` hidden; it must print one JSON line last, which is returned."""
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    env = {**os.environ, "WORKBENCH_QUICK": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])

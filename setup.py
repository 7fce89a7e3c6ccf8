"""Build hook: the widgets' browser code (TypeScript in ``widgets/``) is bundled into
``workbench/widgets/`` before the Python package is built, so a wheel carries it and its users need no
Node.js. Everything else about the package is in pyproject.toml.

- The bundle is rebuilt (``npm ci`` when ``node_modules`` is missing or older than the lock file,
  then ``npm run build``) when it is missing or older than any source in ``widgets/``.
- Without Node.js/npm, an up-to-date or stale bundle is used as it is (with a warning when stale);
  with no bundle at all the build stops and says how to get Node.js.
- ``WORKBENCH_SKIP_WIDGETS=1`` skips the step (a bundle built elsewhere is used as it is).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SRC = ROOT / "widgets"
OUT = ROOT / "workbench" / "widgets"
SOURCES = ("src", "schema", "scripts", "package.json", "package-lock.json", "tsconfig.json")


def _newest(paths: list[Path]) -> float:
    newest = 0.0
    for p in paths:
        if p.is_file():
            newest = max(newest, p.stat().st_mtime)
        elif p.is_dir():
            newest = max([newest, *(f.stat().st_mtime for f in p.rglob("*") if f.is_file() and "generated" not in f.parts)])
    return newest


def _bundles() -> list[Path]:
    """What a build writes: a bundle per widget (a folder of widgets/src with an index.ts) and the schemas."""
    if not SRC.is_dir():
        return [OUT / "BUILD", OUT / "graph.js"]
    names = sorted(d.name for d in (SRC / "src").iterdir() if (d / "index.ts").is_file())
    return [*(OUT / f"{n}.js" for n in names), *(OUT / f.name for f in sorted((SRC / "schema").glob("*.schema.json")))]


def build_widgets() -> None:
    """Bundles widgets/ into workbench/widgets/ when needed (see the module docstring)."""
    if os.environ.get("WORKBENCH_SKIP_WIDGETS") == "1":
        return
    bundles = _bundles()
    have = all(b.is_file() for b in bundles)
    if not SRC.is_dir():  # an sdist or copy without the TypeScript sources
        if have:
            return
        sys.exit("workbench: the widgets' browser code is missing (workbench/widgets/graph.js) and there are no "
                 "TypeScript sources (widgets/) to build it from; build from a git checkout or install the wheel")
    stale = not have or _newest([SRC / s for s in SOURCES]) > min(b.stat().st_mtime for b in bundles)
    if not stale:
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        if have:
            print("workbench: widgets/ is newer than the built widgets and Node.js is not installed; "
                  "using the existing bundle", file=sys.stderr)
            return
        sys.exit("workbench: the widgets' browser code (workbench/widgets/graph.js) is not built and Node.js/npm "
                 "is not installed. Install Node.js 18+ with npm (Debian/Ubuntu: `apt-get install nodejs npm`; "
                 "`bash scripts/setup` does it) and build again, or install a wheel, which carries the bundle.")
    modules = SRC / "node_modules" / ".package-lock.json"
    if not modules.is_file() or modules.stat().st_mtime < (SRC / "package-lock.json").stat().st_mtime:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SRC, check=True)
    subprocess.run([npm, "run", "build"], cwd=SRC, check=True)


class BuildPyWithWidgets(build_py):
    """``build_py`` that bundles the widgets first."""

    def run(self) -> None:
        build_widgets()
        super().run()


setup(cmdclass={"build_py": BuildPyWithWidgets})

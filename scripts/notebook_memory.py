"""Execute each notebook on a real Jupyter kernel and record its peak memory against Binder's budget.

    python scripts/notebook_memory.py                      # every notebook, quick settings; updates README.md
    python scripts/notebook_memory.py notebooks/02_export.ipynb --no-readme
    python scripts/notebook_memory.py --full               # the notebooks' full settings (no WORKBENCH_QUICK)
    python scripts/notebook_memory.py --stderr NB          # also print what each cell wrote to stderr

The peak is that of the kernel's process tree: every 0.2 s the memory of the kernel and all its
descendants (the worker subprocess the steps run in, Ray's processes a notebook starts) is summed, and the
largest sum is kept — what a Binder container's memory limit counts. Each process counts its proportional
set size (PSS: a page shared by n processes counts 1/n in each, so the torch libraries the kernel and the
worker both map count once); the peak of the summed RSS, which counts shared pages in every process and
errs high, is printed too. Artifacts go to a temporary folder; the notebooks are not modified.

Prints one JSON line per notebook (``notebook``, ``peak_mb`` (PSS), ``peak_rss_mb``, ``seconds``, ``ok``,
``error``, ``stderr_lines``, ``at_peak``: the largest processes at the peak, ``top_cells``: the cells (index
among all cells) with the largest peaks) and, unless ``--no-readme``, rewrites the table between the
``<!-- notebook-memory:start -->`` and ``<!-- notebook-memory:end -->`` markers of README.md
(rows of notebooks not run this time are kept; updated after each notebook). Exits 1 when a notebook failed or exceeds ``--limit-mb``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "kernels_tutorials")
START, END = "<!-- notebook-memory:start -->", "<!-- notebook-memory:end -->"
BINDER_MB = 2048


def notebooks() -> list[Path]:
    """Every notebook of the repository (as tests/notebooks discovers them)."""
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts)


class TreeSampler(threading.Thread):
    """Samples the summed PSS (and RSS) of a process and its descendants until stopped; ``peak`` and
    ``peak_rss`` in bytes."""

    def __init__(self, pid_of: object, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid_of = pid_of  # a callable returning the kernel's pid once it exists, else None
        self.interval = interval
        self.peak = 0
        self.peak_rss = 0
        self.at_peak: list[tuple[str, int]] = []  # (process, PSS bytes) when the peak was reached
        self.cell: int | None = None  # the cell executing now (set by the client's hook)
        self.cell_peaks: dict[int, int] = {}  # cell index -> the largest sum while it ran
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        proc = None
        while not self._halt.wait(self.interval):
            if proc is None:
                pid = self.pid_of()  # type: ignore[operator]
                if pid is None:
                    continue
                try:
                    proc = psutil.Process(pid)
                except psutil.NoSuchProcess:
                    continue
            total = rss = 0
            parts = []
            try:
                for p in [proc, *proc.children(recursive=True)]:
                    try:
                        info = p.memory_full_info()
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        continue
                    rss += info.rss
                    total += getattr(info, "pss", info.rss)  # PSS is Linux's; elsewhere RSS
                    parts.append((_describe(p), getattr(info, "pss", info.rss)))
            except psutil.NoSuchProcess:
                break
            if total > self.peak:
                self.peak, self.at_peak = total, sorted(parts, key=lambda x: -x[1])
            if self.cell is not None:
                self.cell_peaks[self.cell] = max(self.cell_peaks.get(self.cell, 0), total)
            self.peak_rss = max(self.peak_rss, rss)

    def stop(self) -> int:
        self._halt.set()
        self.join(5)
        return self.peak


def _describe(proc: object) -> str:
    """A short name for a process of the tree: the script or module it runs (``ipykernel_launcher``,
    ``workbench.steps.worker``, ``raylet``)."""
    try:
        cmd = proc.cmdline()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - gone or not ours: its name is enough
        return str(getattr(proc, "name", lambda: "?")())
    for i, part in enumerate(cmd):
        if part == "-m" and i + 1 < len(cmd):
            return cmd[i + 1]
        if part.endswith(".py"):
            return Path(part).name
    return Path(cmd[0]).name if cmd else "?"


def _kernel_pid(client: object) -> int | None:
    km = getattr(client, "km", None)
    provisioner = getattr(km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    return getattr(process, "pid", None)


def stderr_of(nb: object) -> list[tuple[int, str]]:
    """(cell index, text) of every stderr stream output of an executed notebook."""
    return [(i, o.get("text", "")) for i, c in enumerate(nb.cells) if c.cell_type == "code"  # type: ignore[attr-defined]
            for o in c.outputs if o.output_type == "stream" and o.get("name") == "stderr"]


def measure(path: Path, *, full: bool, timeout: int, show_stderr: bool) -> dict[str, object]:
    """Run ``path`` top to bottom on a fresh python3 kernel and return its figures."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_before = dict(os.environ)
    scratch = tempfile.mkdtemp(prefix="wb-nbmem-")
    os.environ.update({"WORKBENCH_ARTIFACTS": str(Path(scratch) / "artifacts"), "HF_HUB_OFFLINE": "1",
                       "MPLBACKEND": "Agg", "TOKENIZERS_PARALLELISM": "false"})
    if full:
        os.environ.pop("WORKBENCH_QUICK", None)
    else:
        os.environ["WORKBENCH_QUICK"] = "1"
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    sampler = TreeSampler(lambda: _kernel_pid(client))

    def on_cell_execute(cell: object, cell_index: int, **_: object) -> None:
        sampler.cell = cell_index

    client.on_cell_execute = on_cell_execute
    sampler.start()
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except Exception as err:  # noqa: BLE001 - recorded in the row; the other notebooks still run
        error = (str(err).strip().splitlines() or [type(err).__name__])[-1][:300]
    finally:
        peak = sampler.stop()
        os.environ.clear()
        os.environ.update(env_before)
    streams = stderr_of(nb)
    if show_stderr:
        for i, text in streams:
            print(f"--- {path.relative_to(ROOT)} cell {i} stderr:\n{text.rstrip()}", file=sys.stderr)
    return {"notebook": str(path.relative_to(ROOT)), "peak_mb": round(peak / 2**20),
            "peak_rss_mb": round(sampler.peak_rss / 2**20), "ok": error is None,
            "at_peak": [f"{name} {round(b / 2**20)} MB" for name, b in sampler.at_peak[:5]],
            "top_cells": [f"cell {i}: {round(b / 2**20)} MB" for i, b in
                          sorted(sampler.cell_peaks.items(), key=lambda x: -x[1])[:4]],
            "seconds": round(time.perf_counter() - start, 1), "error": error,
            "stderr_lines": sum(len(t.splitlines()) for _, t in streams), "quick": not full}


def table(rows: dict[str, dict[str, object]], limit_mb: int) -> str:
    lines = [f"Peak memory (summed PSS) of each notebook's kernel process tree (`python scripts/notebook_memory.py`; "
             f"{'quick' if all(r.get('quick', True) for r in rows.values()) else 'full'} settings; "
             f"{platform.machine()}, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}). "
             f"Target: at most {limit_mb} MB each (Binder gives {BINDER_MB} MB). Sampled every 0.2 s on a shared "
             f"machine: a figure moves by a few hundred MB from run to run.", "",
             "| notebook | peak memory | time | within target |", "|---|---:|---:|---|"]
    for name in sorted(rows):
        r = rows[name]
        verdict = "FAILED to run: " + str(r.get("error")) if not r.get("ok") else (
            "yes" if int(r["peak_mb"]) <= limit_mb else "**no**")  # type: ignore[call-overload]
        lines.append(f"| `{name}` | {r['peak_mb']} MB | {r['seconds']} s | {verdict} |")
    return "\n".join(lines)


def _rows_in_readme(text: str) -> dict[str, dict[str, object]]:
    """The rows already in the README's table (kept for notebooks not run this time)."""
    rows: dict[str, dict[str, object]] = {}
    block = text.split(START, 1)[1].split(END, 1)[0] if START in text and END in text else ""
    for m in re.finditer(r"^\| `([^`]+)` \| (\d+) MB \| ([\d.]+) s \| (.*) \|$", block, re.M):
        if (ROOT / m.group(1)).exists():
            rows[m.group(1)] = {"peak_mb": int(m.group(2)), "seconds": float(m.group(3)),
                                "ok": not m.group(4).startswith("FAILED"), "error": m.group(4)[15:]}
    return rows


def update_readme(rows: dict[str, dict[str, object]], limit_mb: int, readme: Path = ROOT / "README.md") -> None:
    text = readme.read_text()
    merged = {**_rows_in_readme(text), **rows}
    block = f"{START}\n{table(merged, limit_mb)}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n## Notebook memory\n\n{block}\n"
    readme.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks to run (default: all)")
    parser.add_argument("--full", action="store_true", help="the notebooks' full settings, not WORKBENCH_QUICK=1")
    parser.add_argument("--limit-mb", type=int, default=1536, help="the target per notebook (default 1536)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md as it is")
    parser.add_argument("--stderr", action="store_true", help="print each cell's stderr output")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.paths] or notebooks()
    rows: dict[str, dict[str, object]] = {}
    for path in paths:
        row = measure(path, full=args.full, timeout=args.timeout, show_stderr=args.stderr)
        print(json.dumps(row), flush=True)
        rows[str(row["notebook"])] = row
        if not args.no_readme:  # after each notebook: a long run stopped halfway keeps what it measured
            update_readme({str(row["notebook"]): row}, args.limit_mb)
    bad = [r for r in rows.values() if not r["ok"] or int(r["peak_mb"]) > args.limit_mb]  # type: ignore[call-overload]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

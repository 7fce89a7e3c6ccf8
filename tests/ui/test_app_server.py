"""The published app's Voilà configuration (binder/app/, what ``scripts/start --app`` runs), on a real
Voilà server: a visitor's kernel is capped and marked published, a preheated kernel serves the page,
the visitor's kernel is culled once idle while the preheated pool is kept, and no traceback reaches
the visitor."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ui.jupyter_servers import APP_CONFIG, voila

psutil = pytest.importorskip("psutil")

CAP = 3_000_000_000


def _notebook(root: Path) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import os, resource\n"
            "print('AS-LIMIT', resource.getrlimit(resource.RLIMIT_AS)[0])\n"
            "print('PUBLISHED', os.environ.get('WORKBENCH_PUBLISHED'), 'PID', os.getpid())"),
        nbformat.v4.new_code_cell("raise ValueError('secret-' + 'traceback-marker')"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "probe.ipynb")
    return "probe.ipynb"


def _kernels(server: psutil.Process) -> set[int]:
    pids = set()
    for p in server.children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and any("ipykernel" in part for part in p.cmdline()):
                pids.add(p.pid)
        except psutil.Error:  # ended meanwhile
            pass
    return pids


def test_app_config_is_valid_json_and_names_existing_classes():
    from traitlets.utils.importstring import import_item

    for name in ("voila.json", "jupyter_server_config.json"):
        conf = json.loads((APP_CONFIG / name).read_text())
        assert conf["MappingKernelManager"]["cull_idle_timeout"] > 0
        assert conf["VoilaConfiguration"]["show_tracebacks"] is False
        for section in conf.values():
            for value in section.values():
                if isinstance(value, str) and value.startswith("workbench."):
                    import_item(value)


def test_visitor_kernel_is_capped_preheated_culled_and_shows_no_traceback(tmp_path):
    procs: list = []
    args = ("--VoilaConfiguration.default_pool_size=1", "--MappingKernelManager.cull_idle_timeout=3",
            "--MappingKernelManager.cull_interval=1", f"--AppKernelManager.visitor_memory={CAP}",
            "--VoilaKernelManager.fill_delay=0")
    with voila(tmp_path, _notebook(tmp_path), app_config=True, args=args, proc_out=procs) as url:
        server = psutil.Process(procs[0].pid)
        deadline = time.monotonic() + 90
        while not _kernels(server) and time.monotonic() < deadline:  # the pool's kernel starts at once
            time.sleep(0.5)
        time.sleep(8)  # longer than the idle timeout: a preheated kernel is never culled
        pooled = _kernels(server)
        assert len(pooled) == 1, pooled

        with urllib.request.urlopen(url, timeout=120) as r:  # noqa: S310 - 127.0.0.1 only
            html = r.read().decode()
        visitor_pid = int(re.search(r"PID (\d+)", html).group(1))
        assert visitor_pid in pooled, "the page was not served by the preheated kernel"
        assert f"AS-LIMIT {CAP}" in html and "PUBLISHED 1" in html, html[-3000:]
        assert "traceback-marker" not in html and "ValueError" not in html  # no traceback for visitors

        # the visitor left (no websocket ever opened): their kernel is culled, the refilled pool stays
        deadline = time.monotonic() + 60
        while visitor_pid in _kernels(server) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _kernels(server)
        assert visitor_pid not in left, "the idle visitor's kernel was not culled"
        assert len(left) == 1, left

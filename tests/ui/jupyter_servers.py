"""Real Jupyter servers for browser tests: JupyterLab (optionally under a base URL, which also serves
Notebook 7) and standalone Voilà, on 127.0.0.1 with a free port, stopped at the end.

Each server gets its own runtime/config/workspace folders and ``PYTHONPATH`` pointing at this
checkout, so kernels import the workbench under test. Servers also stop by themselves after a few
idle minutes should a test run be killed.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["WORKBENCH_QUICK"] = "1"
    env["WORKBENCH_ARTIFACTS"] = str(root / "artifacts")
    env["JUPYTER_RUNTIME_DIR"] = str(root / "runtime")
    env["JUPYTER_CONFIG_DIR"] = str(root / "config")
    env["IPYTHONDIR"] = str(root / "ipython")
    env["HF_HUB_OFFLINE"] = "1"
    return env


def kernel_env(root: Path) -> dict[str, str]:
    """The environment the servers of ``root`` give their kernels (this checkout's workbench, the
    folder's workspace): for running code outside the browser as a kernel there would."""
    return _env(root)


def quiet_lab_settings(root: Path, *, windowing: bool = True) -> None:
    """JupyterLab user settings for the servers of ``root`` (before starting one): no "news" toast over
    the page; ``windowing=False`` keeps every cell in the DOM (for shooting or reading each output)."""
    settings = root / "config" / "lab" / "user-settings" / "@jupyterlab"
    values = {"apputils-extension/notification": {"fetchNews": "false"}}
    if not windowing:
        values["notebook-extension/tracker"] = {"windowingMode": "none"}
    for plugin, value in values.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - 127.0.0.1 only
                if r.status < 500:
                    return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.3)
    raise TimeoutError(f"server did not answer {url}:\n{log.read_text()[-3000:]}")


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listens on port {port}:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@contextmanager
def jupyter_lab(root: Path, base_url: str = "/"):
    """JupyterLab (and Notebook 7, same server) serving ``root``; yields (base http URL, token)."""
    port, token = free_port(), secrets.token_hex(16)
    log = root / f"lab-{port}.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", f"--ServerApp.base_url={base_url}",
           "--ServerApp.shutdown_no_activity_timeout=600", "--MappingKernelManager.cull_idle_timeout=600",
           "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True",
           f"--LabApp.workspaces_dir={root / 'workspaces'}", "--ServerApp.open_browser=False",
           "--ServerApp.allow_root=True", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=_env(root), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}{base_url}"
    try:
        _wait_http(f"{base}api/status?token={token}", proc, log)
        yield base, token
    finally:
        _stop(proc)


APP_CONFIG = REPO / "binder" / "app"


@contextmanager
def voila(root: Path, notebook: str, *, app_config: bool = False, args: tuple[str, ...] = (),
          proc_out: list | None = None):
    """Standalone Voilà rendering ``notebook``; yields the page URL.

    ``app_config``: run with the published app's configuration (``binder/app/voila.json``: preheated
    kernels, culling, a memory cap per visitor, no tracebacks), as ``scripts/start --app`` does;
    otherwise tracebacks are shown (test failures are easier to read). ``args`` are added to the
    command line; ``proc_out`` receives the server's ``Popen``.
    """
    port = free_port()
    log = root / f"voila-{port}.log"
    cmd = [sys.executable, "-m", "voila", notebook, "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
           "--Voila.port_retries=0", "--ServerApp.allow_root=True"]
    env = _env(root)
    if app_config:
        env["JUPYTER_CONFIG_PATH"] = str(APP_CONFIG)
    else:
        cmd += ["--MappingKernelManager.cull_idle_timeout=600", "--VoilaConfiguration.show_tracebacks=True"]
    cmd += list(args)
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    if proc_out is not None:
        proc_out.append(proc)
    base = f"http://127.0.0.1:{port}/"
    try:
        _wait_port(port, proc, log)  # an HTTP probe of "/" would execute the notebook once more
        yield base
    finally:
        _stop(proc)

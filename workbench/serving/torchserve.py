"""TorchServe: a ``.mar`` archive (torch-model-archiver) whose handler runs the artifact on a workbench runner.

``wb.package(model, "torchserve")`` writes ``model_store/<name>.mar`` (the artifact — TorchScript,
ExportedProgram, ONNX, or any format a workbench runtime runs — with ``package.json`` and ``handler.py``),
``config.properties`` (inference, management and metrics APIs on 127.0.0.1, token authorization on, the
model-control API off, request size capped) and a README. The handler decodes an Open Inference Protocol
request (``decode_request``: checked against the model's inputs, never unpickled) and answers in the same
binary format.

TorchServe's frontend is Java: ``start`` needs ``java`` on PATH (or ``$JAVA_HOME/bin/java``) and raises a
one-line error naming Debian's ``openjdk-17-jre-headless`` when it is missing. TorchServe writes a key file
with its inference/management tokens in its working folder; the Endpoint sends the inference token.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workbench.core.errors import BackendUnavailable
from workbench.core.registry import register_server
from workbench.serving.base import (
    HOST,
    MANIFEST,
    Endpoint,
    Package,
    Server,
    ServingError,
    free_port,
    launch,
    log_tail,
    package_model,
    python_path_env,
    terminate,
    wait_ready,
)

HANDLER_PY = '''"""TorchServe handler written by the workbench: the archive's artifact on a workbench runner.

Requests and responses are Open Inference Protocol binary (JSON header + raw tensors); the header length
travels in the Inference-Header-Content-Length header. Inputs are checked against package.json.
"""
from pathlib import Path

from workbench.serving.base import HEADER_LENGTH, ModelService

_service = None


def handle(data, context):
    global _service
    if _service is None:
        _service = ModelService(Path(context.system_properties["model_dir"]))
    if data is None:  # TorchServe's warm-up call
        return None
    responses = []
    for i, row in enumerate(data):
        body = row.get("body") if row.get("body") is not None else row.get("data")
        length = context.get_request_header(i, HEADER_LENGTH) or context.get_request_header(i, HEADER_LENGTH.lower())
        if isinstance(body, (dict, list)):  # a JSON request TorchServe already parsed (plain data): checked as JSON
            import json

            body, length = json.dumps(body).encode(), None
        if not isinstance(body, (bytes, bytearray)):
            context.set_response_status(400, "send an Open Inference Protocol binary request", i)
            responses.append(b'{"error": "send an Open Inference Protocol binary request (application/octet-stream)"}')
            continue
        try:
            out, n = _service.infer_request(bytes(body), int(length) if length is not None else None)
        except Exception as err:  # a bad request gets its error; the worker stays up
            import json

            context.set_response_status(400 if type(err).__name__ == "InputError" else 500, type(err).__name__, i)
            responses.append(json.dumps({"error": str(err)[:1000]}).encode())
            continue
        if n is not None:
            context.set_response_header(i, HEADER_LENGTH, str(n))
        responses.append(out)
    return responses
'''

CONFIG = """# TorchServe configuration written by the workbench: every API on 127.0.0.1 only.
inference_address=http://127.0.0.1:{inference}
management_address=http://127.0.0.1:{management}
metrics_address=http://127.0.0.1:{metrics}
model_store={store}
load_models={name}.mar
default_workers_per_model={workers}
install_py_dep_per_model=false
max_request_size={max_request}
max_response_size={max_response}
default_response_timeout=120
disable_system_metrics=true
vmargs=-Xmx512m -XX:+UseSerialGC -Xss1m
"""

README = """# {name}: TorchServe

Written by the workbench (`wb.package(model, "torchserve")`): `model_store/{name}.mar` holds the artifact
(`{artifact}`), `package.json` and `handler.py` (a workbench runner: `{runtime}`).

    pip install "deployment-workbench[serve]"      # torchserve, torch-model-archiver
    sudo apt-get install openjdk-17-jre-headless   # TorchServe's frontend is Java
    torchserve --start --foreground --ncs --model-store model_store --ts-config config.properties
    # token authorization is on: the inference key is in key_file.json (in the folder you started from)
    python smoke_client.py http://127.0.0.1:8080/predictions/{name}    # add -H "Authorization: Bearer <key>"

`config.properties` binds the inference (8080), management (8081) and metrics (8082) APIs to 127.0.0.1 and
caps requests at {max_request} bytes. Requests are Open Inference Protocol binary (see smoke_client.py);
the handler checks them against the model's inputs and never unpickles.
"""


def java_path() -> str:
    """The java TorchServe will run (``$JAVA_HOME/bin/java``, else ``java`` on PATH); an error naming the fix."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home and (Path(home) / "bin" / "java").exists() else shutil.which("java")
    if not found:
        raise BackendUnavailable("TorchServe needs a Java runtime and no java is on PATH",
                                 "sudo apt-get install openjdk-17-jre-headless (scripts/setup installs it), "
                                 "or set JAVA_HOME")
    return found


def _tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise BackendUnavailable(f"{name} is not installed", "pip install 'deployment-workbench[serve]'")
    return found


@register_server
class TorchServeServer(Server):
    """TorchServe with a workbench handler in a ``.mar``."""

    name = "torchserve"
    description = "TorchServe .mar archive (TorchScript / ExportedProgram / ONNX handler)"
    distributions = ("torchserve", "torch-model-archiver", "httpx")

    @classmethod
    def check_available(cls) -> str:
        version = super().check_available()
        java_path()
        return version

    def write_files(self, package: Package, model: Any, *, workers: int = 1, **options: Any) -> None:
        folder, name = package.folder, package.model_name
        build = folder / ".mar_build"
        if build.exists():
            shutil.rmtree(build)
        build.mkdir()
        manifest = json.loads((folder / MANIFEST).read_text())
        artifact = folder / package.artifact
        manifest["artifact"] = artifact.name  # the archive is unpacked flat into TorchServe's model_dir
        (build / MANIFEST).write_text(json.dumps(manifest, indent=2))
        (build / "handler.py").write_text(HANDLER_PY)
        extra = [str(build / MANIFEST)]
        for f in sorted((folder / "model").iterdir()):
            if f != artifact:
                extra.append(str(f))
        store = folder / "model_store"
        store.mkdir(exist_ok=True)
        cmd = [_tool("torch-model-archiver"), "--model-name", name, "--version", "1.0",
               "--handler", str(build / "handler.py"), "--export-path", str(store), "--force"]
        if artifact.is_file():
            cmd += ["--serialized-file", str(artifact)]
        else:
            extra.append(str(artifact))
        cmd += ["--extra-files", ",".join(extra)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not (store / f"{name}.mar").exists():
            raise ServingError(f"torch-model-archiver failed: {(done.stderr or done.stdout).strip()[-500:]}",
                               "check that the artifact is a file torch-model-archiver can read")
        shutil.rmtree(build)
        (folder / "handler.py").write_text(HANDLER_PY)  # a readable copy of what the archive runs
        max_request = int(manifest["max_request_bytes"]) + 64 * 1024
        (folder / "config.properties").write_text(CONFIG.format(
            inference=8080, management=8081, metrics=8082, store="model_store", name=name, workers=workers,
            max_request=max_request, max_response=max(max_request, 64 * 1024 * 1024)))
        (folder / "README.md").write_text(README.format(name=name, artifact=package.artifact, runtime=package.runtime,
                                                        max_request=max_request))
        manifest_out = json.loads((folder / MANIFEST).read_text())
        manifest_out["torchserve"] = {"workers": workers}
        (folder / MANIFEST).write_text(json.dumps(manifest_out, indent=2))

    def start(self, package: Package, *, port: int | None = None, timeout: float = 240.0, **options: Any) -> Endpoint:
        self.check_available()
        folder, name = package.folder, package.model_name
        run = folder / f".run-{os.getpid()}-{int(time.time() * 1000)}"  # logs, key file, pid file of this start
        run.mkdir()
        inference, management, metrics = port or free_port(), free_port(), free_port()
        config = (folder / "config.properties").read_text()
        config = (config.replace(":8080", f":{inference}").replace(":8081", f":{management}")
                  .replace(":8082", f":{metrics}").replace("model_store=model_store", f"model_store={folder / 'model_store'}"))
        (run / "config.properties").write_text(config)
        log = run / "server.log"
        # TorchServe's pid file and its workers' unix sockets live in the temp folder: one of its own per start,
        # with a short path (a socket path is limited to 107 bytes)
        tmp = Path(tempfile.mkdtemp(prefix="wbts-", dir="/tmp" if Path("/tmp").is_dir() else None))
        env = {**python_path_env(), "TMPDIR": str(tmp), "TEMP": str(tmp), "LOG_LOCATION": str(run / "logs"),
               "METRICS_LOCATION": str(run / "logs")}
        cmd = [_tool("torchserve"), "--start", "--foreground", "--ncs", "--model-store", str(folder / "model_store"),
               "--ts-config", str(run / "config.properties")]
        proc = launch(cmd, log=log, env=env, cwd=run)
        atexit.register(shutil.rmtree, tmp, True)
        url = f"http://{HOST}:{inference}"
        token_auth = "disable_token_authorization=true" not in config

        def auth(api: str = "inference") -> dict[str, str] | None:
            """The current token's header (TorchServe renews its tokens; the key file has the live ones)."""
            if not token_auth:
                return {}
            try:
                return {"Authorization": f"Bearer {json.loads((run / 'key_file.json').read_text())[api]['key']}"}
            except (OSError, ValueError, KeyError):
                return None  # not written yet

        wait_ready(f"{url}/ping", proc, timeout=timeout, log=log, what="TorchServe", headers=auth)
        self._wait_model(f"http://{HOST}:{management}/models/{name}", proc, run, log, timeout,
                         auth("management") or {})
        return Endpoint(package_model(package), url=url, infer_url=f"{url}/predictions/{name}", process=proc,
                        package=package, log=log, headers=lambda: auth() or {},
                        stop_hook=lambda: shutil.rmtree(tmp, ignore_errors=True))

    @staticmethod
    def _wait_model(url: str, proc: Any, run: Path, log: Path, timeout: float, headers: dict[str, str]) -> None:
        """Wait until the model's worker is READY (``/ping`` answers before the model is loaded)."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            text = log.read_text(errors="replace") if log.exists() else ""
            if "Auto recovery failed again" in text:  # the Python worker keeps dying: say why, do not wait it out
                died = [line.split("MODEL_LOG - ", 1)[1] for line in text.splitlines() if "MODEL_LOG - " in line]
                terminate(proc)
                raise ServingError("TorchServe's Python worker keeps dying while loading the model:\n"
                                   + "\n".join(died[-8:]), f"read the logs in {run / 'logs'}")
            try:
                resp = httpx.get(url, headers=headers, timeout=5)
                if resp.status_code == 200 and any(w.get("status") == "READY" for m in resp.json()
                                                   for w in m.get("workers", [])):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        terminate(proc)
        raise ServingError(f"TorchServe's worker for the model did not become ready:\n{log_tail(log)}",
                           f"read the logs in {run / 'logs'}")

"""Ray Serve: a deployment class for any workbench runner, with ``@serve.batch`` batching.

``wb.package(model, "ray_serve")`` writes ``serve_app.py`` beside the artifact; ``python serve_app.py --port
8000`` starts a local Ray (node, GCS and proxy on 127.0.0.1, no dashboard, a small object store) and the
``WorkbenchModel`` deployment at ``/v2/models/<name>``: ``GET`` gives the model's metadata (and is the
readiness check), ``POST .../infer`` takes an Open Inference Protocol request. Concurrent requests are
gathered by ``@serve.batch`` (up to ``max_batch_size``, waiting at most ``batch_wait_timeout_s``) and run as
one batch along axis 0 when every tensor's first axis is dynamic (``ModelService.infer_batch``).

On a cluster, ``build_app(folder)`` is the application to ``serve.run`` (or to name in a Serve config file);
the package folder must be readable on every node.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from workbench.core.errors import InputError
from workbench.core.registry import register_server
from workbench.serving.base import (
    HEADER_LENGTH,
    HOST,
    MANIFEST,
    Endpoint,
    ModelService,
    Package,
    Server,
    encode_response,
    free_port,
    launch,
    package_model,
    python_path_env,
    v2_datatype,
    wait_ready,
)

SERVE_APP_PY = '''"""Ray Serve application for this package (written by the workbench).

    python serve_app.py --port 8000        # a local Ray on 127.0.0.1, the deployment at /v2/models/<name>
"""
import argparse
from pathlib import Path

from workbench.serving.ray_serve import run_local

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8000)
parser.add_argument("--num-cpus", type=int, default=None)
args = parser.parse_args()
run_local(Path(__file__).parent, port=args.port, num_cpus=args.num_cpus)
'''

README = """# {name}: Ray Serve

Written by the workbench (`wb.package(model, "ray_serve")`). The artifact `{artifact}` runs on the
workbench's `{runtime}` runner inside the `WorkbenchModel` deployment (`workbench/serving/ray_serve.py`),
{replicas} replica(s), `@serve.batch` up to {max_batch_size} requests (waiting at most {wait_ms:.1f} ms).

    pip install "deployment-workbench[serve]"
    python serve_app.py --port 8000         # local Ray bound to 127.0.0.1
    python smoke_client.py http://127.0.0.1:8000/v2/models/{name}/infer

On a running Ray cluster: `serve.run(workbench.serving.ray_serve.build_app("<this folder>"))` (the folder
readable on every node). Requests are checked against the model's inputs (`package.json`) and capped at
`max_request_bytes`; nothing is unpickled.
"""


def build_app(folder: str | os.PathLike) -> Any:
    """The Ray Serve application (deployment bound to its arguments) for the package in ``folder``."""
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    folder = str(Path(folder).resolve())
    manifest = json.loads((Path(folder) / MANIFEST).read_text())
    opts = manifest.get("ray_serve", {})
    max_batch, wait_s = int(opts.get("max_batch_size", 8)), float(opts.get("batch_wait_timeout_s", 0.002))

    @serve.deployment(name="WorkbenchModel", num_replicas=int(opts.get("replicas", 1)),
                      ray_actor_options={"num_cpus": 0}, max_ongoing_requests=max(2 * max_batch, 16))
    class WorkbenchModel:
        def __init__(self, folder: str):
            self.service = ModelService(folder)
            self.limit = self.service.max_bytes + 64 * 1024

        @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=wait_s)
        async def run_batch(self, feeds: list[dict[str, Any]]) -> list[Any]:
            import asyncio

            return await asyncio.get_running_loop().run_in_executor(None, self.service.infer_batch, feeds)

        async def __call__(self, request: Request) -> Any:
            if request.method == "GET":
                m = self.service.manifest
                return JSONResponse({"name": m["model"], "platform": m["runtime"], "inputs": m["inputs"],
                                     "outputs": m["outputs"]})
            if not request.url.path.rstrip("/").endswith("/infer"):
                return JSONResponse({"error": "POST to /v2/models/<name>/infer"}, status_code=404)
            declared = request.headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
                return JSONResponse({"error": f"request over the {self.limit}-byte limit"}, status_code=413)
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.limit:
                    return JSONResponse({"error": f"request over the {self.limit}-byte limit"}, status_code=413)
                chunks.append(chunk)
            length = request.headers.get(HEADER_LENGTH.lower())
            try:
                header_length = int(length) if length is not None else None
                feeds = self.service.decode(b"".join(chunks), header_length)
                self.service.runner.validate_feeds(feeds)
            except (InputError, ValueError) as err:
                return JSONResponse({"error": str(err)}, status_code=400)
            result = await self.run_batch(feeds)
            if isinstance(result, Exception):
                status = 400 if isinstance(result, InputError) else 500
                return JSONResponse({"error": f"{type(result).__name__}: {str(result)[:500]}"}, status_code=status)
            if header_length is None:  # a JSON request: the JSON form of the response
                return JSONResponse({"model_name": self.service.manifest["model"], "outputs": [
                    {"name": k, "shape": list(v.shape), "datatype": v2_datatype(v.dtype.name),
                     "data": v.ravel().tolist()} for k, v in result.items()]})
            body, n = encode_response(result)
            return Response(body, media_type="application/octet-stream", headers={HEADER_LENGTH: str(n)})

    return WorkbenchModel.bind(folder)


def run_local(folder: str | os.PathLike, *, port: int, num_cpus: int | None = None) -> None:
    """Start a local Ray bound to 127.0.0.1, deploy the package, and serve until SIGTERM/SIGINT."""
    import signal
    import threading

    import ray
    from ray import serve

    manifest = json.loads((Path(folder) / MANIFEST).read_text())
    for attempt in range(3):  # Ray gives its raylet a fixed 30 s to register: a busy machine can miss it
        try:
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                     _node_ip_address=HOST, object_store_memory=256 * 1024 * 1024, log_to_driver=False,
                     configure_logging=False,
                     # Serve starts the workers it needs (controller, proxy, replicas): no idle ones ahead
                     _system_config={"enable_worker_prestart": False, "prestart_worker_first_driver": False})
            break
        except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception for this
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(err):
                raise
            print(f"ray.init failed ({err}); trying again", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve.start(http_options={"host": HOST, "port": port}, logging_config={"log_level": "WARNING"})
    serve.run(build_app(folder), name=manifest["model"], route_prefix=f"/v2/models/{manifest['model']}")
    print(f"serving {manifest['model']} at http://{HOST}:{port}/v2/models/{manifest['model']}/infer", flush=True)
    stop.wait()
    ray.shutdown()  # ends the node's processes, the Serve controller, proxy and replicas with them


@register_server
class RayServeServer(Server):
    """Ray Serve with a ``@serve.batch`` deployment running a workbench runner."""

    name = "ray_serve"
    description = "Ray Serve deployment (any workbench runner, @serve.batch batching)"
    distributions = ("ray", "fastapi", "httpx")

    def write_files(self, package: Package, model: Any, *, max_batch_size: int = 8,
                    batch_wait_timeout_s: float = 0.002, replicas: int = 1, **options: Any) -> None:
        folder = package.folder
        (folder / "serve_app.py").write_text(SERVE_APP_PY)
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest["ray_serve"] = {"max_batch_size": int(max_batch_size),
                                 "batch_wait_timeout_s": float(batch_wait_timeout_s), "replicas": int(replicas)}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
        (folder / "README.md").write_text(README.format(
            name=package.model_name, artifact=package.artifact, runtime=package.runtime, replicas=replicas,
            max_batch_size=max_batch_size, wait_ms=batch_wait_timeout_s * 1e3))

    def start(self, package: Package, *, port: int | None = None, timeout: float = 240.0,
              num_cpus: int | None = None, **options: Any) -> Endpoint:
        self.check_available()
        port = port or free_port()
        log = package.folder / "server.log"
        cmd = [sys.executable, str(package.folder / "serve_app.py"), "--port", str(port)]
        if num_cpus:
            cmd += ["--num-cpus", str(num_cpus)]
        env = {**python_path_env(), "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1"}
        proc = launch(cmd, log=log, env=env, cwd=package.folder)
        url = f"http://{HOST}:{port}"
        route = f"{url}/v2/models/{package.model_name}"
        wait_ready(route, proc, timeout=timeout, log=log, what="Ray Serve")
        return Endpoint(package_model(package), url=url, infer_url=f"{route}/infer", process=proc,
                        package=package, log=log, grace=3.0)  # the group's SIGKILL ends Ray's node processes too

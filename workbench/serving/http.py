"""The smallest serving target: a FastAPI app on uvicorn speaking the Open Inference Protocol (binary or JSON).

``wb.package(model, "http")`` writes ``server.py`` (``python server.py --port 8000``) beside the artifact;
the app runs the artifact on a workbench runner (``ModelService``) in uvicorn's thread pool, bound to
127.0.0.1 unless told otherwise, with the request body read in bounded chunks (``max_request_bytes``).
"""

import sys
from pathlib import Path
from typing import Any

from workbench.core.errors import InputError
from workbench.core.registry import register_server
from workbench.serving.base import (
    HEADER_LENGTH,
    HOST,
    Endpoint,
    ModelService,
    Package,
    Server,
    free_port,
    launch,
    package_model,
    python_path_env,
    wait_ready,
)

SERVER_PY = '''"""A plain HTTP inference service for this package (FastAPI + uvicorn); written by the workbench.

    python server.py --port 8000            # binds 127.0.0.1; --host 0.0.0.0 only behind your own proxy

POST /v2/models/{name}/infer takes an Open Inference Protocol request (see smoke_client.py).
"""
import argparse
from pathlib import Path

import uvicorn

from workbench.serving.http import make_app

parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8000)
parser.add_argument("--workers-threads", type=int, default=None, help="requests run at once (default: cores)")
args = parser.parse_args()
uvicorn.run(make_app(Path(__file__).parent, threads=args.workers_threads), host=args.host, port=args.port,
            log_level="warning", limit_concurrency=256, timeout_keep_alive=30)
'''

README = """# {name}: plain HTTP service

Written by the workbench (`wb.package(model, "http")`). The artifact `{artifact}` runs on the workbench's
`{runtime}` runner inside a FastAPI app served by uvicorn.

    pip install "deployment-workbench[serve]"
    python server.py --port 8000                    # binds 127.0.0.1
    python smoke_client.py http://127.0.0.1:8000/v2/models/{name}/infer

Endpoints (Open Inference Protocol / KServe v2): `GET /v2/health/ready`, `GET /v2/models/{name}`,
`POST /v2/models/{name}/infer` (JSON `data` lists, or binary tensors after a JSON header whose length is in
the `Inference-Header-Content-Length` header). Requests are checked against the model's inputs
(`package.json`: names, datatypes, shapes) and capped at `max_request_bytes`; nothing is unpickled.
"""


def make_app(folder: str | Path, threads: int | None = None) -> Any:
    """The FastAPI app serving the package in ``folder``."""
    import anyio.to_thread
    from fastapi import FastAPI, Request, Response
    from fastapi.responses import JSONResponse

    service = ModelService(folder)
    name = service.manifest["model"]
    limit = service.max_bytes + 64 * 1024
    app = FastAPI(title=f"{name} (workbench)", docs_url=None, redoc_url=None, openapi_url=None)
    if threads:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads

    @app.get("/v2/health/ready")
    def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.get("/v2/models/{model}")
    def metadata(model: str) -> Any:
        if model != name:
            return JSONResponse({"error": f"unknown model {model!r}"}, status_code=404)
        return {"name": name, "platform": service.manifest["runtime"],
                "inputs": service.manifest["inputs"], "outputs": service.manifest["outputs"]}

    @app.post("/v2/models/{model}/infer")
    async def infer(model: str, request: Request) -> Response:
        if model != name:
            return JSONResponse({"error": f"unknown model {model!r}"}, status_code=404)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return JSONResponse({"error": f"request over the {limit}-byte limit"}, status_code=413)
        chunks, size = [], 0
        async for chunk in request.stream():  # bounded even when no (or a false) Content-Length was sent
            size += len(chunk)
            if size > limit:
                return JSONResponse({"error": f"request over the {limit}-byte limit"}, status_code=413)
            chunks.append(chunk)
        length = request.headers.get(HEADER_LENGTH.lower())
        try:
            header_length = int(length) if length is not None else None
            body, n = await anyio.to_thread.run_sync(service.infer_request, b"".join(chunks), header_length)
        except (InputError, ValueError) as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        except Exception as err:  # noqa: BLE001 - the runtime's failure goes to the client, the server stays up
            return JSONResponse({"error": f"{type(err).__name__}: {str(err)[:500]}"}, status_code=500)
        if n is None:
            return Response(body, media_type="application/json")
        return Response(body, media_type="application/octet-stream", headers={HEADER_LENGTH: str(n)})

    return app


@register_server
class HttpServer(Server):
    """FastAPI + uvicorn: the smallest service."""

    name = "http"
    description = "plain HTTP service (FastAPI + uvicorn, Open Inference Protocol)"
    distributions = ("fastapi", "uvicorn", "httpx")

    def write_files(self, package: Package, model: Any, **options: Any) -> None:
        (package.folder / "server.py").write_text(SERVER_PY)
        (package.folder / "README.md").write_text(README.format(name=package.model_name, artifact=package.artifact,
                                                                runtime=package.runtime))

    def start(self, package: Package, *, port: int | None = None, timeout: float = 120.0, threads: int | None = None,
              **options: Any) -> Endpoint:
        self.check_available()
        port = port or free_port()
        log = package.folder / "server.log"
        cmd = [sys.executable, str(package.folder / "server.py"), "--host", HOST, "--port", str(port)]
        if threads:
            cmd += ["--workers-threads", str(threads)]
        proc = launch(cmd, log=log, env=python_path_env(), cwd=package.folder)
        url = f"http://{HOST}:{port}"
        wait_ready(f"{url}/v2/health/ready", proc, timeout=timeout, log=log, what="the HTTP service")
        return Endpoint(package_model(package), url=url, infer_url=f"{url}/v2/models/{package.model_name}/infer",
                        process=proc, package=package, log=log)

"""What every serving target shares: the package on disk, the wire format, the server process, the endpoint.

A serving target is a ``Server`` subclass registered with ``workbench.core.registry.register_server`` in
its own file (``serving/triton.py``, ``serving/torchserve.py``, ``serving/ray_serve.py``,
``serving/http.py``). ``Server.write`` lays out a ready-to-run package (the artifact, a ``package.json``
manifest, the server's own files, a README and ``smoke_client.py``); ``Server.start`` runs it on
127.0.0.1 and returns an ``Endpoint``.

The wire format is the Open Inference Protocol (KServe v2, what Triton speaks) with its binary tensor
extension: a JSON header (``Inference-Header-Content-Length`` bytes long) naming each tensor's name, shape,
datatype and ``binary_data_size``, followed by the raw bytes. The workbench's own servers (the plain HTTP
service, Ray Serve, the TorchServe handler, Triton's Python-backend model) decode it with
``decode_request``: a request is untrusted data, so the header is bounded, every tensor is checked against
the model's input specs (name, datatype, rank, fixed dimensions) before a byte is copied, the total size is
capped (``max_request_bytes``), and nothing is ever unpickled.

An ``Endpoint`` is a ``Runner``: ``wb.compare(original, endpoint)`` takes it as it takes any runner (load and
latency: ``wb.load_test``). It stops its server on ``stop()``, at the end of a ``with`` block, and at exit.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from workbench.core import registry
from workbench.core.errors import BackendUnavailable, InputError, WorkbenchError
from workbench.core.model import Model, TensorSpec, numpy_dtype
from workbench.core.precision import precision_of
from workbench.core.runner import Runner, Timing

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "Endpoint", "ModelService", "Package", "Server", "ServingError",
           "decode_request", "decode_response", "encode_request", "encode_response", "free_port"]

HOST = "127.0.0.1"
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
MANIFEST = "package.json"
HEADER_LENGTH = "Inference-Header-Content-Length"

#: NumPy dtype name -> Open Inference Protocol datatype (Triton's config uses "TYPE_" + the same, STRING for BYTES)
V2_DATATYPES = {"bool": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
                "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64", "float16": "FP16",
                "float32": "FP32", "float64": "FP64", "bfloat16": "BF16"}
NUMPY_OF_V2 = {v: k for k, v in V2_DATATYPES.items()}


class ServingError(WorkbenchError, RuntimeError):
    """A serving package could not be written or its server could not start or answer."""


def v2_datatype(dtype: str) -> str:
    """The Open Inference Protocol datatype of a NumPy dtype name; an error for one it has no name for."""
    if dtype not in V2_DATATYPES:
        raise ServingError(f"a {dtype} tensor cannot be served over the inference protocol",
                           f"serve a model whose inputs and outputs are one of: {', '.join(V2_DATATYPES)}")
    return V2_DATATYPES[dtype]


def _np_dtype(name: str) -> np.dtype:
    dt = numpy_dtype(name)
    if dt is None or dt == np.dtype(object):
        raise ServingError(f"no array type for dtype {name!r}", "serve a model with numeric inputs and outputs")
    return dt


# -- wire format -------------------------------------------------------------------------------------------
def _encode(key: str, arrays: dict[str, np.ndarray]) -> tuple[bytes, int]:
    entries, blobs = [], []
    for name, value in arrays.items():
        arr = np.ascontiguousarray(value)
        blob = arr.tobytes()
        entries.append({"name": name, "shape": list(arr.shape), "datatype": v2_datatype(arr.dtype.name),
                        "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    header = json.dumps({key: entries}).encode()
    return header + b"".join(blobs), len(header)


def encode_request(feeds: dict[str, np.ndarray], outputs: list[str] | None = None) -> tuple[bytes, int]:
    """A binary inference request for ``feeds``: (body, header length for ``Inference-Header-Content-Length``)."""
    body, n = _encode("inputs", feeds)
    if outputs is None:
        return body, n
    header = json.loads(body[:n])
    header["outputs"] = [{"name": o, "parameters": {"binary_data": True}} for o in outputs]
    head = json.dumps(header).encode()
    return head + body[n:], len(head)


def encode_response(outputs: dict[str, np.ndarray]) -> tuple[bytes, int]:
    """A binary inference response for ``outputs``."""
    return _encode("outputs", outputs)


def _header(body: bytes, header_length: int | None, max_header: int) -> tuple[dict[str, Any], int]:
    n = len(body) if header_length is None else int(header_length)
    if n < 0 or n > len(body):
        raise InputError(f"header length {n} does not fit the {len(body)}-byte body",
                         f"send the JSON header's length in the {HEADER_LENGTH} header")
    if n > max_header:
        raise InputError(f"request header of {n} bytes is over the {max_header}-byte limit",
                         "send tensors as binary data after a short JSON header")
    try:
        header = json.loads(body[:n])
    except RecursionError:
        raise InputError("request header is nested too deeply", "send an Open Inference Protocol request") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"request header is not JSON: {err}", "send an Open Inference Protocol request") from None
    if not isinstance(header, dict):
        raise InputError("request header is not a JSON object", "send {'inputs': [...]}")
    return header, n


def _tensor(entry: Any, body: bytes, offset: int, dtype: np.dtype, shape: tuple[int, ...],
            limit: int) -> tuple[np.ndarray, int]:
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    nbytes = count * dtype.itemsize
    if nbytes > limit:
        raise InputError(f"tensor {entry.get('name')!r} of shape {list(shape)} is {nbytes} bytes, over the "
                         f"{limit}-byte request limit", "send smaller batches")
    params = entry.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if not isinstance(size, int) or size != nbytes:
            raise InputError(f"tensor {entry.get('name')!r}: binary_data_size {size!r} is not {nbytes} "
                             f"(shape {list(shape)} of {dtype.name})", "send shape, datatype and bytes that agree")
        if offset + size > len(body):
            raise InputError(f"tensor {entry.get('name')!r} runs past the end of the request",
                             "send every tensor's bytes after the header")
        arr = np.frombuffer(body, dtype=dtype, count=count, offset=offset).reshape(shape)
        return arr, offset + size
    data = entry.get("data")
    if not isinstance(data, list):
        raise InputError(f"tensor {entry.get('name')!r} has neither binary data nor a 'data' list",
                         "send 'data' (a flat list of numbers) or binary_data_size")
    try:
        arr = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as err:
        raise InputError(f"tensor {entry.get('name')!r}: 'data' is not a list of {dtype.name} numbers ({err})",
                         "send a flat list of numbers") from None
    if arr.size != count:
        raise InputError(f"tensor {entry.get('name')!r}: {arr.size} values for shape {list(shape)}",
                         "send as many values as the shape holds")
    return arr.reshape(shape), offset


def decode_request(body: bytes, header_length: int | None, specs: list[TensorSpec], *,
                   max_bytes: int = DEFAULT_MAX_REQUEST_BYTES, max_header: int = MAX_HEADER_BYTES
                   ) -> dict[str, np.ndarray]:
    """The feeds of an untrusted inference request, checked against ``specs`` (names, datatypes, rank, fixed
    dimensions, ``max_bytes`` in all); raises ``InputError`` naming what is wrong. Never unpickles."""
    if len(body) > max_bytes + max_header:
        raise InputError(f"request of {len(body)} bytes is over the {max_bytes}-byte limit", "send smaller batches")
    # a JSON-only request (no header length) is all header: bounded by max_bytes like the tensors it holds
    header, offset = _header(body, header_length, max_header if header_length is not None else max_bytes + max_header)
    entries = header.get("inputs")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError("request has no 'inputs' list", "send {'inputs': [{name, shape, datatype, ...}]}")
    by_name = {s.name: s for s in specs}
    names = [e.get("name") for e in entries]
    unknown = [n for n in names if n not in by_name]
    missing = [n for n in by_name if n not in names]
    if unknown or missing or len(set(names)) != len(names):
        raise InputError(f"request inputs {names} do not match the model's {list(by_name)}",
                         "send each model input once, by name")
    feeds: dict[str, np.ndarray] = {}
    budget = max_bytes
    for entry in entries:
        spec = by_name[entry["name"]]
        want = v2_datatype(spec.dtype)
        if entry.get("datatype") != want:
            raise InputError(f"input {spec.name!r} has datatype {entry.get('datatype')!r}, the model expects {want}",
                             f"send {spec.name!r} as {want} ({spec.dtype})")
        shape = entry.get("shape")
        if (not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                   for d in shape)):
            raise InputError(f"input {spec.name!r}: shape {shape!r} is not a list of non-negative ints",
                             "send the tensor's shape as a list of ints")
        if spec.rank_known:
            if len(shape) != len(spec.shape):
                raise InputError(f"input {spec.name!r} has {len(shape)} dimensions {shape}, the model expects "
                                 f"{len(spec.shape)} {list(spec.shape)}", "reshape it to the model's input shape")
            for axis, (got, need) in enumerate(zip(shape, spec.shape, strict=True)):
                if isinstance(need, int) and need >= 0 and got != need:
                    raise InputError(f"input {spec.name!r} has size {got} on axis {axis}, the model expects {need}",
                                     f"send shape {list(spec.shape)}")
        arr, offset = _tensor(entry, body, offset, _np_dtype(spec.dtype), tuple(shape), budget)
        budget -= arr.nbytes
        feeds[spec.name] = arr
    return feeds


def decode_response(body: bytes, header_length: int | None) -> dict[str, np.ndarray]:
    """The outputs of a (trusted: our own server's) binary or JSON inference response."""
    header, offset = _header(body, header_length, max(MAX_HEADER_BYTES, header_length or 0))
    if "error" in header:
        raise ServingError(f"the server answered: {header['error']}", "check the request against model.inputs")
    out: dict[str, np.ndarray] = {}
    for entry in header.get("outputs", []):
        dtype = _np_dtype(NUMPY_OF_V2.get(entry.get("datatype"), "unknown"))
        arr, offset = _tensor(entry, body, offset, dtype, tuple(entry["shape"]), sys.maxsize)
        out[entry["name"]] = arr.copy()
    return out


# -- the model inside a server ------------------------------------------------------------------------------
def _spec_dict(s: TensorSpec) -> dict[str, Any]:
    return {"name": s.name, "shape": list(s.shape), "dtype": s.dtype}


def _spec_of(d: dict[str, Any]) -> TensorSpec:
    return TensorSpec(d["name"], tuple(d["shape"]), d["dtype"])


class ModelService:
    """What runs inside every workbench-made server: the package's artifact on a workbench runner, behind
    ``infer_request`` (untrusted bytes in, bytes out). Built from the package folder's ``package.json``."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / MANIFEST).read_text())
        self.inputs = [_spec_of(d) for d in self.manifest["inputs"]]
        self.outputs = [_spec_of(d) for d in self.manifest["outputs"]]
        self.max_bytes = int(self.manifest.get("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES))
        from workbench.core.detect import load_path
        from workbench.steps import routing

        model = load_path(self.folder / self.manifest["artifact"])  # never trust=True: nothing is unpickled
        self.runner = routing.runner(model, self.manifest["runtime"], **self.manifest.get("runtime_options", {}))
        self.runner.prepare()
        self._lock = threading.Lock() if self.manifest.get("serialize") else None

    @property
    def batchable(self) -> bool:
        """Whether requests can be stacked along axis 0 (every input and output has a dynamic first axis)."""
        return all(s.rank_known and s.shape and not isinstance(s.shape[0], int) for s in self.inputs + self.outputs)

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run checked feeds; outputs in the model's order."""
        if self._lock is None:
            return self.runner.infer(feeds)
        with self._lock:
            return self.runner.infer(feeds)

    def decode(self, body: bytes, header_length: int | None) -> dict[str, np.ndarray]:
        return decode_request(body, header_length, self.inputs, max_bytes=self.max_bytes)

    def infer_request(self, body: bytes, header_length: int | None) -> tuple[bytes, int | None]:
        """Decode an untrusted request, run it, encode the response; ``InputError`` for a bad request.

        A binary request (``header_length`` given) gets a binary response (body, its header's length); a plain
        JSON request gets a JSON response with ``data`` lists (body, None), as the protocol's JSON form says."""
        outputs = self.infer(self.decode(body, header_length))
        if header_length is not None:
            return encode_response(outputs)
        return json.dumps({"model_name": self.manifest["model"], "outputs": [
            {"name": k, "shape": list(np.shape(v)), "datatype": v2_datatype(np.asarray(v).dtype.name),
             "data": np.asarray(v).ravel().tolist()} for k, v in outputs.items()]}).encode(), None

    def infer_batch(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray] | Exception]:
        """Run several requests as one batch along axis 0 when the model allows it; an exception per failed one."""
        if len(requests) > 1 and self.batchable:
            try:
                sizes = [next(iter(r.values())).shape[0] for r in requests]
                stacked = {k: np.concatenate([r[k] for r in requests]) for k in requests[0]}
                out = self.infer(stacked)
                bounds = np.cumsum([0, *sizes])
                return [{k: v[a:b] for k, v in out.items()} for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
            except Exception:  # noqa: BLE001 - one bad request in a batch: run them one by one below
                pass
        results: list[dict[str, np.ndarray] | Exception] = []
        for r in requests:
            try:
                results.append(self.infer(r))
            except Exception as err:  # noqa: BLE001 - reported to that request's client
                results.append(err)
        return results


# -- processes ---------------------------------------------------------------------------------------------
_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def launch(cmd: list[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
           ) -> subprocess.Popen:
    """Start ``cmd`` in a new process group (so its children die with it), output to ``log``; stopped at exit."""
    full_env = {**os.environ, **(env or {})}
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=full_env, cwd=cwd, start_new_session=True)
    with _live_lock:
        _live.add(proc)
    return proc


def terminate(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
    with _live_lock:
        _live.discard(proc)
    if proc.poll() is not None:
        _kill_group(proc.pid, signal.SIGKILL)  # children it left behind
        return
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    _kill_group(proc.pid, signal.SIGKILL)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:  # children die (and are reaped by their parents) a moment later
        try:
            os.killpg(proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        terminate(proc, grace=3.0)


def log_tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def wait_ready(url: str, proc: subprocess.Popen, *, timeout: float, log: Path, what: str,
               headers: Any = None) -> None:
    """Poll ``url`` until it answers 200; a clear error with the log's tail if the process dies or time runs out.
    ``headers``: a dict, or a function giving one (None while not known yet: e.g. a key file not written)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            terminate(proc)
            raise ServingError(f"{what} exited with code {proc.returncode} before it was ready:\n{log_tail(log)}",
                               f"read the whole log: {log}")
        try:
            h = headers() if callable(headers) else headers
            if (h is not None or headers is None) and httpx.get(url, timeout=2.0, headers=h).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    terminate(proc)
    raise ServingError(f"{what} was not ready after {timeout:.0f} s:\n{log_tail(log)}",
                       f"pass a longer start timeout=, or read the log: {log}")


# -- package and endpoint -----------------------------------------------------------------------------------
@dataclass
class Package:
    """A serving package on disk: ``folder`` holds the artifact, the server's files, README.md and smoke_client.py."""

    target: str
    folder: Path
    model_name: str
    artifact: str
    runtime: str
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def readme(self) -> Path:
        return self.folder / "README.md"

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.folder / MANIFEST).read_text())

    def start(self, **options: Any) -> Endpoint:
        """Start this package's server on 127.0.0.1 (see the target's ``Server.start`` for options)."""
        return registry.get_server(self.target)().start(self, **options)

    def __repr__(self) -> str:
        return f"<Package {self.target} {self.model_name!r} at {self.folder}>"


class Endpoint(Runner):
    """A started server, usable as a Runner (``wb.compare(original, endpoint)``): ``url``, ``infer(feeds)``,
    ``stop()``; a ``with`` block stops it, and so does the interpreter's exit."""

    name: ClassVar[str] = "endpoint"

    def __init__(self, model: Model, *, url: str, infer_url: str, process: subprocess.Popen | None,
                 package: Package, log: Path, stop_hook: Any = None, headers: Any = None, grace: float = 10.0):
        # not Runner.__init__: an endpoint takes any format (the server's runtime runs it)
        self.model = model
        self.options = {}
        self.timing = Timing()
        self.is_prepared = False
        self.url = url
        self.infer_url = infer_url
        self.process = process
        self.package = package
        self.log = log
        self.server = package.target
        self._stop_hook = stop_hook
        self.grace = grace  # seconds between SIGTERM and SIGKILL of the server's process group
        self._headers = headers  # a dict, or a function giving the current one (tokens that expire)
        self._client: Any = None
        self._local = threading.local()
        self._clients: list[Any] = []

    @classmethod
    def _check_available(cls) -> str | None:
        return None

    def _prepare_impl(self) -> None:
        pass

    def _http(self) -> Any:
        import httpx

        client = getattr(self._local, "client", None)
        if client is None:  # one connection pool per thread: a load test's threads do not share sockets
            client = self._local.client = httpx.Client(timeout=60.0, headers=self._current_headers())
            with _live_lock:
                self._clients.append(client)
        return client

    def _current_headers(self) -> dict[str, str]:
        h = self._headers() if callable(self._headers) else self._headers
        return dict(h or {})

    def request(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference request over the wire (no client-side checks)."""
        body, n = encode_request(feeds, [s.name for s in self.model.outputs])
        client = self._http()
        resp = client.post(self.infer_url, content=body,
                           headers={HEADER_LENGTH: str(n), "Content-Type": "application/octet-stream"})
        if resp.status_code in (400, 401) and callable(self._headers):  # an expired token: read it again, once
            client.headers.update(self._current_headers())
            resp = client.post(self.infer_url, content=body,
                               headers={HEADER_LENGTH: str(n), "Content-Type": "application/octet-stream"})
        if resp.status_code != 200:
            raise ServingError(f"{self.server} answered HTTP {resp.status_code}: {resp.text[:300]}",
                               "check the request against model.inputs")
        length = resp.headers.get(HEADER_LENGTH)
        return decode_response(resp.content, int(length) if length is not None else None)

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.request(feeds)
        return {s.name: out[s.name] for s in self.model.outputs if s.name in out} or out

    def _close_impl(self) -> None:
        pass

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop the server (its whole process group). Safe to call twice."""
        with _live_lock:
            clients, self._clients = self._clients, []
        for client in clients:  # open keep-alive connections would make a server wait for them
            client.close()
        self._local = threading.local()
        if self._stop_hook is not None:
            try:
                self._stop_hook()
            except Exception:  # noqa: BLE001 - stopping goes on to the process group
                pass
            self._stop_hook = None
        if self.process is not None:
            terminate(self.process, self.grace)
        self.is_prepared = False

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Endpoint:
        return self

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Endpoint {self.server} {self.model.name!r} {self.url} {state}>"


class Server:
    """A serving target. Subclasses set ``name``, ``description``, ``distributions`` and implement
    ``check_available``, ``write_files`` and ``start``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: Python distributions the server needs (named in the error when one is missing)
    distributions: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_available(cls) -> str:
        """The server's version; raises ``BackendUnavailable`` naming the fix when it cannot start here."""
        from importlib import metadata

        versions = []
        for dist in cls.distributions:
            try:
                versions.append(f"{dist} {metadata.version(dist)}")
            except metadata.PackageNotFoundError:
                raise BackendUnavailable(f"{cls.name} serving needs the Python package {dist}, which is not installed",
                                         "pip install 'deployment-workbench[serve]' (or run scripts/setup)") from None
        return ", ".join(versions)

    # -- writing ---------------------------------------------------------------------------------------
    def write(self, model: Model, folder: Path, *, runtime: str | None = None,
              runtime_options: dict[str, Any] | None = None, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
              serialize: bool = False, **options: Any) -> Package:
        """Copy the artifact into ``folder/model/`` with ``package.json``, then the server's own files, the README
        and the smoke client. ``serialize=True`` runs one request at a time in each server process (for a
        runner whose inference call is not thread-safe; the built-in ones are, as ``Runner.throughput_loop``
        assumes)."""
        if model.path is None:
            raise ServingError(f"{model.name} is in memory, a serving package needs a file",
                               "export it first: wb.export(model, 'onnx'), then package the result")
        runtime = runtime or registry.default_runtime(model.format)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", model.name).strip("._") or "model"  # a URL path segment
        folder.mkdir(parents=True, exist_ok=True)
        src = Path(model.path)
        (folder / "model").mkdir(exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, folder / "model" / src.name, dirs_exist_ok=True)
        else:
            for f in registry.get_format(model.format).files(src):
                rel = f.relative_to(src.parent)
                (folder / "model" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, folder / "model" / rel)
        artifact = f"model/{src.name}"
        manifest = {"target": self.name, "model": name, "format": model.format, "artifact": artifact,
                    "runtime": runtime, "runtime_options": dict(runtime_options or {}),
                    "inputs": [_spec_dict(s) for s in model.inputs], "outputs": [_spec_dict(s) for s in model.outputs],
                    "max_request_bytes": int(max_request_bytes), "serialize": bool(serialize),
                    # what the artifact computes in (its lineage is not in the package): an endpoint reports it,
                    # so wb.compare(original, endpoint) applies that precision's tolerance
                    "precision": precision_of(model)}
        for s in model.inputs + model.outputs:
            v2_datatype(s.dtype)  # every tensor must have a wire datatype
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
        package = Package(self.name, folder, name, artifact, runtime)
        self.write_files(package, model, **options)
        (folder / "smoke_client.py").write_text(SMOKE_CLIENT)
        package.files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        return package

    def write_files(self, package: Package, model: Model, **options: Any) -> None:
        raise NotImplementedError

    def start(self, package: Package, *, port: int | None = None, timeout: float = 120.0, **options: Any) -> Endpoint:
        raise NotImplementedError


def package_model(package: Package) -> Model:
    """A Model for a package's specs (what an Endpoint checks feeds against), from its manifest."""
    m = package.manifest
    return Model(format=m["format"], name=m["model"], inputs=[_spec_of(d) for d in m["inputs"]],
                 outputs=[_spec_of(d) for d in m["outputs"]], path=package.folder / m["artifact"],
                 metadata={"precision": m["precision"]} if m.get("precision") else {})


def python_path_env() -> dict[str, str]:
    """PYTHONPATH that lets a server's own interpreter import the workbench as this process does."""
    import workbench

    root = str(Path(workbench.__file__).resolve().parent.parent)
    paths = [root, *[p for p in sys.path if p.endswith("site-packages")]]
    old = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join(paths + ([old] if old else []))}


SMOKE_CLIENT = '''"""Smoke test of this serving package: send the model's example-shaped input, print the outputs' shapes.

    python smoke_client.py http://127.0.0.1:PORT/INFER_PATH [TOKEN]

TOKEN: a bearer token where the server asks for one (TorchServe: the "inference" key of its key_file.json).
Needs only numpy and httpx. The request is an Open Inference Protocol (KServe v2) binary request.
"""
import json
import sys
from pathlib import Path

import httpx
import numpy as np

NUMPY = {"BOOL": "bool", "UINT8": "uint8", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
         "FP16": "float16", "FP32": "float32", "FP64": "float64"}
V2 = {v: k for k, v in NUMPY.items()}


def main(url, token=None):
    manifest = json.loads((Path(__file__).parent / "package.json").read_text())
    entries, blobs = [], []
    for spec in manifest["inputs"]:
        shape = [d if isinstance(d, int) and d >= 0 else 1 for d in spec["shape"]]
        arr = np.random.default_rng(0).standard_normal(shape).astype(spec["dtype"])
        entries.append({"name": spec["name"], "shape": shape, "datatype": V2[spec["dtype"]],
                        "parameters": {"binary_data_size": arr.nbytes}})
        blobs.append(arr.tobytes())
    outputs = [{"name": s["name"], "parameters": {"binary_data": True}} for s in manifest["outputs"]]
    header = json.dumps({"inputs": entries, "outputs": outputs}).encode()
    headers = {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = httpx.post(url, content=header + b"".join(blobs), timeout=60, headers=headers)
    resp.raise_for_status()
    n = int(resp.headers.get("Inference-Header-Content-Length", len(resp.content)))
    head, offset = json.loads(resp.content[:n]), n
    for out in head["outputs"]:
        size = out["parameters"]["binary_data_size"]
        arr = np.frombuffer(resp.content, NUMPY[out["datatype"]], count=size // np.dtype(NUMPY[out["datatype"]]).itemsize,
                            offset=offset).reshape(out["shape"])
        offset += size
        print(out["name"], arr.shape, arr.dtype, "first values:", arr.ravel()[:5])


if __name__ == "__main__":
    main(*sys.argv[1:3])
'''

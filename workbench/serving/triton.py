"""NVIDIA Triton Inference Server: a model repository, started with the ``tritonserver`` the ``nvidia-pytriton``
wheel ships.

``wb.package(model, "triton")`` writes

* ``model_repository/<name>/``: ``config.pbtxt`` (inputs/outputs with dims and datatypes from the model's
  TensorSpecs, ``max_batch_size`` and dynamic batching when every tensor has a dynamic first axis,
  ``instance_group`` on the CPU) and ``1/``: for ``backend="python"`` (the default) a Python-backend
  ``model.py`` that runs the artifact on any workbench runner (``ModelService``), with the artifact and
  ``package.json`` beside it; for ``backend="onnxruntime"`` / ``"openvino"`` the file Triton's native backend
  loads (``model.onnx``; ``model.xml`` + ``model.bin``);
* ``native_repository/<name>/`` (ONNX and OpenVINO IR artifacts, with the default backend): the same model
  for Triton's native ONNX Runtime or OpenVINO backend, for a full Triton (the NGC container).

The ``nvidia-pytriton`` wheel bundles only the Python backend (``pytriton/tritonserver/backends/python``):
here the served model is the Python-backend one, and the native repository is written and checked against
Triton's ``ModelConfig`` protobuf as text, not started. ``start`` refuses a native backend the bundled
server lacks, naming the fix. The server binds HTTP to 127.0.0.1 only (gRPC, metrics, SageMaker and Vertex
endpoints off) and restricts the shared-memory, repository, trace and logging APIs to a random key.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
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
    package_model,
    python_path_env,
    v2_datatype,
    wait_ready,
)


def native_backend(model: Any) -> tuple[str, str] | None:
    """(Triton backend, file name in the version folder) that runs ``model``'s format natively: what the format's
    default runtime declares as ``triton_backend`` (ONNX Runtime, OpenVINO, TorchScript's libtorch), or None."""
    from workbench.core import registry

    try:
        runtime = registry.get_runtime(registry.default_runtime(model.format))
    except Exception:  # noqa: BLE001 - a format no runtime takes has no native backend either
        return None
    backend = getattr(runtime, "triton_backend", None)
    if not backend or model.path is None or Path(model.path).is_dir():
        return None
    return backend, "model" + Path(model.path).suffix

MODEL_PY = '''"""Triton Python-backend model: runs this folder's artifact on a workbench runner (written by the workbench)."""
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from workbench.serving.base import ModelService


class TritonPythonModel:
    def initialize(self, args):
        self.service = ModelService(Path(args["model_repository"]) / args["model_version"])
        self.inputs = [s.name for s in self.service.inputs]
        self.outputs = [s.name for s in self.service.outputs]

    def execute(self, requests):
        # Triton's dynamic batcher hands several requests at once; it checked their datatypes and dims, and a
        # dynamic dimension is bounded here. DLPack both ways: the stub's numpy-array constructor miscounts
        # bytes with NumPy 2 (its pybind11 is older).
        feeds = [{n: np.from_dlpack(pb_utils.get_input_tensor_by_name(r, n)) for n in self.inputs} for r in requests]
        fits = [sum(a.nbytes for a in f.values()) <= self.service.max_bytes for f in feeds]
        results = iter(self.service.infer_batch([f for f, ok in zip(feeds, fits) if ok]))
        responses = []
        for ok in fits:
            result = next(results) if ok else ValueError(
                f"request over the {self.service.max_bytes}-byte limit: send smaller batches")
            if isinstance(result, Exception):
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(result))))
            else:
                responses.append(pb_utils.InferenceResponse(
                    [pb_utils.Tensor.from_dlpack(n, np.ascontiguousarray(result[n])) for n in self.outputs]))
        return responses
'''

README = """# {name}: NVIDIA Triton Inference Server

Written by the workbench (`wb.package(model, "triton")`).

* `model_repository/` — served by `package.start()` and by the command below: the `{backend}` backend{python_note}.
{native_note}
Run it with the `tritonserver` of the `nvidia-pytriton` wheel (CPU; it bundles the Python backend only):

    pip install "deployment-workbench[serve]" && pip install --no-deps nvidia-pytriton
    T=$(python -c "import pytriton, os; print(os.path.dirname(pytriton.__file__))")/tritonserver
    # a backend folder with the stub for your Python: see workbench/serving/triton.py backend_directory()
    $T/bin/tritonserver --model-repository=$PWD/model_repository --http-address=127.0.0.1 --http-port=8000 \\
        --allow-grpc=false --allow-metrics=false --backend-directory=<backends>
    python smoke_client.py http://127.0.0.1:8000/v2/models/{name}/infer

or any full Triton (`docker run --rm -p127.0.0.1:8000:8000 -v $PWD/native_repository:/models
nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models`). Query it with
`tritonclient.http` or `smoke_client.py`. Triton checks every request's datatypes and shapes against
`config.pbtxt`{batch_note}; the Python-backend model checks them again against `package.json`.
"""


def pytriton_root() -> Path:
    """The ``tritonserver`` folder inside the installed ``nvidia-pytriton`` wheel."""
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable("Triton serving needs the tritonserver binary of the nvidia-pytriton wheel, "
                                 "which is not installed",
                                 "pip install --no-deps nvidia-pytriton==0.7.0 (its numpy<2 pin is for its "
                                 "Python API, which the workbench does not use), or run scripts/setup")
    root = Path(list(spec.submodule_search_locations)[0]) / "tritonserver"
    if not (root / "bin" / "tritonserver").exists():
        raise BackendUnavailable(f"no tritonserver binary in {root}", "reinstall nvidia-pytriton (scripts/setup)")
    return root


def bundled_backends() -> list[str]:
    """The backends the installed tritonserver bundle has."""
    return sorted(p.name for p in (pytriton_root() / "backends").iterdir() if p.is_dir())


def backend_directory(cache: Path) -> Path:
    """A Triton backend folder for this Python: the bundled Python backend with the stub built for
    ``sys.version_info`` (the wheel ships one per Python version), as links in ``cache``."""
    root = pytriton_root()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise BackendUnavailable(f"the nvidia-pytriton wheel has no Python-backend stub for Python {version}",
                                 "serve from Python 3.8-3.13")
    ldd = shutil.which("ldd")
    if ldd:  # the stub embeds the system's libpython of that version (Debian: the libpython3.X package)
        done = subprocess.run([ldd, str(stub)], capture_output=True, text=True, timeout=30)
        missing = [line.split()[0] for line in done.stdout.splitlines() if "not found" in line]
        if missing:
            raise BackendUnavailable(f"Triton's Python-backend stub cannot load {', '.join(missing)}",
                                     f"sudo apt-get install libpython{version} (scripts/setup installs it)")
    target = cache / "python"
    target.mkdir(parents=True, exist_ok=True)
    links = {"triton_python_backend_stub": stub, **{p.name: p for p in (root / "backends" / "python").iterdir()}}
    for name, src in links.items():
        link = target / name
        if not link.exists():
            os.symlink(src, link)
    return cache


def _dims(shape: tuple[Any, ...]) -> list[int]:
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


def _tensor_block(specs: list[Any], batched: bool) -> str:
    rows = []
    for s in specs:
        dt = "TYPE_STRING" if s.dtype == "string" else "TYPE_" + v2_datatype(s.dtype)
        dims = _dims(s.shape[1:] if batched else s.shape) or [1]
        rows.append(f'  {{\n    name: "{s.name}"\n    data_type: {dt}\n    dims: [ {", ".join(map(str, dims))} ]\n  }}')
    return ",\n".join(rows)


def config_pbtxt(model: Any, name: str, backend: str, *, max_batch_size: int = 8, instances: int = 1,
                 queue_delay_us: int = 500, filename: str | None = None) -> str:
    """Triton's ``config.pbtxt`` for ``model`` on ``backend``: dims/datatypes from its TensorSpecs; dynamic
    batching up to ``max_batch_size`` when every input and output has a dynamic first axis (else
    ``max_batch_size: 0`` and full shapes); ``instances`` copies on the CPU."""
    for s in model.inputs + model.outputs:
        if not s.rank_known:
            raise ServingError(f"{s.name!r} has no known rank; Triton needs the dims of every tensor",
                               "export the model with shapes (wb.export(..., 'onnx')) and package that")
    batched = max_batch_size > 0 and all(s.shape and not isinstance(s.shape[0], int) for s in model.inputs + model.outputs)
    lines = [f'name: "{name}"', f'backend: "{backend}"', f"max_batch_size: {max_batch_size if batched else 0}"]
    if filename:
        lines.append(f'default_model_filename: "{filename}"')
    lines.append(f"input [\n{_tensor_block(model.inputs, batched)}\n]")
    lines.append(f"output [\n{_tensor_block(model.outputs, batched)}\n]")
    if batched:
        lines.append(f"dynamic_batching {{\n  max_queue_delay_microseconds: {queue_delay_us}\n}}")
    lines.append(f"instance_group [\n  {{\n    count: {instances}\n    kind: KIND_CPU\n  }}\n]")
    return "\n".join(lines) + "\n"


def check_config(text: str) -> Any:
    """Parse a ``config.pbtxt`` with Triton's own ``ModelConfig`` protobuf; a ServingError says what is wrong."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as err:
        raise ServingError(f"config.pbtxt is not a valid Triton ModelConfig: {err}",
                           "report this: the workbench wrote it") from None


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # same file system: no second copy of the weights
    except OSError:
        import shutil

        shutil.copy2(src, dst)


@register_server
class TritonServer(Server):
    """NVIDIA Triton Inference Server (the ``tritonserver`` bundled by nvidia-pytriton)."""

    name = "triton"
    description = "NVIDIA Triton Inference Server model repository (Python backend; ONNX Runtime/OpenVINO configs)"
    distributions = ("nvidia-pytriton", "tritonclient", "httpx")

    @classmethod
    def check_available(cls) -> str:
        version = super().check_available()
        pytriton_root()
        return version

    def write_files(self, package: Package, model: Any, *, backend: str = "python", max_batch_size: int = 8,
                    instances: int = 1, queue_delay_us: int = 500, **options: Any) -> None:
        folder, name = package.folder, package.model_name
        artifact = folder / package.artifact
        knobs = {"max_batch_size": max_batch_size, "instances": instances, "queue_delay_us": queue_delay_us}
        native = native_backend(model)
        if backend != "python" and (native is None or native[0] != backend):
            raise ServingError(f"Triton's {backend!r} backend cannot load a {model.format} model",
                               "use backend='python' (runs any workbench runner)"
                               + (f" or backend={native[0]!r}" if native else ", or convert the model first"))

        def write_native(repo: Path) -> str:
            assert native is not None
            tbackend, filename = native
            text = config_pbtxt(model, name, tbackend, filename=filename, **knobs)
            check_config(text)
            (repo / name).mkdir(parents=True, exist_ok=True)
            (repo / name / "config.pbtxt").write_text(text)
            for f in sorted((folder / "model").rglob("*")):
                if f.is_file():  # model.onnx + its external data; model.xml + model.bin
                    rel = f.relative_to(folder / "model")
                    stem_renamed = Path(filename).stem + f.suffix if f.stem == artifact.stem else rel.as_posix()
                    _place(f, repo / name / "1" / stem_renamed)
            return text

        repo = folder / "model_repository"
        if backend == "python":
            text = config_pbtxt(model, name, "python", **knobs)
            check_config(text)
            version = repo / name / "1"
            version.mkdir(parents=True, exist_ok=True)
            (repo / name / "config.pbtxt").write_text(text)
            (version / "model.py").write_text(MODEL_PY)
            _place(folder / MANIFEST, version / MANIFEST)
            for f in sorted((folder / "model").rglob("*")):
                if f.is_file():
                    _place(f, version / f.relative_to(folder))
            if native is not None:
                write_native(folder / "native_repository")
                package.notes.append(f"native_repository/: Triton's {native[0]} backend (for a full Triton; the "
                                     "nvidia-pytriton bundle has only the Python backend)")
        else:
            text = write_native(repo)
        has_native = (folder / "native_repository").exists()
        (folder / "README.md").write_text(README.format(
            name=name, backend=backend,
            python_note=" (the artifact on a workbench runner, `1/model.py`)" if backend == "python" else "",
            native_note=(f"* `native_repository/` — the same model for Triton's native `{native[0]}` backend.\n"
                         if has_native and native else ""),
            batch_note=" (dynamic batching is on)" if "dynamic_batching" in text else ""))
        manifest = package.manifest
        manifest["triton"] = {"backend": backend, **knobs}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))

    def start(self, package: Package, *, port: int | None = None, timeout: float = 180.0, **options: Any) -> Endpoint:
        self.check_available()
        backend = package.manifest.get("triton", {}).get("backend", "python")
        have = bundled_backends()
        if backend not in have:
            raise ServingError(f"this tritonserver has no {backend} backend (the nvidia-pytriton wheel bundles: "
                               f"{', '.join(have)})",
                               "package with backend='python', or run native_repository/ on a full Triton "
                               "(the NGC tritonserver container)")
        port = port or free_port()
        log = package.folder / "server.log"
        backends = backend_directory(package.folder / ".triton_backends")
        key = secrets.token_hex(16)
        root = pytriton_root()
        cmd = [str(root / "bin" / "tritonserver"), f"--model-repository={package.folder / 'model_repository'}",
               f"--backend-directory={backends}", f"--cache-directory={root / 'caches'}",
               f"--http-address={HOST}", f"--http-port={port}", "--allow-grpc=false", "--allow-metrics=false",
               "--allow-gpu-metrics=false", "--allow-sagemaker=false", "--allow-vertex-ai=false",
               "--exit-on-error=true", "--exit-timeout-secs=5", "--strict-readiness=true", "--log-verbose=0",
               f"--http-restricted-api=shared-memory,model-repository,trace,logging:workbench-admin-key={key}"]
        env = python_path_env()
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(root.parent.parent / "nvidia_pytriton.libs"),
                                                              os.environ.get("LD_LIBRARY_PATH")]))
        proc = launch(cmd, log=log, env=env, cwd=package.folder)
        url = f"http://{HOST}:{port}"
        wait_ready(f"{url}/v2/health/ready", proc, timeout=timeout, log=log, what="tritonserver")
        return Endpoint(package_model(package), url=url, infer_url=f"{url}/v2/models/{package.model_name}/infer",
                        process=proc, package=package, log=log)

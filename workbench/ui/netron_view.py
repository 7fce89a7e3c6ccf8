"""``NetronView``: Netron's own viewer inside the cell output, with no second server or port.

Netron's notebook support (``netron.start`` + an IFrame) points the browser at a server on the
kernel's machine, which a browser on Binder or a remote Voilà app cannot reach. Here the viewer is
loaded *into the widget*: the browser half (``workbench/widgets/netron.js``) asks the kernel, over the
widget's comm channel, for Netron's web assets (from the installed ``netron`` package) and for the
model's bytes, and runs Netron in an iframe made from them. Whatever reaches the kernel's websocket
(JupyterLab, Notebook 7, Voilà, a base URL, a reverse proxy) shows Netron.

Only two kinds of names are answered: files of the ``netron`` package's web assets (``*.js``,
``*.json``, ``*.css``, ``index.html``) and the model files this view was made for.

What a browser can make the kernel send is bounded, because in a published app the browser may be
a hostile visitor's script (one that asks for the model again and again and never reads the
answers makes the Jupyter server queue them: it grows without bound). Model files go in chunks of
at most ``CHUNK_BYTES`` that the browser asks for one after the other (``offset``), and a view sends
each asset and each chunk at most ``max_sends`` times (``PUBLISHED_SENDS`` in a published app,
``NOTEBOOK_SENDS`` in a notebook, where reloading the page asks again): a view never sends more
than that many times its model and Netron's assets, whatever it is asked.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from workbench.core.errors import BackendUnavailable, WorkbenchError
from workbench.ui import assets

_ASSET_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.(js|json|css|html)$")
_ASSET_CACHE: dict[str, str] = {}

CHUNK_BYTES = 1 << 20  # the most model bytes in one comm message
PUBLISHED_SENDS = 4  # times a published view sends one asset or one chunk (page load, a retry or two)
NOTEBOOK_SENDS = 64  # the same in a notebook, where the page may be reloaded often


def netron_assets_dir() -> Path:
    """The folder of the installed ``netron`` package's web assets."""
    try:
        import netron
    except ImportError as err:
        raise BackendUnavailable("the netron package is not installed",
                                 "pip install 'deployment-workbench[ui]' (or pip install netron)") from err
    return Path(netron.__file__).resolve().parent


def netron_version() -> str:
    try:
        from importlib.metadata import version

        return version("netron")
    except Exception:  # noqa: BLE001
        return ""


def read_asset(name: str) -> str:
    """One of Netron's web assets by file name; anything else is refused."""
    if not _ASSET_NAME.match(name):
        raise WorkbenchError(f"{name!r} is not a Netron asset name", "ask for a file such as 'view.js'")
    if name not in _ASSET_CACHE:
        root = netron_assets_dir()
        path = (root / name).resolve()
        if path.parent != root or not path.is_file():
            raise WorkbenchError(f"Netron has no asset {name!r}", "upgrade netron (pip install -U netron)")
        _ASSET_CACHE[name] = path.read_text(encoding="utf-8")
    return _ASSET_CACHE[name]


def model_files_for_netron(source: Any) -> tuple[list[Path], str]:
    """The files Netron should read for ``source`` and the one it opens first.

    A path is taken as it is (every format Netron opens, including ones the workbench does not
    load), with its companion files (OpenVINO ``.bin``, ONNX external data). A workbench Model with
    a file uses that; an in-memory torch model is exported to ONNX in a temporary folder first.
    """
    if isinstance(source, str | os.PathLike) and Path(source).expanduser().exists():
        path = Path(source).expanduser().resolve()
        if path.is_dir():
            raise WorkbenchError(f"{path} is a folder; Netron opens one model file",
                                 "pass the model file inside it (e.g. model.onnx, model.xml, saved_model.pb)")
        files = [path]
        try:
            from workbench.api import load
            from workbench.core.detect import model_files

            files = [Path(f).resolve() for f in model_files(load(path))] or files
        except Exception:  # noqa: BLE001 - a file Netron reads but the workbench does not
            if path.suffix == ".xml" and path.with_suffix(".bin").exists():
                files.append(path.with_suffix(".bin"))
        if path not in files:
            files.insert(0, path)
        return files, path.name
    from workbench.api import load
    from workbench.core.model import Model

    model = source if isinstance(source, Model) else load(source)
    if model.path is not None and Path(model.path).exists() and Path(model.path).is_file():
        from workbench.core.detect import model_files

        try:
            files = [Path(f).resolve() for f in model_files(model)]
        except Exception:  # noqa: BLE001
            files = [Path(model.path).resolve()]
        main = Path(model.path).resolve()
        if main not in files:
            files.insert(0, main)
        return files, main.name
    if model.format in ("torch", "hf"):
        return [_export_onnx(model)], f"{_safe(model.name)}.onnx"
    raise WorkbenchError(f"model {model.name!r} ({model.format}) has no file for Netron to read",
                         "save it first (e.g. wb.export(model, 'onnx')) or use the native view: wb.show(model)")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "model"


def _export_onnx(model: Any) -> Path:
    """An in-memory torch model as an ONNX file in a temporary folder (for Netron only)."""
    try:
        from workbench.steps.export import export

        onnx_model = export(model, "onnx")
        if onnx_model.path is not None:
            return Path(onnx_model.path).resolve()
    except ImportError:
        pass
    import torch

    folder = Path(tempfile.mkdtemp(prefix="wb-netron-"))
    path = folder / f"{_safe(model.name)}.onnx"
    feeds = model.example_inputs()
    args = tuple(torch.from_numpy(feeds[n]) for n in model.input_names if n in feeds)
    module = model.native().eval()
    try:
        torch.onnx.export(module, args, str(path), input_names=model.input_names or None,
                          output_names=model.output_names or None, dynamo=False)
    except Exception as err:  # noqa: BLE001
        raise WorkbenchError(f"could not export {model.name!r} to ONNX for Netron ({str(err).splitlines()[0][:160]})",
                             "export it yourself (wb.export(model, 'onnx')) and show that file") from err
    return path


class NetronView(anywidget.AnyWidget):
    """Netron inside the notebook: ``wb.show(model, viewer="netron")``.

    Args:
        source: a workbench Model, a zoo name, or a path to any file Netron opens (ONNX, OpenVINO
            IR, TorchScript, ExportedProgram ``.pt2``, TFLite, Core ML, Keras, …).
        height: pixels.
    """

    _esm = assets.esm("netron")  # built from widgets/src/netron/ (TypeScript + the host module)
    _css = assets.css("netron")
    identifier = traitlets.Unicode("").tag(sync=True)
    files = traitlets.List(traitlets.Unicode()).tag(sync=True)
    height = traitlets.Int(600).tag(sync=True)
    netron_version = traitlets.Unicode("").tag(sync=True)

    def __init__(self, source: Any, *, height: int = 600, max_sends: int | None = None, **kwargs: Any):
        from workbench.ui.kernel_lab import in_voila

        assets.require("netron")
        netron_assets_dir()  # fail early, with the fix, when netron is missing
        paths, identifier = model_files_for_netron(source)
        self._paths = {p.name: p for p in paths}
        self._sizes = {name: p.stat().st_size for name, p in self._paths.items()}
        self.max_sends = max_sends or (PUBLISHED_SENDS if in_voila() else NOTEBOOK_SENDS)
        self._sent: dict[tuple[str, str, int], int] = {}
        self._errors = 0
        if identifier not in self._paths:  # an exported temporary file keeps its own name
            identifier = paths[0].name
        super().__init__(identifier=identifier, files=list(self._paths), height=height,
                         netron_version=netron_version(), **kwargs)
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind, name, rid = content.get("type"), str(content.get("name", ""))[:256], content.get("id")
        if kind not in ("asset", "file") or not isinstance(rid, str) or len(rid) > 64:
            return  # not from this view's browser code: no answer at all
        try:
            if kind == "asset":
                text = read_asset(name)
                self._count("asset", name, 0)
                self.send({"type": "asset", "id": rid, "text": text})
            elif kind == "file":
                path = self._paths.get(name)
                if path is None:  # only the files this view was made for
                    raise WorkbenchError(f"{name!r} is not a file of this model", "")
                offset, size = content.get("offset", 0), self._sizes[name]
                if (not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= size
                        or offset % CHUNK_BYTES):  # chunk boundaries only: no overlapping chunks
                    raise WorkbenchError(f"offset {str(offset)[:32]} is not a chunk of {name!r} ({size} bytes)",
                                         f"ask for multiples of {CHUNK_BYTES} below the size")
                self._count("file", name, offset)
                with open(path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read(min(CHUNK_BYTES, size - offset))
                self.send({"type": "file", "id": rid, "offset": offset, "size": size}, buffers=[chunk])
        except Exception as err:  # noqa: BLE001 - the browser shows the message; the kernel carries on
            self._errors += 1
            if self._errors <= self.max_sends * 16:  # past that, a flood of bad requests gets no answer
                self.send({"type": kind, "id": rid, "error": str(err)[:500]})

    def _count(self, kind: str, name: str, offset: int) -> None:
        """Refuse to send one asset or chunk more than ``max_sends`` times (see the module's docs)."""
        key = (kind, name, offset)
        n = self._sent.get(key, 0)
        if n >= self.max_sends:
            raise WorkbenchError(f"this view has already sent {name!r} {n} times",
                                 "show the model again (a new view) to reload it")
        self._sent[key] = n + 1

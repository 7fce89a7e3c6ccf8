"""``DownloadButton``: a file from the kernel saved by the browser, and ``CodeBox``: "Show code" for the
ipywidgets views.

A click asks the kernel for the file (``produce()``); its bytes travel back on the widget's comm channel
and the browser saves them as a download, so a visitor of a published Voilà app gets reports and
artifacts without a server path (there is none they could reach). Nothing the browser sends chooses the
file: the button only says "now".
"""

from __future__ import annotations

import html
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

from workbench.core import settings
from workbench.core.errors import WorkbenchError
from workbench.ui import assets
from workbench.ui.show_code import for_visitor

#: what ``produce`` returns: a file or folder (a folder is sent as a zip), or ``(name, bytes, mime)``
Produced = Path | tuple[str, bytes, str]

_MIME = {".html": "text/html", ".json": "application/json", ".csv": "text/csv", ".py": "text/x-python",
         ".zip": "application/zip", ".onnx": "application/octet-stream"}


def file_payload(item: Produced, max_bytes: int | None = None) -> tuple[str, bytes, str]:
    """``(name, bytes, mime)`` of what a ``produce`` callback returned; a folder (an OpenVINO IR pair, a
    ``.mlpackage``) becomes a zip of its files (links are not followed). Raises ``WorkbenchError`` past
    ``max_bytes`` (default ``WORKBENCH_MAX_DOWNLOAD_BYTES``)."""
    limit = settings.max_download_bytes() if max_bytes is None else max_bytes
    if isinstance(item, tuple):
        name, data, mime = item
    else:
        path = Path(item)
        if path.is_dir():
            files = [p for p in sorted(path.rglob("*")) if p.is_file() and not p.is_symlink()]
            total = sum(p.stat().st_size for p in files)
            if total > limit:
                raise WorkbenchError(f"{path.name} holds {total / 1e6:.1f} MB, more than the download limit "
                                     f"({limit / 1e6:.0f} MB)", "copy it from the artifacts folder instead, or raise "
                                     "WORKBENCH_MAX_DOWNLOAD_BYTES")
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for p in files:
                    zf.write(p, Path(path.name) / p.relative_to(path))
            name, data, mime = f"{path.name}.zip", buf.getvalue(), "application/zip"
        elif path.is_file():
            size = path.stat().st_size
            if size > limit:
                raise WorkbenchError(f"{path.name} is {size / 1e6:.1f} MB, more than the download limit "
                                     f"({limit / 1e6:.0f} MB)", "copy it from the artifacts folder instead, or raise "
                                     "WORKBENCH_MAX_DOWNLOAD_BYTES")
            name, data, mime = path.name, path.read_bytes(), _MIME.get(path.suffix, "application/octet-stream")
        else:
            raise WorkbenchError(f"there is no file {path} to download", "run the step that makes it first")
    if len(data) > limit:
        raise WorkbenchError(f"{name} is {len(data) / 1e6:.1f} MB, more than the download limit ({limit / 1e6:.0f} MB)",
                             "raise WORKBENCH_MAX_DOWNLOAD_BYTES")
    return name, data, mime


class DownloadButton(anywidget.AnyWidget):
    """A button that saves ``produce()``'s file in the browser (``Path`` or ``(name, bytes, mime)``).

    ``produce`` runs in the kernel on each click, so the file is the current one (a report of the
    latest run). Its errors are shown beside the button (a ``WorkbenchError``'s message and fix)."""

    _esm = assets.esm("download")
    label = traitlets.Unicode("Download").tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)
    tooltip = traitlets.Unicode("").tag(sync=True)

    def __init__(self, label: str, produce: Callable[[], Produced], *, tooltip: str = "",
                 max_bytes: int | None = None, **kwargs: Any):
        super().__init__(label=label, tooltip=tooltip, **kwargs)
        self.produce = produce
        self.max_bytes = max_bytes
        self.on_msg(self._on_msg)

    def payload(self) -> tuple[str, bytes, str]:
        """What a click sends now: ``(name, bytes, mime)``."""
        return file_payload(self.produce(), self.max_bytes)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("kind") != "request":
            return  # nothing else is accepted from the browser
        send_file(self, self.payload)


def send_file(widget: Any, payload: Callable[[], tuple[str, bytes, str]]) -> None:
    """Send the browser half of ``widget`` the file ``payload()`` makes (a ``file`` message with its bytes as
    the buffer), or the error that stopped it (an ``error`` message: a ``WorkbenchError``'s text, else one
    line); the kernel carries on either way."""
    try:
        name, data, mime = payload()
    except WorkbenchError as err:
        widget.send({"kind": "error", "error": str(err)})
        return
    except Exception as err:  # noqa: BLE001 - shown beside the button; the kernel carries on
        widget.send({"kind": "error", "error": f"{type(err).__name__}: {err}".splitlines()[0][:300]})
        return
    widget.send({"kind": "file", "name": name, "mime": mime}, buffers=[data])


class CodeBox(widgets.Accordion):
    """"Show code" for an ipywidgets view: a collapsed section with the Python the view stands for.
    ``refresh()`` re-reads ``code()`` (call it when the view's state changes)."""

    def __init__(self, code: Callable[[], str], title: str = "Show code"):
        self.code = code
        self.pre = widgets.HTML()
        super().__init__(children=[self.pre], titles=(title,))
        self.selected_index = None
        self.add_class("wb-show-code")
        self.refresh()

    def refresh(self) -> None:
        try:
            text = self.code()
        except Exception as err:  # noqa: BLE001 - a view whose code cannot be written still renders
            text = f"# the code could not be written: {type(err).__name__}: {err}"
        text = for_visitor(text)
        self.pre.value = f"<pre class='wb-code' style='margin:0;white-space:pre;overflow:auto'>{html.escape(text)}</pre>"

"""A visitor's raw access to a Voilà page's kernel: the page's kernel and widget ids, and a websocket
client that speaks the Jupyter kernel protocol (legacy JSON frames, no subprotocol), so tests can
play a hostile visitor who sends widget messages the page's own JavaScript never would."""

from __future__ import annotations

import json
import re
import struct
import time
import urllib.request
import uuid
from typing import Any

from websockets.sync.client import connect


def open_page(url: str, timeout: float = 120) -> tuple[str, list[str]]:
    """GET a Voilà page (the notebook runs); its kernel id and the widget model ids it shows."""
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1 only
        html = r.read().decode()
    return page_ids(html)


def page_ids(html: str) -> tuple[str, list[str]]:
    """The kernel id and widget model ids in a Voilà page's HTML."""
    kernel = re.search(r'kernelId"\s*:\s*"([0-9a-f-]{36})"', html)
    if kernel is None:
        raise AssertionError(f"no kernel id in the page:\n{html[:2000]}")
    return kernel.group(1), re.findall(r'model_id"\s*:\s*"([0-9a-f]{32})"', html)


class KernelSocket:
    """The kernel's websocket as a visitor's script sees it: send comm messages, read replies."""

    V1 = "v1.kernel.websocket.jupyter.org"

    def __init__(self, base: str, kernel_id: str, *, v1: bool = False, **connect_args: Any) -> None:
        """``v1``: speak the binary protocol browsers use (subprotocol ``v1.kernel.websocket.jupyter.org``)
        instead of the legacy JSON frames."""
        ws_url = base.replace("http://", "ws://", 1).rstrip("/")
        self.session = uuid.uuid4().hex
        self.v1 = v1
        if v1:
            connect_args["subprotocols"] = [self.V1]
        self.ws = connect(f"{ws_url}/api/kernels/{kernel_id}/channels?session_id={self.session}",
                          max_size=None, open_timeout=30, **connect_args)

    def send(self, msg_type: str, content: dict[str, Any], channel: str = "shell") -> str:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": msg_type, "session": self.session, "username": "visitor",
                  "date": "2026-01-01T00:00:00Z", "version": "5.3"}
        if self.v1:
            parts = [channel.encode(), *(json.dumps(x).encode() for x in (header, {}, {}, content))]
            offsets = [8 * (len(parts) + 2)]
            for part in parts:
                offsets.append(offsets[-1] + len(part))
            self.ws.send(b"".join([len(offsets).to_bytes(8, "little"),
                                   *(o.to_bytes(8, "little") for o in offsets), *parts]))
            return msg_id
        self.ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content,
                                 "buffers": [], "channel": channel}))
        return msg_id

    def comm(self, comm_id: str, data: dict[str, Any]) -> str:
        return self.send("comm_msg", {"comm_id": comm_id, "data": data})

    def messages(self, seconds: float, idle: float | None = None):
        """Decoded messages for up to ``seconds`` (or until none came for ``idle`` seconds); a binary
        frame's buffers' sizes in ``buffer_sizes``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = self.ws.recv(timeout=min(left, idle) if idle else left)
            except TimeoutError:
                return
            if isinstance(raw, str):
                yield json.loads(raw)
            elif self.v1:  # count, offsets (uint64 LE), channel, header, parent, metadata, content, buffers
                n = int.from_bytes(raw[:8], "little")
                offsets = [int.from_bytes(raw[8 * (i + 1):8 * (i + 2)], "little") for i in range(n)]
                parts = [raw[offsets[i]:offsets[i + 1]] for i in range(n - 1)]
                header = json.loads(parts[1])
                yield {"channel": parts[0].decode(), "header": header, "msg_type": header.get("msg_type"),
                       "content": json.loads(parts[4]), "buffer_sizes": [len(b) for b in parts[5:]]}
            else:  # jupyter_server's legacy binary frame: count, offsets, JSON, buffers
                (n,) = struct.unpack_from("!I", raw, 0)
                offsets = [*struct.unpack_from(f"!{n}I", raw, 4), len(raw)]
                msg = json.loads(raw[offsets[0]:offsets[1]])
                msg["buffer_sizes"] = [offsets[i + 1] - offsets[i] for i in range(1, n)]
                yield msg

    def close(self) -> None:
        self.ws.close()

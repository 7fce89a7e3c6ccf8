"""ModelPicker in a real browser, in a published Voilà app (the app's server configuration: the visitor's
kernel is marked published): no path field, a real ONNX file of more than one chunk uploaded through the
file input and loaded by the kernel, a file over the limit refused in the browser before a byte is sent, a
TorchScript file refused by the kernel from its content with the fix shown."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.ui.jupyter_servers import CHROMIUM, SCREENSHOTS, voila
from tests.ui.test_model_picker import tiny_onnx

pytestmark = [pytest.mark.browser]

if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs Debian's chromium
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api")

LIMIT = 2_000_000
CELLS = ["import os\nfrom workbench.ui import ModelPicker\n"
         f"picker = ModelPicker(None, max_upload_bytes={LIMIT})\npicker",
         "print('PUBLISHED', os.environ.get('WORKBENCH_PUBLISHED'), picker.published)"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    import nbformat

    root = tmp_path_factory.mktemp("model-picker")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "picker.ipynb")
    files = root / "files"
    files.mkdir()
    (files / "tiny.onnx").write_bytes(tiny_onnx(40_000))  # 1.3 MB: two chunks over the comm
    (files / "big.onnx").write_bytes(b"\0" * (LIMIT + 1))
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buf)
    (files / "linear.onnx").write_bytes(buf.getvalue())  # TorchScript named .onnx
    return root


@pytest.fixture(scope="module")
def server(site):
    """The published app's Voilà (its server configuration) rendering the picker; one kernel per page."""
    with voila(site, "picker.ipynb", app_config=True, args=("--VoilaConfiguration.preheat_kernel=False",)) as url:
        yield url


def test_upload_in_published_voila(page, site, server):
    uploads = site / "artifacts" / "uploads"
    page.set_viewport_size({"width": 1000, "height": 700})
    page.goto(server, timeout=120_000)
    widget = page.locator(".wb-mp")
    widget.wait_for(timeout=120_000)
    try:
        assert "PUBLISHED 1 True" in page.content()
        # published: no path tab, no "trust this file"
        assert page.locator(".wb-mp-tab[data-source=path]").is_hidden()
        assert page.locator(".wb-mp-trust").is_hidden()
        page.locator(".wb-mp-tab[data-source=upload]").click()
        assert "up to 1.9 MB" in page.locator(".wb-mp-hint").inner_text()
        # a real ONNX file through the file input: chunked, acknowledged, loaded by the kernel
        page.set_input_files(".wb-mp-file", str(site / "files" / "tiny.onnx"))
        page.wait_for_selector(".wb-mp[data-status=ready]", timeout=60_000)
        status = page.locator(".wb-mp-status").inner_text()
        assert "tiny.onnx" in status and "onnx" in status and "x: float32[1, 40000]" in status, status
        box = widget.bounding_box()
        assert box["height"] < 130, box  # compact: one row, the status line, the hint, the code toggle
        (folder,) = uploads.iterdir()
        assert (folder / "tiny.onnx").read_bytes() == (site / "files" / "tiny.onnx").read_bytes()
        page.locator(".wb-show-code summary").click()
        shown = page.locator(".wb-code").inner_text()  # the visitor's file, no server folder
        assert 'wb.load("tiny.onnx")' in shown and str(folder) not in shown, shown
        # over the limit: refused here, nothing sent (no new upload folder in the kernel's artifacts)
        page.set_input_files(".wb-mp-file", str(site / "files" / "big.onnx"))
        page.wait_for_selector(".wb-mp[data-status=error]", timeout=10_000)
        status = page.locator(".wb-mp-status").inner_text()
        assert "big.onnx" in status and "more than the upload limit" in status and "nothing was sent" in status
        assert len(list(uploads.iterdir())) == 1
        # TorchScript by its content: the kernel refuses it before loading, with the fix
        page.set_input_files(".wb-mp-file", str(site / "files" / "linear.onnx"))
        page.wait_for_function("document.querySelector('.wb-mp-error')?.textContent.includes('was not loaded')",
                               timeout=60_000)
        status = page.locator(".wb-mp-status").inner_text()
        assert "TorchScript" in status and "Fix:" in status and "pure data" in status, status
        assert len(list(uploads.iterdir())) == 1  # the refused upload left nothing
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "model-picker-voila.png"), full_page=True)
    assert not [e for e in page.errors if "wb" in e.lower() or "picker" in e.lower()], page.errors


def _v1_frame(sock, comm_id: str, data: dict, buffers: list[bytes]) -> bytes:
    """A comm message in the browsers' v1 websocket protocol, with binary buffers (as a chunk travels)."""
    import json
    import uuid

    header = {"msg_id": uuid.uuid4().hex, "msg_type": "comm_msg", "session": sock.session, "username": "visitor",
              "date": "2026-01-01T00:00:00Z", "version": "5.3"}
    parts = [b"shell", *(json.dumps(x).encode() for x in (header, {}, {}, {"comm_id": comm_id, "data": data})),
             *buffers]
    offsets = [8 * (len(parts) + 2)]
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    return b"".join([len(offsets).to_bytes(8, "little"), *(o.to_bytes(8, "little") for o in offsets), *parts])


def test_hostile_visitor_over_the_websocket(site, server):
    """A visitor's script, on the kernel's websocket of a published page: it switches trust and the path
    field on, asks for a server path, declares a huge upload, sends more bytes than declared and chunks out
    of order. The kernel refuses each, writes nothing, and its state stays locked."""
    pytest.importorskip("websockets")
    from tests.ui.kernel_ws import KernelSocket, open_page

    uploads = site / "artifacts" / "uploads"
    before = sorted(uploads.iterdir()) if uploads.exists() else []
    kernel_id, models = open_page(server)
    assert models, "the page shows no widget"
    sock = KernelSocket(server, kernel_id, v1=True)
    secret = site / "picker.ipynb"

    def custom(content: dict, buffers: list[bytes] = ()) -> None:
        for model_id in models:
            sock.ws.send(_v1_frame(sock, model_id, {"method": "custom", "content": content}, list(buffers)))

    try:
        for model_id in models:
            sock.comm(model_id, {"method": "update", "buffer_paths": [], "state": {
                "trust": True, "allow_path": True, "allow_trust": True, "max_upload_bytes": 10**12}})
        custom({"kind": "pick_path", "path": str(secret)})
        custom({"kind": "upload_start", "id": "big", "files": [{"name": "x.onnx", "size": 10**10}]})
        custom({"kind": "upload_start", "id": "lie", "files": [{"name": "../../x.onnx", "size": 10}]})
        custom({"kind": "upload_chunk", "id": "lie", "file": 0, "offset": 0}, [b"x" * 64])
        custom({"kind": "upload_start", "id": "order", "files": [{"name": "y.onnx", "size": 10}]})
        custom({"kind": "upload_chunk", "id": "order", "file": 0, "offset": 5}, [b"x" * 5])
        aborts, errors = {}, []
        for msg in sock.messages(60, idle=10):
            if msg.get("msg_type") != "comm_msg":
                continue
            data = msg["content"].get("data", {})
            if data.get("method") == "custom" and data["content"].get("kind") == "abort":
                aborts[data["content"]["id"]] = data["content"]["error"]
            if "error" in data.get("state", {}):
                errors.append(data["state"]["error"])
            if len(aborts) >= 3 and any("loads no paths" in e for e in errors):
                break
        assert "more than the limit" in aborts.get("big", ""), aborts
        assert "larger than the 10 bytes declared" in aborts.get("lie", ""), aborts
        assert "out of order" in aborts.get("order", ""), aborts
        assert any("published app loads no paths" in e for e in errors), errors
        # the kernel's state: still locked
        for model_id in models:
            sock.comm(model_id, {"method": "request_state"})
        for msg in sock.messages(30, idle=10):
            state = msg.get("content", {}).get("data", {}).get("state", {})
            if "allow_path" in state:
                assert state["allow_path"] is False and state["trust"] is False and state["allow_trust"] is False
                assert state["max_upload_bytes"] == LIMIT and state["value"] == ""
                break
        else:
            pytest.fail("no answer to request_state")
    finally:
        sock.close()
    assert (sorted(uploads.iterdir()) if uploads.exists() else []) == before  # nothing was written

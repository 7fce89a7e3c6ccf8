"""A hostile visitor of a published (Voilà) app, over the kernel's websocket as any script can reach
it: the KernelLab cannot be unlocked to run the visitor's code, and the Netron view serves only its
model's bytes, in bounded chunks and a bounded number of times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ui.jupyter_servers import voila

pytest.importorskip("websockets")

PAYLOAD = "open({marker!r}, 'w').write('pwned')\nimport os\nos.environ['PWNED'] = '1'\n"


def _lab_notebook(root: Path) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from workbench.ui.kernel_lab import KernelLab\nlab = KernelLab()\nlab")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "lab.ipynb")
    return "lab.ipynb"


def test_browser_state_cannot_unlock_the_lab(monkeypatch, tmp_path):
    """In the kernel: what ipywidgets applies for a browser's update message changes nothing run."""
    from workbench.ui.kernel_lab import KernelLab

    marker = tmp_path / "pwned"
    monkeypatch.setenv("VOILA_PREHEAT", "True")  # a preheated Voilà kernel: no VOILA_KERNEL_ID yet
    lab = KernelLab()
    assert lab.editable is False
    lab.set_state({"editable": True, "code": PAYLOAD.format(marker=str(marker)), "entry": "print"})
    assert lab.editable is False and lab.entry == "add" and "pwned" not in lab.code
    lab.editable = True  # even the notebook's own code cannot unlock it inside Voilà
    assert lab.editable is False
    assert lab.run() and not marker.exists()

    monkeypatch.delenv("VOILA_PREHEAT")
    locked = KernelLab(editable=False)  # locked by its author in a notebook: the browser cannot unlock it
    locked.set_state({"editable": True, "code": PAYLOAD.format(marker=str(marker))})
    assert locked.run() and not marker.exists()
    open_lab = KernelLab()  # an editable lab takes code from the browser, and only code
    open_lab.set_state({"code": "x = 1\n", "title": "pwned", "output": "forged"})
    assert open_lab.code == "x = 1\n" and open_lab.title == "Kernel lab"


def test_visitor_cannot_unlock_a_published_lab_over_the_websocket(tmp_path):
    """Real Voilà: the visitor's script sets ``editable``, sends code and presses Run; the author's
    code runs, the visitor's never does."""
    from tests.ui.kernel_ws import KernelSocket, open_page

    marker = tmp_path / "pwned"
    with voila(tmp_path, _lab_notebook(tmp_path)) as url:
        kernel_id, models = open_page(url)
        assert models, "the page shows no widget"
        sock = KernelSocket(url, kernel_id)
        try:
            for model_id in models:
                sock.comm(model_id, {"method": "update", "buffer_paths": [], "state": {
                    "editable": True, "code": PAYLOAD.format(marker=str(marker)), "entry": "print"}})
                sock.comm(model_id, {"method": "custom", "content": {"action": "run"}})
            final, seen = None, {}
            for msg in sock.messages(90):  # the kernel sends each changed trait as it changes
                if msg.get("msg_type") == "comm_msg":
                    seen.update(msg["content"].get("data", {}).get("state", {}))
                if seen.get("status") in ("ok", "error", "fail"):
                    final = seen
                    break
            assert final is not None, "the lab never answered the Run message"
            assert final["status"] == "ok" and "ran without errors" in final.get("output", "")
            # the lab's state as the kernel has it: still locked, still the author's code
            sock.comm(models[0], {"method": "request_state"})
            for msg in sock.messages(30):
                data = msg.get("content", {}).get("data", {})
                if data.get("method") == "update" and "editable" in data.get("state", {}):
                    assert data["state"]["editable"] is False, json.dumps(data)[:500]
                    assert "pwned" not in data["state"]["code"]
                    break
            else:
                pytest.fail("no answer to request_state")
        finally:
            sock.close()
    assert not marker.exists(), "the visitor's code ran in the published kernel"


def _big_onnx(path: Path, floats: int = 700_000) -> Path:
    """A valid ONNX model of ~2.8 MB (three chunks): y = x + w."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(floats, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "big",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [floats])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [floats])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_netron_view_sends_bounded_chunks(tmp_path):
    """In the kernel: chunks of at most CHUNK_BYTES at chunk offsets only, each at most max_sends times."""
    from workbench.ui.netron_view import CHUNK_BYTES, NetronView

    path = _big_onnx(tmp_path / "big.onnx")
    view = NetronView(path, max_sends=2)
    sent: list[tuple[dict, int]] = []
    view.send = lambda msg, buffers=None: sent.append((msg, sum(len(b) for b in buffers or [])))
    size = path.stat().st_size
    for _ in range(10):  # a script asking again and again, and for overlapping or absurd offsets
        for offset in (0, CHUNK_BYTES, 2 * CHUNK_BYTES, 1, -5, "0", 10**18, size):
            view._on_msg(view, {"type": "file", "name": "big.onnx", "id": "a", "offset": offset}, [])
        view._on_msg(view, {"type": "asset", "name": "index.html", "id": "b"}, [])
        view._on_msg(view, {"type": "file", "name": "../../etc/passwd", "id": "c"}, [])
    view._on_msg(view, {"type": "file", "name": "big.onnx", "id": "x" * 10_000}, [])  # no echo of a huge id
    data = [(m, n) for m, n in sent if "error" not in m]
    assert max(n for _, n in data) <= CHUNK_BYTES
    assert sum(n for m, n in data if m["type"] == "file") <= 2 * size
    assert sum(1 for m, _ in data if m["type"] == "asset") == 2
    errors = [m["error"] for m, _ in sent if "error" in m]
    assert any("already sent" in e for e in errors) and any("not a chunk" in e for e in errors)
    assert any("not a file of this model" in e for e in errors)
    assert all(len(m.get("id", "")) <= 64 for m, _ in sent) and len(sent) <= 2 * 16 + len(data)
    # the bytes the browser reassembles are the file's
    chunks = {}
    fresh = NetronView(path)
    fresh.send = lambda msg, buffers=None: chunks.__setitem__(msg.get("offset"), bytes(buffers[0]))
    for offset in range(0, size, CHUNK_BYTES):
        fresh._on_msg(fresh, {"type": "file", "name": "big.onnx", "id": "z", "offset": offset}, [])
    assert b"".join(chunks[k] for k in sorted(chunks)) == path.read_bytes()


def test_netron_flood_over_the_websocket_is_bounded(tmp_path):
    """Real Voilà, a script that floods the view with file requests and reads late: the kernel sends at
    most a few copies of the model, in chunks, whatever it is asked. (It speaks the browsers' v1
    protocol: over the legacy one, jupyter_server's IOPub data-rate limit drops megabyte messages.)"""
    import nbformat

    from tests.ui.kernel_ws import KernelSocket, open_page
    from workbench.ui.netron_view import CHUNK_BYTES, PUBLISHED_SENDS

    path = _big_onnx(tmp_path / "big.onnx")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from workbench.ui.netron_view import NetronView\nNetronView('big.onnx')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "netron.ipynb")
    with voila(tmp_path, "netron.ipynb") as url:
        kernel_id, models = open_page(url)
        sock = KernelSocket(url, kernel_id, v1=True)
        try:
            for i in range(300):
                for model_id in models:
                    sock.comm(model_id, {"method": "custom", "content": {
                        "type": "file", "name": "big.onnx", "id": f"r{i}", "offset": (i % 3) * CHUNK_BYTES}})
            got, replies = 0, 0
            for msg in sock.messages(90, idle=15):  # until the kernel has gone quiet
                if msg.get("msg_type") == "comm_msg" and msg["content"]["data"].get("method") == "custom":
                    replies += 1
                    assert all(n <= CHUNK_BYTES for n in msg.get("buffer_sizes", []))
                    got += sum(msg.get("buffer_sizes", []))
        finally:
            sock.close()
    size = path.stat().st_size
    assert replies > 0, "the kernel never answered"
    assert size <= got <= PUBLISHED_SENDS * size, (got, size)


def test_published_app_closes_legacy_protocol_websockets(tmp_path):
    """Under the app's configuration, a client without the v1 subprotocol (one 1 MiB reply over the
    legacy protocol makes jupyter_server grow ~20 MB/s for good) is closed at its first message."""
    import nbformat
    from websockets.exceptions import ConnectionClosed

    from tests.ui.kernel_ws import KernelSocket, open_page

    _big_onnx(tmp_path / "big.onnx")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from workbench.ui.netron_view import NetronView\nNetronView('big.onnx')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "netron.ipynb")
    with voila(tmp_path, "netron.ipynb", app_config=True, args=("--VoilaConfiguration.preheat_kernel=False",)) as url:
        kernel_id, models = open_page(url)
        legacy = KernelSocket(url, kernel_id)
        legacy.comm(models[0], {"method": "custom", "content": {"type": "file", "name": "big.onnx", "id": "a"}})
        with pytest.raises(ConnectionClosed) as closed:
            list(legacy.messages(30))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        v1 = KernelSocket(url, kernel_id, v1=True)  # what browsers speak still works
        try:
            v1.comm(models[0], {"method": "custom", "content": {"type": "file", "name": "big.onnx", "id": "b"}})
            sizes = next((m.get("buffer_sizes") for m in v1.messages(60) if m.get("msg_type") == "comm_msg"), None)
        finally:
            v1.close()
        assert sizes and sizes[0] > 0

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

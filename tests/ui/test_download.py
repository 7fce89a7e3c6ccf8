"""DownloadButton: what a click sends the browser (the bytes, a folder as a zip, the limit), and that the
browser's message chooses nothing."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from workbench.core.errors import WorkbenchError
from workbench.ui.download import CodeBox, DownloadButton, file_payload


def test_a_file_goes_as_its_bytes(tmp_path: Path):
    f = tmp_path / "report.html"
    f.write_text("<p>hi</p>")
    assert file_payload(f) == ("report.html", b"<p>hi</p>", "text/html")


def test_a_folder_goes_as_a_zip_without_following_links(tmp_path: Path):
    d = tmp_path / "model.ir"
    d.mkdir()
    (d / "model.xml").write_text("<net/>")
    (d / "model.bin").write_bytes(b"\0" * 10)
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (d / "link").symlink_to(secret)
    name, data, mime = file_payload(d)
    assert (name, mime) == ("model.ir.zip", "application/zip")
    names = sorted(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert names == ["model.ir/model.bin", "model.ir/model.xml"]


def test_the_limit_and_missing_files_are_clear(tmp_path: Path):
    f = tmp_path / "big.onnx"
    f.write_bytes(b"x" * 1000)
    with pytest.raises(WorkbenchError, match="more than the download limit"):
        file_payload(f, max_bytes=100)
    with pytest.raises(WorkbenchError, match="no file"):
        file_payload(tmp_path / "nope.onnx")


def test_a_click_sends_the_file_or_the_error(tmp_path: Path):
    sent: list[tuple[dict, list]] = []
    calls: list[int] = []

    def produce():
        calls.append(1)
        return ("a.json", b"{}", "application/json")

    b = DownloadButton("Report", produce)
    b.send = lambda content, buffers=None: sent.append((content, buffers or []))  # what goes to the browser
    b._on_msg(b, {"kind": "request", "path": "/etc/passwd"}, [])  # extra keys from the browser are ignored
    assert sent[-1] == ({"kind": "file", "name": "a.json", "mime": "application/json"}, [b"{}"])
    b._on_msg(b, {"kind": "other"}, [])
    b._on_msg(b, "request", [])
    assert len(calls) == 1 and len(sent) == 1

    b.produce = lambda: tmp_path / "missing.html"
    b._on_msg(b, {"kind": "request"}, [])
    assert sent[-1][0]["kind"] == "error" and "missing.html" in sent[-1][0]["error"]


def test_code_box_shows_the_code_and_survives_a_failing_one():
    box = CodeBox(lambda: "import workbench as wb\nwb.load('digits-cnn')")
    assert "wb.load(&#x27;digits-cnn&#x27;)" in box.pre.value
    box.code = lambda: 1 / 0
    box.refresh()
    assert "could not be written" in box.pre.value


def test_a_visitor_sees_no_server_folders_in_show_code(monkeypatch, tmp_path: Path):
    from workbench.core import settings
    from workbench.ui.model_picker import ModelPicker
    from workbench.ui.show_code import for_visitor

    monkeypatch.setenv("WORKBENCH_ARTIFACTS", str(tmp_path / "art"))
    code = f'm = wb.load("{tmp_path}/art/uploads/u1/a.onnx")\nroot = "{settings.project_root()}/x"'
    assert for_visitor(code) == code  # a user's own notebook: the real paths, the code runs as is
    monkeypatch.setenv("WORKBENCH_PUBLISHED", "1")
    shown = for_visitor(code)
    assert str(tmp_path) not in shown and str(settings.project_root()) not in shown
    # the uploaded file as the visitor named it (as the picker's code names it); other artifacts by folder
    assert 'wb.load("a.onnx")' in shown and 'root = "./x"' in shown
    step = for_visitor(f'q = wb.load("{tmp_path}/art/steps/q.onnx")')
    assert step == 'q = wb.load("workbench-artifacts/steps/q.onnx")'
    # the synced trait of every view passes through it
    p = ModelPicker(published=True)
    p.code_text = code
    assert p.code_text == shown
    box = CodeBox(lambda: code)
    assert str(tmp_path) not in box.pre.value

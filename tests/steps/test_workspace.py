"""The artifacts folder: atomic writes, never overwriting a user's file, the manifest."""

from __future__ import annotations

import json

import pytest

import workbench as wb
from workbench.core.errors import StepError
from workbench.steps.workspace import commit, read_manifest, unique_path, using_workspace, workspace


def test_a_users_file_is_never_overwritten(zoo, tmp_path):
    with using_workspace(tmp_path):
        mine = tmp_path / "digits-cnn.onnx"
        mine.write_bytes(b"my own notes, not a model")
        x = wb.export(zoo("digits-cnn"), "onnx", cache=False)
        assert x.path.name == "digits-cnn-2.onnx"
        assert mine.read_bytes() == b"my own notes, not a model"
        with pytest.raises(StepError, match="already exists"):
            wb.export(zoo("digits-cnn"), "onnx", path=mine)
        with pytest.raises(FileExistsError):
            commit(x.path, mine)
        assert mine.read_bytes() == b"my own notes, not a model"
        # no temporary files are left behind
        assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_manifest_records_lineage(zoo, tmp_path):
    with using_workspace(tmp_path):
        assert workspace() == tmp_path.resolve()
        x = wb.export(zoo("digits-cnn"), "onnx")
        ir = wb.convert(x, "openvino")
        data = json.loads((tmp_path / "manifest.json").read_text())
    entries = {a["path"]: a for a in data["artifacts"]}
    e = entries[ir.path.name]
    assert e["step"] == "convert:openvino" and e["format"] == "openvino"
    assert e["files"] == [ir.path.name, ir.path.with_suffix(".bin").name]
    assert e["parent"]["path"] == x.path.name and e["lineage"] == ["export:onnx", "convert:openvino"]
    assert e["size_bytes"] == ir.size_bytes and len(e["sha256"]) == 64
    assert "openvino" in e["tool_versions"] and e["seconds"] > 0
    assert e["validation"]["passed"] is True and e["validation"]["rel_l2"] < 1e-4
    assert entries[x.path.name]["parent"] == {"name": "digits-cnn", "format": "torch"}


def test_edited_artifact_is_not_a_cache_hit(zoo, tmp_path):
    with using_workspace(tmp_path):
        x = wb.export(zoo("digits-cnn"), "onnx")
        q1 = wb.quantize(x, "onnxruntime", "dynamic", validate=False)
        q1.path.write_bytes(q1.path.read_bytes() + b"")  # same bytes: still a hit
        assert wb.quantize(x, "onnxruntime", "dynamic", validate=False).path == q1.path
        with open(q1.path, "ab") as f:
            f.write(b"\0")  # changed: a new artifact is made, the edited one is left alone
        from workbench.steps import base

        base._MEMO.clear()
        q2 = wb.quantize(x, "onnxruntime", "dynamic", validate=False)
        assert q2.path != q1.path


def test_unique_path_reserves(tmp_path):
    a = unique_path("m", ".xml", tmp_path)
    (tmp_path / "m-2.bin").write_bytes(b"x")  # a stray .bin blocks its .xml name too
    b = unique_path("m", ".xml", tmp_path)
    assert (a.name, b.name) == ("m.xml", "m-3.xml")
    assert read_manifest(tmp_path)["artifacts"] == []

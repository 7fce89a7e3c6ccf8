"""ModelPicker in the kernel: the messages a browser (or a hostile script posing as one) sends, driven
directly on the widget. Real files: a small ONNX model, its OpenVINO IR, a TorchScript file
and a malicious ``torch.save`` pickle; nothing the browser declares is trusted."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from workbench.core.errors import WorkbenchError
from workbench.ui import assets
from workbench.ui import model_picker as mp
from workbench.ui.model_picker import ModelPicker, safe_name


@pytest.fixture()
def uploads(tmp_path, monkeypatch):
    """A fresh artifacts folder; yields its uploads/ folder."""
    monkeypatch.setenv("WORKBENCH_ARTIFACTS", str(tmp_path / "artifacts"))
    return tmp_path / "artifacts" / "uploads"


def picker(**kwargs) -> ModelPicker:
    """A picker with nothing loaded whose replies to the browser are recorded in ``.sent`` (each checked
    against the widget's schema, as the TypeScript reads them)."""
    p = ModelPicker(None, **kwargs)
    p.sent = []

    def send(content, buffers=None):
        assets.validate(content, "PickerReply")
        p.sent.append(content)

    p.send = send
    return p


def browser(p: ModelPicker, msg: dict, buffers=None) -> None:
    """A message as the browser half sends it (checked against the schema the TypeScript is typed by)."""
    assets.validate(msg, "PickerMessage")
    p.handle_message(msg, buffers)


def upload(p: ModelPicker, files: dict[str, bytes], *, chunk: int = mp.CHUNK_BYTES, uid: str = "u1") -> None:
    """What the browser does: declare the files, then send them chunk by chunk, in order."""
    browser(p, {"kind": "upload_start", "id": uid, "files": [{"name": n, "size": len(d)} for n, d in files.items()]})
    for i, data in enumerate(files.values()):
        for off in range(0, len(data), chunk):
            browser(p, {"kind": "upload_chunk", "id": uid, "file": i, "offset": off}, [data[off:off + chunk]])


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def tiny_onnx(hidden: int = 4096) -> bytes:
    """A real ONNX model (MatMul + Relu, ``hidden`` x 8 float weights: 128 KiB by default), built in
    milliseconds."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((hidden, 8)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="test")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="module")
def onnx_bytes() -> bytes:
    return tiny_onnx()


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory, onnx_bytes) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    path.write_bytes(onnx_bytes)
    return path


def test_safe_names():
    assert safe_name("../../x.onnx") == "x.onnx"
    assert safe_name("..\\..\\evil.xml") == "evil.xml"
    assert safe_name(".bashrc") == "bashrc"
    assert safe_name("/etc/passwd") == "passwd"
    assert safe_name("..") == safe_name("") == safe_name("/") == "upload"
    assert safe_name("-rf m$(reboot).onnx") == "rf m_reboot_.onnx"
    assert safe_name("a\x00b\nc.onnx") == "abc.onnx"
    long = safe_name("w" * 500 + ".onnx.data")
    assert len(long) <= mp.MAX_NAME and long.endswith(".onnx.data")
    assert safe_name("modèle ü.onnx") == "modèle ü.onnx"


def test_onnx_upload_in_chunks_loads_and_code_reproduces_it(uploads, onnx_bytes, monkeypatch):
    monkeypatch.setattr(mp, "CHUNK_BYTES", 16 << 10)  # several chunks for a 160 KB model
    p = picker(published=True)
    picked = []
    p.on_pick(picked.append)
    upload(p, {"../../digits.onnx": onnx_bytes}, chunk=16 << 10)
    assert p.error == "" and p.status == "ready", p.error
    assert p.model is not None and p.model.format == "onnx" and picked == [p.model]
    path = p.model.path
    # a new private folder under the artifacts folder, the name reduced to a base name, the bytes intact
    assert path.parent.parent == uploads and path.name == "digits.onnx"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes() == onnx_bytes and leftovers(path.parent) == ["digits.onnx"]
    acks = [m for m in p.sent if m["kind"] == "ack"]
    assert acks[0]["received"] == 0 and acks[-1] == {"kind": "ack", "id": "u1", "received": len(onnx_bytes), "done": True}
    assert p.value == "digits.onnx" and p.info["format"] == "onnx"
    assets.validate(p.info, "PickerModelInfo")
    # the code the widget shows loads the same model in a fresh namespace; a visitor of a published app
    # sees the file as they named it, not the server's upload folder
    code = p.code()
    assert str(path.parent) not in code and p.code_text == code
    assert code.endswith('m = wb.load("digits.onnx")\n')
    monkeypatch.chdir(path.parent)
    ns: dict = {}
    exec(code, ns)  # noqa: S102 - the widget's own code
    assert ns["m"].format == "onnx" and ns["m"].path.resolve() == path and ns["m"].inputs == p.model.inputs
    # a second upload of the same name goes to another folder; a published picker keeps only the new one
    upload(p, {"digits.onnx": onnx_bytes}, uid="u2", chunk=16 << 10)
    assert p.model.path != path and p.model.path.read_bytes() == onnx_bytes
    assert not path.parent.exists() and [f.name for f in uploads.iterdir()] == [p.model.path.parent.name]
    # and removes it when the visitor's kernel ends
    mp._remove_visitor_uploads()
    assert not p.model.path.exists()


def test_chunks_out_of_order_or_oversize_abort_and_leave_nothing(uploads, onnx_bytes):
    p = picker()
    half = len(onnx_bytes) // 2
    p.handle_message({"kind": "upload_start", "id": "u1", "files": [{"name": "m.onnx", "size": len(onnx_bytes)}]})
    p.handle_message({"kind": "upload_chunk", "id": "u1", "file": 0, "offset": half}, [onnx_bytes[half:]])
    assert p.status == "error" and "out of order" in p.error and p.model is None
    assert p.sent[-1]["kind"] == "abort" and leftovers(uploads) == []
    # more bytes than declared for the file
    p.handle_message({"kind": "upload_start", "id": "u2", "files": [{"name": "m.onnx", "size": 10}]})
    p.handle_message({"kind": "upload_chunk", "id": "u2", "file": 0, "offset": 0}, [b"x" * 11])
    assert "larger than the 10 bytes declared" in p.error and leftovers(uploads) == []
    # a chunk above the kernel's own chunk size, whatever the browser thinks
    p.handle_message({"kind": "upload_start", "id": "u3", "files": [{"name": "m.onnx", "size": mp.CHUNK_BYTES + 1}]})
    p.handle_message({"kind": "upload_chunk", "id": "u3", "file": 0, "offset": 0}, [b"x" * (mp.CHUNK_BYTES + 1)])
    assert "chunk of" in p.error and leftovers(uploads) == []
    # a chunk without its bytes, and a file index past the declared ones
    p.handle_message({"kind": "upload_start", "id": "u4", "files": [{"name": "m.onnx", "size": 4}]})
    p.handle_message({"kind": "upload_chunk", "id": "u4", "file": 0, "offset": 0}, [])
    assert "without its bytes" in p.error
    p.handle_message({"kind": "upload_start", "id": "u5", "files": [{"name": "m.onnx", "size": 4}]})
    p.handle_message({"kind": "upload_chunk", "id": "u5", "file": 1, "offset": 0}, [b"abcd"])
    assert "out of order" in p.error and leftovers(uploads) == []


def test_declarations_are_checked_before_anything_is_written(uploads):
    p = picker(max_upload_bytes=1000)
    cases = [
        ([{"name": "big.onnx", "size": 1001}], "more than the limit"),
        ([{"name": "a.xml", "size": 600}, {"name": "a.bin", "size": 600}], "more than the limit"),
        ([{"name": f"f{i}.bin", "size": 1} for i in range(mp.MAX_FILES + 1)], "files, more than"),
        ([{"name": "e.onnx", "size": 0}], "empty"),
        ([{"name": "n.onnx", "size": -5}], "empty"),
        ([{"name": "s.onnx", "size": "10"}], "without a name and a size"),
        ([{"name": "b.onnx", "size": True}], "without a name and a size"),
        ([{"name": "../a.onnx", "size": 1}, {"name": "A.onnx", "size": 1}], "twice"),
        ([{"name": "m.zip", "size": 1}, {"name": "m.onnx", "size": 1}], ".zip is uploaded on its own"),
        ([], "names no file"),
        ("m.onnx", "names no file"),
    ]
    for files, expected in cases:
        p.handle_message({"kind": "upload_start", "id": "u1", "files": files})
        assert expected in p.error, (files, p.error)
        assert p.sent[-1]["kind"] == "abort" and p._upload is None
    p.handle_message({"kind": "upload_start", "id": "../bad id", "files": [{"name": "m.onnx", "size": 1}]})
    assert "no valid id" in p.error
    assert leftovers(uploads) == []
    # a chunk of no running upload writes nothing
    p.handle_message({"kind": "upload_chunk", "id": "ghost", "file": 0, "offset": 0}, [b"x"])
    assert p.sent[-1] == {"kind": "abort", "id": "ghost", "error": "no such upload is running"}
    assert leftovers(uploads) == []


def test_concurrent_cancelled_and_abandoned_uploads(uploads, onnx_bytes, monkeypatch):
    p = picker()
    first = onnx_bytes[:1000]
    p.handle_message({"kind": "upload_start", "id": "one", "files": [{"name": "m.onnx", "size": len(onnx_bytes)}]})
    p.handle_message({"kind": "upload_chunk", "id": "one", "file": 0, "offset": 0}, [first])
    # while a file is arriving it exists only under a hidden temporary name
    (folder,) = uploads.iterdir()
    assert leftovers(folder) == [".m.onnx.part"]
    # a second upload is refused and the first goes on
    p.handle_message({"kind": "upload_start", "id": "two", "files": [{"name": "x.onnx", "size": 10}]})
    assert p.sent[-1]["kind"] == "abort" and p.sent[-1]["id"] == "two" and "another upload" in p.sent[-1]["error"]
    p.handle_message({"kind": "upload_chunk", "id": "one", "file": 0, "offset": 1000}, [onnx_bytes[1000:]])
    assert p.status == "ready" and p.model.path.parent == folder
    # a cancelled upload leaves nothing, not even its partial file
    p.handle_message({"kind": "upload_start", "id": "three", "files": [{"name": "c.onnx", "size": 5000}]})
    p.handle_message({"kind": "upload_chunk", "id": "three", "file": 0, "offset": 0}, [b"x" * 100])
    p.handle_message({"kind": "upload_cancel", "id": "three"})
    assert p._upload is None and [f.name for f in uploads.iterdir()] == [folder.name]
    assert p.model.path.parent == folder  # the loaded model stays
    # an abandoned upload (a reloaded page) is replaced by the next one
    p.handle_message({"kind": "upload_start", "id": "four", "files": [{"name": "d.onnx", "size": 5000}]})
    p.handle_message({"kind": "upload_chunk", "id": "four", "file": 0, "offset": 0}, [b"x" * 100])
    monkeypatch.setattr(mp, "STALE_S", 0.0)
    upload(p, {"again.onnx": onnx_bytes}, uid="five")
    assert p.status == "ready" and p.model.path.name == "again.onnx"
    # the abandoned upload's folder is gone; the first upload's stays, untouched (nothing is overwritten)
    assert len(list(uploads.iterdir())) == 2 and (folder / "m.onnx").read_bytes() == onnx_bytes


class _Evil:
    """A pickle that makes a folder when unpickled (what a hostile .pt would do, harmlessly)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def test_published_mode_refuses_pickles_and_code_by_content(uploads, tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save(_Evil(marker), buf)
    scripted = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), scripted)
    p = picker(published=True)
    assert p.allow_path is False and p.allow_trust is False
    for name, data in (("evil.pt", buf.getvalue()), ("evil.onnx", buf.getvalue()), ("model.pth", buf.getvalue()),
                       ("linear.pt", scripted.getvalue()), ("linear.onnx", scripted.getvalue())):
        upload(p, {name: data}, uid="x" + str(len(p.sent)))
        assert p.status == "error" and "was not loaded" in p.error and p.model is None, (name, p.error)
        assert "— fix: upload a format that is pure data" in p.error
    assert not marker.exists() and leftovers(uploads) == []  # refused before loading, and removed
    # the browser cannot switch trust on in a published app
    p.set_state({"trust": True, "allow_path": True, "max_upload_bytes": 1 << 40, "source": "upload"})
    assert p.trust is False and p.allow_path is False and p.source == "upload" and p.limit == mp.settings.max_upload_bytes()
    # outside a published app the engine still refuses the pickle without trust
    q = picker(published=False)
    upload(q, {"evil.pt": buf.getvalue()})
    assert q.status == "error" and "trust" in q.error and not marker.exists()


def test_path_field_refused_when_published(uploads, onnx_file):
    p = picker(published=True)
    p.handle_message({"kind": "pick_path", "path": str(onnx_file)})
    assert p.model is None and "published app loads no paths" in p.error
    with pytest.raises(WorkbenchError, match="loads no paths"):
        p.pick(str(onnx_file))
    p.handle_message({"kind": "pick_zoo", "name": "../../etc/passwd"})
    assert "not a zoo model offered here" in p.error and p.model is None
    # outside: the path loads, and its code names it
    q = picker(published=False)
    q.handle_message({"kind": "pick_path", "path": str(onnx_file)})
    assert q.model is not None and q.model.path == onnx_file
    assert q.code() == f'import workbench as wb\nm = wb.load("{onnx_file}")\n'


def test_openvino_pair_and_zipped_folder(uploads, onnx_file, tmp_path):
    ov = pytest.importorskip("openvino")
    ir = tmp_path / "ir" / "digits.xml"
    ir.parent.mkdir()
    ov.save_model(ov.convert_model(str(onnx_file)), str(ir))
    p = picker(published=True)
    upload(p, {"digits.xml": ir.read_bytes(), "digits.bin": ir.with_suffix(".bin").read_bytes()})
    assert p.status == "ready", p.error
    assert p.model.format == "openvino" and p.model.path.name == "digits.xml"
    assert sorted(f.name for f in p.model.path.parent.iterdir()) == ["digits.bin", "digits.xml"]
    # a zip of a folder holding the IR: unpacked, the model found inside
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(ir, "ir/digits.xml")
        zf.write(ir.with_suffix(".bin"), "ir/digits.bin")
        zf.writestr("__MACOSX/ir/._digits.xml", b"junk")
    upload(p, {"ir.zip": buf.getvalue()}, uid="z")
    assert p.status == "ready", p.error
    assert p.model.format == "openvino" and p.model.path.parent.name == "ir"
    assert not list(p.model.path.parents[1].glob("*.zip"))  # the archive is not kept beside it


def test_onnx_with_external_data(uploads, onnx_bytes, tmp_path):
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    onnx.save(model, tmp_path / "ext.onnx", save_as_external_data=True, location="ext.onnx.data", size_threshold=0)
    files = {"ext.onnx": (tmp_path / "ext.onnx").read_bytes(), "ext.onnx.data": (tmp_path / "ext.onnx.data").read_bytes()}
    p = picker(published=True)
    upload(p, {"ext.onnx.data": files["ext.onnx.data"]}, uid="alone")  # the weights without their graph
    assert p.status == "error" and p.model is None
    upload(p, files, uid="both")
    assert p.status == "ready", p.error
    assert p.model.path.name == "ext.onnx" and p.model.size_bytes == sum(map(len, files.values()))


def test_hostile_archives_are_refused(uploads, onnx_bytes, monkeypatch):
    monkeypatch.setattr(mp, "MAX_MEMBERS", 50)
    p = picker()
    hostile = {
        "escape.zip": [("../outside.onnx", onnx_bytes)],
        "absolute.zip": [("/tmp/abs.onnx", onnx_bytes)],
        "backslash.zip": [("..\\win.onnx", onnx_bytes)],
    }
    for name, members in hostile.items():
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for member, data in members:
                zf.writestr(member, data)
        upload(p, {name: buf.getvalue()}, uid=name.split(".")[0])
        assert p.status == "error" and ("path" in p.error or "leaves its folder" in p.error), (name, p.error)
    link = io.BytesIO()
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("m/model.onnx")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    upload(p, {"link.zip": link.getvalue()}, uid="link")
    assert "symbolic link" in p.error
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(mp.MAX_MEMBERS + 1):
            zf.writestr(f"f/{i}.json", b"")
    upload(p, {"many.zip": many.getvalue()}, uid="many")
    assert "members, more than a model folder" in p.error
    small = picker(max_upload_bytes=1 << 20)  # a zip may unpack to UNPACK_FACTOR times the limit
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.onnx", b"\0" * ((1 << 20) * mp.UNPACK_FACTOR + 1))
    upload(small, {"bomb.zip": bomb.getvalue()}, uid="bomb")
    assert "unpacks to more than 4.0 MiB" in small.error and small.model is None, small.error
    assert p.model is None and leftovers(uploads) == [] and not (uploads.parent / "outside.onnx").exists()


def test_hugging_face_folders_are_data_only_with_safetensors(tmp_path):
    pytest.importorskip("transformers")
    from workbench.formats.hf import HuggingFaceFormat as hf

    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "model.safetensors").write_bytes(b"{}")
    (folder / "tokenizer.json").write_text("{}")
    assert hf.code_risk(folder) is None
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    assert "pytorch_model.bin" in hf.code_risk(folder)
    (folder / "pytorch_model.bin").unlink()
    (folder / "config.json").write_text('{"auto_map": {"AutoModel": "modeling_x.XModel"}}')
    assert "auto_map" in hf.code_risk(folder)


def zipped(folder: Path, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, prefix + f.relative_to(folder).as_posix())
    return buf.getvalue()


def test_zipped_hugging_face_folder_in_a_published_app(uploads, tmp_path):
    pytest.importorskip("transformers")
    from tests.hf_tiny import save

    folder = save("bert", tmp_path / "tiny-bert")
    assert (folder / "model.safetensors").is_file()
    p = picker(published=True)
    upload(p, {"tiny-bert.zip": zipped(folder, "tiny-bert/")})
    assert p.status == "ready", p.error
    assert p.model.path.is_dir() and (p.model.path / "config.json").is_file() and p.model.inputs
    # the same folder with pickled weights beside: refused before transformers sees it
    import torch

    torch.save({"w": torch.zeros(1)}, folder / "pytorch_model.bin")
    upload(p, {"tiny-bert.zip": zipped(folder)}, uid="pickled")
    assert "pytorch_model.bin" in p.error and "was not loaded" in p.error


def test_zoo_pick_callbacks_and_code(uploads):
    p = ModelPicker(models=["digits-cnn", "tiny-transformer"])  # loads the default, digits-cnn
    assert p.model is not None and p.value == "digits-cnn" and p.zoo == ["digits-cnn", "tiny-transformer"]
    assert p.code() == 'import workbench as wb\nm = wb.load("digits-cnn")\n'

    def broken(model):
        raise RuntimeError("callback bug")

    p.on_pick(broken)
    p.handle_message({"kind": "pick_zoo", "name": "tiny-transformer"})  # does not raise into the comm
    assert p.model.name.startswith("tiny") and p.value == "tiny-transformer"
    assert "callback bug" in p.error and p.status == "ready"
    ns: dict = {}
    exec(p.code(), ns)  # noqa: S102 - the widget's own code
    assert ns["m"].inputs == p.model.inputs
    with pytest.raises(WorkbenchError, match="no zoo model named"):
        ModelPicker(models=["nope"])

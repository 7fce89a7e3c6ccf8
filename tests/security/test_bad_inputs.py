"""A corpus of hostile and broken inputs, each built here, each answered by a one-line WorkbenchError
that names the problem and the fix.

For every case: the error is a ``WorkbenchError`` (never a raw library exception), its message is one
line with ``— fix:``, it names the problem (a keyword per case), this process is still here to check,
the payload markers planted in pickles were never written, the "secret" file outside the model's
folder is neither listed nor changed, and nothing new appeared outside the test's folders.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import workbench as wb
from workbench.core.errors import WorkbenchError

SECRET = b"OUTSIDE-SECRET-" * 64


# -- builders ----------------------------------------------------------------------------------------
def relu_model(shape=(1, 4), elem=TensorProto.FLOAT, in_name="x", node_name="relu") -> onnx.ModelProto:
    x = helper.make_tensor_value_info(in_name, elem, list(shape))
    y = helper.make_tensor_value_info("y", elem, list(shape))
    g = helper.make_graph([helper.make_node("Relu", [in_name], ["y"], name=node_name)], "g", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def add_weight_model() -> onnx.ModelProto:
    """y = x + w, with w an initializer (16 floats) that the cases below move to external data."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])
    w = numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(1, 16), "w")
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def save(proto: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(proto.SerializeToString())
    return path


def external(folder: Path, location: str, offset: str | None = "0", length: str | None = "64") -> Path:
    """The Add model with ``w`` pointing at ``location`` (a data file ``w.bin`` lies beside it)."""
    (folder / "w.bin").write_bytes(np.arange(16, dtype=np.float32).tobytes())
    proto = add_weight_model()
    t = proto.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            e = t.external_data.add()
            e.key, e.value = key, value
    return save(proto, folder / "model.onnx")


class Payload:
    """Unpickling this writes the marker file: the proof that code from a file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def torch_save_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def small_pt2(path: Path) -> Path:
    import torch

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x)

    torch.export.save(torch.export.export(M(), (torch.randn(1, 3),)), str(path))
    return path


def rewrite_zip(src: Path, dst: Path, change: Callable[[str, bytes], bytes | None],
                extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


# -- the cases ---------------------------------------------------------------------------------------
@dataclass
class Env:
    folder: Path  # the "model folder" a case builds in
    outside: Path  # the folder above it, holding the secret
    marker: Path  # written only if a payload runs
    pt2: Path | None = None


def pt2_sample_inputs(env: Env):
    src = small_pt2(env.folder / "good.pt2")
    evil = torch_save_bytes(((np.zeros(1),), {"p": Payload(env.marker)}))
    bad = rewrite_zip(src, env.folder / "model.pt2", lambda n, d: evil if "sample_inputs" in n else d)
    return lambda: wb.load(bad), "pickled"


def pt2_use_pickle_weight(env: Env):
    src = small_pt2(env.folder / "good.pt2")
    with zipfile.ZipFile(src) as z:
        cfg_name = next(n for n in z.namelist() if n.endswith("model_weights_config.json"))
        cfg = json.loads(z.read(cfg_name))
    key = next(iter(cfg["config"]))
    cfg["config"][key]["use_pickle"] = True
    weight = cfg["config"][key]["path_name"]
    evil = torch_save_bytes(Payload(env.marker))

    def change(name, data):
        if name == cfg_name:
            return json.dumps(cfg).encode()
        return evil if name.endswith("/" + weight) else data

    bad = rewrite_zip(src, env.folder / "model.pt2", change)
    return lambda: wb.load(bad), "pickled"


def pt2_opaque_constant(env: Env):
    import pickle

    src = small_pt2(env.folder / "good.pt2")
    with zipfile.ZipFile(src) as z:
        cfg_name = next(n for n in z.namelist() if n.endswith("model_constants_config.json"))
    cfg = {"config": {"c": {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True,
                            "tensor_meta": None}}}
    prefix = cfg_name.rsplit("/", 1)[0]
    bad = rewrite_zip(src, env.folder / "model.pt2",
                      lambda n, d: json.dumps(cfg).encode() if n == cfg_name else d,
                      {f"{prefix}/opaque_obj_0": pickle.dumps(Payload(env.marker))})
    return lambda: wb.load(bad), "pickled"


def pth_full_pickle(env: Env):
    p = env.folder / "model.pth"
    p.write_bytes(torch_save_bytes({"model": Payload(env.marker)}))
    return lambda: wb.load(p), "pickle"


def pth_zip_bomb(env: Env):
    p = env.folder / "model.pth"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * (96 << 20))  # 96 MiB of zeros: ~100 KB deflated
        z.writestr("archive/version", b"3\n")
    return lambda: wb.load(p), "zip bomb"


def pt2_zip_bomb_cli(env: Env):
    p = env.folder / "model.pt2"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("m/models/model.json", b" " * (80 << 20))
    return lambda: wb.load(p), "zip bomb"


def onnx_ext_dotdot(env: Env):
    (env.folder / "sub").mkdir()
    p = external(env.folder / "sub", "../../secret.bin")
    return lambda: wb.load(p), "outside the model's folder"


def onnx_ext_absolute(env: Env):
    p = external(env.folder, str(env.outside / "secret.bin"))
    return lambda: wb.load(p), "outside the model's folder"


def onnx_ext_symlink_out(env: Env):
    (env.folder / "link.bin").symlink_to(env.outside / "secret.bin")
    p = external(env.folder, "link.bin")
    return lambda: wb.load(p), "outside the model's folder"


def onnx_ext_empty_location(env: Env):
    p = external(env.folder, "")
    return lambda: wb.load(p), "empty location"


def onnx_ext_negative_offset(env: Env):
    p = external(env.folder, "w.bin", offset="-8")
    return lambda: wb.load(p), "negative"


def onnx_ext_past_end(env: Env):
    p = external(env.folder, "w.bin", offset="32", length="4096")
    return lambda: wb.load(p), "has 64 bytes"


def onnx_ext_fifo(env: Env):
    os.mkfifo(env.folder / "pipe.bin")
    p = external(env.folder, "pipe.bin")
    return lambda: wb.load(p), "FIFO"


def onnx_ext_missing(env: Env):
    p = external(env.folder, "gone.bin")
    return lambda: wb.load(p), "not next to it"


def onnx_ext_non_utf8_location(env: Env):
    p = external(env.folder, "QQQQ.bin")
    p.write_bytes(p.read_bytes().replace(b"QQQQ.bin", b"\xff\xfeQQ.bin"))
    return lambda: wb.load(p), "not UTF-8"


def ir_bin_is_a_fifo(env: Env):
    pytest.importorskip("openvino")
    xml = env.folder / "model.xml"
    xml.write_text('<?xml version="1.0"?><net name="x" version="11"><layers/><edges/></net>')
    os.mkfifo(env.folder / "model.bin")
    return lambda: wb.load(xml), "FIFO"


def fifo_model(env: Env):
    p = env.folder / "model.onnx"
    os.mkfifo(p)
    return lambda: wb.load(p), "FIFO"


def device_model(env: Env):
    return lambda: wb.load("/dev/zero"), "character device"


def empty_file(env: Env):
    p = env.folder / "model.onnx"
    p.write_bytes(b"")
    return lambda: wb.load(p), "empty file"


def truncated_onnx(env: Env):
    p = env.folder / "model.onnx"
    p.write_bytes(add_weight_model().SerializeToString()[:37])
    return lambda: wb.load(p), "not a valid ONNX model"


def random_bytes_onnx(env: Env):
    p = env.folder / "model.onnx"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return lambda: wb.load(p), "ONNX"


def non_utf8_names(env: Env):
    data = relu_model(in_name="QQQQ", node_name="AAAA").SerializeToString()
    p = env.folder / "model.onnx"
    p.write_bytes(data.replace(b"AAAA", b"\xff\xfe\xfd\xfc").replace(b"QQQQ", b"\xc3\x28ab"))
    return lambda: wb.load(p).graph(), "UTF-8"


def deep_if_nesting(env: Env):
    def varint(n):
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | 0x80 if n else b)
            if not n:
                return bytes(out)

    def ld(field, payload):
        return varint(field << 3 | 2) + varint(len(payload)) + payload

    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1]).SerializeToString()
    g = b""
    for i in range(200):  # GraphProto{node: If{attribute: then_branch=g}}, 200 levels deep
        attr = ld(1, b"then_branch") + ld(6, g) + varint(20 << 3) + varint(5)
        g = ld(1, ld(1, b"c") + ld(2, b"y") + ld(4, b"If") + ld(5, attr)) + ld(2, f"g{i}".encode()) + ld(12, out)
    head = helper.make_model(helper.make_graph([], "x", [], []), opset_imports=[helper.make_opsetid("", 17)])
    head.ClearField("graph")
    p = env.folder / "model.onnx"
    p.write_bytes(head.SerializeToString() + ld(7, g))
    return lambda: wb.load(p), "nests graphs"


def huge_declared_input(env: Env):
    p = save(relu_model(shape=(1 << 31,)), env.folder / "model.onnx")  # 8 GiB of float32 declared
    return lambda: wb.load(p).example_inputs(), "8.0 GiB"


def absurd_declared_input(env: Env):
    p = save(relu_model(shape=(1 << 40, 1 << 40)), env.folder / "model.onnx")
    return lambda: wb.load(p).example_inputs(), "WORKBENCH_MAX_INPUT_BYTES"


def unknown_dtype(env: Env):
    proto = relu_model()
    proto.graph.input[0].type.tensor_type.elem_type = 99
    p = save(proto, env.folder / "model.onnx")
    return lambda: wb.load(p).example_inputs(), "element type"


def ort_infer_failure(env: Env):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    shape = numpy_helper.from_array(np.array([3, 5], dtype=np.int64), "shape")
    g = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "g", [x], [y], [shape])
    p = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), env.folder / "model.onnx")

    def go():
        with wb.runner(wb.load(p), "onnxruntime") as r:
            r.infer({"x": np.ones(7, np.float32)})  # 7 values cannot be reshaped to 3x5
    return go, "failed to run"


def openvino_infer_failure(env: Env):
    pytest.importorskip("openvino")
    go_ort, keyword = ort_infer_failure(env)
    p = env.folder / "model.onnx"

    def go():
        with wb.runner(wb.load(p), "openvino") as r:
            r.infer({"x": np.ones(7, np.float32)})
    return go, keyword


def ort_unknown_op(env: Env):
    proto = relu_model()
    proto.graph.node[0].op_type = "NoSuchOperator"
    p = save(proto, env.folder / "model.onnx")

    def go():
        with wb.runner(wb.load(p), "onnxruntime") as r:
            r.infer()
    return go, "NoSuchOperator"


def wrong_feeds(env: Env):
    p = save(relu_model(), env.folder / "model.onnx")

    def go():
        with wb.runner(wb.load(p), "onnxruntime") as r:
            r.infer({"nope": np.ones((1, 4), np.float32)})
    return go, "input"


def openvino_batch_zero(env: Env):
    pytest.importorskip("openvino")
    p = save(relu_model(shape=(1, 4)), env.folder / "model.onnx")

    def go():
        with wb.runner(wb.load(p), "openvino") as r:
            r.infer({"x": np.ones((0, 4), np.float32)}, check=False)  # the benchmark loop skips checks
    return go, "failed to run"


def damaged_zip(env: Env):
    src = small_pt2(env.folder / "good.pt2")
    p = env.folder / "model.pt2"
    p.write_bytes(src.read_bytes()[:200])
    return lambda: wb.load(p), "damaged"


def zip_not_a_model(env: Env):
    p = env.folder / "model.pt"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("readme.txt", "hello")
    return lambda: wb.load(p), "not a TorchScript"


def garbage_torchscript(env: Env):
    p = env.folder / "model.pt"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("archive/constants.pkl", b"\x80\x02garbage")
        z.writestr("archive/data.pkl", b"\x80\x02garbage")
        z.writestr("archive/code/__torch__.py", "garbage")
    return lambda: wb.load(p), "could not"


def garbage_ir(env: Env):
    p = env.folder / "model.xml"
    p.write_text('<?xml version="1.0"?><net name="x" version="11"><layers><layer id="0" type="Nope"/></layers></net>')
    return lambda: wb.load(p), str(p.name)


def hf_garbage_config(env: Env):
    pytest.importorskip("transformers")
    (env.folder / "config.json").write_text("{not json")
    return lambda: wb.load(env.folder), "config"


def plant_custom_code(folder: Path, marker: Path, config: dict) -> None:
    """A config naming modules of the folder's own (auto_map) whose import writes ``marker``."""
    code = f"open({str(marker)!r}, 'w').write('ran')\n"
    (folder / "configuration_evil.py").write_text(code + "from transformers import PretrainedConfig\n"
                                                   "class EvilConfig(PretrainedConfig):\n    model_type = 'evilnet'\n")
    (folder / "modeling_evil.py").write_text(code)
    config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))


def hf_auto_map(env: Env):
    pytest.importorskip("transformers")
    plant_custom_code(env.folder, env.marker, {"model_type": "evilnet", "architectures": ["EvilModel"]})
    return lambda: wb.load(env.folder), "own Python code"


def hf_garbage_tokenizer(env: Env):
    pytest.importorskip("transformers")
    from tests.hf_tiny import save as save_tiny

    save_tiny("bert", env.folder)
    (env.folder / "tokenizer.json").write_text('{"model": {"type": "Nope"}, "garbage": [')
    return lambda: wb.load(env.folder), "tokenizer"


def fifo_in_model_folder(env: Env):
    (env.folder / "config.json").write_text("{}")
    os.mkfifo(env.folder / "model.safetensors")  # transformers would block opening it
    return lambda: wb.load(env.folder), "FIFO"


def runner_on_huge_declared_input(env: Env):
    p = save(relu_model(shape=(1 << 31,)), env.folder / "model.onnx")  # 81 bytes of ONNX, 8 GiB declared

    def go():
        with wb.runner(wb.load(p), "onnxruntime") as r:
            r.infer()  # no feeds: the example inputs, which the declared size forbids
    return go, "WORKBENCH_MAX_INPUT_BYTES"


def folder_without_model(env: Env):
    (env.folder / "notes.txt").write_text("hello")
    return lambda: wb.load(env.folder), "holds no model"


def missing_path(env: Env):
    return lambda: wb.load(env.folder / "nope.onnx"), "is not a file"


def artifacts_path_is_a_file(env: Env):
    from workbench.steps.workspace import using_workspace

    blocker = env.folder / "artifacts"
    blocker.write_text("the user's file")

    def go():
        try:
            with using_workspace(blocker):
                pass
        finally:
            assert blocker.read_text() == "the user's file"
    return go, "is a file"


def dangling_symlink_path(env: Env):
    p = save(relu_model(), env.folder / "model.onnx")
    link = env.folder / "out.onnx"
    link.symlink_to(env.folder / "nowhere.onnx")

    def go():
        try:
            wb.convert(wb.load(p), "onnx-optimized", path=link)
        finally:
            assert link.is_symlink() and os.readlink(link) == str(env.folder / "nowhere.onnx")
    return go, "symlink"


def ir_bin_taken(env: Env):
    pytest.importorskip("openvino")
    p = save(relu_model(), env.folder / "model.onnx")
    (env.folder / "ir.bin").write_bytes(b"the user's weights")

    def go():
        try:
            wb.convert(wb.load(p), "openvino", path=env.folder / "ir.xml")
        finally:
            assert (env.folder / "ir.bin").read_bytes() == b"the user's weights"
    return go, "ir.bin"


CASES: dict[str, Callable[[Env], tuple[Callable[[], object], str]]] = {f.__name__: f for f in [
    pt2_sample_inputs, pt2_use_pickle_weight, pt2_opaque_constant, pth_full_pickle, pth_zip_bomb, pt2_zip_bomb_cli,
    onnx_ext_dotdot, onnx_ext_absolute, onnx_ext_symlink_out, onnx_ext_empty_location, onnx_ext_negative_offset,
    onnx_ext_past_end, onnx_ext_fifo, onnx_ext_missing, onnx_ext_non_utf8_location, ir_bin_is_a_fifo, fifo_model, device_model, empty_file, truncated_onnx,
    random_bytes_onnx, non_utf8_names, deep_if_nesting, huge_declared_input, absurd_declared_input, unknown_dtype,
    ort_infer_failure, ort_unknown_op, wrong_feeds, openvino_batch_zero, openvino_infer_failure, damaged_zip, zip_not_a_model,
    garbage_torchscript, garbage_ir, hf_garbage_config, hf_auto_map, hf_garbage_tokenizer, fifo_in_model_folder, runner_on_huge_declared_input,
    folder_without_model, missing_path,
    artifacts_path_is_a_file, dangling_symlink_path, ir_bin_taken,
]}


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_a_one_line_workbench_error(case, tmp_path):
    outside = tmp_path / "outside"
    folder = outside / "model"
    folder.mkdir(parents=True)
    (outside / "secret.bin").write_bytes(SECRET)
    env = Env(folder, outside, tmp_path / "PAYLOAD_RAN")
    action, keyword = CASES[case](env)
    before = snapshot(tmp_path)
    with pytest.raises(WorkbenchError) as info:
        action()
    text = str(info.value)
    assert "\n" not in text.strip(), text
    assert " — fix: " in text and info.value.fix, text
    assert keyword.lower() in text.lower(), text
    assert not env.marker.exists(), "code from the file ran"
    assert (outside / "secret.bin").read_bytes() == SECRET
    after = snapshot(tmp_path)
    assert set(after) <= set(before), f"new files outside the workspace: {set(after) - set(before)}"


def test_the_corpus_has_at_least_30_kinds():
    assert len(CASES) >= 30


def test_describe_never_lists_or_serves_files_outside_the_model_folder(tmp_path):
    """size_bytes and the files a view would send (model_files) stay inside the folder even for a
    proto that bypassed load's check (one written after loading)."""
    from workbench.formats.onnx import external_data_files

    outside = tmp_path / "outside"
    folder = outside / "model"
    folder.mkdir(parents=True)
    (outside / "secret.bin").write_bytes(SECRET)
    p = external(folder, "../secret.bin")
    assert external_data_files(p) == []
    good = external(folder, "w.bin")
    assert external_data_files(good) == [folder / "w.bin"]
    m = wb.load(good)
    assert m.size_bytes == good.stat().st_size + 64
    assert m.example_inputs()["x"].shape == (1, 16)


def test_a_plain_pt2_loads_and_trust_opens_one_with_pickles(tmp_path):
    from fractions import Fraction

    src = small_pt2(tmp_path / "good.pt2")
    m = wb.load(src)
    assert m.format == "exported_program" and m.inputs[0].shape == (1, 3) and "trusted" not in m.metadata
    # sample inputs holding a harmless object the weights-only unpickler does not allow
    odd = torch_save_bytes(((np.zeros(1),), {"f": Fraction(1, 3)}))
    bad = rewrite_zip(src, tmp_path / "odd.pt2", lambda n, d: odd if "sample_inputs" in n else d)
    with pytest.raises(WorkbenchError, match="pickled"):
        wb.load(bad)
    trusted = wb.load(bad, trust=True)
    assert trusted.metadata["trusted"] is True  # a step's worker reopens it with trust too


def test_cli_describe_refuses_a_pickled_pt2_in_one_line(tmp_path):
    env = Env(tmp_path, tmp_path, tmp_path / "PAYLOAD_RAN")
    pt2_sample_inputs(env)
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "describe", str(tmp_path / "model.pt2")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "pickled" in proc.stderr, proc.stderr
    assert not env.marker.exists()


def test_stale_leftovers_of_a_dead_process_are_removed_and_user_files_kept(tmp_path):
    from workbench.steps import workspace as ws

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = proc.pid  # a PID that ran and ended
    folder = tmp_path / "artifacts"
    folder.mkdir()
    (folder / f".m.tmp-{dead}-140211.onnx").write_bytes(b"half written")
    (folder / f".m.tmp-{dead}-140211.onnx.data").write_bytes(b"half written")
    (folder / f".notes.tmp-{dead}-1").write_bytes(b"another tool's file: kept")
    (folder / "m.onnx").touch()  # the placeholder unique_path reserved
    (folder / f".m.onnx.reserved-{dead}").touch()
    (folder / "user.onnx").touch()  # a user's empty file: no marker, kept
    (folder / "filled.onnx").write_bytes(b"data")  # a placeholder filled since: kept
    (folder / f".filled.onnx.reserved-{dead}").touch()
    (folder / f".live.tmp-{os.getpid()}-140211.onnx").write_bytes(b"ours, in progress")
    removed = ws.clean_stale(folder)
    left = sorted(p.name for p in folder.iterdir())
    assert left == [f".live.tmp-{os.getpid()}-140211.onnx", f".notes.tmp-{dead}-1", "filled.onnx", "user.onnx"], (left, removed)
    # and unique_path's reservation leaves a marker that a later run can clean
    with ws.using_workspace(tmp_path / "ws2"):
        reserved = ws.unique_path("x", ".onnx")
        assert (reserved.parent / f".x.onnx.reserved-{os.getpid()}").exists()
        ws.release(reserved)
        assert not (reserved.parent / f".x.onnx.reserved-{os.getpid()}").exists()


def test_a_built_in_architecture_with_auto_map_loads_without_running_the_folders_code(tmp_path):
    pytest.importorskip("transformers")
    from tests.hf_tiny import save as save_tiny

    folder = save_tiny("bert", tmp_path / "bert")
    config = json.loads((folder / "config.json").read_text())
    marker = tmp_path / "PAYLOAD_RAN"
    plant_custom_code(folder, marker, config)  # model_type stays "bert": transformers has the class
    m = wb.load(folder)
    assert m.format == "hf" and not marker.exists()


def test_a_killed_step_leaves_nothing_behind_after_the_next_run(tmp_path):
    """A process killed (SIGKILL) after reserving a name and writing half a temporary file: the next
    process that uses the folder removes both; the user's files are untouched."""
    folder = tmp_path / "artifacts"
    folder.mkdir()
    (folder / "user.onnx").write_bytes(b"the user's model")
    child = (
        "import os, signal\n"
        "from workbench.steps.workspace import set_workspace, unique_path, tmp_sibling\n"
        f"set_workspace({str(folder)!r})\n"
        "p = unique_path('model', '.onnx')\n"
        "tmp_sibling(p).write_bytes(b'half' * 1000)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", child], timeout=120)
    assert proc.returncode == -9
    left = sorted(p.name for p in folder.iterdir())
    assert "model.onnx" in left and any(".tmp-" in n for n in left), left  # what the kill leaves
    from workbench.steps.workspace import using_workspace

    with using_workspace(folder):  # the next run
        pass
    assert sorted(p.name for p in folder.iterdir()) == ["user.onnx"]
    assert (folder / "user.onnx").read_bytes() == b"the user's model"


def test_a_layer_norm_without_bias_after_an_add_runs_on_onnx_runtime(tmp_path):
    """ONNX Runtime 1.31's fusions segfault on Add → LayerNormalization(x, scale, "") (the fuzzer's
    find); the runner hands it the equivalent form without the trailing empty input. Run in a child
    process: a regression would kill it, not the test session."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])
    w = numpy_helper.from_array(np.full(8, 2.0, np.float32), "w")
    nodes = [helper.make_node("Add", ["x", "x"], ["a"]),
             helper.make_node("LayerNormalization", ["a", "w", ""], ["y"], axis=-1)]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    path = save(model, tmp_path / "ln.onnx")
    child = ("import numpy as np, workbench as wb\n"
             f"m = wb.load({str(path)!r})\n"
             "with wb.runner(m, 'onnxruntime') as r:\n"
             "    y = r.infer({'x': np.arange(16, dtype=np.float32).reshape(2, 8)})['y']\n"
             "print(round(float(np.abs(y).max()), 3))\n")
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    a = np.arange(16, dtype=np.float32).reshape(2, 8) * 2
    expected = 2.0 * (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + 1e-5)
    assert float(proc.stdout.split()[-1]) == round(float(np.abs(expected).max()), 3)

"""wb.load for every format, detection from content, and a clear error for each kind of bad input."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

import workbench as wb
from workbench.core.errors import ModelFormatError, OfflineError, UntrustedPickleError


def _run(model, backend="onnxruntime", feeds=None):
    with wb.runner(model, backend) as r:
        return r.infer(feeds)


def test_module_with_example_inputs():
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    m = wb.load(net, example_inputs=torch.randn(2, 4))
    assert m.format == "torch"
    assert [str(s) for s in m.inputs] == ["input: float32[batch, 4]"]
    assert m.outputs[0].shape == ("batch", 3)


def test_module_without_example_inputs_says_how():
    import torch

    with pytest.raises(ModelFormatError, match="example_inputs="):
        wb.load(torch.nn.Linear(2, 2))


def test_onnx_file(digits_onnx):
    m = wb.load(digits_onnx.path)
    assert m.format == "onnx" and m.input_names == ["pixels"] and m.output_names == ["logits"]
    assert m.inputs[0].shape == ("batch", 1, 8, 8) and m.metadata["opset"] == 18
    assert "pixels: float32[batch, 1, 8, 8]" in m.describe()


def test_onnx_with_external_data(digits_onnx, tmp_path):
    import onnx

    proto = onnx.load(str(digits_onnx.path))
    target = tmp_path / "ext.onnx"
    onnx.save_model(proto, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.weights", size_threshold=1024)
    m = wb.load(target)
    assert m.metadata["external_data"] and m.size_bytes > target.stat().st_size
    feeds = m.example_inputs()
    np.testing.assert_allclose(_run(m, feeds=feeds)["logits"], _run(digits_onnx, feeds=feeds)["logits"], rtol=1e-6)
    (tmp_path / "ext.weights").rename(tmp_path / "moved.weights")
    with pytest.raises(ModelFormatError, match="external data file"):
        wb.load(target)


def test_format_is_detected_from_content_not_extension(digits_onnx, tmp_path):
    misnamed = tmp_path / "model.bin"
    shutil.copy(digits_onnx.path, misnamed)
    assert wb.load(misnamed).format == "onnx"


def test_torchscript_and_exported_program(zoo):
    m = zoo("digits-cnn")
    feeds = m.example_inputs(batch=3)
    ref = _run(m, "torch_eager", feeds)["logits"]
    for target, fmt in [("torchscript", "torchscript"), ("exported_program", "exported_program")]:
        x = wb.load(wb.export(m, target).path)
        assert x.format == fmt and x.input_names == ["pixels"] and x.output_names == ["logits"]
        assert x.inputs[0].shape[0] == "batch"
        np.testing.assert_allclose(_run(x, "torch_eager", feeds)["logits"], ref, rtol=1e-5, atol=1e-5)


def test_openvino_ir(digits_onnx, tmp_path):
    import openvino as ov

    xml = tmp_path / "digits.xml"
    ov.save_model(ov.convert_model(str(digits_onnx.path)), str(xml), compress_to_fp16=False)
    m = wb.load(xml)
    assert m.format == "openvino" and m.inputs[0].shape[1:] == (1, 8, 8)
    feeds = m.example_inputs()
    with wb.runner(m, "openvino", precision="fp32") as r:
        np.testing.assert_allclose(r.infer(feeds)[m.output_names[0]], _run(digits_onnx, feeds=feeds)["logits"],
                                   rtol=1e-4, atol=1e-4)
    xml.with_suffix(".bin").unlink()
    with pytest.raises(ModelFormatError, match=r"no weights file digits\.bin"):
        wb.load(xml)


@pytest.fixture(scope="module")
def digits_mlpackage(zoo, tmp_path_factory):
    ct = pytest.importorskip("coremltools")
    import torch

    module = zoo("digits-cnn").native()
    traced = torch.jit.trace(module, torch.randn(1, 1, 8, 8))
    ml = ct.convert(traced, inputs=[ct.TensorType(name="pixels", shape=(1, 1, 8, 8))], convert_to="mlprogram")
    path = tmp_path_factory.mktemp("coreml") / "digits.mlpackage"
    ml.save(str(path))
    return path


def test_coreml_is_inspected_here_and_says_it_runs_on_macos(digits_mlpackage):
    m = wb.load(digits_mlpackage)
    assert m.format == "coreml" and m.input_names == ["pixels"] and m.inputs[0].shape == (1, 1, 8, 8)
    assert m.metadata["model_type"] == "mlProgram"
    if sys.platform != "darwin":
        with pytest.raises(wb.errors.BackendUnavailable, match="macOS"):
            _run(m, "coreml")


def test_coreml_neural_network_mlmodel(zoo, tmp_path):
    ct = pytest.importorskip("coremltools")
    import torch

    traced = torch.jit.trace(zoo("digits-cnn").native(), torch.randn(1, 1, 8, 8))
    ml = ct.convert(traced, inputs=[ct.TensorType(name="pixels", shape=(1, 1, 8, 8))], convert_to="neuralnetwork")
    path = tmp_path / "digits.mlmodel"
    ml.save(str(path))
    m = wb.load(path)
    assert m.format == "coreml" and m.metadata["model_type"] == "neuralNetwork"
    assert m.inputs[0].shape == (1, 1, 8, 8) and m.inputs[0].dtype == "float32"
    assert any("no shape" in note for note in m.metadata["notes"])


@pytest.fixture(scope="module")
def tiny_bert_folder(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64)
    folder = tmp_path_factory.mktemp("hf") / "tiny-bert"
    transformers.BertModel(config).save_pretrained(str(folder))
    return folder


def test_hugging_face_folder(tiny_bert_folder):
    m = wb.load(tiny_bert_folder)
    # BERT's forward takes segment ids too (type_vocab_size 2): they are an input, as Optimum exports them
    assert m.format == "hf" and m.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    assert m.inputs[0].shape == ("batch", "sequence") and m.inputs[0].dtype == "int64"
    assert "last_hidden_state" in m.output_names
    feeds = m.example_inputs()
    eager = _run(m, "torch_eager", feeds)["last_hidden_state"]
    ort = _run(m, "onnxruntime", feeds)["last_hidden_state"]  # exported to ONNX on the way
    np.testing.assert_allclose(ort, eager, rtol=1e-4, atol=1e-4)


def test_hub_id_offline_says_pass_a_local_folder(monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="offline.*local folder|local folder"):
        wb.load("someorg/some-model")


# -- bad input: one clear line naming the problem -------------------------------------------------

def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "fix:" in text, text
    return text


def test_empty_file(tmp_path):
    p = tmp_path / "empty.onnx"
    p.write_bytes(b"")
    with pytest.raises(ModelFormatError) as info:
        wb.load(p)
    assert "empty file" in _one_line(info.value)


def test_random_bytes_named_onnx(tmp_path):
    p = tmp_path / "noise.onnx"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFormatError) as info:
        wb.load(p)
    assert "not a valid ONNX model" in _one_line(info.value)


def test_truncated_onnx(digits_onnx, tmp_path):
    p = tmp_path / "truncated.onnx"
    p.write_bytes(digits_onnx.path.read_bytes()[:5000])
    with pytest.raises(ModelFormatError) as info:
        wb.load(p)
    assert "truncated" in _one_line(info.value)


def test_folder_without_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelFormatError) as info:
        wb.load(tmp_path)
    assert "holds no model" in _one_line(info.value)


def test_missing_path_names_the_zoo():
    with pytest.raises(ModelFormatError) as info:
        wb.load("/no/such/model.onnx")
    assert "not a file" in _one_line(info.value)


def test_full_pickle_needs_trust(zoo, tmp_path):
    import torch

    p = tmp_path / "whole.pt"
    module = zoo("digits-cnn").native()
    torch.save(module, p)
    before = p.read_bytes()
    with pytest.raises(UntrustedPickleError) as info:
        wb.load(p)
    assert "trust=True" in _one_line(info.value)
    assert p.read_bytes() == before  # nothing touched
    m = wb.load(p, trust=True, example_inputs=torch.zeros(1, 1, 8, 8))
    assert m.format == "torch" and m.outputs[0].shape == ("batch", 10)


def test_state_dict_is_not_a_model(zoo, tmp_path):
    import torch

    p = tmp_path / "weights.pt"
    torch.save(zoo("digits-cnn").native().state_dict(), p)
    with pytest.raises(ModelFormatError) as info:
        wb.load(p)
    assert "state_dict" in _one_line(info.value)


def test_xml_that_is_not_openvino(tmp_path):
    p = tmp_path / "page.xml"
    p.write_text("<html><body>no</body></html>")
    with pytest.raises(ModelFormatError, match="not an OpenVINO IR"):
        wb.load(p)

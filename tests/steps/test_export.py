"""Export steps on the zoo models, with the real exporters, validated against torch eager."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from workbench.core.errors import StepError
from workbench.core.tolerances import tolerance


def _fp32_ok(model: wb.Model) -> None:
    v = model.validation
    assert v is not None and v.skipped is None, v
    tol = tolerance("fp32")
    assert v.figures["rel_l2"] <= tol.rel_l2, v.summary()
    assert v.figures["cosine"] >= tol.cosine, v.summary()
    assert v, v.summary()


@pytest.mark.parametrize("target, options", [
    ("onnx", {}),
    ("onnx", {"exporter": "torchscript", "opset": 17}),
    ("torchscript", {}),
    ("exported_program", {}),
])
def test_digits_exports_match_in_fp32(zoo, target, options):
    m = zoo("digits-cnn")
    x = wb.export(m, target, **options)
    assert x.format == target and x.path.exists()
    entry = x.lineage[-1]
    assert entry.step == f"export:{target}" and entry.parent is m
    assert entry.size_bytes == x.size_bytes > 0 and entry.seconds > 0
    assert "torch" in entry.tool_versions
    _fp32_ok(x)
    # the task metric is computed on the artifact and equals the original's
    assert x.validation.metrics["accuracy"] == pytest.approx(x.validation.original_metrics["accuracy"])


def test_onnx_opset_and_dynamic_sequence(zoo):
    m = zoo("tiny-transformer")
    x = wb.export(m, "onnx", opset=17)
    assert x.metadata["opset"] == 17
    assert x.inputs[0].shape == ("batch", "sequence")
    _fp32_ok(x)
    feeds = {"input_ids": np.random.default_rng(1).integers(0, 1000, (3, 29)).astype(np.int64)}
    with wb.runner(x, "onnxruntime") as r:
        assert r.infer(feeds)["logits"].shape == (3, 29, 8)


def test_static_export_has_fixed_shapes(zoo):
    x = wb.export(zoo("digits-cnn"), "onnx", dynamic=False)
    assert x.inputs[0].shape == (1, 1, 8, 8)


# An operator no ONNX exporter knows: the error must name it and the module that calls it.
@pytest.fixture(scope="module")
def mystery_model():
    import torch

    from tests.steps import mystery_ops

    module = mystery_ops.MysteryNet().eval()
    return wb.load(module, example_inputs=torch.randn(2, 4))


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_export_error_names_operator_and_module(mystery_model, exporter):
    with pytest.raises(StepError) as info:
        wb.export(mystery_model, "onnx", exporter=exporter)
    text = str(info.value)
    assert "wbtest::mystery" in text
    assert "'block.1'" in text and "Inner" in text  # the module path and its class
    other = "torchscript" if exporter == "dynamo" else "dynamo"
    assert f"exporter={other!r}" in text and "opset=" in text  # what to try
    assert "\n" not in info.value.problem


def test_unknown_target_and_wrong_format(zoo):
    with pytest.raises(StepError, match="choose one of onnx"):
        wb.export(zoo("digits-cnn"), "tflite")
    x = wb.export(zoo("digits-cnn"), "onnx")
    with pytest.raises(StepError, match="export takes a torch model"):
        wb.export(x, "onnx")


def test_data_dependent_branch_is_explained():
    import torch

    from tests.steps import mystery_ops

    m = wb.load(mystery_ops.GatedNet().eval(), example_inputs=torch.randn(2, 4))
    for target in ("onnx", "exported_program"):
        with pytest.raises(StepError) as info:
            wb.export(m, target)
        text = str(info.value)
        assert "in module 'gate' (Gate)" in text and "data-dependent" in text
        assert "torch.cond" in text


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_big_models_keep_weights_in_external_data(zoo, tmp_path, monkeypatch, exporter):
    """Over 2 GB, weights go to '<name>.onnx.data' (the threshold is lowered here to test it on a small model)."""
    from workbench.steps.workspace import using_workspace

    monkeypatch.setenv("WORKBENCH_ONNX_EXTERNAL_BYTES", "1000")
    with using_workspace(tmp_path):
        x = wb.export(zoo("digits-cnn"), "onnx", exporter=exporter, isolate=False, cache=False)
    assert x.metadata["external_data"]
    assert (tmp_path / "digits-cnn.onnx.data").exists() and x.size_bytes > (tmp_path / "digits-cnn.onnx").stat().st_size
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    _fp32_ok(x)


def test_an_operator_that_needs_a_newer_opset_gets_that_opset_as_the_fix():
    """grid_sample has an ONNX form from opset 16: the TorchScript exporter says so, and the error's fix
    names that opset (not just "another opset")."""
    import torch

    class Warp(torch.nn.Module):
        def forward(self, img, grid):
            return torch.nn.functional.grid_sample(img, grid, align_corners=False)

    m = wb.load(Warp().eval(), example_inputs=(torch.randn(1, 2, 4, 4), torch.rand(1, 4, 4, 2) * 2 - 1))
    with pytest.raises(StepError) as info:
        wb.export(m, "onnx", exporter="torchscript", opset=13, isolate=False, cache=False, validate=False)
    assert "grid_sampler" in info.value.problem and "opset=16" in info.value.fix, info.value
    assert wb.export(m, "onnx", exporter="torchscript", opset=16, isolate=False, cache=False).validation.passed


def test_input_names_need_not_be_forward_parameter_names():
    """An input named ``input`` for ``forward(self, x)``: torch.export takes the dynamic axes by position
    (keyed by input name it refused them, and ONNX fell back to the TorchScript exporter unasked)."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x).relu()

    m = wb.load(Net(), {"input": torch.randn(2, 4)})
    x = wb.export(m, "onnx")
    assert x.lineage[-1].options["exporter"] == "auto" and x.metadata.get("exporter") == "dynamo"
    assert x.inputs[0].shape[0] == "batch"
    _fp32_ok(x)

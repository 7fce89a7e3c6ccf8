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


def test_digits_split_is_cached_and_equals_scikit_learns(tmp_path, monkeypatch):
    """The split comes from the cache after the first use (no scikit-learn import on an app's start),
    equals scikit-learn's own, and a damaged cache file is made again."""
    import os
    import subprocess
    import sys

    from workbench.zoo import digits

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    digits._splits.cache_clear()
    try:
        made = digits._splits()
        (cached,) = tmp_path.glob("digits-splits-*.npz")
        code = ("import sys; from workbench.zoo.digits import _splits; s = _splits(); "
                "print(sum(len(a) for a in s), 'sklearn' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "WORKBENCH_CACHE": str(tmp_path)}).stdout.split()
        assert out == [str(sum(len(a) for a in made)), "False"]
        cached.write_bytes(b"not an npz")
        digits._splits.cache_clear()
        again = digits._splits()
        assert all(np.array_equal(a, b) for a, b in zip(made, again, strict=True))
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        x, y = (d.images / 16.0).astype(np.float32)[:, None], d.target.astype(np.int64)
        ref = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
        assert all(np.array_equal(a, b) for a, b in zip(made, ref, strict=True))
    finally:
        digits._splits.cache_clear()

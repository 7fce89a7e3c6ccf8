"""ncnn: torch → .ncnn.param + .ncnn.bin through pnnx, run by ncnn's Python binding, validated like every
step, its text graph read into the workbench Graph, timed by wb.benchmark, and reported unavailable
(with the fix) where the package is missing."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.hidden_module import run_hidden

pytest.importorskip("ncnn")
pytest.importorskip("pnnx")

import workbench as wb  # noqa: E402
from workbench.core.errors import ModelFormatError, StepError  # noqa: E402
from workbench.core.graph import Graph  # noqa: E402


@pytest.fixture(scope="module")
def digits_ncnn(fresh_workspace, zoo):
    return wb.convert(zoo("digits-cnn"), "ncnn")


def test_digits_cnn_converts_validates_and_describes_itself(digits_ncnn, tmp_path):
    v = digits_ncnn.validation
    assert v.passed, v.summary()
    assert v.precision == "fp32" and v.backend == "ncnn"
    assert v.figures["rel_l2"] < 1e-4 and v.metric_drop["accuracy"] == 0.0
    param, weights = digits_ncnn.path, digits_ncnn.path.with_suffix(".bin")
    assert param.name.endswith(".ncnn.param") and weights.is_file()
    assert digits_ncnn.size_bytes == param.stat().st_size + weights.stat().st_size
    # detected from the magic whatever the name; the source's names and the input shape are in the file
    shutil.copy(param, tmp_path / "any.txt")
    shutil.copy(weights, tmp_path / "any.bin")
    loaded = wb.load(tmp_path / "any.txt")
    assert loaded.format == "ncnn"
    assert [(s.name, s.shape) for s in loaded.inputs] == [("pixels", ("batch", 1, 8, 8))]
    assert loaded.output_names == ["logits"]
    assert loaded.metadata["ops"]["Convolution"] == 2 and loaded.metadata["parameters"] > 30_000
    assert "Convolution" in loaded.describe()
    graph = Graph.from_model(loaded)
    assert [n.op for n in graph.nodes][:2] == ["Convolution", "Convolution"]
    assert graph.inputs == ["pixels"] and graph.outputs == ["logits"]
    assert sum(n.params for n in graph.nodes) == loaded.metadata["parameters"]


def test_a_batch_runs_sample_by_sample_and_matches_torch(digits_ncnn, zoo):
    feeds = {"pixels": np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)}
    with wb.runner(digits_ncnn, "ncnn", precision="fp32") as r:
        out = r.infer(feeds)["logits"]
        assert r.effective_precision() == "fp32"
    with wb.runner(zoo("digits-cnn"), "torch_eager") as ref:
        expected = ref.infer(feeds)["logits"]
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    report = wb.benchmark(digits_ncnn, backends=["ncnn"], duration_s=0.3, warmup=2)
    assert report.results[0].error is None and report.results[0].latency.p50 > 0


def test_fp16_weights_halve_the_file_and_pass_at_fp16(digits_ncnn, zoo):
    half = wb.convert(zoo("digits-cnn"), "ncnn", fp16_weights=True)
    assert half.validation.passed, half.validation.summary()
    assert half.validation.precision == "fp16"
    assert half.size_bytes < 0.6 * digits_ncnn.size_bytes


def test_an_operator_ncnn_lacks_is_named(fresh_workspace, zoo):
    with pytest.raises(StepError, match="ncnn cannot run: .*unbind"):
        wb.convert(zoo("tiny-transformer"), "ncnn")


def test_bad_files_are_explained(tmp_path, digits_ncnn):
    bad = tmp_path / "broken.param"
    bad.write_text("7767517\n3 3\nInput in0 0 1 in0\n")
    shutil.copy(digits_ncnn.path.with_suffix(".bin"), tmp_path / "broken.bin")
    with pytest.raises(ModelFormatError, match="declares 3 layers but holds 1"):
        wb.load(bad)
    lonely = tmp_path / "lonely.param"
    shutil.copy(digits_ncnn.path, lonely)
    with pytest.raises(ModelFormatError, match="no weights file lonely.bin"):
        wb.load(lonely)
    other = tmp_path / "other.param"
    other.write_text("not ncnn\n")
    with pytest.raises(ModelFormatError, match="magic 7767517"):
        wb.load(other)


def test_without_ncnn_it_says_why_and_everything_else_works(digits_ncnn, digits_onnx):
    got = run_hidden(["ncnn", "pnnx"], f"""
        import json, workbench as wb
        from workbench.core.errors import WorkbenchError
        row = wb.backends().loc["ncnn"]
        m = wb.load({str(digits_onnx.path)!r})
        with wb.runner(m, "onnxruntime") as r:
            shape = list(r.infer()["logits"].shape)
        described = wb.load({str(digits_ncnn.path)!r}).metadata["layers"]  # reading needs no ncnn
        try:
            wb.convert(wb.load("digits-cnn"), "ncnn")
            step_error = None
        except WorkbenchError as err:
            step_error = str(err)
        print(json.dumps({{"available": bool(row.available), "reason": row.reason, "fix": row.fix,
                          "shape": shape, "layers": described, "step_error": step_error}}))
    """)
    assert got["available"] is False
    assert got["reason"] == "ncnn is not installed" and "[ncnn]" in got["fix"]
    assert got["shape"] == [1, 10] and got["layers"] == 7
    assert got["step_error"] and "pip install 'deployment-workbench[ncnn]'" in got["step_error"]


def test_autotune_and_the_app_find_ncnn_in_the_registry(digits_ncnn):
    from workbench.analysis.autotune import default_space
    from workbench.ui.app import choices_for

    assert "ncnn" in default_space()["backends"]  # reached by the registered pnnx conversion
    assert ("convert", "ncnn") in [c.spec for c in choices_for("torch")]
    tuned = wb.autotune("digits-cnn", max_metric_drop=0.02, space={"backends": ["ncnn"], "precisions": ["fp32"]},
                        duration_s=0.1, confirm=0, include_torch=False)
    assert {t.backend for t in tuned.trials} == {"ncnn"}  # its tunable threads swept too
    assert tuned.best is not None and tuned.best.backend == "ncnn" and all(t.valid for t in tuned.trials)
    assert "wb.runner(m0, 'ncnn'" in tuned.script

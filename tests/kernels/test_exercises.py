"""CI's side of the exercises: every hidden solution passes the checker the learner uses, every
deliberately wrong kernel fails it, and every stub, as handed out, fails it."""

import importlib

import pytest

import workbench.kernels.library as library
from workbench.kernels.magic import run_source
from workbench.kernels.puzzles import EXERCISES, exercise, exercises

from . import wrong_kernels


@pytest.mark.parametrize("key", list(EXERCISES))
def test_solution_passes_and_wrong_kernel_fails(key):
    ex = exercise(key)
    solved = ex.check(ex.solution(), quiet=True)
    assert solved, solved.summary()
    wrong = ex.check(wrong_kernels.WRONG_EXERCISES[key], quiet=True)
    assert not wrong, f"the checker let a wrong kernel for {key} through"
    assert wrong.failures[0].describe()  # says what was wrong


@pytest.mark.parametrize("key", list(EXERCISES))
def test_stub_runs_and_fails_the_check(key):
    ex = exercise(key)
    ns = run_source(ex.stub, {})
    report = ex.check(ns[ex.entry], quiet=True)
    assert not report
    assert report.failures[0].n_unwritten > 0  # an empty kernel writes nothing


def test_every_wrong_kernel_is_wired_to_an_exercise():
    assert set(wrong_kernels.WRONG_EXERCISES) == set(EXERCISES)
    assert {ex.tutorial for ex in EXERCISES.values()} == set(library.TOPICS)


@pytest.mark.parametrize("topic", library.TOPICS)
def test_tutorial_kernel_passes_its_check(topic):
    from workbench.kernels.checker import check

    module = importlib.import_module(f"workbench.kernels.library.{topic}")
    launcher = getattr(module, _LAUNCHERS[topic])
    report = check(launcher, module.reference, **module.CHECK)
    assert report, report.summary()
    for wrong in wrong_kernels.WRONG_TUTORIAL.get(topic, []):
        bad = check(wrong, module.reference, **module.CHECK)
        assert not bad, f"{wrong.__name__} passed the {topic} check"


_LAUNCHERS = {
    "vector_add": "add",
    "softmax": "softmax",
    "layernorm": "layer_norm",
    "matmul": "matmul",
    "attention": "attention",
    "dequant_matmul": "int8_matmul",
    "bias_gelu": "bias_gelu",
    "reduction": "row_sum",
}


def test_subtle_bug_is_caught_only_by_the_tighter_dtype():
    # erf GELU in place of the tanh one: ~1e-3 off, within float16's tolerance, outside float32's
    report = exercise("bias_gelu.bias_gelu_tanh").check(wrong_kernels.bias_gelu_tanh, quiet=True)
    by_dtype = {c.dtype: c.passed for c in report.cases}
    assert by_dtype == {"float32": False, "float16": True} or (
        not all(c.passed for c in report.cases if c.dtype == "float32")
        and all(c.passed for c in report.cases if c.dtype == "float16")
    )


def test_exercise_api_errors_and_listing(capsys):
    from workbench.core.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="no exercise named"):
        exercise("softmax.nope")
    assert exercises("softmax") == ["softmax.log_softmax"]
    ex = exercise("softmax.log_softmax")
    with pytest.raises(WorkbenchError, match="launcher"):
        ex.check("log_softmax")
    ex.show_solution()
    assert "def log_softmax" in capsys.readouterr().out
    assert "log_softmax_kernel" in ex.stub and "TODO" in ex.stub
    assert "Exercise `softmax.log_softmax`" in ex._repr_markdown_()


@pytest.mark.parametrize("topic", ["matmul", "attention", "dequant_matmul"])
def test_every_gpu_autotune_config_is_correct_in_the_interpreter(topic):
    """The configurations triton.autotune picks from on a GPU, each run through the interpreter on a
    shape that is not a multiple of its tiles: a wrong config would otherwise surface only on a GPU."""
    import torch

    from workbench.kernels.checker import check

    module = importlib.import_module(f"workbench.kernels.library.{topic}")
    for cfg in module.GPU_CONFIGS:
        kw = cfg.kwargs
        if topic == "matmul":
            def fn(a, b, kw=kw):
                return module.matmul(a, b, blocks=(kw["BLOCK_M"], kw["BLOCK_N"], kw["BLOCK_K"]), group_m=kw["GROUP_M"])
            shapes = [((kw["BLOCK_M"] + 3, 40), (40, kw["BLOCK_N"] // 2 + 5))]
            make = None
        elif topic == "attention":
            def fn(q, k, v, kw=kw):
                return module.attention(q, k, v, blocks=[kw["BLOCK_M"], kw["BLOCK_N"]])
            shapes = [(1, 1, kw["BLOCK_M"] + kw["BLOCK_N"] // 2 + 1, 24)]
            make = None
        else:
            def fn(x, w, s, kw=kw):
                return module.int8_matmul(x, w, s, blocks=(kw["BLOCK_M"], kw["BLOCK_N"], kw["BLOCK_K"]))
            shapes = [(kw["BLOCK_M"] + 1, kw["BLOCK_N"] // 2 + 3, kw["BLOCK_K"] + 5)]
            make = module.make_inputs
        report = check(fn, module.reference, shapes=shapes, dtypes=[torch.float32], make_inputs=make,
                       tolerances={torch.float32: (1e-4, 1e-4)}, races=False)
        assert report, f"{topic} config {kw}: {report.summary()}"

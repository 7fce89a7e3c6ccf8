"""Native work for untrusted models, bounded: an isolated runner (``wb.runner(..., isolate=True)``)
runs in the worker with a memory limit that a tiny hostile ONNX cannot pass, the kernel's interrupt
stops the worker, and an isolated validation is covered by the step's time limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import workbench as wb
from workbench.core.errors import StepError, WorkbenchError
from workbench.steps import worker


def _onnx(path, nodes, inputs, outputs, inits=()):
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def _bomb(path):
    """~110 bytes of ONNX whose run allocates 8 GiB: ConstantOfShape([2**31]) + x."""
    from onnx import TensorProto, helper, numpy_helper

    return _onnx(path, [helper.make_node("ConstantOfShape", ["s"], ["big"]), helper.make_node("Add", ["x", "big"], ["y"])],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
                 [numpy_helper.from_array(np.array([1 << 31], np.int64), "s")])


def _add(path):
    from onnx import TensorProto, helper

    return _onnx(path, [helper.make_node("Add", ["a", "b"], ["y"])],
                 [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3]) for n in "ab"],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_isolated_runner_matches_and_a_tiny_bomb_stops_at_the_memory_limit(tmp_path):
    path = _add(tmp_path / "add.onnx")
    feeds = {"a": np.arange(3, dtype=np.float32), "b": np.ones(3, np.float32)}
    with wb.runner(path, "onnxruntime") as here, wb.runner(path, "onnxruntime", isolate=True) as there:
        assert type(there).__name__ == "IsolatedRunner"
        np.testing.assert_array_equal(there.infer(feeds)["y"], here.infer(feeds)["y"])

    bomb = _bomb(tmp_path / "bomb.onnx")
    assert bomb.stat().st_size < 200
    before = _rss()
    with pytest.raises(StepError) as err, wb.runner(bomb, "onnxruntime", isolate=True, memory=512 << 20) as r:
        r.infer({"x": np.zeros(1, np.float32)})
    text = str(err.value)
    assert "memory limit" in text and "512 MiB" in text and "RLIMIT_AS" in text, text
    assert _rss() - before < 256 << 20  # nothing of it in this process
    with wb.runner(path, "onnxruntime", isolate=True) as again:  # the worker serves the next call
        assert again.infer(feeds)["y"].tolist() == [1.0, 2.0, 3.0]


def test_isolated_runner_after_the_worker_was_stopped_says_so(tmp_path):
    path = _add(tmp_path / "add.onnx")
    r = wb.runner(path, "onnxruntime", isolate=True).prepare()
    worker.shutdown()
    with pytest.raises(WorkbenchError, match="make a new runner"):
        r.infer({"a": np.zeros(3, np.float32), "b": np.zeros(3, np.float32)})


INTERRUPTED = """
import time
from workbench.steps import worker
worker.run_isolated(int, 1, label="warm-up")  # the worker is up
print("ready", flush=True)
try:
    worker.run_isolated(time.sleep, 120, timeout=300, label="a long native call")
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    w = worker._worker
    print("interrupted; worker stopped:", w is None or not w.alive, flush=True)
"""


def test_interrupt_stops_the_worker_at_once():
    """Jupyter's interrupt is SIGINT to the kernel's process: the wait ends at once, the worker process is
    killed. A child interpreter plays the kernel, so the signal reaches a whole process as Jupyter sends it."""
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-2000:]
        time.sleep(1.0)  # the long call is in the worker now
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "interrupted; worker stopped: True" in out, err[-2000:]
    assert time.monotonic() - start < 10


class Slow:
    """A torch module whose forward takes a minute (a runtime stuck in native code, as seen from here)."""

    @staticmethod
    def make():
        import torch

        class SlowNet(torch.nn.Module):
            hang = False  # set after loading (loading runs forward once to learn the outputs)

            def forward(self, x):
                if self.hang:
                    time.sleep(60)
                return x * 2

        return SlowNet()


def _small():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())


def test_isolated_validation_gives_the_same_figures(tmp_path):
    import torch

    from workbench.steps.validate import validate_step
    from workbench.steps.workspace import using_workspace

    with using_workspace(tmp_path / "ws"):
        m = wb.load(_small(), example_inputs=(torch.randn(2, 4),))
        x = wb.export(m, "onnx", validate=False)
        here = validate_step(x, m, isolate=False)
        there = validate_step(x, m, isolate=True, timeout=120)
    assert there.passed and here.passed
    assert there.figures["max_abs"] == here.figures["max_abs"] and there.precision == here.precision


def test_validation_is_bounded_by_the_timeout():
    import torch

    from workbench.steps.validate import validate_step

    module = Slow.make()
    slow = wb.load(module, example_inputs=(torch.randn(1, 4),))
    module.hang = True
    start = time.monotonic()
    with pytest.raises(StepError, match="did not finish within 3 s"):
        validate_step(slow, slow, isolate=True, timeout=3)
    assert time.monotonic() - start < 30


def test_graph_built_in_the_worker_is_the_same(tmp_path):
    from workbench.steps.isolation import graph_of

    m = wb.load(_add(tmp_path / "add.onnx"))
    here, there = graph_of(m, isolate=False), graph_of(m, isolate=True, timeout=60)
    assert [n.name for n in there.nodes] == [n.name for n in here.nodes] and len(there.nodes) == 1


def test_a_graph_with_weights_comes_back_from_the_worker_with_their_values(tmp_path):
    """The worker answers with plain pickle: the weights' loaders (closures over the native model) travel as
    their values, so a published app's graph view shows each weight's statistics."""
    import onnx
    from onnx import helper, numpy_helper

    from workbench.steps.isolation import graph_of

    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "mm",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 3])], [w])
    path = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    m = wb.load(path)
    here, there = graph_of(m, isolate=False), graph_of(m, isolate=True, timeout=60)
    assert there.weights["w"].stats() == here.weights["w"].stats()
    assert there.weights["w"].stats()["max"] == 11.0

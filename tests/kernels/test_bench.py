"""wb.kernels.bench / sweep / roofline: interpreter timings are measured and labelled as such."""

import json

import torch

from workbench.kernels.library.vector_add import add
from workbench.kernels.timing import (
    INTERPRETER_NOTE,
    BenchResult,
    Peaks,
    bench,
    device_peaks,
    roofline,
    sweep,
)


def test_bench_times_kernel_and_reference_and_labels_interpreter_runs(kernel_mode):
    x, y = torch.randn(4096, device=kernel_mode.device), torch.randn(4096, device=kernel_mode.device)
    r = bench(add, x, y, reference=torch.add, bytes=3 * 4096 * 4, name="add")
    assert r.ms > 0 and r.ref_ms > 0 and r.speedup == r.ref_ms / r.ms
    assert r.gbps == r.bytes / (r.ms * 1e-3) / 1e9
    js = r.to_json()
    json.dumps(js)
    if kernel_mode.interpreted:
        assert r.interpreted and js["note"] == INTERPRETER_NOTE
        assert "no meaning for GPU speed" in r.summary()
        assert r.share_of_copy_bandwidth is None  # no ceilings in the interpreter
        assert device_peaks().interpreted


def test_shares_of_the_measured_ceilings_are_computed_from_the_peaks():
    peaks = Peaks("test-gpu", copy_gbps=1000.0, matmul_tflops=100.0)
    r = BenchResult("k", ms=1.0, bytes=900e6, flops=50e9, peaks=peaks)
    assert abs(r.gbps - 900.0) < 1e-9 and abs(r.share_of_copy_bandwidth - 0.9) < 1e-9
    assert abs(r.tflops - 50.0) < 1e-9 and abs(r.share_of_matmul_rate - 0.5) < 1e-12
    fig = roofline([r], peaks)
    assert len(fig.data) == 2 and "test-gpu" in fig.layout.title.text


def test_roofline_without_a_gpu_says_so():
    fig = roofline([BenchResult("k", ms=1.0, interpreted=True)], Peaks("cpu", 0, 0, interpreted=True))
    assert "needs a GPU" in fig.layout.title.text


def test_sweep_gives_a_frame_per_size_and_provider(kernel_mode):
    frame = sweep({"triton": add, "torch": torch.add},
                  lambda n: (torch.randn(n, device=kernel_mode.device), torch.randn(n, device=kernel_mode.device)),
                  [128, 1000], bytes=lambda n: 12 * n)
    assert list(frame["provider"]) == ["triton", "torch", "triton", "torch"]
    assert (frame["GB/s"] > 0).all() and frame["interpreted"].all() == kernel_mode.interpreted


def test_memory_bound_kernels_are_on_the_bandwidth_roofline_with_their_own_reference_bytes():
    peaks = Peaks("test-gpu", copy_gbps=1000.0, matmul_tflops=100.0)
    add_r = BenchResult("vector add", ms=1.0, ref_ms=1.0, bytes=900e6, peaks=peaks)  # no FLOP count
    int8 = BenchResult("int8 matmul", ms=1.0, ref_ms=1.0, bytes=100e6, ref_bytes=200e6, flops=1e9, peaks=peaks)
    assert abs(int8.gbps - 100.0) < 1e-9 and abs(int8.ref_gbps - 200.0) < 1e-9  # fp16 weights: twice the bytes
    assert abs(add_r.ref_gbps - 900.0) < 1e-9  # default: the kernel's own count
    fig = roofline([add_r, int8], peaks)
    bars = [t for t in fig.data if t.type == "bar"]
    assert list(bars[0].x) == ["vector add"] and list(bars[0].y) == [900.0]  # memory-bound: no FLOP count
    assert list(bars[1].y) == [900.0] and bars[0].text[0] == "90%"
    compute = [t for t in fig.data if t.type == "scatter" and t.mode == "markers+text"]
    assert [t.name for t in compute] == ["int8 matmul"]  # only results with a FLOP count

"""Kernels into a model: custom ops, module swap in the zoo's tiny transformer, wb.compare on it."""

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.core.errors import WorkbenchError
from workbench.kernels.custom_op import TritonSoftmax, register_op, with_kernels
from workbench.kernels.library.softmax import softmax
from workbench.kernels.library.vector_add import add


def test_register_op_makes_a_torch_op_and_reregistering_swaps_the_launcher(kernel_mode):
    op = register_op("wbtest::add", add)
    x = torch.randn(100, device=kernel_mode.device)
    assert torch.equal(torch.ops.wbtest.add(x, x), x + x)

    def add_twice(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return add(add(x, y), y)

    assert register_op("wbtest::add", add_twice) is op  # a re-run notebook cell
    assert torch.allclose(op(x, x), 3 * x)


def test_register_op_explains_missing_type_hints():
    def untyped(x):
        return x

    with pytest.raises(WorkbenchError, match="type hints"):
        register_op("wbtest::untyped", untyped)
    with pytest.raises(WorkbenchError, match="namespace"):
        register_op("nonamespace", add)


def test_triton_op_kind_runs_through_wrap_triton(kernel_mode):
    import triton
    from torch.library import wrap_triton

    from workbench.kernels.library.vector_add import add_kernel

    def add_wrapped(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        wrap_triton(add_kernel)[(triton.cdiv(x.numel(), 64),)](x, y, out, x.numel(), BLOCK_SIZE=64)
        return out

    op = register_op("wbtest::add_traced", add_wrapped, kind="triton_op")
    x = torch.randn(130, device=kernel_mode.device)
    assert torch.equal(op(x, x), x + x)


def test_softmax_module_matches_torch(kernel_mode):
    x = torch.randn(2, 4, 12, 12, device=kernel_mode.device)
    assert torch.allclose(TritonSoftmax()(x), torch.softmax(x, -1), atol=1e-6)
    assert torch.allclose(softmax(x), torch.softmax(x, -1), atol=1e-6)


def test_tiny_transformer_with_kernels_matches_and_is_a_new_model(zoo):
    original = zoo("tiny-transformer")
    fast = with_kernels(original)
    assert fast.format == "torch" and fast.name == "tiny-transformer+triton"
    replaced = fast.lineage[-1].options["replaced"]
    assert replaced["Softmax"] == ["blocks.0.attn.softmax", "blocks.1.attn.softmax"]
    assert len(replaced["LayerNorm"]) == 5
    assert type(original.native().blocks[0].attn.softmax) is torch.nn.Softmax  # the original is untouched
    assert "workbench::softmax" in repr(fast.native().blocks[0].attn.softmax)
    feeds = original.example_inputs(batch=2)
    with torch.no_grad():
        ids = torch.from_numpy(feeds["input_ids"])
        a, b = original.native()(ids), fast.native()(ids)
    np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5)

    comparison = wb.compare(original, [fast], n_inputs=1)
    assert bool(comparison), comparison


def test_with_kernels_rejects_what_it_cannot_swap(zoo):
    with pytest.raises(WorkbenchError, match="workbench Model"):
        with_kernels(torch.nn.Linear(2, 2))
    with pytest.raises(WorkbenchError, match="no submodule matched"):
        with_kernels(zoo("tiny-transformer"), {torch.nn.Conv2d: lambda m: m})


def test_triton_op_kind_compiles_with_torch_compile(kernel_mode):
    """kind="triton_op": on a GPU a real torch.library.triton_op (Inductor sees the kernel; checked by
    benchmarks/gpu_check.py); in the interpreter an opaque custom op with a fake implementation, which
    torch.compile keeps as one node and runs eagerly."""
    import shutil

    from workbench.kernels.library.softmax import softmax as softmax_launcher

    op = register_op("wbtest::softmax_traced", softmax_launcher, kind="triton_op")
    assert op._workbench_kind == ("custom_op (interpreter)" if kernel_mode.interpreted else "triton_op")
    x = torch.randn(6, 33, device=kernel_mode.device)
    torch.library.opcheck(op, (x,))  # schema, fake/meta implementation, autograd registration

    def f(t):
        return torch.ops.wbtest.softmax_traced(t * 2.0) + 1.0

    expected = torch.softmax(x * 2.0, -1) + 1.0
    backends = ["aot_eager"] + (["inductor"] if shutil.which("g++") or kernel_mode.device == "cuda" else [])
    for backend in backends:
        torch._dynamo.reset()
        compiled = torch.compile(f, backend=backend, fullgraph=True)
        torch.testing.assert_close(compiled(x), expected, atol=1e-6, rtol=1e-5)


def test_fused_attention_swaps_into_the_tiny_transformer(zoo):
    from workbench.kernels.custom_op import TritonAttention, is_qkv_attention

    original = zoo("tiny-transformer")
    fast = with_kernels(original, attention=True)
    replaced = fast.lineage[-1].options["replaced"]
    assert replaced["is_qkv_attention"] == ["blocks.0.attn", "blocks.1.attn"]
    assert len(replaced["LayerNorm"]) == 5
    attn = fast.native().blocks[0].attn
    assert "workbench::attention" in repr(attn) and attn.heads == 4
    assert is_qkv_attention("", original.native().blocks[0].attn) and not is_qkv_attention("", attn)
    feeds = original.example_inputs(batch=2)
    ids = torch.from_numpy(feeds["input_ids"])
    with torch.no_grad():
        np.testing.assert_allclose(fast.native()(ids).numpy(), original.native()(ids).numpy(), atol=1e-4)
    with pytest.raises(WorkbenchError, match="qkv"):
        TritonAttention(torch.nn.Linear(2, 2))


def test_device_is_where_the_kernels_run(zoo, kernel_mode):
    from workbench.kernels.custom_op import on_device, to_device

    original = zoo("tiny-transformer")
    if kernel_mode.interpreted:
        with pytest.raises(WorkbenchError, match="interpreter"):
            with_kernels(original, device="cuda")
    base = to_device(original)
    assert base.lineage[-1].options == {"device": kernel_mode.device}
    # the CPU-in/CPU-out wrapper the runners need off the CPU (exercised here on the CPU itself)
    wrapped = on_device(torch.nn.Linear(3, 2), "cpu")
    assert wrapped.out_features == 2 and wrapped.weight.shape == (2, 3)  # attributes reach the wrapped module
    out = wrapped(torch.ones(1, 3))
    assert out.device.type == "cpu" and out.shape == (1, 2)

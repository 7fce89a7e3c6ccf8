"""Kernels into a model: custom ops, module swap in the zoo's tiny transformer, wb.compare on it."""

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.errors import WorkbenchError
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

"""Tutorial 02: fused row-wise softmax, one read and one write per element (after Triton's 02-fused-softmax)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton


@triton.jit
def softmax_kernel(out_ptr, in_ptr, in_row_stride, out_row_stride, n_cols, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)  # one program per row; int64 so row * stride cannot overflow
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    # padding lanes read -inf: exp(-inf) = 0 adds nothing to the sum
    x = tl.load(in_ptr + row * in_row_stride + cols, mask=mask, other=-float("inf")).to(tl.float32)
    x = x - tl.max(x, axis=0)  # subtract the max for numerical stability
    num = tl.exp(x)
    den = tl.sum(num, axis=0)
    y = num / den
    tl.store(out_ptr + row * out_row_stride + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


def softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension, any leading shape."""
    n_cols = x.shape[-1]
    x2 = x.reshape(-1, n_cols)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    out = torch.empty((x2.shape[0], n_cols), dtype=x.dtype, device=x.device)
    block = triton.next_power_of_2(n_cols)
    num_warps = 4 if block < 2048 else 8 if block < 4096 else 16
    # wrap_triton: under torch.compile (a triton_op on a GPU) Inductor sees the kernel; eager, it just launches
    wrap_triton(softmax_kernel)[(x2.shape[0],)](out, x2, x2.stride(0), out.stride(0), n_cols, BLOCK_SIZE=block, num_warps=num_warps)
    return out.reshape(x.shape)


def reference(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=-1)


CHECK = dict(shapes=[(1, 1), (1, 7), (3, 129), (17, 1000), (64, 64)], dtypes=[torch.float32, torch.float16])


def bench_bytes(rows: int, cols: int, element_size: int = 2) -> int:
    return 2 * rows * cols * element_size

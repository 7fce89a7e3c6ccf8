"""Tutorial 08: a reduction: the sum of each row, for rows of any length (a loop over column blocks),
and the whole-tensor sum by a second pass over the per-row partial sums."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def row_sum_kernel(x_ptr, out_ptr, n_cols, stride, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    acc = tl.zeros([BLOCK_SIZE], dtype=tl.float32)  # BLOCK_SIZE partial sums, reduced once at the end
    for off in range(0, n_cols, BLOCK_SIZE):
        cols = off + tl.arange(0, BLOCK_SIZE)
        acc += tl.load(x_ptr + row * stride + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
    tl.store(out_ptr + row, tl.sum(acc, axis=0).to(out_ptr.dtype.element_ty))


def row_sum(x: torch.Tensor, block_size: int = 256) -> torch.Tensor:
    """Sum over the last dimension of a 2-D tensor, accumulated in float32."""
    assert x.dim() == 2, "row_sum takes a 2-D tensor"
    x = x.contiguous()
    out = torch.empty(x.shape[0], device=x.device, dtype=x.dtype)
    block = min(block_size, triton.next_power_of_2(x.shape[1]))
    row_sum_kernel[(x.shape[0],)](x, out, x.shape[1], x.stride(0), BLOCK_SIZE=block)
    return out


def total_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum of every element: rows first, then the row sums (two launches, no atomics)."""
    flat = x.reshape(1, -1) if x.numel() <= 4096 else x.reshape(-1, x.shape[-1])
    partial = row_sum(flat.float())
    return row_sum(partial.reshape(1, -1)).reshape(()).to(x.dtype)


def reference(x: torch.Tensor) -> torch.Tensor:
    return x.sum(dim=-1)


CHECK = dict(
    shapes=[(1, 1), (1, 7), (3, 129), (17, 1000), (5, 4099)],
    dtypes=[torch.float32, torch.float16],
)

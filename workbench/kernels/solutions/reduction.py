"""Solution: row-wise argmax over rows of any length, keeping a running (max, index) across blocks."""

import torch
import triton
import triton.language as tl


@triton.jit
def row_argmax_kernel(x_ptr, out_ptr, n_cols, stride, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    best = tl.full([], float("-inf"), tl.float32)
    best_idx = tl.full([], 0, tl.int32)
    for off in range(0, n_cols, BLOCK_SIZE):
        cols = off + tl.arange(0, BLOCK_SIZE)
        x = tl.load(x_ptr + row * stride + cols, mask=cols < n_cols, other=-float("inf")).to(tl.float32)
        block_max, block_idx = tl.max(x, axis=0, return_indices=True)
        better = block_max > best  # strict: the first occurrence wins, as in torch.argmax
        best_idx = tl.where(better, off + block_idx, best_idx)
        best = tl.where(better, block_max, best)
    tl.store(out_ptr + row, best_idx)


def row_argmax(x: torch.Tensor) -> torch.Tensor:
    x = x.contiguous()
    out = torch.empty(x.shape[0], device=x.device, dtype=torch.int32)
    block = min(128, triton.next_power_of_2(x.shape[1]))
    row_argmax_kernel[(x.shape[0],)](x, out, x.shape[1], x.stride(0), BLOCK_SIZE=block)
    return out

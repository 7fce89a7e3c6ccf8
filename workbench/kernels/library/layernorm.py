"""Tutorial 03: layer normalization forward, a row reduction followed by an elementwise map
(after Triton's 05-layer-norm)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton


@triton.jit
def layernorm_kernel(x_ptr, w_ptr, b_ptr, y_ptr, stride, n_cols, eps, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_ptr += row * stride
    y_ptr += row * stride
    # pass 1: the mean, in blocks (rows may be longer than one block)
    acc = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    for off in range(0, n_cols, BLOCK_SIZE):
        cols = off + tl.arange(0, BLOCK_SIZE)
        acc += tl.load(x_ptr + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
    mean = tl.sum(acc, axis=0) / n_cols
    # pass 2: the variance (of x - mean: more accurate than E[x²] - mean²)
    acc = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    for off in range(0, n_cols, BLOCK_SIZE):
        cols = off + tl.arange(0, BLOCK_SIZE)
        x = tl.load(x_ptr + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
        d = tl.where(cols < n_cols, x - mean, 0.0)
        acc += d * d
    rstd = 1 / tl.sqrt(tl.sum(acc, axis=0) / n_cols + eps)
    # pass 3: normalize, scale, shift
    for off in range(0, n_cols, BLOCK_SIZE):
        cols = off + tl.arange(0, BLOCK_SIZE)
        mask = cols < n_cols
        w = tl.load(w_ptr + cols, mask=mask)
        b = tl.load(b_ptr + cols, mask=mask)
        x = tl.load(x_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        y = (x - mean) * rstd * w + b
        tl.store(y_ptr + cols, y.to(y_ptr.dtype.element_ty), mask=mask)


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm over the last dimension (like ``torch.nn.functional.layer_norm``)."""
    n_cols = x.shape[-1]
    x2 = x.reshape(-1, n_cols).contiguous()
    y = torch.empty_like(x2)
    block = min(triton.next_power_of_2(n_cols), 65536 // x.element_size())
    num_warps = min(max(block // 256, 1), 8)
    wrap_triton(layernorm_kernel)[(x2.shape[0],)](x2, weight, bias, y, x2.stride(0), n_cols, eps, BLOCK_SIZE=block, num_warps=num_warps)
    return y.reshape(x.shape)


def reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, eps=1e-5)


def make_inputs(shape, dtype, gen):
    rows, cols = shape
    x = torch.randn(rows, cols, generator=gen).to(dtype)
    w = (1 + 0.1 * torch.randn(cols, generator=gen)).to(dtype)
    b = (0.1 * torch.randn(cols, generator=gen)).to(dtype)
    return x, w, b


CHECK = dict(
    shapes=[(1, 1), (1, 7), (3, 129), (17, 1000), (64, 64)],
    dtypes=[torch.float32, torch.float16],
    make_inputs=make_inputs,
)

"""Tutorial 07: fused bias + GELU, the epilogue of every transformer MLP: ``gelu(x + bias)`` in one pass.

Unfused, torch reads x, writes x + b, reads it again and writes the GELU: four passes over memory
instead of two.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def bias_gelu_kernel(x_ptr, b_ptr, y_ptr, n_rows, n_cols, stride, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    offs = rows[:, None].to(tl.int64) * stride + cols[None, :]
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
    z = x + b[None, :]  # the bias broadcasts over rows
    y = 0.5 * z * (1.0 + tl.math.erf(z * 0.7071067811865476))  # exact GELU: erf form
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


def bias_gelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``gelu(x + bias)`` over the last dimension (erf GELU, as ``torch.nn.GELU()``)."""
    n_cols = x.shape[-1]
    x2 = x.reshape(-1, n_cols).contiguous()
    y = torch.empty_like(x2)
    bm, bn = 16, min(128, triton.next_power_of_2(n_cols))
    grid = (triton.cdiv(x2.shape[0], bm), triton.cdiv(n_cols, bn))
    bias_gelu_kernel[grid](x2, bias, y, x2.shape[0], n_cols, x2.stride(0), BLOCK_M=bm, BLOCK_N=bn)
    return y.reshape(x.shape)


def reference(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.gelu(x + bias)


def make_inputs(shape, dtype, gen):
    rows, cols = shape
    return torch.randn(rows, cols, generator=gen).to(dtype), torch.randn(cols, generator=gen).to(dtype)


CHECK = dict(
    shapes=[(1, 1), (1, 7), (3, 129), (17, 300), (64, 64)],
    dtypes=[torch.float32, torch.float16],
    make_inputs=make_inputs,
)

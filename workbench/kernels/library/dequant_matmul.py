"""Tutorial 06: weight-only INT8 matmul: ``y = x @ (W * scale).T`` with W stored as int8, one scale per
output channel. The weights are dequantized in registers, tile by tile, never written back as floats:
the kernel reads a quarter of the bytes an fp32 weight (half of an fp16 one) would need.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from workbench.kernels.checker import dot_tolerance
from workbench.kernels.modes import mode


@triton.jit
def int8_matmul_kernel(
    x_ptr, w_ptr, s_ptr, y_ptr,
    M, N, K,
    stride_xm, stride_xk, stride_wn, stride_wk, stride_ym, stride_yn,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + offs_k
        x = tl.load(x_ptr + offs_m[:, None] * stride_xm + ks[None, :] * stride_xk,
                    mask=(offs_m[:, None] < M) & (ks[None, :] < K), other=0.0)
        # W is (N, K); load a (BLOCK_K, BLOCK_N) tile of W.T and convert int8 -> x's dtype
        w = tl.load(w_ptr + offs_n[None, :] * stride_wn + ks[:, None] * stride_wk,
                    mask=(offs_n[None, :] < N) & (ks[:, None] < K), other=0)
        acc = tl.dot(x, w.to(x.dtype), acc)
    # the per-channel scale is the same for a whole column: apply it once, after the sum
    scale = tl.load(s_ptr + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)
    y = acc * scale[None, :]
    tl.store(y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :] * stride_yn,
             y.to(y_ptr.dtype.element_ty), mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


def int8_matmul(x: torch.Tensor, w_int8: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x (M, K) @ (w_int8 (N, K) * scale (N,)[:, None]).T`` -> (M, N) in x's dtype."""
    M, K = x.shape
    N = w_int8.shape[0]
    y = torch.empty((M, N), device=x.device, dtype=x.dtype)
    bm, bn, bk = (16, 16, 16) if mode().interpreted else (64, 64, 64)
    grid = (triton.cdiv(M, bm), triton.cdiv(N, bn))
    int8_matmul_kernel[grid](x, w_int8, scale, y, M, N, K, x.stride(0), x.stride(1), w_int8.stride(0), w_int8.stride(1),
                             y.stride(0), y.stride(1), BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk)
    return y


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel INT8: ``w ≈ w_int8 * scale[:, None]``."""
    scale = w.abs().amax(dim=1).clamp_min(1e-8) / 127
    w_int8 = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return w_int8, scale.to(w.dtype)


def reference(x: torch.Tensor, w_int8: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x @ (w_int8.to(x.dtype) * scale[:, None].to(x.dtype)).T


def make_inputs(shape, dtype, gen):
    m, n, k = shape
    x = torch.randn(m, k, generator=gen).to(dtype)
    w = torch.randint(-127, 128, (n, k), generator=gen, dtype=torch.int8)
    scale = (torch.rand(n, generator=gen) * 0.02 + 0.001).to(dtype)
    return x, w, scale


CHECK = dict(
    shapes=[(1, 1, 1), (5, 7, 3), (33, 40, 17), (16, 32, 64)],
    dtypes=[torch.float32, torch.float16],
    make_inputs=make_inputs,
    tolerances={torch.float32: dot_tolerance()},
)

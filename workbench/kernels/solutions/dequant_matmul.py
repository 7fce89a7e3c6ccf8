"""Solution: INT4 weight-only matmul. Two 4-bit weights share a byte: the low nibble holds column k
of the first half of K, the high nibble column k + K/2; a stored nibble u means the weight u - 8."""

import torch
import triton
import triton.language as tl


@triton.jit
def int4_matmul_kernel(x_ptr, wp_ptr, s_ptr, y_ptr, M, N, HALF_K,
                       stride_xm, stride_wn, stride_ym,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, HALF_K, BLOCK_K):
        ks = k0 + offs_k
        kmask = ks < HALF_K
        packed = tl.load(wp_ptr + offs_n[None, :] * stride_wn + ks[:, None],
                         mask=(offs_n[None, :] < N) & kmask[:, None], other=0x88).to(tl.int32)
        lo = ((packed & 0xF) - 8).to(tl.float32)  # weights for columns ks
        hi = (((packed >> 4) & 0xF) - 8).to(tl.float32)  # weights for columns ks + HALF_K
        row_mask = (offs_m[:, None] < M) & kmask[None, :]
        x_lo = tl.load(x_ptr + offs_m[:, None] * stride_xm + ks[None, :], mask=row_mask, other=0.0).to(tl.float32)
        x_hi = tl.load(x_ptr + offs_m[:, None] * stride_xm + HALF_K + ks[None, :], mask=row_mask, other=0.0).to(tl.float32)
        acc = tl.dot(x_lo, lo, acc)
        acc = tl.dot(x_hi, hi, acc)
    scale = tl.load(s_ptr + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)
    y = acc * scale[None, :]
    tl.store(y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :], y.to(y_ptr.dtype.element_ty),
             mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


def int4_matmul(x: torch.Tensor, w_packed: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    x = x.contiguous()
    M, K = x.shape
    N, half_k = w_packed.shape
    y = torch.empty((M, N), device=x.device, dtype=x.dtype)
    grid = (triton.cdiv(M, 16), triton.cdiv(N, 16))
    int4_matmul_kernel[grid](x, w_packed, scale, y, M, N, half_k, x.stride(0), w_packed.stride(0), y.stride(0),
                             BLOCK_M=16, BLOCK_N=16, BLOCK_K=16)
    return y

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


# Tiles tried by triton.autotune on a GPU, once per (M, N, K): small BLOCK_M for the weight-bound
# small-batch case, larger ones for big batches. Tests run every configuration through the interpreter.
GPU_CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=s)
    for bm, bn, bk, w, s in ((16, 64, 128, 4, 4), (16, 128, 128, 4, 4), (32, 64, 128, 4, 4), (16, 256, 64, 8, 3),
                             (64, 64, 64, 4, 3), (64, 128, 64, 4, 4), (128, 128, 64, 8, 3), (128, 256, 64, 8, 3))
]
_autotuned = None


def int8_matmul(x: torch.Tensor, w_int8: torch.Tensor, scale: torch.Tensor, *,
                blocks: tuple[int, int, int] | None = None) -> torch.Tensor:
    """``x (M, K) @ (w_int8 (N, K) * scale (N,)[:, None]).T`` -> (M, N) in x's dtype. On a GPU the tiles
    are autotuned unless ``blocks`` is given; 16 × 16 × 16 in the interpreter."""
    global _autotuned
    M, K = x.shape
    N = w_int8.shape[0]
    y = torch.empty((M, N), device=x.device, dtype=x.dtype)
    args = (x, w_int8, scale, y, M, N, K, x.stride(0), x.stride(1), w_int8.stride(0), w_int8.stride(1),
            y.stride(0), y.stride(1))
    if blocks is None and not mode().interpreted:
        if _autotuned is None:
            _autotuned = triton.autotune(configs=GPU_CONFIGS, key=["M", "N", "K"])(int8_matmul_kernel)
        grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]), triton.cdiv(N, meta["BLOCK_N"]))  # noqa: E731
        _autotuned[grid](*args)
        return y
    bm, bn, bk = blocks or (16, 16, 16)
    int8_matmul_kernel[(triton.cdiv(M, bm), triton.cdiv(N, bn))](*args, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk)
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

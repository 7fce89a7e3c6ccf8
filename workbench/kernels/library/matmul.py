"""Tutorial 04: tiled matrix multiplication with grouped ordering (after Triton's 03-matrix-multiplication).

Each program computes one BLOCK_M × BLOCK_N tile of C, walking K in BLOCK_K steps. Programs are
numbered so that GROUP_M consecutive ones share a column of B tiles: the tiles they load stay in L2.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from workbench.kernels.checker import dot_tolerance
from workbench.kernels.modes import mode


@triton.jit
def matmul_kernel(
    a_ptr, b_ptr, c_ptr,
    M, N, K,
    stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    # grouped ordering: walk GROUP_M tile-rows down a column before moving right
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    num_pid_in_group = GROUP_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak
    b_ptrs = b_ptr + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        k_left = K - k * BLOCK_K
        a = tl.load(a_ptrs, mask=(offs_m[:, None] < M) & (offs_k[None, :] < k_left), other=0.0)
        b = tl.load(b_ptrs, mask=(offs_k[:, None] < k_left) & (offs_n[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    c = acc.to(c_ptr.dtype.element_ty)
    c_ptrs = c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    tl.store(c_ptrs, c, mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


# Configurations for a GPU (Hopper/Ampere), tried by triton.autotune once per (M, N, K).
GPU_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=4, num_warps=8),
    triton.Config({"BLOCK_M": 256, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
]
_autotuned = None


def matmul(a: torch.Tensor, b: torch.Tensor, *, blocks: tuple[int, int, int] | None = None, group_m: int = 8) -> torch.Tensor:
    """``a @ b`` for 2-D tensors. On a GPU the block sizes are autotuned unless ``blocks`` is given;
    in interpreter mode they default to 16 × 16 × 16 (the interpreter's cost grows with the tile count)."""
    global _autotuned
    assert a.dim() == 2 and b.dim() == 2 and a.shape[1] == b.shape[0], f"cannot multiply {tuple(a.shape)} by {tuple(b.shape)}"
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty((M, N), device=a.device, dtype=a.dtype)
    args = (a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1))
    if blocks is None and not mode().interpreted:
        if _autotuned is None:
            _autotuned = triton.autotune(configs=GPU_CONFIGS, key=["M", "N", "K"])(matmul_kernel)
        grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"]),)  # noqa: E731
        _autotuned[grid](*args)
        return c
    bm, bn, bk = blocks or (16, 16, 16)
    grid = (triton.cdiv(M, bm) * triton.cdiv(N, bn),)
    matmul_kernel[grid](*args, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=group_m)
    return c


def reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b


CHECK = dict(
    shapes=[((1, 1), (1, 1)), ((5, 7), (7, 3)), ((33, 17), (17, 40)), ((64, 48), (48, 32))],
    dtypes=[torch.float32, torch.float16],
    tolerances={torch.float32: dot_tolerance()},
)


def flops(m: int, n: int, k: int) -> int:
    return 2 * m * n * k

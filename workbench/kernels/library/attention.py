"""Tutorial 05: fused attention forward (FlashAttention's online softmax; after Triton's 06-fused-attention).

One program computes BLOCK_M rows of the output for one (batch, head): it streams K and V in
BLOCK_N blocks, keeps a running max ``m_i`` and sum ``l_i`` of the softmax, and rescales its
accumulator whenever the max grows. The S × S score matrix is never written to memory.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from workbench.kernels.checker import dot_tolerance
from workbench.kernels.modes import mode


@triton.jit
def attention_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr,
    stride_qh, stride_qs, stride_kh, stride_ks, stride_vh, stride_vs, stride_oh, stride_os,
    seq_len, head_dim, sm_scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    start_m = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)  # (batch, head) flattened
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_mask = offs_d[None, :] < head_dim

    q = tl.load(q_ptr + bh * stride_qh + offs_m[:, None] * stride_qs + offs_d[None, :],
                mask=(offs_m[:, None] < seq_len) & d_mask, other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634  # use exp2: fold log2(e) into the scale

    for start_n in range(0, seq_len, BLOCK_N):
        kv_rows = start_n + offs_n
        kv_mask = (kv_rows[:, None] < seq_len) & d_mask
        k = tl.load(k_ptr + bh * stride_kh + kv_rows[:, None] * stride_ks + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(v_ptr + bh * stride_vh + kv_rows[:, None] * stride_vs + offs_d[None, :], mask=kv_mask, other=0.0)
        qk = tl.dot(q, tl.trans(k)) * qk_scale
        qk = tl.where(kv_rows[None, :] < seq_len, qk, float("-inf"))  # keys past the end count for nothing
        m_new = tl.maximum(m_i, tl.max(qk, axis=1))
        p = tl.math.exp2(qk - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)  # rescales what was accumulated under the old max
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new

    out = acc / l_i[:, None]
    tl.store(o_ptr + bh * stride_oh + offs_m[:, None] * stride_os + offs_d[None, :],
             out.to(o_ptr.dtype.element_ty), mask=(offs_m[:, None] < seq_len) & d_mask)


# Tiles tried by triton.autotune on a GPU, once per (sequence length, head size). BLOCK_D is fixed by
# the head size; tests run every configuration through the interpreter for correctness.
GPU_CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
    for bm, bn, w, s in ((128, 64, 4, 3), (128, 64, 8, 3), (128, 128, 8, 3), (64, 64, 4, 3), (128, 32, 4, 4),
                         (64, 32, 4, 4))
]
_autotuned = None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, blocks: list[int] | None = None) -> torch.Tensor:
    """Non-causal scaled dot-product attention over (batch, heads, seq, head_dim) tensors. On a GPU
    the tiles are autotuned unless ``blocks=(BLOCK_M, BLOCK_N)`` is given; 16 × 16 in the interpreter."""
    global _autotuned
    assert q.shape == k.shape == v.shape and q.dim() == 4, "q, k, v must share a (B, H, S, D) shape"
    B, H, S, D = q.shape
    q3, k3, v3 = (t.reshape(B * H, S, D).contiguous() for t in (q, k, v))
    o = torch.empty_like(q3)
    block_d = max(16, triton.next_power_of_2(D))
    args = (q3, k3, v3, o,
            q3.stride(0), q3.stride(1), k3.stride(0), k3.stride(1), v3.stride(0), v3.stride(1), o.stride(0), o.stride(1),
            S, D, 1.0 / math.sqrt(D))
    if blocks is None and not mode().interpreted:
        if _autotuned is None:
            _autotuned = triton.autotune(configs=GPU_CONFIGS, key=["seq_len", "head_dim"])(attention_kernel)
        grid = lambda meta: (triton.cdiv(S, meta["BLOCK_M"]), B * H)  # noqa: E731
        wrap_triton(_autotuned)[grid](*args, BLOCK_D=block_d)
        return o.reshape(B, H, S, D)
    block_m, block_n = blocks or (16, 16)
    wrap_triton(attention_kernel)[(triton.cdiv(S, block_m), B * H)](
        *args, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d, num_warps=4, num_stages=1 if mode().interpreted else 3,
    )
    return o.reshape(B, H, S, D)


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.scaled_dot_product_attention(q, k, v)


CHECK = dict(
    shapes=[(1, 1, 1, 16), (1, 2, 7, 16), (2, 1, 33, 24), (1, 2, 64, 32)],
    dtypes=[torch.float32, torch.float16],
    tolerances={torch.float32: dot_tolerance()},
)


def flops(b: int, h: int, s: int, d: int) -> int:
    return 4 * b * h * s * s * d  # QK^T and PV, two FLOPs per multiply-add

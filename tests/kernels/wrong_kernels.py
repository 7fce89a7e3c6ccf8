"""Deliberately wrong kernels, one per exercise and a few per tutorial: the checker must fail each.

Each has one realistic bug (a missing mask, bad padding, a forgotten offset, the wrong formula), so
the tests show that ``wb.kernels.check`` catches that class of bug and says what went wrong.
"""

from workbench.kernels.modes import setup

setup()  # kernels below must be decorated in the mode chosen for this machine

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

# -- exercises ---------------------------------------------------------------------------------------


@triton.jit
def _outer_add_cols_unmasked(x_ptr, y_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    x = tl.load(x_ptr + rows, mask=rows < M, other=0.0)
    y = tl.load(y_ptr + cols)  # BUG: no mask on the columns
    tl.store(out_ptr + rows[:, None] * N + cols[None, :], x[:, None] + y[None, :], mask=rows[:, None] < M)


def outer_add(x, y):
    M, N = x.numel(), y.numel()
    out = torch.empty((M, N), device=x.device, dtype=x.dtype)
    _outer_add_cols_unmasked[(triton.cdiv(M, 16), triton.cdiv(N, 16))](x, y, out, M, N, BLOCK_M=16, BLOCK_N=16)
    return out


@triton.jit
def _log_softmax_zero_padding(out_ptr, in_ptr, stride, n_cols, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(in_ptr + row * stride + cols, mask=mask, other=0.0).to(tl.float32)  # BUG: pads with 0, not -inf
    z = x - tl.max(x, axis=0)
    lse = tl.log(tl.sum(tl.exp(z), axis=0))
    tl.store(out_ptr + row * stride + cols, (z - lse).to(out_ptr.dtype.element_ty), mask=mask)


def log_softmax(x):
    x = x.contiguous()
    n = x.shape[-1]
    out = torch.empty_like(x)
    _log_softmax_zero_padding[(x.numel() // n,)](out, x, n, n, BLOCK_SIZE=triton.next_power_of_2(n))
    return out


@triton.jit
def _rms_norm_wrong_count(x_ptr, w_ptr, y_ptr, stride, n_cols, eps, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * stride + cols, mask=mask, other=0.0).to(tl.float32)
    rms = tl.sqrt(tl.sum(x * x, axis=0) / BLOCK_SIZE + eps)  # BUG: divides by the block, not the row length
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(y_ptr + row * stride + cols, (x / rms * w).to(y_ptr.dtype.element_ty), mask=mask)


def rms_norm(x, weight):
    x = x.contiguous()
    n = x.shape[-1]
    y = torch.empty_like(x)
    _rms_norm_wrong_count[(x.numel() // n,)](x, weight, y, n, n, 1e-6, BLOCK_SIZE=triton.next_power_of_2(n))
    return y


@triton.jit
def _bmm_no_batch_offset(a_ptr, b_ptr, c_ptr, M, N, K,
                         stride_ab, stride_am, stride_ak, stride_bb, stride_bk, stride_bn, stride_cb, stride_cm,
                         stride_cn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    batch = tl.program_id(2).to(tl.int64)
    offs_k = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):  # BUG: a and b never move to this batch element
        ks = k0 + offs_k
        a = tl.load(a_ptr + offs_m[:, None] * stride_am + ks[None, :] * stride_ak,
                    mask=(offs_m[:, None] < M) & (ks[None, :] < K), other=0.0)
        b = tl.load(b_ptr + ks[:, None] * stride_bk + offs_n[None, :] * stride_bn,
                    mask=(ks[:, None] < K) & (offs_n[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc)
    tl.store(c_ptr + batch * stride_cb + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn, acc,
             mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


def bmm(a, b):
    B, M, K = a.shape
    N = b.shape[2]
    c = torch.empty((B, M, N), device=a.device, dtype=a.dtype)
    _bmm_no_batch_offset[(triton.cdiv(M, 16), triton.cdiv(N, 16), B)](
        a, b, c, M, N, K, *a.stride(), *b.stride(), *c.stride(), BLOCK_M=16, BLOCK_N=16, BLOCK_K=16)
    return c


def causal_attention(q, k, v):
    # BUG: the tutorial's non-causal kernel: every query sees every key
    from workbench.kernels.library.attention import attention

    return attention(q, k, v)


@triton.jit
def _int4_no_zero_point(x_ptr, wp_ptr, s_ptr, y_ptr, M, N, HALF_K, stride_xm, stride_wn, stride_ym,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, HALF_K, BLOCK_K):
        ks = k0 + offs_k
        kmask = ks < HALF_K
        packed = tl.load(wp_ptr + offs_n[None, :] * stride_wn + ks[:, None],
                         mask=(offs_n[None, :] < N) & kmask[:, None], other=0).to(tl.int32)
        lo = (packed & 0xF).to(tl.float32)  # BUG: forgets to subtract the zero point 8
        hi = ((packed >> 4) & 0xF).to(tl.float32)
        rmask = (offs_m[:, None] < M) & kmask[None, :]
        x_lo = tl.load(x_ptr + offs_m[:, None] * stride_xm + ks[None, :], mask=rmask, other=0.0)
        x_hi = tl.load(x_ptr + offs_m[:, None] * stride_xm + HALF_K + ks[None, :], mask=rmask, other=0.0)
        acc = tl.dot(x_lo, lo, acc)
        acc = tl.dot(x_hi, hi, acc)
    scale = tl.load(s_ptr + offs_n, mask=offs_n < N, other=0.0)
    tl.store(y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :], acc * scale[None, :],
             mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


def int4_matmul(x, w_packed, scale):
    M, K = x.shape
    N, half_k = w_packed.shape
    y = torch.empty((M, N), device=x.device, dtype=x.dtype)
    _int4_no_zero_point[(triton.cdiv(M, 16), triton.cdiv(N, 16))](
        x, w_packed, scale, y, M, N, half_k, x.stride(0), w_packed.stride(0), y.stride(0),
        BLOCK_M=16, BLOCK_N=16, BLOCK_K=16)
    return y


def bias_gelu_tanh(x, bias):
    # BUG (subtle): the exact erf GELU where the tanh approximation was asked for; off by ~1e-3,
    # inside float16's tolerance but not float32's
    from workbench.kernels.library.bias_gelu import bias_gelu

    return bias_gelu(x, bias)


@triton.jit
def _argmax_block_local(x_ptr, out_ptr, n_cols, stride, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    best = tl.full([], float("-inf"), tl.float32)
    best_idx = tl.full([], 0, tl.int32)
    for off in range(0, n_cols, BLOCK_SIZE):
        cols = off + tl.arange(0, BLOCK_SIZE)
        x = tl.load(x_ptr + row * stride + cols, mask=cols < n_cols, other=-float("inf")).to(tl.float32)
        m, i = tl.max(x, axis=0, return_indices=True)
        better = m > best
        best_idx = tl.where(better, i, best_idx)  # BUG: the index within the block, without `off`
        best = tl.where(better, m, best)
    tl.store(out_ptr + row, best_idx)


def row_argmax(x):
    x = x.contiguous()
    out = torch.empty(x.shape[0], device=x.device, dtype=torch.int32)
    block = min(128, triton.next_power_of_2(x.shape[1]))
    _argmax_block_local[(x.shape[0],)](x, out, x.shape[1], x.stride(0), BLOCK_SIZE=block)
    return out


WRONG_EXERCISES = {
    "vector_add.outer_add": outer_add,
    "softmax.log_softmax": log_softmax,
    "layernorm.rms_norm": rms_norm,
    "matmul.bmm": bmm,
    "attention.causal_attention": causal_attention,
    "dequant_matmul.int4_matmul": int4_matmul,
    "bias_gelu.bias_gelu_tanh": bias_gelu_tanh,
    "reduction.row_argmax": row_argmax,
}

# -- tutorial kernels ----------------------------------------------------------------------------------


@triton.jit
def _add_no_mask(x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets) + tl.load(y_ptr + offsets))  # BUG: no mask


def add_no_mask(x, y):
    out = torch.empty_like(x)
    _add_no_mask[(triton.cdiv(x.numel(), 128),)](x, y, out, x.numel(), BLOCK_SIZE=128)
    return out


def add_grid_too_small(x, y):
    from workbench.kernels.library.vector_add import add_kernel

    out = torch.empty_like(x)
    n = x.numel()
    add_kernel[(n // 128,)](x, y, out, n, BLOCK_SIZE=128)  # BUG: floor instead of cdiv: the tail is never written
    return out


@triton.jit
def _softmax_zero_padding(out_ptr, in_ptr, in_stride, out_stride, n_cols, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(in_ptr + row * in_stride + cols, mask=mask, other=0.0).to(tl.float32)  # BUG: pads with 0
    num = tl.exp(x - tl.max(x, axis=0))  # padding lanes add exp(0 - max) to the sum
    tl.store(out_ptr + row * out_stride + cols, num / tl.sum(num, axis=0), mask=mask)


def softmax_zero_padding(x):
    x2 = x.reshape(-1, x.shape[-1]).contiguous()
    out = torch.empty_like(x2)
    _softmax_zero_padding[(x2.shape[0],)](out, x2, x2.stride(0), out.stride(0), x2.shape[1],
                                          BLOCK_SIZE=triton.next_power_of_2(x2.shape[1]))
    return out.reshape(x.shape)


@triton.jit
def _matmul_k_unmasked(a_ptr, b_ptr, c_ptr, M, N, K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                       BLOCK_K: tl.constexpr):
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + offs_k
        a = tl.load(a_ptr + offs_m[:, None] * K + ks[None, :], mask=offs_m[:, None] < M, other=0.0)  # BUG: K unmasked
        b = tl.load(b_ptr + ks[:, None] * N + offs_n[None, :], mask=offs_n[None, :] < N, other=0.0)
        acc = tl.dot(a, b, acc)
    tl.store(c_ptr + offs_m[:, None] * N + offs_n[None, :], acc, mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


def matmul_k_unmasked(a, b):
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty((M, N), device=a.device, dtype=a.dtype)
    _matmul_k_unmasked[(triton.cdiv(M, 16), triton.cdiv(N, 16))](a, b, c, M, N, K, BLOCK_M=16, BLOCK_N=16, BLOCK_K=16)
    return c


def attention_no_scale(q, k, v):
    from workbench.kernels.library.attention import attention_kernel

    B, H, S, D = q.shape
    q3, k3, v3 = (t.reshape(B * H, S, D).contiguous() for t in (q, k, v))
    o = torch.empty_like(q3)
    attention_kernel[(triton.cdiv(S, 16), B * H)](
        q3, k3, v3, o, q3.stride(0), q3.stride(1), k3.stride(0), k3.stride(1), v3.stride(0), v3.stride(1),
        o.stride(0), o.stride(1), S, D, 1.0,  # BUG: sm_scale 1.0 instead of 1/sqrt(D)
        BLOCK_M=16, BLOCK_N=16, BLOCK_D=max(16, triton.next_power_of_2(D)))
    return o.reshape(B, H, S, D)


WRONG_TUTORIAL = {
    "vector_add": [add_no_mask, add_grid_too_small],
    "softmax": [softmax_zero_padding],
    "matmul": [matmul_k_unmasked],
    "attention": [attention_no_scale],
}

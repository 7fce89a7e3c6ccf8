"""Puzzle-style exercises for ``kernels_tutorials/``: a spec, a stub to fill, an automatic checker,
and a hidden solution (in ``workbench.kernels.solutions``, shown only on request).

    ex = wb.kernels.exercise("softmax.log_softmax")
    ex                      # the spec
    ex.stub                 # the code to start from (paste it into a %%triton cell)
    ex.check(log_softmax)   # runs wb.kernels.check with the exercise's shapes; prints the verdict
    ex.show_solution()      # when stuck
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.kernels.checker import CheckReport


@dataclass
class Exercise:
    key: str  # "<tutorial>.<name>", e.g. "softmax.log_softmax"
    title: str
    spec: str
    stub: str
    entry: str  # the launcher the stub defines and the checker calls
    reference: Callable[..., Any]
    shapes: Sequence[Any]
    dtypes: Sequence[str] = ("float32",)
    make_inputs: Callable[..., Any] | None = None
    tolerances: dict[str, tuple[float, float]] = field(default_factory=dict)
    uses_dot: bool = False  # float32 built on tl.dot: TF32 tolerance on a GPU (checker.dot_tolerance)

    @property
    def tutorial(self) -> str:
        return self.key.split(".", 1)[0]

    def _check_args(self) -> dict[str, Any]:
        import torch

        from workbench.kernels.checker import dot_tolerance

        tolerances = {getattr(torch, k): v for k, v in self.tolerances.items()}
        if self.uses_dot:
            tolerances[torch.float32] = dot_tolerance()
        return dict(
            shapes=list(self.shapes),
            dtypes=[getattr(torch, d) for d in self.dtypes],
            make_inputs=self.make_inputs,
            tolerances=tolerances,
        )

    def check(self, fn: Callable[..., Any], *, quiet: bool = False) -> CheckReport:
        """Check a launcher against the spec on every case; print the verdict unless ``quiet``."""
        from workbench.kernels.checker import check

        if not callable(fn):
            raise WorkbenchError(
                f"ex.check needs the launcher function, got a {type(fn).__name__}",
                f"pass the function the stub defines: ex.check({self.entry})",
            )
        report = check(fn, self.reference, name=self.key, **self._check_args())
        if not quiet:
            print(report.summary())
            if not report:
                print("  keep going: fix the kernel and run the check again (ex.show_solution() if stuck)")
        return report

    def solution(self) -> Callable[..., Any]:
        """The hidden solution's launcher."""
        module = importlib.import_module(f"workbench.kernels.solutions.{self.tutorial}")
        return getattr(module, self.entry)

    def solution_source(self) -> str:
        module = importlib.import_module(f"workbench.kernels.solutions.{self.tutorial}")
        return inspect.getsource(module)

    def show_solution(self) -> None:
        print(self.solution_source())

    def __str__(self) -> str:
        return f"Exercise {self.key}: {self.title}\n\n{self.spec}\n\nCheck it with: ex.check({self.entry})"

    def _repr_markdown_(self) -> str:
        return (
            f"**Exercise `{self.key}`: {self.title}**\n\n{self.spec}\n\n"
            f"Start from `ex.stub`, then run `ex.check({self.entry})`. Stuck? `ex.show_solution()`."
        )

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


# -- references and input makers (plain torch) -------------------------------------------------------


def _outer_add_ref(x, y):
    return x[:, None] + y[None, :]


def _log_softmax_ref(x):
    return torch_().log_softmax(x, dim=-1)


def _rms_norm_ref(x, w):
    return x * torch_().rsqrt((x * x).mean(dim=-1, keepdim=True) + 1e-6) * w


def _rms_inputs(shape, dtype, gen):
    torch = torch_()
    rows, cols = shape
    return torch.randn(rows, cols, generator=gen).to(dtype), (1 + 0.1 * torch.randn(cols, generator=gen)).to(dtype)


def _bmm_ref(a, b):
    return torch_().bmm(a, b)


def _causal_ref(q, k, v):
    return torch_().nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)


def _unpack_int4(w_packed):
    torch = torch_()
    w = w_packed.to(torch.int32)
    return torch.cat([(w & 0xF) - 8, ((w >> 4) & 0xF) - 8], dim=1)


def _int4_ref(x, w_packed, scale):
    w = _unpack_int4(w_packed).to(x.dtype) * scale[:, None].to(x.dtype)
    return x @ w.T


def _int4_inputs(shape, dtype, gen):
    torch = torch_()
    m, n, k = shape
    x = torch.randn(m, k, generator=gen).to(dtype)
    w_packed = torch.randint(0, 256, (n, k // 2), generator=gen, dtype=torch.int32).to(torch.uint8)
    scale = (torch.rand(n, generator=gen) * 0.05 + 0.01).to(dtype)
    return x, w_packed, scale


def _gelu_tanh_ref(x, b):
    return torch_().nn.functional.gelu(x + b, approximate="tanh")


def _bias_inputs(shape, dtype, gen):
    torch = torch_()
    rows, cols = shape
    return torch.randn(rows, cols, generator=gen).to(dtype), torch.randn(cols, generator=gen).to(dtype)


def _argmax_ref(x):
    return x.argmax(dim=-1).to(torch_().int32)


def torch_():
    import torch

    return torch


# -- the exercises ---------------------------------------------------------------------------------

_STUB_HEADER = "# Fill in the kernel body (and the launcher where it says TODO), then run the check cell.\n"

EXERCISES: dict[str, Exercise] = {}


def _add(ex: Exercise) -> None:
    ex.stub = _STUB_HEADER + textwrap.dedent(ex.stub).strip() + "\n"
    EXERCISES[ex.key] = ex


_add(Exercise(
    key="vector_add.outer_add",
    title="outer sum",
    spec=(
        "Given `x` of length M and `y` of length N, write `out` of shape (M, N) with "
        "`out[i, j] = x[i] + y[j]`. Use a 2-D grid of BLOCK_M × BLOCK_N tiles; M and N need not be "
        "multiples of the block sizes (mask both axes)."
    ),
    stub='''
        @triton.jit
        def outer_add_kernel(x_ptr, y_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
            # TODO: rows from program_id(0), cols from program_id(1); load x[rows] and y[cols];
            #       broadcast with [:, None] and [None, :]; store with a 2-D mask
            pass


        def outer_add(x, y):
            M, N = x.numel(), y.numel()
            out = torch.empty((M, N), device=x.device, dtype=x.dtype)
            grid = (triton.cdiv(M, 16), triton.cdiv(N, 16))
            outer_add_kernel[grid](x, y, out, M, N, BLOCK_M=16, BLOCK_N=16)
            return out
    ''',
    entry="outer_add",
    reference=_outer_add_ref,
    shapes=[((1,), (1,)), ((7,), (5,)), ((33,), (40,)), ((64,), (16,))],
    dtypes=("float32", "float16"),
))

_add(Exercise(
    key="softmax.log_softmax",
    title="row-wise log-softmax",
    spec=(
        "Write `log_softmax(x)` for a 2-D `x`: `x - max(x) - log(sum(exp(x - max(x))))` along each row, "
        "in one pass over the row, computing in float32. Rows of any length up to one block."
    ),
    stub='''
        @triton.jit
        def log_softmax_kernel(out_ptr, in_ptr, stride, n_cols, BLOCK_SIZE: tl.constexpr):
            row = tl.program_id(0).to(tl.int64)
            cols = tl.arange(0, BLOCK_SIZE)
            # TODO: load the row (padding lanes must not change the max or the sum),
            #       compute the log-softmax in float32, store it
            pass


        def log_softmax(x):
            x = x.contiguous()
            n_cols = x.shape[-1]
            out = torch.empty_like(x)
            log_softmax_kernel[(x.numel() // n_cols,)](out, x, n_cols, n_cols, BLOCK_SIZE=triton.next_power_of_2(n_cols))
            return out
    ''',
    entry="log_softmax",
    reference=_log_softmax_ref,
    shapes=[(1, 1), (1, 7), (3, 129), (16, 300)],
    dtypes=("float32", "float16"),
))

_add(Exercise(
    key="layernorm.rms_norm",
    title="RMSNorm",
    spec=(
        "Write `rms_norm(x, w)`: `y = x / sqrt(mean(x²) + 1e-6) * w` along each row of a 2-D `x` "
        "(the norm of Llama-style models: no mean subtracted, no bias)."
    ),
    stub='''
        @triton.jit
        def rms_norm_kernel(x_ptr, w_ptr, y_ptr, stride, n_cols, eps, BLOCK_SIZE: tl.constexpr):
            # TODO: one program per row: load, mean of squares (padding must count as 0), scale by w
            pass


        def rms_norm(x, weight):
            x = x.contiguous()
            n_cols = x.shape[-1]
            y = torch.empty_like(x)
            rms_norm_kernel[(x.numel() // n_cols,)](x, weight, y, n_cols, n_cols, 1e-6,
                                                    BLOCK_SIZE=triton.next_power_of_2(n_cols))
            return y
    ''',
    entry="rms_norm",
    reference=_rms_norm_ref,
    shapes=[(1, 1), (1, 7), (3, 129), (16, 300)],
    dtypes=("float32", "float16"),
    make_inputs=_rms_inputs,
))

_add(Exercise(
    key="matmul.bmm",
    title="batched matmul",
    spec=(
        "Write `bmm(a, b)` for `a` (B, M, K) and `b` (B, K, N): one matmul per batch element, with the "
        "batch on a third grid axis (`tl.program_id(2)`) and the batch strides added to the base pointers."
    ),
    stub='''
        @triton.jit
        def bmm_kernel(a_ptr, b_ptr, c_ptr, M, N, K,
                       stride_ab, stride_am, stride_ak, stride_bb, stride_bk, stride_bn, stride_cb, stride_cm, stride_cn,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
            # TODO: the tiled matmul of the tutorial, shifted to batch tl.program_id(2)
            pass


        def bmm(a, b):
            B, M, K = a.shape
            N = b.shape[2]
            c = torch.empty((B, M, N), device=a.device, dtype=a.dtype)
            grid = (triton.cdiv(M, 16), triton.cdiv(N, 16), B)
            bmm_kernel[grid](a, b, c, M, N, K, *a.stride(), *b.stride(), *c.stride(),
                             BLOCK_M=16, BLOCK_N=16, BLOCK_K=16)
            return c
    ''',
    entry="bmm",
    reference=_bmm_ref,
    shapes=[((1, 1, 1), (1, 1, 1)), ((2, 5, 7), (2, 7, 3)), ((3, 33, 17), (3, 17, 20))],
    dtypes=("float32",),
    uses_dot=True,
))

_add(Exercise(
    key="attention.causal_attention",
    title="causal attention",
    spec=(
        "Make the fused attention causal: query i attends to keys 0..i only (`tl.where` with -inf on the "
        "scores), and skip the key blocks that lie entirely after the query block."
    ),
    stub='''
        @triton.jit
        def causal_attention_kernel(q_ptr, k_ptr, v_ptr, o_ptr, stride_h, stride_s, seq_len, head_dim, sm_scale,
                                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
            # TODO: the tutorial's attention kernel, plus the causal mask
            pass


        def causal_attention(q, k, v):
            B, H, S, D = q.shape
            q3, k3, v3 = (t.reshape(B * H, S, D).contiguous() for t in (q, k, v))
            o = torch.empty_like(q3)
            grid = (triton.cdiv(S, 16), B * H)
            causal_attention_kernel[grid](q3, k3, v3, o, q3.stride(0), q3.stride(1), S, D, D ** -0.5,
                                          BLOCK_M=16, BLOCK_N=16, BLOCK_D=max(16, triton.next_power_of_2(D)))
            return o.reshape(B, H, S, D)
    ''',
    entry="causal_attention",
    reference=_causal_ref,
    shapes=[(1, 1, 1, 16), (1, 2, 7, 16), (2, 1, 37, 16)],
    dtypes=("float32",),
    uses_dot=True,
))

_add(Exercise(
    key="dequant_matmul.int4_matmul",
    title="INT4 weight-only matmul",
    spec=(
        "Weights are INT4, two per byte: `w_packed` is uint8 of shape (N, K/2); its low nibble holds "
        "column k of the first half of K, its high nibble column k + K/2, and a stored nibble u means "
        "the weight u - 8. Write `int4_matmul(x, w_packed, scale)` = `x @ (W * scale[:, None]).T`, "
        "unpacking in registers (`& 0xF`, `>> 4`)."
    ),
    stub='''
        @triton.jit
        def int4_matmul_kernel(x_ptr, wp_ptr, s_ptr, y_ptr, M, N, HALF_K, stride_xm, stride_wn, stride_ym,
                               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
            # TODO: per K/2 block: load packed bytes as a (BLOCK_K, BLOCK_N) tile, split the nibbles,
            #       dot the low half of x with the low nibbles and the high half with the high ones
            pass


        def int4_matmul(x, w_packed, scale):
            x = x.contiguous()
            M, K = x.shape
            N, half_k = w_packed.shape
            y = torch.empty((M, N), device=x.device, dtype=x.dtype)
            grid = (triton.cdiv(M, 16), triton.cdiv(N, 16))
            int4_matmul_kernel[grid](x, w_packed, scale, y, M, N, half_k, x.stride(0), w_packed.stride(0),
                                     y.stride(0), BLOCK_M=16, BLOCK_N=16, BLOCK_K=16)
            return y
    ''',
    entry="int4_matmul",
    reference=_int4_ref,
    shapes=[(1, 1, 2), (5, 7, 6), (33, 20, 34)],
    dtypes=("float32",),
    make_inputs=_int4_inputs,
    uses_dot=True,
))

_add(Exercise(
    key="bias_gelu.bias_gelu_tanh",
    title="bias + GELU, tanh approximation",
    spec=(
        "Write `bias_gelu_tanh(x, b)` = `0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³)))` with `z = x + b`. "
        "There is no `tl.tanh` in every Triton version: build it from `tl.sigmoid` or `tl.exp`."
    ),
    stub='''
        @triton.jit
        def bias_gelu_tanh_kernel(x_ptr, b_ptr, y_ptr, n_rows, n_cols, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
            # TODO: 2-D tiles; add the bias (broadcast over rows); tanh(u) = 2·sigmoid(2u) - 1
            pass


        def bias_gelu_tanh(x, bias):
            x = x.contiguous()
            n_cols = x.shape[-1]
            rows = x.numel() // n_cols
            y = torch.empty_like(x)
            grid = (triton.cdiv(rows, 16), triton.cdiv(n_cols, 64))
            bias_gelu_tanh_kernel[grid](x, bias, y, rows, n_cols, BLOCK_M=16, BLOCK_N=64)
            return y
    ''',
    entry="bias_gelu_tanh",
    reference=_gelu_tanh_ref,
    shapes=[(1, 1), (3, 7), (17, 129), (16, 64)],
    dtypes=("float32", "float16"),
    make_inputs=_bias_inputs,
))

_add(Exercise(
    key="reduction.row_argmax",
    title="row-wise argmax",
    spec=(
        "Write `row_argmax(x)`: the column index of the largest element of each row, as int32, for rows "
        "longer than one block. Keep a running (best value, best index) across blocks; on ties the "
        "first index wins, as in `torch.argmax`."
    ),
    stub='''
        @triton.jit
        def row_argmax_kernel(x_ptr, out_ptr, n_cols, stride, BLOCK_SIZE: tl.constexpr):
            row = tl.program_id(0).to(tl.int64)
            # TODO: loop over column blocks; tl.max(x, axis=0, return_indices=True) gives a block's best
            pass


        def row_argmax(x):
            x = x.contiguous()
            out = torch.empty(x.shape[0], device=x.device, dtype=torch.int32)
            block = min(128, triton.next_power_of_2(x.shape[1]))
            row_argmax_kernel[(x.shape[0],)](x, out, x.shape[1], x.stride(0), BLOCK_SIZE=block)
            return out
    ''',
    entry="row_argmax",
    reference=_argmax_ref,
    shapes=[(1, 1), (1, 7), (3, 129), (5, 1000)],
    dtypes=("float32",),
))


def exercise(key: str) -> Exercise:
    """The exercise named ``key`` (``wb.kernels.exercises()`` lists them)."""
    try:
        return EXERCISES[key]
    except KeyError:
        raise WorkbenchError(
            f"no exercise named {key!r}", f"use one of: {', '.join(EXERCISES)}"
        ) from None


def exercises(tutorial: str | None = None) -> list[str]:
    """The exercise keys, optionally only those of one tutorial (``"softmax"``)."""
    return [k for k, ex in EXERCISES.items() if tutorial is None or ex.tutorial == tutorial]

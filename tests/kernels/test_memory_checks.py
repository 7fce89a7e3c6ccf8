"""The interpreter's memory checks on planted bugs: a store into a neighbouring argument, an overrun
from one view into another view of the same buffer, an order-dependent race, atomics without a
zero-init. Each planted kernel must fail with the right message; its correct twin must pass."""

import pytest
import torch
import triton
import triton.language as tl

from workbench.kernels import guard
from workbench.kernels.access import AccessMap, trace
from workbench.kernels.checker import BF16_INTERPRETER_NOTE, check
from workbench.kernels.library.vector_add import add

pytestmark = pytest.mark.skipif(not __import__("workbench.kernels.modes", fromlist=["mode"]).mode().interpreted,
                                reason="the memory checks run in interpreter mode")


# -- a store past `out` into the argument next to it ------------------------------------------------
@triton.jit
def _scale_store_unmasked(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0.0)
    tl.store(out_ptr + offs, 2.0 * x)  # no mask: the last block writes past the end of out


@triton.jit
def _scale_store_masked(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0.0)
    tl.store(out_ptr + offs, 2.0 * x, mask=offs < n)


def _adjacent(kernel):
    """out and x side by side in one allocation: the overrun lands inside another argument, which a
    check against the union of all arguments' extents lets through."""

    def launcher(x):
        buf = torch.empty(2 * x.numel(), dtype=x.dtype)
        out, xx = buf[: x.numel()], buf[x.numel():]
        xx.copy_(x)
        kernel[(triton.cdiv(x.numel(), 32),)](xx, out, x.numel(), BLOCK=32)
        return out.clone()

    return launcher


def test_store_into_the_neighbouring_argument_fails_naming_both_tensors():
    bad = check(_adjacent(_scale_store_unmasked), lambda x: 2 * x, shapes=[(64,), (100,)])
    fits, spills = bad.cases
    assert fits.passed  # 64 is a multiple of the block
    assert not spills.passed and "OutOfBoundsError" in spills.error
    assert "out-of-bounds store in kernel `_scale_store_unmasked`" in spills.error
    assert "tl.store(out_ptr + offs, 2.0 * x)" in spills.error
    assert "28 of 32 active lanes of this store on `out_ptr` fall outside it; 28 land in `x_ptr`" in spills.error
    assert "program (3,)" in spills.error
    assert check(_adjacent(_scale_store_masked), lambda x: 2 * x, shapes=[(64,), (100,)])


def test_a_whole_program_inside_the_neighbour_is_caught_by_the_access_site():
    # one block too many: program 2 writes only into x, every one of its lanes inside *some* tensor
    def launcher(x):
        buf = torch.empty(2 * x.numel(), dtype=x.dtype)
        out, xx = buf[: x.numel()], buf[x.numel():]
        xx.copy_(x)
        _scale_store_unmasked[(x.numel() // 32 + 1,)](xx, out, x.numel(), BLOCK=32)
        return out.clone()

    report = check(launcher, lambda x: 2 * x, shapes=[(64,)])
    assert not report
    err = report.failures[0].error
    assert "program (2,) addresses `x_ptr` here, but program (0,) addressed `out_ptr` with the same store" in err


# -- q, k, v: three views of one fused projection ---------------------------------------------------
@triton.jit
def _qk_rowdot(q_ptr, k_ptr, o_ptr, stride, d, BLOCK: tl.constexpr, MASKED: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    if MASKED:
        q = tl.load(q_ptr + row * stride + cols, mask=cols < d, other=0.0)
    else:
        q = tl.load(q_ptr + row * stride + cols)  # BLOCK > d: reads on into k's columns
    k = tl.load(k_ptr + row * stride + cols, mask=cols < d, other=0.0)
    tl.store(o_ptr + row, tl.sum(q * k, axis=0))


def _qkv_launcher(masked):
    def launcher(qkv):
        d = qkv.shape[1] // 3
        q, k = qkv[:, :d], qkv[:, d: 2 * d]
        out = torch.empty(qkv.shape[0], dtype=qkv.dtype)
        _qk_rowdot[(qkv.shape[0],)](q, k, out, qkv.stride(0), d, BLOCK=triton.next_power_of_2(d) * 2, MASKED=masked)
        return out

    return launcher


def _qk_reference(qkv):
    d = qkv.shape[1] // 3
    return (qkv[:, :d] * qkv[:, d: 2 * d]).sum(-1)


def test_overrun_from_one_view_into_another_view_of_the_same_buffer():
    report = check(_qkv_launcher(masked=False), _qk_reference, shapes=[(5, 3 * 12)])
    assert not report
    err = report.failures[0].error
    assert "out-of-bounds load in kernel `_qk_rowdot`" in err
    assert "of this load on `q_ptr` fall outside it" in err and "land in `k_ptr`, another view of the same storage" in err
    assert check(_qkv_launcher(masked=True), _qk_reference, shapes=[(5, 3 * 12), (1, 3 * 7)])


# -- program i reads what program i-1 wrote ----------------------------------------------------------
@triton.jit
def _prefix_by_blocks(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0.0)
    carry = 0.0
    if pid > 0:  # the previous block's running total, written by the previous program
        carry = tl.load(out_ptr + pid * BLOCK - 1)
    tl.store(out_ptr + offs, tl.cumsum(x, axis=0) + carry, mask=offs < n)


def _prefix(x):
    out = torch.zeros_like(x)  # not empty_like: a reused allocation could hold the right answer already
    _prefix_by_blocks[(triton.cdiv(x.numel(), 16),)](x, out, x.numel(), BLOCK=16)
    return out


def test_order_dependent_race_is_found_in_the_access_map_and_by_reordering():
    # grid order makes it right in the interpreter: program i-1 always ran first
    x = torch.randn(64)
    torch.testing.assert_close(_prefix(x), torch.cumsum(x, 0), atol=1e-5, rtol=1e-5)
    with guard.order("reverse"):
        assert not torch.allclose(_prefix(x), torch.cumsum(x, 0), atol=1e-4)

    report = check(_prefix, lambda x: torch.cumsum(x, 0), shapes=[(16,), (64,)], races="largest", atol=1e-4, rtol=1e-4)
    one_program, several = report.cases
    assert one_program.passed  # one program: nothing to race with
    assert not several.passed
    assert "race on `out_ptr`" in several.error and "written by one program and read by another" in several.error
    assert "program (0,) wrote it" in several.error and "program (1,) read it" in several.error

    # the order runs alone (access-map conflicts off) find it too
    reordered = check(_prefix, lambda x: torch.cumsum(x, 0), shapes=[(64,)], races="all", atol=1e-4, rtol=1e-4)
    assert reordered.failures[0].error.startswith("race on")
    only_orders = check(_prefix, lambda x: torch.cumsum(x, 0), shapes=[(64,)], atol=1e-4, rtol=1e-4, races="all")
    assert only_orders.cases[0].orders == [] and not only_orders  # the map found it first


def test_reordering_alone_catches_what_grid_order_hides():
    from workbench.kernels.checker import CaseResult, _reorder

    x = torch.randn(64)
    got = (_prefix(x),)
    case = CaseResult(shape=(64,), dtype="float32", passed=True)
    _reorder(case, _prefix, (x,), got, None, 1e-4, 1e-4)
    assert not case.passed and case.orders == ["reverse"]
    assert "depends on the order the programs run in" in case.error and "reverse order" in case.error


def test_correct_kernels_pass_with_reordering_and_no_conflicts():
    report = check(add, torch.add, shapes=[(1,), (7,), (5000,)], races="all")
    assert report, report.summary()
    assert report.cases[-1].orders == ["reverse", "shuffle"]  # 5 programs, re-run in two other orders
    assert report.cases[0].orders == []  # one program: no other order exists


# -- tl.atomic_add into memory nobody zeroed ---------------------------------------------------------
@triton.jit
def _row_sums_atomic(x_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    col = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * n_cols + col, mask=col < n_cols, other=0.0)
    tl.atomic_add(out_ptr + row, tl.sum(x, axis=0))


def _atomic_launcher(alloc):
    def launcher(x):
        out = alloc(x.shape[0], dtype=x.dtype)
        _row_sums_atomic[(x.shape[0], triton.cdiv(x.shape[1], 32))](x, out, x.shape[1], BLOCK=32)
        return out

    return launcher


def test_atomics_without_zero_init_name_the_missing_initialisation():
    # looked up at call time: the checker poisons torch.empty while the launcher runs
    report = check(_atomic_launcher(lambda *a, **k: torch.empty(*a, **k)), lambda x: x.sum(-1), shapes=[(3, 100)])
    assert not report
    err = report.failures[0].error
    assert "tl.atomic_add(out_ptr + row" in err and "updates `out_ptr`" in err
    assert "never initialised" in err and "torch.zeros" in err
    assert "never written" not in report.summary()
    assert check(_atomic_launcher(torch.zeros), lambda x: x.sum(-1), shapes=[(3, 100), (1, 7)])


# -- bf16 in the interpreter ------------------------------------------------------------------------
def test_bfloat16_is_skipped_with_a_warning_in_the_interpreter():
    with pytest.warns(UserWarning, match="bfloat16"):
        report = check(add, torch.add, shapes=[(7,)], dtypes=[torch.float32, torch.bfloat16])
    assert report and BF16_INTERPRETER_NOTE in report.notes
    assert [c.skipped for c in report.cases] == [None, "bfloat16 in the interpreter"]
    with pytest.warns(UserWarning):
        only = check(add, torch.add, shapes=[(7,)], dtypes=[torch.bfloat16])
    assert not only and "no case ran" in only.summary()


# -- access maps -------------------------------------------------------------------------------------
def test_access_map_counts_who_wrote_what_and_draws_it():
    x, y = torch.randn(1000), torch.randn(1000)

    def small_blocks(x, y):
        out = torch.empty_like(x)
        from workbench.kernels.library.vector_add import add_kernel

        add_kernel[(triton.cdiv(1000, 128),)](x, y, out, 1000, BLOCK_SIZE=128)
        return out

    t = trace(small_blocks, x, y)
    assert torch.equal(t.result, x + y)
    (amap,) = t.maps
    assert isinstance(amap, AccessMap) and amap.grid == (8, 1, 1) and not amap.races
    out = amap.tensor("out_ptr")
    assert out.counts() == {"elements": 1000, "read": 0, "written": 1000, "atomic": 0, "written twice": 0}
    assert out.heat_writes.shape == (8, 128) and out.heat_writes.sum() == 1000
    assert (out.heat_writes[0, :16] > 0).all() and out.heat_writes[0, 20:].sum() == 0  # program 0: the first block
    info = amap.who_wrote("out_ptr", (999,))
    assert info.program == (7,) and info.lane == 999 - 7 * 128 and info.line is not None
    assert amap.who_wrote("x_ptr", (0,)) is None  # read, never stored
    svg = amap.svg()
    assert svg.startswith("<svg") and "data:image/png;base64," in svg and "out_ptr [1000]" in svg
    assert amap.png().startswith(b"\x89PNG")
    js = amap.to_json()
    assert js["tensors"][2]["name"] == "out_ptr" and len(js["tensors"][2]["writes"]) == 8


def test_the_worst_element_is_mapped_to_its_program_and_lane():
    @triton.jit
    def off_by_one_lane(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        x = tl.load(x_ptr + offs, mask=offs < n)
        tl.store(out_ptr + offs, tl.where(offs == 45, x + 10.0, x), mask=offs < n)

    def fn(x):
        out = torch.empty_like(x)
        off_by_one_lane[(triton.cdiv(x.numel(), 16),)](x, out, x.numel(), BLOCK=16)
        return out

    report = check(fn, lambda x: x.clone(), shapes=[(100,)])
    case = report.failures[0]
    assert case.worst_index == (45,)
    assert "written by program (2,), lane 13" in case.worst_writer and "off_by_one_lane" in case.worst_writer
    assert "lane 13" in case.describe()
    assert report.access_maps and report.access_maps[0].kernel == "off_by_one_lane"


def test_programs_run_in_the_requested_order():
    seen = []

    @triton.jit
    def which(out_ptr):
        pid = tl.program_id(0)
        tl.store(out_ptr + pid, pid)

    out = torch.zeros(6, dtype=torch.int32)
    from triton.runtime import interpreter as ti

    original = ti.InterpreterBuilder.set_grid_idx

    def spy(self, x, y, z):
        seen.append(x)
        return original(self, x, y, z)

    ti.InterpreterBuilder.set_grid_idx = spy
    try:
        with guard.order("reverse"):
            which[(6,)](out)
        assert seen[-6:] == [5, 4, 3, 2, 1, 0]
        with guard.order("shuffle", seed=3):
            which[(6,)](out)
        assert sorted(seen[-6:]) == list(range(6)) and seen[-6:] != list(range(6))
    finally:
        ti.InterpreterBuilder.set_grid_idx = original
    assert out.tolist() == list(range(6))
    with pytest.raises(ValueError, match="unknown program order"):
        with guard.order("sideways"):
            pass

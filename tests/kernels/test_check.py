"""wb.kernels.check: what it catches, what it reports, and that it never crashes the process."""

import pytest
import torch
import triton
import triton.language as tl

from workbench.kernels.checker import DEFAULT_SHAPES, TOLERANCES, check, poison_, tolerance_for
from workbench.kernels.library.vector_add import add, add_kernel


def test_correct_kernel_passes_every_default_shape_and_dtype():
    report = check(add, torch.add, shapes=[(1,), (7,), (1000,), (4099,)], dtypes=[torch.float32, torch.float16])
    assert report and report.passed
    assert len(report.cases) == 8
    assert {c.dtype for c in report.cases} == {"float32", "float16"}
    assert "all 8 cases pass" in report.summary()
    frame = report.to_frame()
    assert list(frame["passed"]) == [True] * 8


@triton.jit
def _scale_one_element(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.where(offs == 37, x * 3.0 + 1.0, x)  # a single wrong element
    tl.store(out_ptr + offs, y, mask=mask)


def test_reports_the_worst_element_and_its_index():
    def fn(x):
        out = torch.empty_like(x)
        _scale_one_element[(triton.cdiv(x.numel(), 16),)](x, out, x.numel(), BLOCK=16)
        return out

    report = check(fn, lambda x: x.clone(), shapes=[(10, 5)])  # flat index 37 = (7, 2)
    assert not report
    case = report.failures[0]
    assert case.worst_index == (7, 2)
    assert case.n_bad == 1 and case.n_unwritten == 0
    assert "index [7, 2]" in case.describe()


def test_elements_never_written_are_found_by_poisoning():
    def floor_grid(x, y):
        out = torch.empty_like(x)
        add_kernel[(x.numel() // 64,)](x, y, out, x.numel(), BLOCK_SIZE=64)  # the tail block is missing
        return out

    report = check(floor_grid, torch.add, shapes=[(64,), (100,)])
    ok, tail = report.cases
    assert ok.passed
    assert not tail.passed and tail.n_unwritten == 36 and tail.worst_index[0] >= 64
    assert "never written" in tail.describe()


def test_unwritten_detection_also_covers_integer_outputs():
    t = poison_(torch.empty(4, dtype=torch.int32))
    assert (t == torch.iinfo(torch.int32).min).all()
    h = poison_(torch.empty(4, dtype=torch.float16))
    assert h.isnan().all()


@triton.jit
def _copy_unmasked(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.load(x_ptr + offs))


def test_out_of_bounds_access_fails_with_the_kernel_line_instead_of_crashing(kernel_mode):
    if not kernel_mode.interpreted:
        pytest.skip("bounds are checked in interpreter mode")

    def fn(x):
        out = torch.empty_like(x)
        _copy_unmasked[(triton.cdiv(x.numel(), 32),)](x, out, x.numel(), BLOCK=32)
        return out

    report = check(fn, lambda x: x.clone(), shapes=[(64,), (65,)])
    fits, spills = report.cases
    assert fits.passed  # 64 is a multiple of the block: no lane is out of bounds
    assert not spills.passed
    assert "OutOfBoundsError" in spills.error and "out-of-bounds load" in spills.error
    assert "tl.store(out_ptr + offs, tl.load(x_ptr + offs))" in spills.error
    assert "31 of 32 active lanes" in spills.error


def test_tolerance_is_per_dtype():
    assert tolerance_for(torch.float16) == TOLERANCES["float16"]
    assert tolerance_for(torch.int32) == (0.0, 0.0)
    assert tolerance_for(torch.float32, {torch.float32: (1.0, 0.0)}) == (1.0, 0.0)

    def off_by_1e3(x):
        return x + 1e-3 * x.abs().max()

    r = check(off_by_1e3, lambda x: x, shapes=[(64,)], dtypes=[torch.float32, torch.float16])
    assert [c.passed for c in r.cases] == [False, True]
    assert check(off_by_1e3, lambda x: x, shapes=[(64,)], atol=1e-2)


def test_a_kernel_that_writes_into_its_input_fails():
    def clobber(x):
        x.mul_(2)
        return x.clone()

    report = check(clobber, lambda x: x * 2, shapes=[(8,)])
    assert not report and "changed input 0" in report.failures[0].error


def test_errors_in_the_launcher_fail_one_case_and_the_rest_still_run():
    def picky(x):
        if x.numel() == 1:
            raise ValueError("size 1 is not supported")
        return x.clone()

    report = check(picky, lambda x: x, shapes=[(1,), (5,)])
    assert [c.passed for c in report.cases] == [False, True]
    assert "ValueError: size 1 is not supported" in report.cases[0].error


def test_shape_mismatch_and_wrong_output_count_are_reported():
    r = check(lambda x: x[:-1].clone(), lambda x: x, shapes=[(5,)])
    assert "has shape (4,)" in r.failures[0].error
    r = check(lambda x: (x.clone(), x.clone()), lambda x: x, shapes=[(5,)])
    assert "returned 2 outputs" in r.failures[0].error


def test_fresh_inputs_per_case_and_reproducible_with_the_seed():
    seen = []

    def record(x):
        seen.append(x.clone())
        return x.clone()

    check(record, lambda x: x, shapes=[(4,), (4,)], seed=3)
    check(record, lambda x: x, shapes=[(4,)], seed=3)
    assert not torch.equal(seen[0], seen[1])  # each case draws new inputs
    assert torch.equal(seen[0], seen[2])  # same seed, same first case


def test_coverage_notes_warn_about_easy_shapes():
    r = check(add, torch.add, shapes=[(64,), (128,)])
    assert any("size of 1" in n for n in r.notes)
    assert any("multiple of 16" in n for n in r.notes)
    assert not any("multiple" in n for n in check(add, torch.add, shapes=[(1,), (7,)]).notes)
    assert (1, 1) in DEFAULT_SHAPES


def test_report_renders_html_and_json():
    r = check(add, torch.add, shapes=[(3,)])
    assert "<table>" in r._repr_html_()
    js = r.to_json()
    assert js["passed"] is True and js["cases"][0]["shape"] == "3"

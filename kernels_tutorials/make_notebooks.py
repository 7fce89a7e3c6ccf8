"""Regenerate the tutorial notebooks from their outline below and the kernels in workbench.kernels.library.

    python kernels_tutorials/make_notebooks.py

The kernel cells are the library's source, so the notebooks, the benchmark and the custom ops run the
same code (tests/kernels/test_tutorials.py checks they still match). Outputs are left empty.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SETUP = """\
import workbench as wb

%load_ext workbench.kernels
QUICK = wb.kernels.quick()          # WORKBENCH_QUICK=1 in CI: smallest settings
MODE = wb.kernels.setup()           # compiled on an NVIDIA GPU, else Triton's interpreter on the CPU
DEVICE = wb.kernels.device()        # where kernel tensors live: "cuda" or "cpu"
GPU = not MODE.interpreted
MODE"""


def source_of(topic: str, *names: str) -> str:
    module = importlib.import_module(f"workbench.kernels.library.{topic}")
    objs = [getattr(module, n) for n in names]
    return "\n\n".join(inspect.getsource(getattr(o, "fn", o)).rstrip() for o in objs)


def exercise_cells(key: str) -> list:
    from workbench.kernels.puzzles import exercise

    ex = exercise(key)
    return [
        new_markdown_cell(
            f"## Exercise: {ex.title}\n\n"
            "Puzzle style: the spec is below, the stub cell compiles but does nothing, and the check cell tells "
            "you what is still wrong (cases, worst element, its index). Fill the `TODO`s and re-run both cells. "
            "Stuck? `ex.show_solution()` prints the hidden solution."
        ),
        new_code_cell(f'ex = wb.kernels.exercise("{key}")\nex'),
        new_code_cell("%%triton\n" + ex.stub.rstrip()),
        new_code_cell(f"report = ex.check({ex.entry})   # fails until the kernel is written"),
    ]


def notebook(title: str, motivation: str, cells: list, key: str, meaning: str) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [
        new_markdown_cell(f"# {title}\n\n{motivation}\n\n"
                          "Anatomy: motivation → reference → kernel → launcher → check on irregular shapes → "
                          "benchmark and what it means → exercise."),
        new_code_cell(SETUP),
        *cells,
        new_markdown_cell("### What the benchmark means\n\n" + meaning + "\n\n"
                          "In interpreter mode (no GPU) the kernel runs as NumPy on the CPU, one program "
                          "at a time: those timings are labelled and say nothing about GPU speed. Correctness "
                          "results are exact in both modes."),
        *exercise_cells(key),
    ]
    return nb


def md(text: str):
    return new_markdown_cell(text)


def code(text: str):
    return new_code_cell(text.strip("\n"))


def kernel_cell(topic: str, *names: str):
    return new_code_cell("%%triton\n" + source_of(topic, *names))


NOTEBOOKS = {}

NOTEBOOKS["01-vector-add"] = notebook(
    "01 · Vector addition",
    "The smallest complete Triton kernel: each *program* handles one block of `BLOCK_SIZE` elements, and a "
    "mask keeps the last block from reading and writing past the end. Vector add does almost no arithmetic, "
    "so its speed is set by memory bandwidth alone: the yardstick is the device's own copy bandwidth.",
    [
        md("## Reference\n\nWhat the kernel must compute, in plain torch."),
        code("""
import torch

def reference(x, y):
    return x + y
"""),
        md("## Kernel\n\n`tl.program_id(0)` says which block this program owns; `tl.arange` makes the block's "
           "offsets; the mask switches off lanes past `n_elements` (try removing it: the checker below reports "
           "an out-of-bounds access at that line instead of crashing)."),
        kernel_cell("vector_add", "add_kernel"),
        md("## Launcher\n\nAllocates the output and picks the grid: `cdiv(n, BLOCK_SIZE)` programs, rounding up."),
        kernel_cell("vector_add", "add"),
        md("## Check on irregular shapes\n\nSize 1, sizes that are not multiples of the block, float32 and float16. "
           "Outputs are poisoned first, so elements the kernel never writes are caught too."),
        code("""
report = wb.kernels.check(add, reference, shapes=[(1,), (7,), (1000,), (1024,), (4099,)],
                          dtypes=[torch.float32, torch.float16])
report
"""),
        md("### Who wrote what: the access map\n\nIn interpreter mode the lab records every load and store: per "
           "tensor argument, which elements each program read (blue) and wrote (red). Each program owns one block; "
           "`who_wrote` maps an element to its program and lane. The checker uses the same record to find races "
           "(an element one program writes and another reads) and re-runs kernels with the programs reversed and "
           "shuffled."),
        code("""
if MODE.interpreted:
    small = lambda x, y: add(x, y, block_size=128)   # 8 programs for 1000 elements
    x, y = torch.randn(1000, device=DEVICE), torch.randn(1000, device=DEVICE)
    amap = wb.kernels.trace(small, x, y).maps[0]
    print(amap.who_wrote("out_ptr", (999,)).describe())
    display(amap)
else:
    print("access maps are recorded by the interpreter: WORKBENCH_TRITON_MODE=interpreter")
"""),
        md("## Benchmark\n\nGB/s = 3 × n × 4 bytes (two reads, one write) per call. On a GPU the ceiling is the "
           "measured device-to-device copy bandwidth."),
        code("""
sizes = [2**k for k in range(12, 29, 2)] if GPU and not QUICK else [2**10, 2**12, 2**14]
frame = wb.kernels.sweep({"triton": add, "torch": torch.add},
                         lambda n: (torch.randn(n, device=DEVICE), torch.randn(n, device=DEVICE)),
                         sizes, bytes=lambda n: 3 * n * 4)
wb.kernels.plot_sweep(frame, y="GB/s", title="vector add")
"""),
        code("""
n = sizes[-1]
x, y = torch.randn(n, device=DEVICE), torch.randn(n, device=DEVICE)
result = wb.kernels.bench(add, x, y, reference=torch.add, bytes=3 * n * 4, name="vector add")
print(result.summary())
"""),
        md("## The KernelLab\n\nThe same loop in a widget: edit, **Run**, **Check**, **Benchmark**. The badge shows the mode."),
        code('from workbench.ui.kernel_lab import KernelLab   # also wb.KernelLab\n\nKernelLab.from_exercise("vector_add.outer_add")'),
    ],
    "vector_add.outer_add",
    "On a GPU both lines should sit near the copy bandwidth for large sizes (the benchmark's target: ≥ 90 %); "
    "for small sizes both are limited by launch overhead, not bandwidth. A kernel far below the ceiling at large "
    "sizes usually has uncoalesced or unmasked-but-wasted accesses.",
)

NOTEBOOKS["02-fused-softmax"] = notebook(
    "02 · Fused softmax",
    "torch computes a softmax in several passes (max, exp, sum, divide), each reading or writing the whole "
    "tensor. When a row fits in one block, a fused kernel reads each element once and writes it once: for a "
    "memory-bound op, that is the whole speed-up.",
    [
        md("## Reference"),
        code("""
import torch

def reference(x):
    return torch.softmax(x, dim=-1)
"""),
        md("## Kernel\n\nOne program per row. Padding lanes load `-inf`, so they change neither the max nor the sum; "
           "the max is subtracted before `exp` so large inputs cannot overflow."),
        kernel_cell("softmax", "softmax_kernel"),
        md("## Launcher\n\nThe block is the next power of two ≥ the row length; more warps for longer rows."),
        kernel_cell("softmax", "softmax"),
        md("## Check on irregular shapes"),
        code("""
report = wb.kernels.check(softmax, reference, shapes=[(1, 1), (1, 7), (3, 129), (17, 1000), (64, 64)],
                          dtypes=[torch.float32, torch.float16])
report
"""),
        md("## Benchmark\n\nRows of growing length; bytes = 2 × rows × cols × element size (one read, one write)."),
        code("""
rows = 4096 if GPU and not QUICK else 16
cols = [256, 1024, 4096, 16384] if GPU and not QUICK else [128, 512]
dtype = torch.float16 if GPU else torch.float32
frame = wb.kernels.sweep({"triton": softmax, "torch": reference},
                         lambda n: (torch.randn(rows, n, device=DEVICE, dtype=dtype),),
                         cols, bytes=lambda n: 2 * rows * n * dtype.itemsize, x_name="cols")
wb.kernels.plot_sweep(frame, y="GB/s", title=f"softmax, {rows} rows")
"""),
    ],
    "softmax.log_softmax",
    "On a GPU the fused kernel should match or beat torch (target ≥ 1.0×): both are bandwidth-bound, and the "
    "fused one moves the minimum bytes. Past the size where a row no longer fits in registers (tens of thousands "
    "of columns), a one-block-per-row kernel spills and a looped kernel (as in the layernorm notebook) is better.",
)

NOTEBOOKS["03-layernorm"] = notebook(
    "03 · Layer normalization",
    "LayerNorm is a reduction (mean and variance of a row) followed by an elementwise map. This kernel loops over "
    "the row in blocks, so rows of any length work, and computes in float32 whatever the input dtype.",
    [
        md("## Reference"),
        code("""
import torch
import torch.nn.functional as F

def reference(x, w, b):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps=1e-5)
"""),
        md("## Kernel\n\nThree passes over the row: the mean, the variance of `x - mean` (more accurate than "
           "E[x²] − mean²), then normalize, scale and shift. Masked lanes are zeroed so they add nothing."),
        kernel_cell("layernorm", "layernorm_kernel"),
        md("## Launcher"),
        kernel_cell("layernorm", "layer_norm"),
        md("## Check on irregular shapes\n\nThe inputs are `x` and a weight and bias per column: `make_inputs` builds them."),
        code("""
def make_inputs(shape, dtype, gen):
    rows, cols = shape
    x = torch.randn(rows, cols, generator=gen).to(dtype)
    w = (1 + 0.1 * torch.randn(cols, generator=gen)).to(dtype)
    b = (0.1 * torch.randn(cols, generator=gen)).to(dtype)
    return x, w, b

report = wb.kernels.check(layer_norm, reference, shapes=[(1, 1), (1, 7), (3, 129), (17, 1000), (64, 64)],
                          dtypes=[torch.float32, torch.float16], make_inputs=make_inputs)
report
"""),
        md("## Benchmark"),
        code("""
rows = 4096 if GPU and not QUICK else 16
cols = [512, 1024, 4096, 8192] if GPU and not QUICK else [128, 512]
frame = wb.kernels.sweep({"triton": layer_norm, "torch": reference},
                         lambda n: make_inputs((rows, n), torch.float32, torch.Generator().manual_seed(0)) if not GPU
                         else tuple(t.to(DEVICE) for t in make_inputs((rows, n), torch.float16, torch.Generator().manual_seed(0))),
                         cols, bytes=lambda n: 2 * rows * n * (2 if GPU else 4), x_name="cols")
wb.kernels.plot_sweep(frame, y="GB/s", title="layer norm forward")
"""),
    ],
    "layernorm.rms_norm",
    "LayerNorm reads the row three times here; the second and third reads usually hit L2 or L1, so on a GPU the "
    "kernel still runs close to bandwidth. torch's fused `layer_norm` is a strong baseline: matching it is the goal.",
)

NOTEBOOKS["04-matmul"] = notebook(
    "04 · Tiled matmul with grouped ordering",
    "Each program computes one BLOCK_M × BLOCK_N tile of C, walking K in BLOCK_K steps with `tl.dot` (tensor "
    "cores on a GPU). The program order matters: numbering tiles in groups of GROUP_M rows makes neighbouring "
    "programs share tiles of B, so those stay in L2 cache.",
    [
        md("## Reference"),
        code("""
import torch

def reference(a, b):
    return a @ b
"""),
        md("## Kernel\n\nThe first block of lines maps the flat program id to a (pid_m, pid_n) tile in grouped order; "
           "the loop masks the K tail, and the store masks the M and N edges."),
        kernel_cell("matmul", "matmul_kernel"),
        md("## Launcher\n\nOn a GPU the block sizes are autotuned (`triton.autotune` over `GPU_CONFIGS`); in the "
           "interpreter they are 16 × 16 × 16, the smallest `tl.dot` takes."),
        code("""
from workbench.kernels.library.matmul import GPU_CONFIGS
from workbench.kernels.modes import mode

_autotuned = None  # the autotuned kernel, made on first use on a GPU
"""),
        kernel_cell("matmul", "matmul"),
        md("## Check on irregular shapes\n\nPer-input shapes: `((M, K), (K, N))`. float16 accumulates in float32 in "
           "the kernel; the tolerance per dtype accounts for the float16 output rounding. On a GPU, `tl.dot` on float32 "
           "inputs uses TF32 (a 10-bit mantissa), so float32 is checked at `wb.kernels.dot_tolerance()`: "
           "1e-4 in the interpreter, 1e-2 on a GPU."),
        code("""
report = wb.kernels.check(matmul, reference,
                          shapes=[((1, 1), (1, 1)), ((5, 7), (7, 3)), ((33, 17), (17, 40)), ((64, 48), (48, 32))],
                          dtypes=[torch.float32, torch.float16], tolerances={torch.float32: wb.kernels.dot_tolerance()})
report
"""),
        md("## Benchmark\n\nTFLOP/s = 2·M·N·K per call; on a GPU in float16, against `torch.matmul` (cuBLAS)."),
        code("""
sizes = [512, 1024, 2048, 4096] if GPU and not QUICK else [32, 64]
dtype = torch.float16 if GPU else torch.float32
frame = wb.kernels.sweep({"triton": matmul, "torch": torch.matmul},
                         lambda n: (torch.randn(n, n, device=DEVICE, dtype=dtype), torch.randn(n, n, device=DEVICE, dtype=dtype)),
                         sizes, flops=lambda n: 2 * n**3, x_name="M=N=K")
wb.kernels.plot_sweep(frame, y="TFLOP/s", title="matmul")
"""),
    ],
    "matmul.bmm",
    "A square matmul of size n does 2n³ FLOPs on 3n² elements: its arithmetic intensity grows with n, so large "
    "sizes are bound by the tensor cores, not memory. The target on a GPU is ≥ 0.8× cuBLAS at 4096; grouped "
    "ordering is worth a few per cent there, more on larger problems.",
)

NOTEBOOKS["05-fused-attention"] = notebook(
    "05 · Fused attention (forward)",
    "Attention computes softmax(QKᵀ/√d)·V. Done naively it writes the S × S score matrix to memory; "
    "FlashAttention streams K and V in blocks and keeps a running max and sum of the softmax (the *online "
    "softmax*), so the scores never leave the chip.",
    [
        md("## Reference"),
        code("""
import torch
import torch.nn.functional as F

def reference(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)
"""),
        md("## Kernel\n\n`m_i` is the running max of each query's scores, `l_i` the running sum of `exp`; when the "
           "max grows, what was accumulated is rescaled by `alpha`. Keys past the sequence end get `-inf`."),
        kernel_cell("attention", "attention_kernel"),
        md("## Launcher\n\nThe grid is (query blocks, batch × heads)."),
        code("import math\n\nfrom workbench.kernels.modes import mode"),
        kernel_cell("attention", "attention"),
        md("## Check on irregular shapes\n\n(batch, heads, sequence, head_dim): sequences of 1, 7 and 33, a head "
           "size of 24 (not a power of two)."),
        code("""
report = wb.kernels.check(attention, reference,
                          shapes=[(1, 1, 1, 16), (1, 2, 7, 16), (2, 1, 33, 24), (1, 2, 64, 32)],
                          dtypes=[torch.float32, torch.float16], tolerances={torch.float32: wb.kernels.dot_tolerance()})
report
"""),
        md("## Benchmark\n\nAgainst torch's `scaled_dot_product_attention` (FlashAttention or cuDNN kernels on a GPU)."),
        code("""
B, H, D = (4, 16, 64) if GPU and not QUICK else (1, 2, 16)
seqs = [512, 1024, 2048, 4096] if GPU and not QUICK else [32, 64]
dtype = torch.float16 if GPU else torch.float32
frame = wb.kernels.sweep({"triton": attention, "torch sdpa": reference},
                         lambda s: tuple(torch.randn(B, H, s, D, device=DEVICE, dtype=dtype) for _ in range(3)),
                         seqs, flops=lambda s: 4 * B * H * s * s * D, x_name="seq")
wb.kernels.plot_sweep(frame, y="TFLOP/s", title="attention forward")
"""),
    ],
    "attention.causal_attention",
    "Attention forward is compute-bound for long sequences (4·S²·D FLOPs over 4·S·D elements). torch's SDPA "
    "dispatches to hand-tuned FlashAttention kernels; this tutorial kernel has no warp specialization or TMA, so "
    "expect it below SDPA on Hopper: the ratio is printed by `benchmarks/kernels.py`.",
)

NOTEBOOKS["06-dequant-matmul"] = notebook(
    "06 · INT8 weight-only matmul (dequantize in the kernel)",
    "Weight-only quantization stores weights as int8 (or int4) with one scale per output channel. For small batches "
    "a matmul is bound by reading the weights, so reading 1 byte instead of 2 or 4 per weight is the speed-up — if "
    "the dequantization happens in registers, tile by tile, not as a separate pass that writes floats back.",
    [
        md("## Reference"),
        code("""
import torch

def reference(x, w_int8, scale):
    return x @ (w_int8.to(x.dtype) * scale[:, None].to(x.dtype)).T

def quantize_int8(w):
    scale = w.abs().amax(dim=1).clamp_min(1e-8) / 127
    return torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8), scale
"""),
        md("## Kernel\n\nThe int8 tile is converted to the activation dtype just before `tl.dot`; the per-channel "
           "scale is applied once to the accumulated sum."),
        kernel_cell("dequant_matmul", "int8_matmul_kernel"),
        md("## Launcher\n\nBigger tiles on a GPU; 16 × 16 × 16 in the interpreter."),
        code("from workbench.kernels.modes import mode"),
        kernel_cell("dequant_matmul", "int8_matmul"),
        md("## Check on irregular shapes\n\nShapes are (M, N, K); `make_inputs` makes int8 weights and positive scales."),
        code("""
def make_inputs(shape, dtype, gen):
    m, n, k = shape
    x = torch.randn(m, k, generator=gen).to(dtype)
    w = torch.randint(-127, 128, (n, k), generator=gen, dtype=torch.int8)
    scale = (torch.rand(n, generator=gen) * 0.02 + 0.001).to(dtype)
    return x, w, scale

report = wb.kernels.check(int8_matmul, reference, shapes=[(1, 1, 1), (5, 7, 3), (33, 40, 17), (16, 32, 64)],
                          dtypes=[torch.float32, torch.float16], make_inputs=make_inputs,
                          tolerances={torch.float32: wb.kernels.dot_tolerance()})
report
"""),
        md("## How much accuracy does INT8 cost?\n\nQuantize a real float weight and compare with the float matmul."),
        code("""
g = torch.Generator().manual_seed(0)
w = torch.randn(64, 128, generator=g)
x = torch.randn(8, 128, generator=g)
w_q, s = quantize_int8(w)
y_q = int8_matmul(x.to(DEVICE), w_q.to(DEVICE), s.to(DEVICE)).cpu()
rel = ((y_q - x @ w.T).norm() / (x @ w.T).norm()).item()
print(f"relative error of the INT8 weights: {rel:.2e}")
"""),
        md("## Benchmark\n\nBytes ≈ the weights (N·K bytes) + activations + output, against torch's matmul on float16 "
           "weights (2·N·K bytes)."),
        code("""
M, N, K = (16, 8192, 8192) if GPU and not QUICK else (8, 64, 64)
dtype = torch.float16 if GPU else torch.float32
x = torch.randn(M, K, device=DEVICE, dtype=dtype)
w_q = torch.randint(-127, 128, (N, K), device=DEVICE, dtype=torch.int8)
s = torch.rand(N, device=DEVICE, dtype=dtype) * 0.01
w_f = (w_q.to(dtype) * s[:, None])
result = wb.kernels.bench(int8_matmul, x, w_q, s, reference=lambda x, w_q, s: x @ w_f.T,
                          bytes=N * K + 2 * M * K + 2 * M * N, flops=2 * M * N * K, name="int8 weight-only matmul")
print(result.summary())
"""),
    ],
    "dequant_matmul.int4_matmul",
    "At batch 16 the float16 matmul reads 2 bytes per weight and the INT8 kernel 1: the kernel can approach 2× "
    "if it stays bandwidth-bound. At large M the work becomes compute-bound and the int8→float conversion in the "
    "inner loop costs more than the bytes it saves.",
)

NOTEBOOKS["07-bias-gelu"] = notebook(
    "07 · Fused bias + GELU",
    "The epilogue of every transformer MLP layer: `gelu(x + b)`. In eager torch that is two kernels and four "
    "passes over memory (read x, write x+b, read it, write the GELU); fused, it is one read and one write.",
    [
        md("## Reference"),
        code("""
import torch
import torch.nn.functional as F

def reference(x, b):
    return F.gelu(x + b)
"""),
        md("## Kernel\n\n2-D tiles; the bias is loaded once per tile of columns and broadcast over rows; the exact "
           "(erf) GELU, as `nn.GELU()` computes it."),
        kernel_cell("bias_gelu", "bias_gelu_kernel"),
        md("## Launcher"),
        kernel_cell("bias_gelu", "bias_gelu"),
        md("## Check on irregular shapes"),
        code("""
def make_inputs(shape, dtype, gen):
    rows, cols = shape
    return torch.randn(rows, cols, generator=gen).to(dtype), torch.randn(cols, generator=gen).to(dtype)

report = wb.kernels.check(bias_gelu, reference, shapes=[(1, 1), (1, 7), (3, 129), (17, 300), (64, 64)],
                          dtypes=[torch.float32, torch.float16], make_inputs=make_inputs)
report
"""),
        md("## Benchmark"),
        code("""
rows = 8192 if GPU and not QUICK else 16
cols = [1024, 4096, 8192] if GPU and not QUICK else [64, 256]
dtype = torch.float16 if GPU else torch.float32
frame = wb.kernels.sweep({"triton": bias_gelu, "torch (2 kernels)": reference},
                         lambda n: (torch.randn(rows, n, device=DEVICE, dtype=dtype), torch.randn(n, device=DEVICE, dtype=dtype)),
                         cols, bytes=lambda n: 2 * rows * n * dtype.itemsize, x_name="cols")
wb.kernels.plot_sweep(frame, y="GB/s", title="bias + GELU")
"""),
    ],
    "bias_gelu.bias_gelu_tanh",
    "GB/s here counts the fused kernel's minimum traffic for both lines, so torch's line shows its *effective* "
    "bandwidth: about half the fused kernel's when both run at full bandwidth, because it moves twice the bytes.",
)

NOTEBOOKS["08-reduction"] = notebook(
    "08 · Reductions",
    "A reduction turns many values into one: here, the sum of each row. Rows longer than a block are walked in a "
    "loop that keeps BLOCK_SIZE partial sums in registers and reduces them once at the end; a whole-tensor sum "
    "is two launches (rows, then the row sums), with no atomics.",
    [
        md("## Reference"),
        code("""
import torch

def reference(x):
    return x.sum(dim=-1)
"""),
        md("## Kernel"),
        kernel_cell("reduction", "row_sum_kernel"),
        md("## Launchers"),
        kernel_cell("reduction", "row_sum", "total_sum"),
        md("## Check on irregular shapes\n\nRows of 1, 7, 129, 1000 and 4099 elements (several blocks each), and a "
           "float16 input accumulated in float32."),
        code("""
report = wb.kernels.check(row_sum, reference, shapes=[(1, 1), (1, 7), (3, 129), (17, 1000), (5, 4099)],
                          dtypes=[torch.float32, torch.float16])
report
"""),
        code("""
x = torch.randn(37, 301, device=DEVICE)
print("total sum:", total_sum(x).item(), "torch:", x.sum().item())
"""),
        md("## Benchmark"),
        code("""
rows = 4096 if GPU and not QUICK else 16
cols = [1024, 8192, 65536] if GPU and not QUICK else [256, 2048]
frame = wb.kernels.sweep({"triton": row_sum, "torch": reference},
                         lambda n: (torch.randn(rows, n, device=DEVICE),), cols,
                         bytes=lambda n: rows * n * 4, x_name="cols")
wb.kernels.plot_sweep(frame, y="GB/s", title="row sum")
"""),
    ],
    "reduction.row_argmax",
    "A reduction reads everything once and writes almost nothing, so it is bandwidth-bound; with one program per "
    "row, few long rows leave most of the GPU idle — then splitting each row across programs (and a second pass) "
    "is the fix.",
)


def into_a_model() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [
        md("# 09 · Kernels in a model\n\nA kernel earns its place when the *model* gets faster and stays correct. "
           "Here the fused softmax and layernorm kernels of notebooks 02 and 03 become torch custom ops "
           "(`torch.library`), replace the `nn.Softmax` and `nn.LayerNorm` modules of the zoo's tiny transformer, "
           "and `wb.compare` and `wb.benchmark` measure the end-to-end effect."),
        code(SETUP),
        md("## A kernel as a torch op\n\n`register_op` needs a launcher with type hints. With `kind=\"triton_op\"` "
           "and a launcher that goes through `torch.library.wrap_triton` (the library's do), `torch.compile` sees "
           "into the kernel on a GPU. In the interpreter an interpreted kernel cannot be traced, so the op is an "
           "opaque custom op there, which `torch.compile` keeps as one node."),
        code("""
import torch
from workbench.kernels.library.softmax import softmax

op = wb.kernels.register_op("tutorial::softmax", softmax, kind="triton_op")
x = torch.randn(4, 10, device=DEVICE)
torch.testing.assert_close(torch.ops.tutorial.softmax(x), torch.softmax(x, -1))
f = torch.compile(lambda t: torch.ops.tutorial.softmax(t) * 2, backend="inductor" if GPU else "aot_eager")
torch.testing.assert_close(f(x), torch.softmax(x, -1) * 2)
print(op._workbench_kind)
"""),
        md("## Swap the modules\n\n`with_kernels` deep-copies the model, swaps every matching submodule, and "
           "records what it replaced in the new model's lineage. The original is unchanged. `attention=True` also "
           "replaces each attention block by the fused attention kernel of notebook 05. On a GPU the new model "
           "runs there (`device=\"cuda\"`, the default): inputs go to the GPU, outputs come back; "
           "`to_device(original)` is the eager baseline on the same device."),
        code("""
original = wb.load("tiny-transformer")
fast = wb.kernels.with_kernels(original, attention=True)
baseline = wb.kernels.to_device(original)            # the same model, eager, on DEVICE
print(fast.lineage[-1].options)
fast.native().blocks[0].attn
"""),
        md("## Is it still the same model?"),
        code("""
comparison = wb.compare(original, [baseline, fast], n_inputs=2)
comparison
"""),
        md("## Is it faster?\n\nEager on the device, the kernels, and `torch.compile` of the eager model (Inductor "
           "fuses softmax and LayerNorm itself: the baseline a kernel must beat). In interpreter mode the "
           "kernel-backed model runs its kernels as NumPy, so it is much *slower*, and says nothing about GPU speed: "
           "the numbers below show the harness works, not a speed-up (and `torch.compile` is left out in quick runs)."),
        code("""
runs = [baseline, fast] + ([(baseline, "torch_compile")] if GPU or not QUICK else [])
report = wb.benchmark(runs, iterations=3 if QUICK else 20, warmup=1, min_iterations=3)
report
"""),
        md("## What this means\n\nThe comparison is the contract: a kernel that changes the model's outputs beyond "
           "the float32 tolerance is a bug, however fast. The speed-up of one op is diluted by everything else the "
           "model does (Amdahl): softmax and layernorm are a small part of this model's time, so on a GPU expect a "
           "modest end-to-end gain even when the kernels themselves are faster than torch's."),
    ]
    return nb


def main() -> None:
    NOTEBOOKS["09-kernels-in-a-model"] = into_a_model()
    for name, nb in NOTEBOOKS.items():
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"{name[:2]}-{i:02d}"
        nbformat.write(nb, HERE / f"{name}.ipynb")
        print("wrote", name)


if __name__ == "__main__":
    main()

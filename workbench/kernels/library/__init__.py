"""The tutorial kernels of ``kernels_tutorials/``, importable: the benchmark, the custom ops and the
tests use these. Each module has the kernel(s), the launcher, the torch reference and ``CHECK`` (the
shapes, dtypes and input maker ``wb.kernels.check`` uses for it).

Importing this package chooses the kernel mode first (interpreter without a GPU), so the
``@triton.jit`` decorators below produce kernels that can run here.
"""

from workbench.kernels.modes import setup as _setup

_setup()

TOPICS = (
    "vector_add",
    "softmax",
    "layernorm",
    "matmul",
    "attention",
    "dequant_matmul",
    "bias_gelu",
    "reduction",
)

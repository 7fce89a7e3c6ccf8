"""Hidden solutions of the ``kernels_tutorials/`` exercises. The notebooks do not show these; an
exercise prints its solution only when asked (``ex.show_solution()``), and CI checks every one of
them with the same checker the learner uses (tests/kernels/test_exercises.py).

Importing this package chooses the kernel mode first, so the kernels below can run here.
"""

from workbench.kernels.modes import setup as _setup

_setup()

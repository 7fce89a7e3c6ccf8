"""The kernels_tutorials/ notebooks: committed without outputs, quick in CI, one anatomy, exercises
wired to the checker, and kernel cells identical to workbench.kernels.library (which the benchmark
and the custom ops run). CI executes the notebooks themselves (tests/notebooks)."""

import ast
import importlib
import json
from pathlib import Path

import pytest

from workbench.kernels.puzzles import EXERCISES

FOLDER = Path(__file__).resolve().parents[2] / "kernels_tutorials"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
TOPIC_OF = {"01": "vector_add", "02": "softmax", "03": "layernorm", "04": "matmul", "05": "attention",
            "06": "dequant_matmul", "07": "bias_gelu", "08": "reduction"}


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _src(cell):
    return "".join(cell["source"])


def test_there_are_at_least_eight_tutorials_with_exercises_for_every_topic():
    assert len([p for p in NOTEBOOKS if p.name[:2] in TOPIC_OF]) == 8
    text = "\n".join(_src(c) for p in NOTEBOOKS for c in _cells(p))
    for key in EXERCISES:
        assert f'wb.kernels.exercise("{key}")' in text, key


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped_quick_aware_and_follows_the_anatomy(path):
    cells = _cells(path)
    for c in cells:
        if c["cell_type"] == "code":
            assert c["outputs"] == [] and c["execution_count"] is None, "commit notebooks with outputs stripped"
    text = "\n".join(_src(c) for c in cells)
    assert "wb.kernels.quick()" in text  # reads WORKBENCH_QUICK
    if path.name[:2] in TOPIC_OF:
        order = [text.find(marker) for marker in
                 ("## Reference", "## Kernel", "## Launcher", "## Check on irregular shapes", "## Benchmark",
                  "What the benchmark means", "## Exercise")]
        assert -1 not in order and order == sorted(order), "motivation → reference → kernel → … → exercise"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] in TOPIC_OF], ids=lambda p: p.name)
def test_kernel_cells_match_the_library(path):
    module = importlib.import_module(f"workbench.kernels.library.{TOPIC_OF[path.name[:2]]}")
    library_defs = {n.name: ast.dump(n) for n in ast.parse(Path(module.__file__).read_text()).body
                    if isinstance(n, ast.FunctionDef)}
    seen = 0
    for cell in _cells(path):
        src = _src(cell)
        if not src.startswith("%%triton") or "TODO" in src:
            continue
        for node in ast.parse(src.split("\n", 1)[1]).body:
            if isinstance(node, ast.FunctionDef) and node.name in library_defs:
                assert ast.dump(node) == library_defs[node.name], (
                    f"{path.name}: {node.name} differs from {module.__name__}; "
                    "run python kernels_tutorials/make_notebooks.py")
                seen += 1
    assert seen >= 2  # at least the kernel and its launcher

"""The layout's rules that import-linter's contracts (pyproject.toml, run by scripts/test) do not express:
no import circle of more than three modules, no private name imported across modules, and each runtime's
name written only in its own plugin files."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in PACKAGE.rglob("*.py")}


def _imports(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, list[str], int]]:
    """``(imported module, names, line)`` for every import statement, function-level ones included
    (those under ``if TYPE_CHECKING:`` are for type checkers only and never run)."""
    skip = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
            and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
            for stmt in block.body for n in ast.walk(stmt)}
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.append((base, [a.name for a in node.names], node.lineno))
    return out


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, (path, tree) in sources.items():
        for target, names, _ in _imports(tree, module, path.name == "__init__.py"):
            if not target.startswith("workbench"):
                continue
            submodules = [f"{target}.{name}" for name in names if f"{target}.{name}" in sources]
            graph[module].update(submodules)  # ``from workbench.x import y``: y may be a submodule
            if target in sources and (not names or len(submodules) < len(names)):
                graph[module].add(target)
        graph[module].discard(module)
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in list(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                out.append(sorted(component))
    return out


def test_tarjan_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"a"}, "e": {"a"}}
    assert sorted(map(len, _strongly_connected(graph))) == [1, 4]


def test_no_import_circle_of_more_than_three_modules():
    circles = [c for c in _strongly_connected(_graph()) if len(c) > 3]
    assert not circles, f"import circles: {circles}"


def test_no_private_name_is_imported_from_another_module():
    found = []
    for module, (path, tree) in _sources().items():
        for target, names, line in _imports(tree, module, path.name == "__init__.py"):
            if not target.startswith("workbench") or target == module:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private or any(part.startswith("_") and not part.startswith("__") for part in target.split(".")):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target} {private}")
    assert not found, "\n".join(found)


def _own_files(runtime: str) -> set[Path]:
    """A runtime's plugin files: the modules named after it (its runtime, its format, its steps)."""
    from workbench.core import registry

    cls = registry.get_runtime(runtime)
    own = {Path(sys.modules[cls.__module__].__file__).resolve()}
    stems = {runtime, *cls.aliases}
    for path in PACKAGE.rglob("*.py"):
        if any(path.stem == s or path.stem.startswith(f"{s}_") or path.stem.endswith(f"_{s}") for s in stems):
            own.add(path.resolve())
    return own


def test_a_runtime_name_is_written_only_in_its_own_plugin_files():
    from workbench.core import registry

    found = []
    sources = _sources()
    for name in registry.runtimes():
        own = _own_files(name)
        for _, (path, tree) in sources.items():
            if path.resolve() in own or path.parts[-2] == "kernels" or "kernels" in path.parts:
                continue
            docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                          if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
                          and n.body and isinstance(n.body[0], ast.Expr)
                          and isinstance(n.body[0].value, ast.Constant)}
            # a runtime plugin declares the formats it takes, and a format may share a runtime's name
            declared = {id(c) for n in ast.walk(tree) if isinstance(n, ast.AnnAssign | ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id in ("formats", "default_for")
                                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))
                        for c in ast.walk(n)} if "runtimes" in path.parts else set()
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and node.value == name and id(node) not in docstrings | declared:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} names {name!r}")
    assert not found, "\n".join(found)


def test_import_linter_contracts_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(exe) if exe.exists() else shutil.which("lint-imports") or "lint-imports"],
                          cwd=PACKAGE.parent, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

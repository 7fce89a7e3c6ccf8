"""Helpers for the views' "Show code": how a script names a model, a string, a function.

Each view's ``code()`` returns Python that runs as is (``import workbench as wb`` included). What a
script cannot name (an in-memory ``nn.Module``, a function defined in the notebook) is said in a
comment where it is used, so the reader knows what to paste.
"""

from __future__ import annotations

import os
import pprint
import re
from pathlib import Path
from typing import Any


def model_literal(source: Any) -> str | None:
    """A literal ``wb.load`` takes for ``source`` (a path or zoo name, a Model with a file or from the
    zoo); None when the model lives only in memory (an ``nn.Module``, a ``wb.Graph``)."""
    from workbench.core.model import Model

    if isinstance(source, os.PathLike):
        return repr(str(Path(source).resolve()))
    if isinstance(source, str):
        return repr(source)
    if isinstance(source, Model):
        if source.path is not None:
            return repr(str(Path(source.path).resolve()))
        from workbench import zoo

        if not source.lineage and source.name in zoo.names():
            return repr(source.name)
    return None


def model_expr(source: Any, fallback: str = "model") -> tuple[str, list[str]]:
    """``(expression, comment lines)``: the literal of ``source``, or ``fallback`` with a comment that
    says to define it (the model is not recorded as a file)."""
    lit = model_literal(source)
    if lit is not None:
        return lit, []
    name = getattr(source, "name", None) or type(source).__name__
    return fallback, [f"# {fallback}: the {type(source).__name__} {name!r} you passed lives only in memory; "
                      f"define {fallback} = wb.load(<its path or zoo name>) first"]


def function_ref(fn: Any) -> tuple[str | None, list[str]]:
    """``(name, import lines)`` naming ``fn`` from a script: an importable module-level function; None
    for a lambda or a function defined in the notebook."""
    mod, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not mod or mod == "__main__" or "<" in qual or "." in qual:
        return None, []
    try:
        import importlib

        if getattr(importlib.import_module(mod), qual, None) is not fn:
            return None, []
    except Exception:  # noqa: BLE001 - not importable: not nameable
        return None, []
    return qual, [f"from {mod} import {qual}"]


def py_string(text: str) -> str:
    """``text`` as a readable Python literal: a raw triple-quoted block when that is exact, else repr."""
    if "'''" not in text and not text.endswith(("\\", "'")) and "\r" not in text:
        return "r'''" + text + "'''"
    return repr(text)


def py_value(value: Any, indent: int = 0) -> str:
    """A Python literal of plain data (dicts, lists, numbers, strings), wrapped at 100 columns."""
    text = pprint.pformat(value, width=100 - indent, sort_dicts=False, compact=True)
    return text.replace("\n", "\n" + " " * indent)


def for_visitor(code: str) -> str:
    """``code`` as a visitor of a published app sees it: the server's folders (the artifacts folder, the
    project root, the home folder) written as relative names, so Show code discloses no server layout.
    Unchanged outside a published app, where the paths are the user's own and the code runs as is."""
    from workbench.core import settings

    if not settings.published() or not code:
        return code
    # a file the visitor uploaded is named as they named it, as the picker's own code does (the file on their
    # machine, next to the script): ``<artifacts>/uploads/<its folder>/model.onnx`` -> ``model.onnx``
    uploads = re.escape(str(settings.artifacts_dir() / "uploads")) + r"[/\\][^/\\'\"\s]+[/\\]"
    code = re.sub(uploads, "", code)
    swaps = [(str(settings.artifacts_dir()), "workbench-artifacts"), (str(settings.project_root()), "."),
             (str(Path.home()), "~")]
    for real, shown in sorted(swaps, key=lambda s: -len(s[0])):  # the longest (innermost) folder first
        if len(real) > 1:
            code = code.replace(real + os.sep, shown + "/").replace(real, shown)
    return code


def code_trait() -> Any:
    """The synced ``code_text`` trait of a view: a Unicode trait whose value passes ``for_visitor``."""
    import traitlets

    class _VisitorCode(traitlets.Unicode):
        def validate(self, obj: Any, value: Any) -> str:
            return for_visitor(super().validate(obj, value))

    return _VisitorCode("").tag(sync=True)

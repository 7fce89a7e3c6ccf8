"""The browser halves of the widgets: ES modules bundled from the TypeScript in ``widgets/`` (the
repository's top-level package) into ``workbench/widgets/`` at build time.

A wheel carries the bundles; a source checkout builds them with ``bash scripts/setup`` (or
``npm ci && npm run build`` in ``widgets/``). Without them, importing the UI still works and making
a widget raises :class:`WidgetsNotBuilt`, which says how to build them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError

BUILT = Path(__file__).resolve().parent.parent / "widgets"
SOURCE = Path(__file__).resolve().parent.parent.parent / "widgets"

_FIX = ("run `bash scripts/setup` in the repository, or `npm ci && npm run build` in its widgets/ folder "
        "(needs Node.js 18+); a wheel of the workbench carries the built widgets")


class WidgetsNotBuilt(WorkbenchError, RuntimeError):
    """The browser half of a widget (a bundle built from ``widgets/``) is missing."""


def _missing_js(name: str) -> str:
    msg = json.dumps(f"The {name} widget is not built: {_FIX}.")
    return ("export default { render({ el }) { const d = document.createElement('pre'); "
            f"d.style.color = '#b3261e'; d.textContent = {msg}; el.replaceChildren(d); }} }};\n")


def esm(name: str) -> Path | str:
    """``_esm`` for anywidget: the bundle's path, or a module that shows how to build it."""
    path = BUILT / f"{name}.js"
    return path if path.is_file() else _missing_js(name)


def css(name: str) -> Path | str:
    """``_css`` for anywidget: the bundle's stylesheet, or nothing."""
    path = BUILT / f"{name}.css"
    return path if path.is_file() else ""


def require(name: str) -> None:
    """Raises :class:`WidgetsNotBuilt` when the ``name`` bundle is missing."""
    if not (BUILT / f"{name}.js").is_file():
        raise WidgetsNotBuilt(f"the {name} widget's browser code (workbench/widgets/{name}.js) is not built", _FIX)


@cache
def schema() -> dict[str, Any]:
    """The payload schemas shared with the TypeScript (``widgets/schema/*.schema.json``), their ``$defs``
    merged: each widget's folder of payload kinds, every kind named once across them."""
    for folder in (BUILT, SOURCE / "schema"):
        files = sorted(folder.glob("*.schema.json")) if folder.is_dir() else []
        if any(f.name == "graph.schema.json" for f in files):
            defs: dict[str, Any] = {}
            for f in files:
                for kind, definition in json.loads(f.read_text(encoding="utf-8")).get("$defs", {}).items():
                    if kind in defs:
                        raise WorkbenchError(f"the widget schemas define {kind!r} twice ({f.name})",
                                             "give each payload kind one name across widgets/schema/")
                    defs[kind] = definition
            return {"$defs": defs}
    raise WidgetsNotBuilt("the widget payload schemas (widgets/schema/*.schema.json) are missing", _FIX)


def validate(payload: Any, kind: str = "GraphPayload") -> None:
    """Checks ``payload`` against the schemas' ``$defs[kind]`` (``GraphPayload``, ``OverlayPayload``,
    ``ExtraPayload``, ``DetailsReply``, and each widget's own kinds) and, for a graph, that its columns line up; raises
    ``WorkbenchError`` naming the first problem. For tests and debugging: widgets do not call it on
    every update (a 100k-node graph would pay for it)."""
    import jsonschema

    s = schema()
    if kind not in s["$defs"]:
        raise WorkbenchError(f"no payload kind {kind!r} in the schema", f"use one of {', '.join(s['$defs'])}")
    validator = jsonschema.Draft202012Validator({"$defs": s["$defs"], "$ref": f"#/$defs/{kind}"})
    error = jsonschema.exceptions.best_match(validator.iter_errors(payload))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        raise WorkbenchError(f"{kind} does not match the widget schema at {where}: {error.message}",
                             "build payloads with Graph.to_view() / overlay_payload()")
    if kind == "GraphPayload":
        for table, first in (("nodes", "name"), ("edges", "src"), ("scopes", "path")):
            n = len(payload[table][first])
            for col, values in payload[table].items():
                if len(values) != n:
                    raise WorkbenchError(f"GraphPayload {table}.{col} has {len(values)} entries, "
                                         f"{table}.{first} has {n}", "every column of a table needs one entry per row")
        n = len(payload["nodes"]["name"])
        if any(not 0 <= i < n for i in (*payload["edges"]["src"], *payload["edges"]["dst"])):
            raise WorkbenchError("GraphPayload has an edge to a node index out of range", "edges index nodes")

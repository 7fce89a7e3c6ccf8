"""Apache TVM compiled models: a ``.tvm`` folder holding ``lib.so`` (the Relax VM executable, compiled
for one CPU) and ``tvm_model.json`` (what the workbench recorded when it compiled it: the interface,
the target, the Relax graph before lowering, the op counts).

A compiled library is native code: loading it runs it. The folder is described and its graph drawn
from the JSON alone; the TVM runtime loads ``lib.so`` only for a model the workbench compiled itself
(its lineage says so) or one opened with ``wb.load(path, trust=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.core.errors import ModelFormatError
from workbench.core.graph import Graph, Node, Tensor, Weight, mark_params
from workbench.core.model import Model, TensorSpec
from workbench.core.registry import Format, register_format

MARKER = "tvm_model.json"
LIBRARY = "lib.so"
KIND = "workbench-tvm"
#: the largest tvm_model.json read (the graph of a large model is a few MB)
MAX_JSON_BYTES = 64 << 20


def read_info(path: Path) -> dict[str, Any]:
    """The folder's ``tvm_model.json``, checked to be the workbench's (not code: plain JSON)."""
    from workbench.core.safety import check_openable

    marker = path / MARKER
    check_openable(marker)
    if marker.stat().st_size > MAX_JSON_BYTES:
        raise ModelFormatError(f"{marker} is larger than {MAX_JSON_BYTES >> 20} MB", "compile the model again")
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFormatError(f"{marker} is not valid JSON ({err})", "compile the model again") from None
    if not isinstance(info, dict) or info.get("kind") != KIND:
        raise ModelFormatError(f"{marker} is not a workbench TVM description (kind {KIND!r})",
                               "compile with wb.convert(model, 'tvm')")
    return info


def _specs(entries: Any, what: str) -> list[TensorSpec]:
    try:
        return [TensorSpec(str(e["name"]), tuple(d if isinstance(d, int) else str(d) for d in e["shape"]),
                           str(e["dtype"])) for e in entries]
    except (KeyError, TypeError) as err:
        raise ModelFormatError(f"the {what} in {MARKER} are malformed ({err})", "compile the model again") from None


def load(path: Path, *, trust: bool = False, **_: Any) -> Model:
    info = read_info(path)
    if not (path / LIBRARY).is_file():
        raise ModelFormatError(f"{path.name} has no {LIBRARY}", "copy the whole .tvm folder, or compile again")
    meta: dict[str, Any] = {k: info.get(k) for k in ("target", "tvm_version", "schedule", "tuning_trials",
                                                     "source_format")}
    meta["ops"] = info.get("ops") or {}
    meta["nodes"] = sum(meta["ops"].values()) if isinstance(meta["ops"], dict) else None
    meta["producer"] = f"Apache TVM {info.get('tvm_version', '?')}"
    if trust:
        meta["trusted"] = True
    return Model("tvm", name=path.stem, path=path, inputs=_specs(info.get("inputs", []), "inputs"),
                 outputs=_specs(info.get("outputs", []), "outputs"), native_loader=lambda: info, metadata=meta)


def read_graph(info: dict[str, Any], name: str) -> Graph:
    """The Relax graph recorded at compile time (before lowering): one node per operator call."""
    graph = info.get("graph") or {}
    tensors = {t: Tensor(t, tuple(s) if s is not None else None, d)
               for t, (s, d) in (graph.get("tensors") or {}).items()}
    weights = {w: Weight(w, tuple(s), d) for w, (s, d) in (graph.get("weights") or {}).items()}
    nodes = [Node(n["name"], n["op"], list(n["inputs"]), list(n["outputs"]),
                  weights=[i for i in n["inputs"] if i in weights], positions={t: k for k, t in enumerate(n["inputs"])})
             for n in graph.get("nodes") or []]
    mark_params(nodes, weights)
    return Graph(name, "tvm", nodes, tensors, weights, list(graph.get("inputs") or []),
                 list(graph.get("outputs") or []),
                 notes=["the Relax graph before TVM lowered and fused it; the library runs fused kernels"])


@register_format
class TVMFormat(Format):
    name = "tvm"
    description = "Apache TVM compiled library (.tvm folder: lib.so + tvm_model.json)"
    suffixes = (".tvm",)
    folder = True
    priority = 45
    facts = ("producer", "target", "schedule", "tuning_trials", "nodes", "ops")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return path.is_dir() and (path / MARKER).is_file() and (path / LIBRARY).is_file()

    @classmethod
    def explain(cls, path: Path, head: bytes) -> ModelFormatError | None:
        if path.is_dir() and path.suffix == ".tvm":
            return ModelFormatError(f"{path} lacks {MARKER} or {LIBRARY}",
                                    "pass the folder wb.convert(model, 'tvm') wrote, whole")
        return None

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def files(cls, path: Path) -> list[Path]:
        return [p for p in (path / MARKER, path / LIBRARY) if p.is_file()]

    @classmethod
    def graph(cls, model: Model) -> Graph:
        try:
            graph = read_graph(model.native(), model.name)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ModelFormatError(f"the graph recorded in {model.name}'s {MARKER} is malformed ({err!r})",
                                   "compile the model again (wb.convert(model, 'tvm'))") from None
        return graph.with_file_size(model)

    @classmethod
    def precision(cls, model: Model) -> str | None:
        return model.metadata.get("precision")


def describe_json(info: dict[str, Any]) -> str:
    """``tvm_model.json``'s text (sorted keys: the same model gives the same bytes)."""
    return json.dumps(info, sort_keys=True, separators=(",", ":"))

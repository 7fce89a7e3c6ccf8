"""Compare two graphs: match their nodes (by name, then by structure) and mark what was added, removed
or changed. ``diff(a, b)`` works across formats (ONNX against its OpenVINO IR, fp32 against QDQ,
before and after a simplification) because matching uses op families (``canonical_op``) and looks
through the ops that quantization, conversion and export insert.

``GraphDiff.to_view()`` is the merged payload the diff widget (``workbench.ui.graph_view.DiffView``) draws.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import WorkbenchError
from workbench.core.graph import (
    NODE_COLUMNS,
    Graph,
    Node,
    ScopeTable,
    Shape,
    canonical_op,
    jsonable,
    shape_str,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["GraphDiff", "NodeMatch", "diff"]

# op families a structural match may look through (inserted by quantization, conversion or export)
TRANSPARENT = frozenset({"quantize", "dequantize", "fakequantize", "cast", "identity"})


@dataclass
class NodeMatch:
    """A pair of nodes (or a lone node) in a diff: status is same, changed, added or removed."""

    a: str | None
    b: str | None
    status: str
    how: str = ""  # "name" or "structure"
    changes: list[str] = field(default_factory=list)


@dataclass
class GraphDiff:
    """The result of ``diff(a, b)``: every node of both graphs, matched or not.

    ``added`` are nodes only in ``b``, ``removed`` only in ``a``; ``changed`` pairs differ in op
    family, attributes, output shape or dtype, weights, precision or inputs (``NodeMatch.changes``).
    """

    a: Graph
    b: Graph
    matches: list[NodeMatch]

    @property
    def added(self) -> list[str]:
        return [m.b for m in self.matches if m.status == "added"]  # type: ignore[misc]

    @property
    def removed(self) -> list[str]:
        return [m.a for m in self.matches if m.status == "removed"]  # type: ignore[misc]

    @property
    def changed(self) -> list[NodeMatch]:
        return [m for m in self.matches if m.status == "changed"]

    @property
    def same(self) -> list[NodeMatch]:
        return [m for m in self.matches if m.status == "same"]

    def pairs(self) -> dict[str, str]:
        """``{node in a: matched node in b}``."""
        return {m.a: m.b for m in self.matches if m.a is not None and m.b is not None}

    def counts(self) -> dict[str, int]:
        c = Counter(m.status for m in self.matches)
        return {k: c.get(k, 0) for k in ("same", "changed", "added", "removed")}

    def status_a(self) -> dict[str, str]:
        return {m.a: m.status for m in self.matches if m.a is not None}

    def status_b(self) -> dict[str, str]:
        return {m.b: m.status for m in self.matches if m.b is not None}

    def __bool__(self) -> bool:
        """True when the graphs differ."""
        c = self.counts()
        return bool(c["changed"] or c["added"] or c["removed"])

    def summary(self) -> str:
        c = self.counts()
        added = Counter(self.b.node(n).op for n in self.added).most_common(4)
        removed = Counter(self.a.node(n).op for n in self.removed).most_common(4)
        parts = [f"{self.a.name} ({self.a.format}, {len(self.a)} nodes) vs {self.b.name} ({self.b.format}, "
                 f"{len(self.b)} nodes): {c['same']} same, {c['changed']} changed, {c['added']} added, "
                 f"{c['removed']} removed"]
        if added:
            parts.append("added: " + ", ".join(f"{op}×{k}" for op, k in added))
        if removed:
            parts.append("removed: " + ", ".join(f"{op}×{k}" for op, k in removed))
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"<GraphDiff {self.summary()}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())

    def to_view(self) -> dict[str, Any]:
        """One merged graph for the browser (``GraphPayload`` with ``status`` and ``changes``): ``b``'s
        nodes plus the nodes removed from ``a``, a ``status`` per node name and the list of ``changes``
        of changed nodes."""
        va, vb = self.a.to_view(), self.b.to_view()
        cols = {k: list(v) for k, v in vb["nodes"].items()}
        edges = {k: list(v) for k, v in vb["edges"].items()}
        names, ops = cols["name"], cols["op"]
        b_index = {n if o not in ("Input", "Output") else f"{o}:{n}": k for k, (n, o) in enumerate(zip(names, ops, strict=True))}
        status = {n: "same" for n in names}
        status.update(self.status_b())
        changes = {m.b: m.changes for m in self.matches if m.b is not None and m.changes}
        pairs = self.pairs()
        a_map: dict[int, int] = {}
        taken = set(names)
        scopes = ScopeTable()
        for sid in range(len(vb["scopes"]["path"])):  # b's scopes keep their ids
            scopes.add_path(vb["scopes"]["path"][sid], vb["scopes"]["parent"][sid])
        scope_map: dict[int, int] = {-1: -1}
        for k, (path, parent) in enumerate(zip(va["scopes"]["path"], va["scopes"]["parent"], strict=True)):
            scope_map[k] = scopes.add_path(path, scope_map[parent])
        a_nodes = va["nodes"]
        for k, (name, op) in enumerate(zip(a_nodes["name"], a_nodes["op"], strict=True)):
            if op in ("Input", "Output"):
                key = f"{op}:{name}"
                if key in b_index:
                    a_map[k] = b_index[key]
                    continue
            elif name in pairs:
                a_map[k] = b_index[pairs[name]]
                continue
            label = name if name not in taken else f"{name} (removed)"
            taken.add(label)
            status[label] = "removed"
            a_map[k] = len(names)
            for col in NODE_COLUMNS:
                v = a_nodes[col][k]
                cols[col].append(label if col == "name" else scope_map[v] if col == "scope" else v)
        have = set(zip(edges["src"], edges["dst"], strict=True))
        for src, dst, lab in zip(va["edges"]["src"], va["edges"]["dst"], va["edges"]["shape"], strict=True):
            s2, d2 = a_map[src], a_map[dst]
            if (s2, d2) not in have and (status.get(names[s2]) == "removed" or status.get(names[d2]) == "removed"):
                edges["src"].append(s2)
                edges["dst"].append(d2)
                edges["shape"].append(lab)
                have.add((s2, d2))
        return {"version": vb["version"], "name": f"{self.a.name} → {self.b.name}",
                "format": f"{self.a.format} → {self.b.format}", "nodes": cols, "edges": edges,
                "scopes": scopes.table(), "stats": vb["stats"], "status": status, "changes": changes}

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([{"a": m.a, "b": m.b, "status": m.status, "matched_by": m.how,
                              "op_a": self.a.node(m.a).op if m.a else None,
                              "op_b": self.b.node(m.b).op if m.b else None,
                              "changes": ", ".join(m.changes)} for m in self.matches])


def diff(a: Graph, b: Graph, match: str = "auto") -> GraphDiff:
    """Match the nodes of ``a`` and ``b`` and mark added, removed and changed nodes.

    ``match``: ``"name"`` (equal names with the same op family), ``"structure"`` (same op family
    reached from matched neighbours, looking through Quantize/Dequantize/Convert/Identity), or
    ``"auto"`` (names first, then structure for the rest).
    """
    if match not in ("auto", "name", "structure"):
        raise WorkbenchError(f"unknown match mode {match!r}", "use match='auto', 'name' or 'structure'")
    pairs: dict[str, str] = {}  # a -> b
    how: dict[str, str] = {}
    if match in ("auto", "name"):
        for n in a.nodes:
            if n.name in b and canonical_op(b.node(n.name).op) == canonical_op(n.op):
                pairs[n.name] = n.name
                how[n.name] = "name"
    if match in ("auto", "structure"):
        _structural_match(a, b, pairs, how)
    rev = {v: k for k, v in pairs.items()}
    matches: list[NodeMatch] = []
    for n in a.nodes:
        if n.name in pairs:
            m = b.node(pairs[n.name])
            changes = _changes(a, n, b, m, pairs)
            matches.append(NodeMatch(n.name, m.name, "changed" if changes else "same", how[n.name], changes))
        else:
            matches.append(NodeMatch(n.name, None, "removed"))
    for m in b.nodes:
        if m.name not in rev:
            matches.append(NodeMatch(None, m.name, "added"))
    return GraphDiff(a, b, matches)


def _effective_neighbours(g: Graph, name: str, step: Callable[[str], Iterable[str]]) -> list[str]:
    """Nearest neighbours along ``step`` (predecessors or successors) that are not transparent ops
    (quantize/dequantize/convert/identity): walks through those to what they wrap."""
    out: list[str] = []
    seen = {name}
    queue = deque(step(name))
    while queue:
        n = queue.popleft()
        if n in seen:
            continue
        seen.add(n)
        if canonical_op(g.node(n).op) in TRANSPARENT:
            queue.extend(step(n))
        else:
            out.append(n)
    return out


def _effective_preds(g: Graph, name: str) -> list[str]:
    return _effective_neighbours(g, name, g.predecessors)


def _effective_succs(g: Graph, name: str) -> list[str]:
    return _effective_neighbours(g, name, g.successors)


def _input_roots(g: Graph, name: str) -> set[int]:
    """Positions of the graph inputs a node reads (through transparent ops), for anchoring roots."""
    roots: set[int] = set()
    pos = {t: i for i, t in enumerate(g.inputs)}
    stack, seen = [name], set()
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.add(cur)
        node = g.node(cur)
        roots |= {pos[t] for t in node.inputs if t in pos}
        if cur == name or canonical_op(node.op) in TRANSPARENT:
            stack.extend(g.predecessors(cur))
    return roots


def _structural_match(a: Graph, b: Graph, pairs: dict[str, str], how: dict[str, str]) -> None:
    rev = {v: k for k, v in pairs.items()}
    a_pos = {n.name: n.index / max(1, len(a.nodes)) for n in a.nodes}
    b_pos = {n.name: n.index / max(1, len(b.nodes)) for n in b.nodes}
    eff_succ_cache: dict[str, list[str]] = {}

    def a_succs(x: str) -> list[str]:
        if x not in eff_succ_cache:
            eff_succ_cache[x] = _effective_succs(a, x)
        return eff_succ_cache[x]

    a_roots: dict[frozenset[int], list[str]] | None = None  # graph-input positions read -> a's root nodes

    def roots_of_a(roots: set[int]) -> set[str]:
        nonlocal a_roots
        if a_roots is None:
            a_roots = defaultdict(list)
            for n in a.nodes:
                if canonical_op(n.op) not in TRANSPARENT and not _effective_preds(a, n.name):
                    a_roots[frozenset(_input_roots(a, n.name))].append(n.name)
        return set(a_roots.get(frozenset(roots), []))

    for _ in range(3):  # a few sweeps: later matches can anchor earlier unmatched nodes
        progress = False
        for m in b.nodes:
            if m.name in rev or canonical_op(m.op) in TRANSPARENT:
                continue
            fam = canonical_op(m.op)
            preds = _effective_preds(b, m.name)
            anchored = [rev[p] for p in preds if p in rev]
            if anchored:
                cands = {c for p in anchored for c in a_succs(p)}
            elif not preds:
                cands = roots_of_a(_input_roots(b, m.name))
            else:
                continue
            cands = {c for c in cands if c not in pairs and canonical_op(a.node(c).op) == fam}
            if not cands:
                continue

            def score(c: str, anchored: list[str] = anchored, m: Node = m) -> tuple[int, float]:
                cp = set(_effective_preds(a, c))
                return (sum(1 for p in anchored if p in cp), -abs(a_pos[c] - b_pos[m.name]))

            best = max(sorted(cands), key=score)
            pairs[best] = m.name
            rev[m.name] = best
            how[best] = "structure"
            progress = True
        if not progress:
            break
    # transparent ops (Q/DQ, Convert) that exist in both: match by the matched node they feed
    for m in b.nodes:
        if m.name in rev or canonical_op(m.op) not in TRANSPARENT:
            continue
        for s in b.successors(m.name):
            if s in rev:
                for c in a.predecessors(rev[s]):
                    if c not in pairs and canonical_op(a.node(c).op) == canonical_op(m.op):
                        pairs[c] = m.name
                        rev[m.name] = c
                        how[c] = "structure"
                        break
            if m.name in rev:
                break


def _changes(a: Graph, n: Node, b: Graph, m: Node, pairs: dict[str, str]) -> list[str]:
    changes: list[str] = []
    if canonical_op(n.op) != canonical_op(m.op):
        changes.append(f"op {n.op} -> {m.op}")
    elif n.op == m.op and a.format == b.format:
        ka = {k: v for k, v in n.attrs.items()}
        kb = {k: v for k, v in m.attrs.items()}
        if jsonable(ka) != jsonable(kb):
            diff_keys = sorted(k for k in set(ka) | set(kb) if jsonable(ka.get(k)) != jsonable(kb.get(k)))
            changes.append("attributes " + ", ".join(diff_keys[:4]))
    ta = [a.tensors.get(t) for t in n.outputs[:1]]
    tb = [b.tensors.get(t) for t in m.outputs[:1]]
    if ta and tb and ta[0] and tb[0]:
        if ta[0].shape is not None and tb[0].shape is not None and not _same_shape(ta[0].shape, tb[0].shape):
            changes.append(f"shape {shape_str(ta[0].shape)} -> {shape_str(tb[0].shape)}")
        if ta[0].dtype and tb[0].dtype and ta[0].dtype != tb[0].dtype:
            changes.append(f"dtype {ta[0].dtype} -> {tb[0].dtype}")
    if n.precision != m.precision and "quantized" in (n.precision, m.precision):
        changes.append(f"precision {n.precision} -> {m.precision}")
    wa = sorted((a.weights[w].shape, a.weights[w].dtype) for w in n.weights if a.weights[w].is_param)
    wb = sorted((b.weights[w].shape, b.weights[w].dtype) for w in m.weights if b.weights[w].is_param)
    if a.format == b.format and wa != wb:
        changes.append("weights")
    pa = {pairs.get(p) for p in _effective_preds(a, n.name)}
    pb = set(_effective_preds(b, m.name))
    if pa != pb:
        changes.append("inputs")
    return changes


def _same_shape(a: Shape, b: Shape) -> bool:
    """Equal ranks and equal static dims; a symbolic dim ("batch", "?") matches any size."""
    return len(a) == len(b) and all(x == y or not isinstance(x, int) or not isinstance(y, int)
                                    for x, y in zip(a, b, strict=True))


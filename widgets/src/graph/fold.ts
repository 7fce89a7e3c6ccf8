/**
 * Folding by module: which modules are open, the visible graph that results (real nodes and
 * folded-module boxes, with edges merged between them), and search over node and module names.
 * Pure functions over GraphData, so the interaction state is unit-tested without a browser.
 */
import type { GraphData } from "./data";

export type VisItem = { kind: "node"; id: number } | { kind: "group"; id: number };

export interface VisibleEdge {
  a: number;
  b: number;
  /** the tensor's shape ("1×64×56×56"), "" when unknown or several */
  shape: string;
}

export interface Visible {
  /** the visible box that stands for each real node */
  rep: Int32Array;
  vis: VisItem[];
  edges: VisibleEdge[];
  /** visible box of each folded scope, -1 when the scope is open or inside a folded one */
  groupVis: Map<number, number>;
}

/** The visible graph for a set of open scopes: a node shows itself when all its scopes are open,
 * otherwise its outermost folded scope shows as one box. */
export function buildVisible(g: GraphData, expanded: ReadonlySet<number>): Visible {
  const rep = new Int32Array(g.n);
  const vis: VisItem[] = [];
  const groupVis = new Map<number, number>();
  // outermost folded scope per scope, computed once (parents come first)
  const folded = new Int32Array(g.scopes);
  for (let s = 0; s < g.scopes; s++) {
    const p = g.scopeParent[s]!;
    const above = p >= 0 ? folded[p]! : -1;
    // a module of one node never folds: its box would hide the op and save nothing
    folded[s] = above >= 0 ? above : expanded.has(s) || g.scopeCount[s]! <= 1 ? -1 : s;
  }
  for (let i = 0; i < g.n; i++) {
    const s = g.scope[i]!;
    const f = s >= 0 ? folded[s]! : -1;
    if (f < 0) {
      rep[i] = vis.length;
      vis.push({ kind: "node", id: i });
    } else {
      let v = groupVis.get(f);
      if (v === undefined) {
        v = vis.length;
        groupVis.set(f, v);
        vis.push({ kind: "group", id: f });
      }
      rep[i] = v;
    }
  }
  const seen = new Map<number, number>();
  const edges: VisibleEdge[] = [];
  const { src, dst, shape } = g.edges;
  for (let k = 0; k < src.length; k++) {
    const a = rep[src[k]!]!, b = rep[dst[k]!]!;
    if (a === b) continue;
    const key = a * 4194304 + b;
    const at = seen.get(key);
    if (at === undefined) {
      seen.set(key, edges.length);
      edges.push({ a, b, shape: shape[k] ?? "" });
    } else if (edges[at]!.shape !== (shape[k] ?? "")) {
      edges[at]!.shape = ""; // several tensors between two boxes: no single shape
    }
  }
  return { rep, vis, edges, groupVis };
}

function isOpenPath(g: GraphData, s: number, expanded: ReadonlySet<number>): boolean {
  for (let q = s; q >= 0; q = g.scopeParent[q]!) if (!expanded.has(q)) return false;
  return true;
}

/** A scope whose children are numbered ("layer.0", "layer.1", …): a ModuleList of layers. */
export function isLayerList(g: GraphData, s: number): boolean {
  const kids = g.scopeChildren[s]!;
  return kids.length >= 2 && kids.every((k) => /\.\d+$/.test(g.scopePath[k]!));
}

/**
 * The scopes to open first. Graphs of at most `limit` nodes open fully. Larger ones open level by
 * level (a level opens as a whole, so the view folds uniformly) while at most `limit` boxes show;
 * a wrapper module that is alone at its level always opens, and a list of layers
 * (`encoder.layer.0…N`) opens so a transformer shows its layers rather than one "encoder" box.
 */
export function initialFold(g: GraphData, limit: number): Set<number> {
  const expanded = new Set<number>();
  const S = g.scopes;
  if (g.n <= limit) {
    for (let s = 0; s < S; s++) expanded.add(s);
    return expanded;
  }
  const direct = new Int32Array(S);
  let visible = 0;
  for (let i = 0; i < g.n; i++) {
    const s = g.scope[i]!;
    if (s >= 0) direct[s]!++;
    else visible++;
  }
  for (let s = 0; s < S; s++) if (g.scopeParent[s]! < 0) visible++;
  const byDepth: number[][] = [];
  for (let s = 0; s < S; s++) (byDepth[g.scopeDepth[s]!] ??= []).push(s);
  const cost = (s: number): number => direct[s]! + g.scopeChildren[s]!.length - 1;
  for (const level of byDepth) {
    if (!level) continue;
    const open = level.filter((s) => { const p = g.scopeParent[s]!; return p < 0 || expanded.has(p); });
    if (!open.length) break;
    let nv = visible;
    for (const s of open) nv += cost(s);
    if (nv > limit && visible >= 4) {
      // not the whole level: still open lone wrappers, then lists of layers (all of them or none, so
      // the view stays uniform) while they fit
      for (const s of open) {
        const p = g.scopeParent[s]!;
        const lone = p >= 0 ? g.scopeChildren[p]!.length === 1 : open.length === 1;
        if (lone && visible + cost(s) <= limit * 2) { expanded.add(s); visible += cost(s); }
      }
      const lists = open.filter((s) => !expanded.has(s) && isLayerList(g, s));
      const extra = lists.reduce((sum, s) => sum + cost(s), 0);
      if (lists.length && visible + extra <= limit * 2) { for (const s of lists) expanded.add(s); visible += extra; }
      break;
    }
    for (const s of open) expanded.add(s);
    visible = nv;
  }
  return expanded;
}

/** Opens the shallowest folded level that shows (one click of "Unfold"). */
export function unfoldLevel(g: GraphData, expanded: Set<number>): boolean {
  let best = Infinity;
  for (let s = 0; s < g.scopes; s++) {
    const p = g.scopeParent[s]!;
    if (!expanded.has(s) && (p < 0 || isOpenPath(g, p, expanded))) best = Math.min(best, g.scopeDepth[s]!);
  }
  if (best === Infinity) return false;
  for (let s = 0; s < g.scopes; s++) {
    const p = g.scopeParent[s]!;
    if (g.scopeDepth[s] === best && (p < 0 || isOpenPath(g, p, expanded))) expanded.add(s);
  }
  return true;
}

/** Folds scope `s` and every scope inside it. */
export function foldScope(g: GraphData, expanded: Set<number>, s: number): void {
  for (let q = 0; q < g.scopes; q++) if (g.encloses(s, q)) expanded.delete(q);
}

/** Opens every scope around node `i`; returns whether anything changed. */
export function revealNode(g: GraphData, expanded: Set<number>, i: number): boolean {
  let changed = false;
  for (const s of g.ancestors(i)) if (!expanded.has(s)) { expanded.add(s); changed = true; }
  return changed;
}

/** Opens every scope around scope `s` (not `s` itself). */
export function revealScope(g: GraphData, expanded: Set<number>, s: number): boolean {
  let changed = false;
  for (let q = g.scopeParent[s]!; q >= 0; q = g.scopeParent[q]!) if (!expanded.has(q)) { expanded.add(q); changed = true; }
  return changed;
}

export type Match = { kind: "node"; id: number } | { kind: "module"; id: number };

/**
 * Search: modules whose path contains the query ("layer1.0", "attention"), then nodes whose name,
 * op or module path contains it. Case-insensitive; at most `max` results.
 */
export function search(g: GraphData, query: string, max = 200): Match[] {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  const out: Match[] = [];
  const scopeHit = new Uint8Array(g.scopes);
  for (let s = 0; s < g.scopes; s++) {
    if (g.scopePath[s]!.toLowerCase().includes(q)) {
      scopeHit[s] = 1;
      if (out.length < max) out.push({ kind: "module", id: s });
    }
  }
  for (let i = 0; i < g.n && out.length < max; i++) {
    const s = g.scope[i]!;
    if (g.name[i]!.toLowerCase().includes(q) || g.op[i]!.toLowerCase().includes(q) || (s >= 0 && scopeHit[s] === 1)) {
      out.push({ kind: "node", id: i });
    }
  }
  return out;
}

/** The graph payload decoded into typed columns, with the module tree's depth and sizes. */
import type { GraphPayload, OpCategory } from "../generated/schema";

/** A payload the widget cannot draw; the message names what is wrong. */
export class PayloadError extends Error {
  override name = "PayloadError";
}

export interface EdgeColumns {
  src: Int32Array;
  dst: Int32Array;
  shape: string[];
}

export class GraphData {
  readonly n: number;
  readonly name: string[];
  readonly op: string[];
  readonly cat: OpCategory[];
  readonly scope: Int32Array;
  readonly shape: string[];
  readonly dtype: string[];
  readonly params: number[];
  readonly macs: number[];
  readonly precision: string[];
  readonly edges: EdgeColumns;
  readonly scopeLabel: string[];
  readonly scopePath: string[];
  readonly scopeParent: Int32Array;
  readonly scopeDepth: Int32Array;
  /** real nodes inside each scope, nested scopes included */
  readonly scopeCount: Int32Array;
  /** direct child scopes of each scope */
  readonly scopeChildren: number[][];
  readonly index: Map<string, number>;
  readonly title: string;
  readonly format: string;
  readonly payload: GraphPayload;

  constructor(p: GraphPayload) {
    this.payload = p;
    const t = p.nodes;
    this.n = t.name.length;
    this.name = t.name;
    this.op = t.op;
    this.cat = t.category;
    this.scope = Int32Array.from(t.scope);
    this.shape = t.shape;
    this.dtype = t.dtype;
    this.params = t.params;
    this.macs = t.macs;
    this.precision = t.precision;
    this.edges = { src: Int32Array.from(p.edges.src), dst: Int32Array.from(p.edges.dst), shape: p.edges.shape };
    this.scopeLabel = p.scopes.label;
    this.scopePath = p.scopes.path;
    this.scopeParent = Int32Array.from(p.scopes.parent);
    const S = this.scopeParent.length;
    this.scopeDepth = new Int32Array(S);
    this.scopeChildren = Array.from({ length: S }, () => []);
    for (let s = 0; s < S; s++) {
      const par = this.scopeParent[s]!;
      this.scopeDepth[s] = par >= 0 ? this.scopeDepth[par]! + 1 : 0; // parents come first
      if (par >= 0) this.scopeChildren[par]!.push(s);
    }
    this.scopeCount = new Int32Array(S);
    for (let i = 0; i < this.n; i++) {
      for (let s = this.scope[i]!; s >= 0; s = this.scopeParent[s]!) this.scopeCount[s]!++;
    }
    this.index = new Map(this.name.map((nm, i) => [nm, i]));
    this.title = p.name;
    this.format = p.format;
  }

  get scopes(): number {
    return this.scopeParent.length;
  }

  /** The scopes enclosing node `i`, outermost first. */
  ancestors(i: number): number[] {
    const out: number[] = [];
    for (let s = this.scope[i]!; s >= 0; s = this.scopeParent[s]!) out.push(s);
    return out.reverse();
  }

  /** Whether scope `s` is `inner` or encloses it. */
  encloses(s: number, inner: number): boolean {
    for (let q = inner; q >= 0; q = this.scopeParent[q]!) if (q === s) return true;
    return false;
  }
}

function column(table: Record<string, unknown>, key: string, where: string, n: number | null): unknown[] {
  const col = table[key];
  if (!Array.isArray(col)) throw new PayloadError(`${where}.${key} is missing or not an array`);
  if (n !== null && col.length !== n) {
    throw new PayloadError(`${where}.${key} has ${col.length} entries, ${where}.name has ${n}`);
  }
  return col;
}

function table(p: Record<string, unknown>, key: string): Record<string, unknown> {
  const t = p[key];
  if (typeof t !== "object" || t === null || Array.isArray(t)) {
    throw new PayloadError(`the graph payload's ${key} is not a table of named columns (an old workbench? rebuild the widgets)`);
  }
  return t as Record<string, unknown>;
}

/**
 * Checks the shape of a payload (columns present, of equal length, indices in range) and decodes
 * it. The field types themselves are the schema's (`widgets/schema/graph.schema.json`), which
 * the Python side validates against in its tests.
 */
export function decodeGraph(raw: unknown): GraphData {
  if (typeof raw !== "object" || raw === null) throw new PayloadError("the graph payload is not an object");
  const p = raw as Record<string, unknown>;
  if (p.version !== 2) throw new PayloadError(`graph payload version ${String(p.version)}; this widget reads version 2`);
  const nodes = table(p, "nodes");
  const n = column(nodes, "name", "nodes", null).length;
  for (const k of ["op", "category", "scope", "shape", "dtype", "params", "macs", "precision"]) column(nodes, k, "nodes", n);
  const edges = table(p, "edges");
  const e = column(edges, "src", "edges", null).length;
  column(edges, "dst", "edges", e);
  column(edges, "shape", "edges", e);
  const scopes = table(p, "scopes");
  const s = column(scopes, "label", "scopes", null).length;
  column(scopes, "parent", "scopes", s);
  column(scopes, "path", "scopes", s);
  const g = new GraphData(raw as GraphPayload);
  for (let k = 0; k < e; k++) {
    const a = g.edges.src[k]!, b = g.edges.dst[k]!;
    if (a < 0 || a >= n || b < 0 || b >= n) throw new PayloadError(`edge ${k} joins nodes ${a} and ${b}; there are ${n}`);
  }
  for (let i = 0; i < n; i++) {
    const sc = g.scope[i]!;
    if (sc < -1 || sc >= s) throw new PayloadError(`node ${g.name[i]} is in scope ${sc}; there are ${s}`);
  }
  for (let k = 0; k < s; k++) {
    const par = g.scopeParent[k]!;
    if (par >= k) throw new PayloadError(`scope ${k} (${g.scopePath[k]}) comes before its parent ${par}`);
  }
  return g;
}

export const EMPTY_PAYLOAD: GraphPayload = {
  version: 2, name: "", format: "", stats: {},
  nodes: { name: [], op: [], category: [], scope: [], shape: [], dtype: [], params: [], macs: [], precision: [] },
  edges: { src: [], dst: [], shape: [] },
  scopes: { label: [], parent: [], path: [] },
};

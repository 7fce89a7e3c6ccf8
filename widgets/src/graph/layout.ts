/**
 * A layered (Sugiyama-style) layout with routed edges, written for speed: 5,000 boxes lay out in
 * tens of milliseconds, where dagre takes seconds and ELK longer (scripts/bench-layout.mjs).
 *
 * Steps: topological order (cycles broken by input order) -> longest-path layers -> a dummy point
 * on every layer a long edge crosses -> barycentre sweeps to reduce crossings -> x by neighbour
 * averages with overlap removal -> edges routed through their dummy points, so they run in the gaps
 * between boxes instead of across them.
 */

export const NODE_H = 34;
export const GROUP_H = 40;
export const LAYER_GAP = 38;
export const NODE_GAP = 16;
const DUMMY_W = 10;
/** beyond this many dummy points, the longest edges are drawn as curves instead (memory and time) */
const MAX_DUMMIES = 200_000;

export interface LayoutInput {
  /** number of boxes */
  count: number;
  /** [a, b] pairs of box indices */
  edges: ReadonlyArray<{ a: number; b: number }>;
  width: (v: number) => number;
  height: (v: number) => number;
}

export interface Layout {
  x: Float64Array;
  y: Float64Array;
  w: Float64Array;
  h: Float64Array;
  layer: Int32Array;
  /** per edge: the route's points [x0, y0, x1, y1, …], from the source's bottom to the target's top */
  routes: Float64Array[];
  preds: number[][];
  succs: number[][];
  bounds: [number, number, number, number];
}

export function layout(input: LayoutInput): Layout {
  const V = input.count;
  const E = input.edges;
  const preds: number[][] = Array.from({ length: V }, () => []);
  const succs: number[][] = Array.from({ length: V }, () => []);
  const indeg = new Int32Array(V);
  for (const { a, b } of E) { succs[a]!.push(b); preds[b]!.push(a); indeg[b]!++; }
  // Kahn's order; boxes left in cycles (possible after folding) follow in input order
  const order: number[] = [];
  for (let v = 0; v < V; v++) if (indeg[v] === 0) order.push(v);
  for (let head = 0; head < order.length; head++) {
    for (const w of succs[order[head]!]!) if (--indeg[w]! === 0) order.push(w);
  }
  if (order.length < V) {
    const placed = new Uint8Array(V);
    for (const v of order) placed[v] = 1;
    for (let v = 0; v < V; v++) if (!placed[v]) order.push(v);
  }
  const topo = new Int32Array(V);
  order.forEach((v, k) => { topo[v] = k; });
  const forward = (a: number, b: number): boolean => topo[b]! > topo[a]!;
  // longest-path layers (edges against the order are ignored)
  const layer = new Int32Array(V);
  for (const v of order) for (const w of succs[v]!) if (forward(v, w) && layer[w]! < layer[v]! + 1) layer[w] = layer[v]! + 1;
  // sources move down next to their first consumer (inputs start where they are used)
  for (let k = order.length - 1; k >= 0; k--) {
    const v = order[k]!;
    if (preds[v]!.length === 0 && succs[v]!.length > 0) {
      let m = Infinity;
      for (const w of succs[v]!) if (forward(v, w)) m = Math.min(m, layer[w]!);
      if (m !== Infinity && m - 1 > layer[v]!) layer[v] = m - 1;
    }
  }
  let L = 0;
  for (let v = 0; v < V; v++) L = Math.max(L, layer[v]! + 1);
  // dummy points: ids V.. on the layers a long forward edge crosses
  let budget = MAX_DUMMIES;
  const chains: (number[] | null)[] = new Array(E.length).fill(null);
  const dLayer: number[] = [];
  const nodeCount = (): number => V + dLayer.length;
  const up: number[][] = preds.map((p) => p.slice());
  const down: number[][] = succs.map((s) => s.slice());
  const spans = E.map((e, k) => [k, forward(e.a, e.b) ? layer[e.b]! - layer[e.a]! : 0] as const)
    .filter(([, span]) => span > 1)
    .sort((p, q) => p[1] - q[1]); // short edges first: they get dummies before the budget runs out
  for (const [k, span] of spans) {
    if (span - 1 > budget) continue;
    budget -= span - 1;
    const { a, b } = E[k]!;
    const chain: number[] = [];
    let prev = a;
    for (let l = layer[a]! + 1; l < layer[b]!; l++) {
      const d = nodeCount();
      dLayer.push(l);
      up.push([prev]);
      down.push([]);
      down[prev]!.push(d);
      chain.push(d);
      prev = d;
    }
    down[prev]!.push(b);
    up[b]!.push(prev);
    chains[k] = chain;
  }
  const N = nodeCount();
  const layerOf = (v: number): number => (v < V ? layer[v]! : dLayer[v - V]!);
  const layers: number[][] = Array.from({ length: L }, () => []);
  for (const v of order) layers[layer[v]!]!.push(v);
  for (let d = V; d < N; d++) layers[layerOf(d)]!.push(d);
  // barycentre sweeps, neighbours on the adjacent layer only
  const pos = new Float64Array(N);
  for (const ly of layers) ly.forEach((v, k) => { pos[v] = k; });
  const val = new Float64Array(N);
  const sweep = (ly: number[], nb: number[][], want: number): void => {
    for (const v of ly) {
      let s = 0, c = 0;
      for (const w of nb[v]!) if (layerOf(w) === want) { s += pos[w]!; c++; }
      val[v] = c ? s / c : pos[v]!;
    }
    ly.sort((p, q) => val[p]! - val[q]! || pos[p]! - pos[q]!);
    ly.forEach((v, k) => { pos[v] = k; });
  };
  const iterations = N > 20000 ? 1 : N > 4000 ? 2 : 4;
  for (let it = 0; it < iterations; it++) {
    for (let l = 1; l < L; l++) sweep(layers[l]!, up, l - 1);
    for (let l = L - 2; l >= 0; l--) sweep(layers[l]!, down, l + 1);
  }
  const w = new Float64Array(N), h = new Float64Array(N);
  for (let v = 0; v < N; v++) {
    w[v] = v < V ? input.width(v) : DUMMY_W;
    h[v] = v < V ? input.height(v) : 0;
  }
  // x: each box at the mean x of its neighbours, then overlaps removed (left-right-left packing)
  const x = new Float64Array(N);
  for (const ly of layers) { let cur = 0; for (const v of ly) { x[v] = cur + w[v]! / 2; cur += w[v]! + NODE_GAP; } }
  const place = (ly: number[], nb: number[][]): void => {
    const m = ly.length;
    if (!m) return;
    const nx = new Float64Array(m);
    for (let k = 0; k < m; k++) {
      const v = ly[k]!;
      const ns = nb[v]!;
      // a box follows its real neighbours and ignores the dummy points of long edges when it has any
      // (averaging with a detour would drift a long chain sideways); dummy points follow everything
      let s = 0, c = 0;
      for (const u of ns) if (v >= V || u < V) { s += x[u]!; c++; }
      if (!c) for (const u of ns) { s += x[u]!; c++; }
      nx[k] = c ? s / c : x[v]!;
    }
    const gap = (v: number): number => (v < V ? NODE_GAP : NODE_GAP / 2);
    let right = -Infinity;
    for (let k = 0; k < m; k++) { const v = ly[k]!; nx[k] = Math.max(nx[k]!, right + gap(v) + w[v]! / 2); right = nx[k]! + w[v]! / 2; }
    let left = Infinity;
    for (let k = m - 1; k >= 0; k--) { const v = ly[k]!; nx[k] = Math.min(nx[k]!, left - gap(v) - w[v]! / 2); left = nx[k]! - w[v]! / 2; }
    right = -Infinity;
    for (let k = 0; k < m; k++) { const v = ly[k]!; nx[k] = Math.max(nx[k]!, right + gap(v) + w[v]! / 2); right = nx[k]! + w[v]! / 2; }
    for (let k = 0; k < m; k++) x[ly[k]!] = nx[k]!;
  };
  for (let it = 0; it < 3; it++) {
    for (let l = 1; l < L; l++) place(layers[l]!, up);
    for (let l = L - 2; l >= 0; l--) place(layers[l]!, down);
  }
  // y: one row per layer
  const y = new Float64Array(N);
  const rowTop = new Float64Array(L + 1);
  let cy = 0;
  for (let l = 0; l < L; l++) {
    let mh = 0;
    for (const v of layers[l]!) mh = Math.max(mh, h[v]!);
    mh = Math.max(mh, 8);
    rowTop[l] = cy;
    for (const v of layers[l]!) y[v] = cy + mh / 2;
    cy += mh + LAYER_GAP;
  }
  // routes through the dummy points
  const routes: Float64Array[] = E.map(({ a, b }, k) => {
    const chain = chains[k];
    const pts = [x[a]!, y[a]! + h[a]! / 2];
    if (chain) for (const d of chain) pts.push(x[d]!, y[d]!);
    else if (!forward(a, b) || layer[b]! <= layer[a]!) {
      // a back edge (a cycle after folding): out to the side and up
      const side = Math.max(x[a]! + w[a]! / 2, x[b]! + w[b]! / 2) + 20;
      pts.push(side, y[a]! + h[a]! / 2 + 10, side, y[b]! - h[b]! / 2 - 10);
    }
    pts.push(x[b]!, y[b]! - h[b]! / 2);
    return Float64Array.from(pts);
  });
  let minX = Infinity, maxX = -Infinity;
  for (let v = 0; v < N; v++) { minX = Math.min(minX, x[v]! - w[v]! / 2); maxX = Math.max(maxX, x[v]! + w[v]! / 2); }
  if (N === 0) { minX = 0; maxX = 1; }
  return {
    x: x.slice(0, V), y: y.slice(0, V), w: w.slice(0, V), h: h.slice(0, V), layer, routes, preds, succs,
    bounds: [minX, 0, maxX, Math.max(cy - LAYER_GAP, 1)],
  };
}

/** Appends a smooth path through a route's points to a canvas path or collects SVG path data. */
export function routePath(pts: Float64Array, moveTo: (x: number, y: number) => void,
  curveTo: (c1x: number, c1y: number, c2x: number, c2y: number, x: number, y: number) => void): void {
  const n = pts.length / 2;
  moveTo(pts[0]!, pts[1]!);
  for (let k = 1; k < n; k++) {
    const x0 = pts[2 * k - 2]!, y0 = pts[2 * k - 1]!, x1 = pts[2 * k]!, y1 = pts[2 * k + 1]!;
    const my = (y1 - y0) / 2;
    curveTo(x0, y0 + my, x1, y1 - my, x1, y1);
  }
}

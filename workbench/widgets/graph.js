// The browser half of workbench.ui.GraphView: a layered graph drawn on a canvas, with module folding,
// search, a details panel, model stats, overlays and diff colouring. No dependencies: the layout is a
// fast layered (Sugiyama-style) layout written here, so 5,000+ nodes draw in well under a second.

const CATEGORY_COLORS = {
  conv: "#4e79a7", matmul: "#59a14f", norm: "#76b7b2", pool: "#9c755f", activation: "#f28e2b",
  shape: "#bab0ac", elementwise: "#edc948", quant: "#b07aa1", io: "#555555", other: "#8cd17d",
  group: "#e8e8f0",
};
const STATUS_COLORS = { same: "#c9cdd3", changed: "#f28e2b", added: "#2ca02c", removed: "#d62728" };
const CATEGORICAL = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"];
const NODE_H = 34, GROUP_H = 38, LAYER_GAP = 34, NODE_GAP = 14, FONT = "12px sans-serif";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function human(n) {
  if (n === null || n === undefined || n === "") return "";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(2) + " G";
  if (a >= 1e6) return (n / 1e6).toFixed(2) + " M";
  if (a >= 1e3) return (n / 1e3).toFixed(1) + " k";
  return typeof n === "number" && !Number.isInteger(n) ? n.toPrecision(3) : String(n);
}

function humanBytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < 3) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}

// viridis-like ramp from low (green) to high (red), readable on white
function ramp(t) {
  t = Math.max(0, Math.min(1, t));
  const stops = [[44, 160, 44], [188, 189, 34], [255, 187, 0], [255, 127, 14], [214, 39, 40]];
  const x = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// ---------------------------------------------------------------------------------------------
// graph model on the browser side
// ---------------------------------------------------------------------------------------------
class GraphData {
  constructor(payload) {
    this.payload = payload;
    const rows = payload.nodes || [];
    this.n = rows.length;
    this.name = rows.map((r) => r[0]);
    this.op = rows.map((r) => r[1]);
    this.cat = rows.map((r) => r[2]);
    this.scope = Int32Array.from(rows.map((r) => r[3]));
    this.shape = rows.map((r) => r[4]);
    this.dtype = rows.map((r) => r[5]);
    this.params = rows.map((r) => r[6]);
    this.macs = rows.map((r) => r[7]);
    this.precision = rows.map((r) => r[8]);
    this.edges = payload.edges || [];
    this.scopes = payload.scopes || [];
    this.index = new Map(this.name.map((nm, i) => [nm, i]));
    // scope tree: parent links, depth, node counts
    const S = this.scopes.length;
    this.scopeParent = Int32Array.from(this.scopes.map((s) => s[1]));
    this.scopeDepth = new Int32Array(S);
    for (let s = 0; s < S; s++) {
      let d = 0, p = this.scopeParent[s];
      while (p >= 0) { d++; p = this.scopeParent[p]; }
      this.scopeDepth[s] = d;
    }
    this.scopeCount = new Int32Array(S);
    for (let i = 0; i < this.n; i++) {
      for (let s = this.scope[i]; s >= 0; s = this.scopeParent[s]) this.scopeCount[s]++;
    }
  }
  ancestors(i) {
    const out = [];
    for (let s = this.scope[i]; s >= 0; s = this.scopeParent[s]) out.push(s);
    return out.reverse();
  }
  scopePath(s) {
    const parts = [];
    for (; s >= 0; s = this.scopeParent[s]) parts.push(this.scopes[s][0]);
    return parts.reverse().join(" / ");
  }
}

// ---------------------------------------------------------------------------------------------
// layout: visible graph (after folding) -> layers -> order -> coordinates
// ---------------------------------------------------------------------------------------------
function buildVisible(g, expanded) {
  // representative of each real node: itself, or its outermost collapsed scope
  const rep = new Int32Array(g.n);
  const vis = []; // {kind: "node"|"group", id}
  const groupVis = new Map();
  for (let i = 0; i < g.n; i++) {
    let collapsed = -1;
    const anc = g.ancestors(i);
    for (const s of anc) { if (!expanded.has(s)) { collapsed = s; break; } }
    if (collapsed < 0) { rep[i] = vis.length; vis.push({ kind: "node", id: i }); }
    else {
      if (!groupVis.has(collapsed)) { groupVis.set(collapsed, vis.length); vis.push({ kind: "group", id: collapsed }); }
      rep[i] = groupVis.get(collapsed);
    }
  }
  const seen = new Set();
  const edges = [];
  for (const e of g.edges) {
    const a = rep[e[0]], b = rep[e[1]];
    if (a === b) continue;
    const key = a * 1048576 + b;
    if (seen.has(key)) continue;
    seen.add(key);
    edges.push([a, b, e[2]]);
  }
  return { rep, vis, edges };
}

function layout(g, visible, measure) {
  const { vis, edges } = visible;
  const V = vis.length;
  const preds = Array.from({ length: V }, () => []);
  const succs = Array.from({ length: V }, () => []);
  const indeg = new Int32Array(V);
  for (const [a, b] of edges) { succs[a].push(b); preds[b].push(a); indeg[b]++; }
  // Kahn's order; nodes left in cycles (possible after folding) are appended in input order
  const order = [];
  const queue = [];
  for (let v = 0; v < V; v++) if (indeg[v] === 0) queue.push(v);
  let head = 0;
  while (head < queue.length) {
    const v = queue[head++];
    order.push(v);
    for (const w of succs[v]) if (--indeg[w] === 0) queue.push(w);
  }
  if (order.length < V) {
    const inOrder = new Uint8Array(V);
    for (const v of order) inOrder[v] = 1;
    for (let v = 0; v < V; v++) if (!inOrder[v]) order.push(v);
  }
  const topo = new Int32Array(V);
  order.forEach((v, k) => { topo[v] = k; });
  // longest-path layering (edges that go backwards in the order are ignored)
  const layer = new Int32Array(V);
  for (const v of order) for (const w of succs[v]) if (topo[w] > topo[v] && layer[w] < layer[v] + 1) layer[w] = layer[v] + 1;
  // pull sources down next to their first consumer (keeps graph inputs / weights-free starts compact)
  for (let k = order.length - 1; k >= 0; k--) {
    const v = order[k];
    if (preds[v].length === 0 && succs[v].length > 0) {
      let m = Infinity;
      for (const w of succs[v]) m = Math.min(m, layer[w]);
      if (m !== Infinity && m - 1 > layer[v]) layer[v] = m - 1;
    }
  }
  let L = 0;
  for (let v = 0; v < V; v++) L = Math.max(L, layer[v] + 1);
  const layers = Array.from({ length: L }, () => []);
  for (const v of order) layers[layer[v]].push(v);
  const pos = new Float64Array(V);
  const setPos = () => { for (const ly of layers) ly.forEach((v, k) => { pos[v] = k; }); };
  setPos();
  // barycentre sweeps to reduce crossings
  const bary = (ly, nb) => {
    const val = new Map();
    for (const v of ly) {
      const ns = nb[v];
      if (ns.length) { let s = 0; for (const w of ns) s += pos[w]; val.set(v, s / ns.length); }
      else val.set(v, pos[v]);
    }
    ly.sort((a, b) => val.get(a) - val.get(b));
    ly.forEach((v, k) => { pos[v] = k; });
  };
  for (let it = 0; it < 3; it++) {
    for (let l = 1; l < L; l++) bary(layers[l], preds);
    for (let l = L - 2; l >= 0; l--) bary(layers[l], succs);
  }
  // sizes
  const w = new Float64Array(V), h = new Float64Array(V);
  for (let v = 0; v < V; v++) { const s = measure(vis[v]); w[v] = s[0]; h[v] = s[1]; }
  // x: place each layer around the mean x of its neighbours, then remove overlaps
  const x = new Float64Array(V);
  for (const ly of layers) { let cur = 0; for (const v of ly) { x[v] = cur + w[v] / 2; cur += w[v] + NODE_GAP; } }
  const place = (ly, nb) => {
    if (!ly.length) return;
    const want = ly.map((v) => {
      const ns = nb[v];
      if (!ns.length) return x[v];
      let s = 0; for (const u of ns) s += x[u];
      return s / ns.length;
    });
    // left-to-right packing at the wanted positions, then shift so the mean offset is zero
    const nx = new Float64Array(ly.length);
    let right = -Infinity;
    for (let k = 0; k < ly.length; k++) {
      const v = ly[k];
      nx[k] = Math.max(want[k], right + NODE_GAP + w[v] / 2);
      right = nx[k] + w[v] / 2;
    }
    let left = Infinity;
    for (let k = ly.length - 1; k >= 0; k--) {
      const v = ly[k];
      nx[k] = Math.min(nx[k], left - NODE_GAP - w[v] / 2);
      left = nx[k] - w[v] / 2;
    }
    // re-pack from the left to guarantee no overlap after the right-to-left pass
    right = -Infinity;
    for (let k = 0; k < ly.length; k++) {
      const v = ly[k];
      nx[k] = Math.max(nx[k], right + NODE_GAP + w[v] / 2);
      right = nx[k] + w[v] / 2;
    }
    for (let k = 0; k < ly.length; k++) x[ly[k]] = nx[k];
  };
  for (let it = 0; it < 2; it++) {
    for (let l = 1; l < L; l++) place(layers[l], preds);
    for (let l = L - 2; l >= 0; l--) place(layers[l], succs);
  }
  const y = new Float64Array(V);
  let cy = 0;
  for (let l = 0; l < L; l++) {
    let mh = 0;
    for (const v of layers[l]) mh = Math.max(mh, h[v]);
    for (const v of layers[l]) y[v] = cy + mh / 2;
    cy += mh + LAYER_GAP;
  }
  let minX = Infinity, maxX = -Infinity;
  for (let v = 0; v < V; v++) { minX = Math.min(minX, x[v] - w[v] / 2); maxX = Math.max(maxX, x[v] + w[v] / 2); }
  if (V === 0) { minX = 0; maxX = 1; }
  return { x, y, w, h, preds, succs, bounds: [minX, 0, maxX, Math.max(cy - LAYER_GAP, 1)] };
}

// ---------------------------------------------------------------------------------------------
// the view
// ---------------------------------------------------------------------------------------------
class GraphCanvas {
  constructor(root, model) {
    this.t0 = performance.now();
    this.root = root;
    this.model = model;
    this.expanded = new Set();
    this.selected = -1; // real node index
    this.selectedGroup = -1;
    this.view = { s: 1, tx: 0, ty: 0 };
    this.autoFit = true;
    this.dirty = true;
    this.pending = new Map();
    this.buildDom();
    this.setData(model.get("data"));
    this.bind();
  }

  buildDom() {
    const r = this.root;
    r.classList.add("wb-graph");
    r.style.height = (this.model.get("height") || 560) + "px";
    const bar = el("div", "wb-graph-toolbar");
    this.search = el("input", "wb-graph-search");
    this.search.placeholder = "search nodes (name or op)…";
    this.search.type = "search";
    const fit = el("button", "wb-graph-btn", "Fit");
    fit.title = "fit the graph in view";
    const fold = el("button", "wb-graph-btn", "Fold");
    fold.title = "fold every module";
    const unfold = el("button", "wb-graph-btn", "Unfold");
    unfold.title = "unfold one more level of modules";
    const statsBtn = el("button", "wb-graph-btn", "Stats");
    this.title = el("span", "wb-graph-title");
    bar.append(this.search, fit, fold, unfold, statsBtn, this.title);
    this.results = el("ul", "wb-graph-results");
    const body = el("div", "wb-graph-body");
    this.canvasWrap = el("div", "wb-graph-canvas-wrap");
    this.canvas = el("canvas", "wb-graph-canvas");
    this.canvasWrap.append(this.canvas);
    this.legend = el("div", "wb-graph-legend");
    this.canvasWrap.append(this.legend);
    this.stats = el("div", "wb-graph-stats");
    this.stats.hidden = true;
    this.canvasWrap.append(this.stats);
    this.details = el("div", "wb-graph-details");
    this.details.append(el("div", "wb-graph-hint", "Click a node for its details; double-click a module to fold or unfold it."));
    body.append(this.canvasWrap, this.details);
    r.append(bar, this.results, body);
    fit.onclick = () => this.fit();
    fold.onclick = () => { this.expanded.clear(); this.relayout(); this.fit(); };
    unfold.onclick = () => { this.unfoldLevel(); };
    statsBtn.onclick = () => { this.stats.hidden = !this.stats.hidden; };
    this.ctx = this.canvas.getContext("2d");
  }

  setData(payload) {
    this.g = new GraphData(payload || { nodes: [], edges: [], scopes: [] });
    const st = (payload && payload.stats) || {};
    this.title.textContent = `${payload ? payload.name : ""} · ${st.nodes ?? this.g.n} nodes · ${human(st.params)} params · ${human(st.macs)} MACs`;
    this.initialFold();
    this.renderStats(st);
    this.applyOverlay();
    this.relayout();
    this.fit();
  }

  initialFold() {
    // unfold scopes breadth-first while the visible graph stays under the threshold; unfolding a
    // module replaces its box by its direct nodes and direct sub-modules
    const limit = this.model.get("fold_threshold") || 1500;
    this.expanded = new Set();
    const g = this.g;
    const S = g.scopes.length;
    if (g.n <= limit) { for (let s = 0; s < S; s++) this.expanded.add(s); return; }
    const direct = new Int32Array(S), kids = new Int32Array(S);
    let visible = 0;
    for (let i = 0; i < g.n; i++) { if (g.scope[i] >= 0) direct[g.scope[i]]++; else visible++; }
    for (let s = 0; s < S; s++) { if (g.scopeParent[s] >= 0) kids[g.scopeParent[s]]++; else visible++; }
    // level by level: a level is unfolded only as a whole, so the view folds uniformly
    const byDepth = [];
    for (let s = 0; s < S; s++) (byDepth[g.scopeDepth[s]] ||= []).push(s);
    for (const level of byDepth) {
      if (!level) continue;
      const open = level.filter((s) => g.scopeParent[s] < 0 || this.expanded.has(g.scopeParent[s]));
      let nv = visible;
      for (const s of open) nv += direct[s] + kids[s] - 1;
      if (nv > limit) break;
      for (const s of open) this.expanded.add(s);
      visible = nv;
    }
  }

  unfoldLevel() {
    const g = this.g;
    let best = Infinity;
    for (let s = 0; s < g.scopes.length; s++) {
      if (!this.expanded.has(s)) {
        const p = g.scopeParent[s];
        if (p < 0 || this.expanded.has(p)) best = Math.min(best, g.scopeDepth[s]);
      }
    }
    for (let s = 0; s < g.scopes.length; s++) {
      const p = g.scopeParent[s];
      if (g.scopeDepth[s] === best && (p < 0 || this.expanded.has(p))) this.expanded.add(s);
    }
    this.relayout();
  }

  nodeLabel(v) {
    const item = this.visible.vis[v];
    const g = this.g;
    if (item.kind === "group") return [g.scopes[item.id][0], `${g.scopeCount[item.id]} nodes`];
    const i = item.id;
    const op = g.op[i];
    const sub = g.cat[i] === "io" ? g.name[i] : g.shape[i];
    return [op.length > 28 ? op.slice(0, 27) + "…" : op, sub];
  }

  relayout() {
    const t = performance.now();
    this.visible = buildVisible(this.g, this.expanded);
    const ctx = this.ctx;
    ctx.font = FONT;
    const cache = new Map();
    const measure = (item) => {
      const [a, b] = item.kind === "group" ? [this.g.scopes[item.id][0], `${this.g.scopeCount[item.id]} nodes`] :
        [this.g.op[item.id], this.g.cat[item.id] === "io" ? this.g.name[item.id] : this.g.shape[item.id]];
      const key = a + "\u0000" + b;
      let wd = cache.get(key);
      if (wd === undefined) {
        wd = Math.min(220, Math.max(ctx.measureText(a.length > 28 ? a.slice(0, 28) : a).width + 10,
          ctx.measureText((b || "").slice(0, 32)).width * 0.85) + 18);
        cache.set(key, wd);
      }
      return [Math.max(56, wd), item.kind === "group" ? GROUP_H : NODE_H];
    };
    this.L = layout(this.g, this.visible, measure);
    this.buildGrid();
    this.layoutMs = performance.now() - t;
    this.dirty = true;
    this.schedule();
  }

  buildGrid() {
    // a uniform grid over node boxes for hit testing
    const { x, y, w, h } = this.L;
    const cell = 200;
    this.grid = new Map();
    for (let v = 0; v < x.length; v++) {
      const x0 = Math.floor((x[v] - w[v] / 2) / cell), x1 = Math.floor((x[v] + w[v] / 2) / cell);
      const y0 = Math.floor((y[v] - h[v] / 2) / cell), y1 = Math.floor((y[v] + h[v] / 2) / cell);
      for (let gx = x0; gx <= x1; gx++) for (let gy = y0; gy <= y1; gy++) {
        const k = gx + "," + gy;
        let list = this.grid.get(k);
        if (!list) { list = []; this.grid.set(k, list); }
        list.push(v);
      }
    }
    this.cell = cell;
  }

  hit(px, py) {
    const wx = (px - this.view.tx) / this.view.s, wy = (py - this.view.ty) / this.view.s;
    const list = this.grid.get(Math.floor(wx / this.cell) + "," + Math.floor(wy / this.cell)) || [];
    const { x, y, w, h } = this.L;
    for (const v of list) if (Math.abs(wx - x[v]) <= w[v] / 2 && Math.abs(wy - y[v]) <= h[v] / 2) return v;
    return -1;
  }

  size() {
    const r = this.canvasWrap.getBoundingClientRect();
    return [Math.max(50, r.width), Math.max(50, r.height)];
  }

  fit() {
    const [W, H] = this.size();
    const [x0, y0, x1, y1] = this.L.bounds;
    const s = Math.min(1.2, Math.min((W - 20) / Math.max(1, x1 - x0), (H - 20) / Math.max(1, y1 - y0)));
    // tall graphs: fit the width, start at the top, so labels stay readable
    const sf = Math.max(s, Math.min(1, (W - 20) / Math.max(1, x1 - x0)) * (y1 - y0 > 4 * (x1 - x0) ? 1 : 0));
    this.view.s = Math.max(0.02, sf || s);
    this.view.tx = (W - (x1 - x0) * this.view.s) / 2 - x0 * this.view.s;
    this.view.ty = 10 - y0 * this.view.s;
    this.dirty = true;
    this.schedule();
  }

  centerOn(v) {
    this.autoFit = false;
    const [W, H] = this.size();
    if (this.view.s < 0.6) this.view.s = 0.9;
    this.view.tx = W / 2 - this.L.x[v] * this.view.s;
    this.view.ty = H / 2 - this.L.y[v] * this.view.s;
    this.dirty = true;
    this.schedule();
  }

  schedule() {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => { this.raf = 0; if (this.dirty) this.draw(); });
  }

  colorOf(v) {
    const item = this.visible.vis[v];
    if (item.kind === "group") {
      if (this.nodeColors) {
        // a folded module takes the colour of its "worst" member (highest overlay value / status)
        const c = this.groupColor.get(item.id);
        if (c) return c;
      }
      return CATEGORY_COLORS.group;
    }
    if (this.nodeColors) return this.nodeColors[item.id] || "#eeeeee";
    return CATEGORY_COLORS[this.g.cat[item.id]] || CATEGORY_COLORS.other;
  }

  draw() {
    this.dirty = false;
    const [W, H] = this.size();
    const dpr = window.devicePixelRatio || 1;
    const cv = this.canvas;
    if (cv.width !== Math.round(W * dpr) || cv.height !== Math.round(H * dpr)) {
      cv.width = Math.round(W * dpr); cv.height = Math.round(H * dpr);
      cv.style.width = W + "px"; cv.style.height = H + "px";
    }
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const { s, tx, ty } = this.view;
    ctx.setTransform(dpr * s, 0, 0, dpr * s, dpr * tx, dpr * ty);
    const vx0 = -tx / s, vy0 = -ty / s, vx1 = (W - tx) / s, vy1 = (H - ty) / s;
    const { x, y, w, h } = this.L;
    const edges = this.visible.edges;
    // edges
    ctx.lineWidth = Math.max(0.6, 1 / s);
    ctx.strokeStyle = "#9aa0a6";
    ctx.beginPath();
    const sel = this.selectedVis();
    const path = (a, b) => {
      const ax = x[a], ay = y[a] + h[a] / 2, bx = x[b], by = y[b] - h[b] / 2;
      ctx.moveTo(ax, ay);
      if (by - ay > 2 * NODE_H + LAYER_GAP && Math.abs(ax - bx) < Math.max(w[a], w[b])) {
        // a long edge between stacked nodes bends around the nodes in between
        const off = Math.max(w[a], w[b]) / 2 + 24;
        ctx.bezierCurveTo(ax + off, ay + 30, bx + off, by - 30, bx, by);
      } else {
        const my = (ay + by) / 2;
        ctx.bezierCurveTo(ax, my, bx, my, bx, by);
      }
    };
    for (const [a, b] of edges) {
      const ax = x[a], ay = y[a] + h[a] / 2, bx = x[b], by = y[b] - h[b] / 2;
      if (Math.max(ax, bx) + 300 < vx0 || Math.min(ax, bx) - 300 > vx1 || Math.max(ay, by) < vy0 || Math.min(ay, by) > vy1) continue;
      path(a, b);
    }
    ctx.stroke();
    if (sel >= 0) {
      ctx.strokeStyle = "#1a73e8";
      ctx.lineWidth = Math.max(1.5, 2 / s);
      ctx.beginPath();
      for (const [a, b] of edges) if (a === sel || b === sel) path(a, b);
      ctx.stroke();
    }
    // nodes
    const showText = s > 0.3;
    ctx.font = FONT;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    const vis = this.visible.vis;
    for (let v = 0; v < vis.length; v++) {
      const hw = w[v] / 2, hh = h[v] / 2;
      if (x[v] + hw < vx0 || x[v] - hw > vx1 || y[v] + hh < vy0 || y[v] - hh > vy1) continue;
      const group = vis[v].kind === "group";
      ctx.fillStyle = this.colorOf(v);
      ctx.beginPath();
      if (ctx.roundRect && showText) ctx.roundRect(x[v] - hw, y[v] - hh, w[v], h[v], group ? 8 : 4);
      else ctx.rect(x[v] - hw, y[v] - hh, w[v], h[v]);
      ctx.fill();
      if (group || v === sel || this.highlight === v) {
        ctx.lineWidth = v === sel ? Math.max(2, 3 / s) : Math.max(1, 1.2 / s);
        ctx.strokeStyle = v === sel ? "#1a73e8" : "#6b6b80";
        if (group) ctx.setLineDash([5, 3]);
        ctx.stroke();
        ctx.setLineDash([]);
      }
      if (showText) {
        const [a, b] = this.nodeLabel(v);
        const dark = group || this.isLight(ctx.fillStyle);
        ctx.fillStyle = dark ? "#202124" : "#ffffff";
        ctx.font = "bold " + FONT;
        ctx.fillText(a, x[v], y[v] - (b ? 7 : 0));
        if (b) {
          ctx.font = "10px sans-serif";
          ctx.fillText(b.length > 32 ? b.slice(0, 31) + "…" : b, x[v], y[v] + 8);
        }
        ctx.font = FONT;
      }
    }
    if (!this.readyMs) {
      this.readyMs = performance.now() - this.t0;
      this.root.dataset.readyMs = this.readyMs.toFixed(1);
      this.root.dataset.layoutMs = this.layoutMs.toFixed(1);
      this.root.dataset.state = "ready";
    }
    this.root.dataset.visible = String(vis.length);
    this.root.dataset.frames = String((+this.root.dataset.frames || 0) + 1);
  }

  isLight(color) {
    if (typeof color !== "string" || color[0] !== "#" || color.length < 7) return true;
    const r = parseInt(color.slice(1, 3), 16), g = parseInt(color.slice(3, 5), 16), b = parseInt(color.slice(5, 7), 16);
    return 0.299 * r + 0.587 * g + 0.114 * b > 150;
  }

  selectedVis() {
    if (this.selected >= 0) return this.visible.rep[this.selected];
    if (this.selectedGroup >= 0) {
      const vis = this.visible.vis;
      for (let v = 0; v < vis.length; v++) if (vis[v].kind === "group" && vis[v].id === this.selectedGroup) return v;
    }
    return -1;
  }

  bind() {
    const cv = this.canvas;
    let drag = null;
    cv.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.autoFit = false;
      const r = cv.getBoundingClientRect();
      const px = e.clientX - r.left, py = e.clientY - r.top;
      if (e.ctrlKey || e.metaKey || !e.shiftKey) {
        const k = Math.exp(-e.deltaY * (e.ctrlKey ? 0.01 : 0.0015));
        const ns = Math.max(0.01, Math.min(4, this.view.s * k));
        this.view.tx = px - (px - this.view.tx) * (ns / this.view.s);
        this.view.ty = py - (py - this.view.ty) * (ns / this.view.s);
        this.view.s = ns;
      } else {
        this.view.tx -= e.deltaX; this.view.ty -= e.deltaY;
      }
      this.dirty = true; this.schedule();
    }, { passive: false });
    cv.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, tx: this.view.tx, ty: this.view.ty, moved: false };
      cv.setPointerCapture && cv.setPointerCapture(e.pointerId);
    });
    cv.addEventListener("pointermove", (e) => {
      if (drag) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; this.autoFit = false; }
        this.view.tx = drag.tx + dx; this.view.ty = drag.ty + dy;
        this.dirty = true; this.schedule();
      } else {
        const r = cv.getBoundingClientRect();
        const v = this.hit(e.clientX - r.left, e.clientY - r.top);
        cv.style.cursor = v >= 0 ? "pointer" : "grab";
        cv.title = v >= 0 ? this.tooltip(v) : "";
      }
    });
    cv.addEventListener("pointerup", (e) => {
      const d = drag; drag = null;
      if (d && !d.moved) {
        const r = cv.getBoundingClientRect();
        this.clickAt(e.clientX - r.left, e.clientY - r.top);
      }
    });
    cv.addEventListener("dblclick", (e) => {
      const r = cv.getBoundingClientRect();
      const v = this.hit(e.clientX - r.left, e.clientY - r.top);
      if (v < 0) return;
      const item = this.visible.vis[v];
      if (item.kind === "group") this.toggle(item.id, true);
      else if (this.g.scope[item.id] >= 0) this.toggle(this.g.scope[item.id], false);
    });
    this.search.addEventListener("input", () => this.runSearch());
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && this.matches && this.matches.length) this.focusNode(this.matches[0]);
      if (e.key === "Escape") { this.search.value = ""; this.runSearch(); }
    });
    // the output area is laid out after render(): fit again when the real size arrives, until the
    // user pans or zooms
    this.ro = new ResizeObserver(() => { if (this.autoFit) this.fit(); else { this.dirty = true; this.schedule(); } });
    this.ro.observe(this.canvasWrap);
  }

  tooltip(v) {
    const item = this.visible.vis[v];
    const g = this.g;
    if (item.kind === "group") return `${g.scopePath(item.id)} — ${g.scopeCount[item.id]} nodes (double-click to unfold)`;
    const i = item.id;
    let t = `${g.name[i]}\n${g.op[i]}  ${g.shape[i]} ${g.dtype[i]}`;
    if (this.overlayValues && this.overlayValues[i] !== null && this.overlayValues[i] !== undefined) {
      const o = this.model.get("overlay_data") || {};
      t += `\n${o.label || "value"}: ${this.fmtValue(this.overlayValues[i])}${o.unit ? " " + o.unit : ""}`;
    }
    return t;
  }

  toggle(scope, expand) {
    const g = this.g;
    if (expand) this.expanded.add(scope);
    else {
      // fold this scope and everything inside it
      for (let s = 0; s < g.scopes.length; s++) {
        for (let p = s; p >= 0; p = g.scopeParent[p]) if (p === scope) { this.expanded.delete(s); break; }
      }
      this.selected = -1; this.selectedGroup = scope;
    }
    const anchor = this.selectedVis();
    const before = anchor >= 0 ? [this.L.x[anchor], this.L.y[anchor]] : null;
    this.relayout();
    const after = this.selectedVis();
    if (before && after >= 0) {
      this.view.tx += (before[0] - this.L.x[after]) * this.view.s;
      this.view.ty += (before[1] - this.L.y[after]) * this.view.s;
    }
    this.dirty = true; this.schedule();
  }

  clickAt(px, py) {
    const v = this.hit(px, py);
    if (v < 0) return;
    const item = this.visible.vis[v];
    if (item.kind === "group") { this.selected = -1; this.selectedGroup = item.id; this.showGroup(item.id); }
    else this.select(item.id, true);
    this.dirty = true; this.schedule();
  }

  select(i, sync) {
    this.selected = i;
    this.selectedGroup = -1;
    this.showDetails(i);
    if (sync && this.model.get("selected") !== this.g.name[i]) {
      this.model.set("selected", this.g.name[i]);
      this.model.save_changes();
    }
    this.dirty = true; this.schedule();
  }

  focusNode(i) {
    let changed = false;
    for (const s of this.g.ancestors(i)) if (!this.expanded.has(s)) { this.expanded.add(s); changed = true; }
    if (changed) this.relayout();
    this.select(i, true);
    this.centerOn(this.visible.rep[i]);
  }

  runSearch() {
    const q = this.search.value.trim().toLowerCase();
    this.results.replaceChildren();
    this.matches = [];
    if (!q) { this.results.hidden = true; return; }
    const g = this.g;
    for (let i = 0; i < g.n && this.matches.length < 200; i++) {
      if (g.name[i].toLowerCase().includes(q) || g.op[i].toLowerCase().includes(q)) this.matches.push(i);
    }
    this.results.hidden = false;
    for (const i of this.matches.slice(0, 50)) {
      const li = el("li", "wb-graph-result");
      li.append(el("b", null, g.op[i]), el("span", null, " " + g.name[i]));
      li.onclick = () => this.focusNode(i);
      this.results.append(li);
    }
    const more = this.matches.length > 50 ? ` (first 50 of ${this.matches.length >= 200 ? "200+" : this.matches.length})` : "";
    this.results.prepend(el("li", "wb-graph-result-count", `${this.matches.length} match${this.matches.length === 1 ? "" : "es"}${more}`));
  }

  kv(table, k, v) {
    const tr = el("tr");
    tr.append(el("th", null, k), el("td", null, v));
    table.append(tr);
  }

  showGroup(s) {
    const g = this.g;
    const d = this.details;
    d.replaceChildren();
    d.append(el("h3", "wb-graph-details-title", g.scopes[s][0]));
    const t = el("table", "wb-graph-kv");
    this.kv(t, "module", g.scopePath(s));
    this.kv(t, "nodes", String(g.scopeCount[s]));
    let p = 0, m = 0;
    const ops = new Map();
    for (let i = 0; i < g.n; i++) {
      for (let q = g.scope[i]; q >= 0; q = g.scopeParent[q]) if (q === s) { p += g.params[i]; m += g.macs[i]; ops.set(g.op[i], (ops.get(g.op[i]) || 0) + 1); break; }
    }
    this.kv(t, "params", human(p));
    this.kv(t, "MACs", human(m));
    this.kv(t, "ops", [...ops.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([o, c]) => `${o}×${c}`).join(", "));
    d.append(t);
    const btn = el("button", "wb-graph-btn", this.expanded.has(s) ? "Fold" : "Unfold");
    btn.onclick = () => this.toggle(s, !this.expanded.has(s));
    d.append(btn);
  }

  showDetails(i) {
    const g = this.g;
    const d = this.details;
    d.replaceChildren();
    d.append(el("h3", "wb-graph-details-title", g.op[i]));
    const t = el("table", "wb-graph-kv");
    this.kv(t, "name", g.name[i]);
    if (g.scope[i] >= 0) this.kv(t, "module", g.scopePath(g.scope[i]));
    this.kv(t, "output", `${g.shape[i]} ${g.dtype[i]}`);
    if (g.params[i]) this.kv(t, "params", human(g.params[i]));
    if (g.macs[i]) this.kv(t, "MACs", human(g.macs[i]));
    if (g.precision[i]) this.kv(t, "precision", g.precision[i]);
    if (this.overlayValues && this.overlayValues[i] !== null && this.overlayValues[i] !== undefined) {
      const o = this.model.get("overlay_data") || {};
      this.kv(t, o.label || "overlay", `${this.fmtValue(this.overlayValues[i])}${o.unit ? " " + o.unit : ""}`);
    }
    const ex = this.model.get("extra") || {};
    if (ex[g.name[i]]) for (const [k, v] of Object.entries(ex[g.name[i]])) this.kv(t, k, String(v));
    d.append(t);
    const more = el("div", "wb-graph-more", g.cat[i] === "io" ? "" : "loading attributes and weights…");
    d.append(more);
    if (g.cat[i] !== "io") {
      const id = Math.random().toString(36).slice(2);
      this.pending.set(id, (msg) => { if (this.selected === i) this.renderMore(more, msg.details, msg.error); });
      this.model.send({ type: "details", name: g.name[i], id });
    }
  }

  renderMore(box, det, error) {
    box.replaceChildren();
    if (error || !det) { box.append(el("div", "wb-graph-error", error || "no details")); return; }
    const sec = (title) => { box.append(el("h4", null, title)); const t = el("table", "wb-graph-kv"); box.append(t); return t; };
    const fmtT = (x) => `${x.shape ? x.shape.join("×") : "?"} ${x.dtype || ""}`;
    if (det.inputs && det.inputs.length) {
      const t = sec("inputs");
      for (const x of det.inputs) this.kv(t, x.name, fmtT(x) + (x.from ? `  ← ${x.from}` : ""));
    }
    if (det.outputs && det.outputs.length) {
      const t = sec("outputs");
      for (const x of det.outputs) this.kv(t, x.name, fmtT(x) + (x.to && x.to.length ? `  → ${x.to.slice(0, 3).join(", ")}${x.to.length > 3 ? "…" : ""}` : ""));
    }
    const attrs = Object.entries(det.attributes || {});
    if (attrs.length) {
      const t = sec("attributes");
      for (const [k, v] of attrs) this.kv(t, k, typeof v === "string" ? v : JSON.stringify(v));
    }
    if (det.weights && det.weights.length) {
      const t = sec("weights");
      for (const w of det.weights) {
        let s = `${(w.shape || []).join("×") || "scalar"} ${w.dtype}`;
        if (w.min !== undefined) s += ` · min ${human(w.min)} · max ${human(w.max)} · mean ${human(w.mean)} · std ${human(w.std)} · zeros ${(100 * w.zeros).toFixed(1)}%`;
        this.kv(t, w.name, s);
      }
    }
  }

  renderStats(st) {
    const s = this.stats;
    s.replaceChildren();
    s.append(el("h4", null, "Model"));
    const t = el("table", "wb-graph-kv");
    this.kv(t, "format", st.format || "");
    this.kv(t, "nodes", String(st.nodes ?? ""));
    this.kv(t, "edges", String(st.edges ?? ""));
    this.kv(t, "parameters", human(st.params));
    this.kv(t, "MACs", human(st.macs));
    this.kv(t, "size", humanBytes(st.size_bytes));
    if (st.precision) this.kv(t, "precision", Object.entries(st.precision).map(([k, v]) => `${k}: ${v}`).join(", "));
    s.append(t);
    const hist = Object.entries(st.op_histogram || {});
    if (hist.length) {
      s.append(el("h4", null, "Ops"));
      const max = hist[0][1];
      for (const [op, c] of hist.slice(0, 16)) {
        const row = el("div", "wb-graph-hist-row");
        const bar = el("span", "wb-graph-hist-bar");
        bar.style.width = Math.max(2, (100 * c) / max) + "px";
        row.append(el("span", "wb-graph-hist-op", op), bar, el("span", null, String(c)));
        s.append(row);
      }
    }
  }

  fmtValue(v) {
    return typeof v === "number" ? (Math.abs(v) >= 0.01 || v === 0 ? human(v) : v.toExponential(2)) : String(v);
  }

  applyOverlay() {
    const o = this.model.get("overlay_data") || {};
    const g = this.g;
    this.nodeColors = null;
    this.overlayValues = null;
    this.groupColor = new Map();
    this.legend.replaceChildren();
    if (!o.values) { this.renderCategoryLegend(); return; }
    const vals = new Array(g.n).fill(null);
    for (const [k, v] of Object.entries(o.values)) { const i = g.index.get(k); if (i !== undefined) vals[i] = v; }
    this.overlayValues = vals;
    const colors = new Array(g.n).fill(null);
    const rank = new Array(g.n).fill(-Infinity);
    this.legend.append(el("div", "wb-graph-legend-title", `${o.label || "overlay"}${o.unit ? " (" + o.unit + ")" : ""}`));
    if (o.kind === "categorical") {
      const cats = o.categories || [...new Set(vals.filter((v) => v !== null))];
      const palette = o.colors || {};
      cats.forEach((c, k) => { if (!palette[c]) palette[c] = STATUS_COLORS[c] || CATEGORICAL[k % CATEGORICAL.length]; });
      vals.forEach((v, i) => { if (v !== null) { colors[i] = palette[v]; rank[i] = cats.indexOf(v); } });
      for (const c of cats) {
        const row = el("div", "wb-graph-legend-row");
        const sw = el("span", "wb-graph-swatch"); sw.style.background = palette[c];
        row.append(sw, el("span", null, `${c} (${vals.filter((v) => v === c).length})`));
        this.legend.append(row);
      }
    } else {
      const nums = vals.filter((v) => typeof v === "number" && isFinite(v));
      let lo = Math.min(...nums), hi = Math.max(...nums);
      if (!nums.length) { lo = 0; hi = 1; }
      const th = (o.thresholds || []).slice().sort((a, b) => a - b);
      if (th.length) {
        // bins split by the thresholds, coloured from green (below the first) to red (above the last)
        const binColor = (k) => ramp(th.length ? k / th.length : 0);
        vals.forEach((v, i) => {
          if (typeof v !== "number") return;
          let k = 0; while (k < th.length && v >= th[k]) k++;
          colors[i] = binColor(k); rank[i] = v;
        });
        const edges = [-Infinity, ...th, Infinity];
        for (let k = 0; k <= th.length; k++) {
          const row = el("div", "wb-graph-legend-row");
          const sw = el("span", "wb-graph-swatch"); sw.style.background = binColor(k);
          const label = k === 0 ? `< ${this.fmtValue(th[0])}` : k === th.length ? `≥ ${this.fmtValue(th[k - 1])}` :
            `${this.fmtValue(edges[k])} – ${this.fmtValue(edges[k + 1])}`;
          const count = vals.filter((v) => typeof v === "number" && v >= edges[k] && v < edges[k + 1]).length;
          row.append(sw, el("span", null, `${label} (${count})`));
          this.legend.append(row);
        }
      } else {
        const log = o.scale === "log" && lo > 0;
        const f = (v) => log ? (Math.log(v) - Math.log(lo)) / Math.max(1e-12, Math.log(hi) - Math.log(lo)) : (v - lo) / Math.max(1e-12, hi - lo);
        vals.forEach((v, i) => { if (typeof v === "number" && isFinite(v)) { colors[i] = ramp(f(v)); rank[i] = v; } });
        const bar = el("div", "wb-graph-ramp");
        bar.style.background = `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map(ramp).join(",")})`;
        const ends = el("div", "wb-graph-ramp-ends");
        ends.append(el("span", null, this.fmtValue(lo)), el("span", null, this.fmtValue(hi)));
        this.legend.append(bar, ends);
      }
      const missing = vals.filter((v) => v === null).length;
      if (missing) this.legend.append(el("div", "wb-graph-legend-row wb-graph-muted", `no value: ${missing}`));
    }
    this.nodeColors = colors;
    // folded modules show their highest-ranked member's colour
    const best = new Map();
    for (let i = 0; i < g.n; i++) {
      if (colors[i] === null) continue;
      for (let s = g.scope[i]; s >= 0; s = g.scopeParent[s]) {
        const b = best.get(s);
        if (!b || rank[i] > b[0]) best.set(s, [rank[i], colors[i]]);
      }
    }
    for (const [s, [, c]] of best) this.groupColor.set(s, c);
  }

  renderCategoryLegend() {
    const present = new Set(this.g.cat);
    this.legend.append(el("div", "wb-graph-legend-title", "op family"));
    for (const [c, col] of Object.entries(CATEGORY_COLORS)) {
      if (!present.has(c)) continue;
      const row = el("div", "wb-graph-legend-row");
      const sw = el("span", "wb-graph-swatch"); sw.style.background = col;
      row.append(sw, el("span", null, c));
      this.legend.append(row);
    }
  }

  onMessage(msg) {
    if (msg && msg.type === "details" && this.pending.has(msg.id)) {
      const cb = this.pending.get(msg.id); this.pending.delete(msg.id); cb(msg);
    }
  }

  selectByName(name) {
    const i = this.g.index.get(name);
    if (i === undefined || i === this.selected) return;
    this.focusNode(i);
  }

  destroy() { if (this.ro) this.ro.disconnect(); if (this.raf) cancelAnimationFrame(this.raf); }
}

function render({ model, el: root }) {
  const view = new GraphCanvas(root, model);
  root.__wbGraph = view; // for tests and the benchmark: positions, selection, timings
  model.on("change:data", () => view.setData(model.get("data")));
  model.on("change:overlay_data", () => { view.applyOverlay(); view.dirty = true; view.schedule(); if (view.selected >= 0) view.showDetails(view.selected); });
  model.on("change:selected", () => view.selectByName(model.get("selected")));
  model.on("change:height", () => { root.style.height = model.get("height") + "px"; view.dirty = true; view.schedule(); });
  model.on("msg:custom", (msg) => view.onMessage(msg));
  const sel = model.get("selected");
  if (sel) requestAnimationFrame(() => view.selectByName(sel));
  return () => view.destroy();
}

export default { render };

/** The graph view: canvas drawing, minimap, pan/zoom, folding, search, details, export. */
import type { DetailsReply, NodeDetails, OverlayPayload } from "../generated/schema";
import type { AnyModel } from "../shared/anywidget";
import { download, el } from "../shared/dom";
import { count, fmtValue, human, humanBytes, truncate } from "../shared/format";
import { CATEGORY_COLORS, isLight } from "./colors";
import { EMPTY_PAYLOAD, type GraphData, PayloadError, decodeGraph } from "./data";
import { type Match, type Visible, buildVisible, foldScope, initialFold, revealNode, revealScope, search, unfoldLevel } from "./fold";
import { GROUP_H, type Layout, NODE_H, layout, routePath } from "./layout";
import { type OverlayColors, overlayColors } from "./overlay";
import { toSVG } from "./svg";

export interface GraphState {
  data: unknown;
  overlay_data: OverlayPayload;
  extra: Record<string, Record<string, string>>;
  selected: string;
  height: number;
  fold_threshold: number;
  sync_group: string;
}

const FONT = "12px sans-serif";
const MIN_READABLE = 0.55; // below this zoom, "Fit" shows the top of a long graph at a readable size
const MINIMAP_W = 150, MINIMAP_H = 110;

interface ViewTransform { s: number; tx: number; ty: number }

/** A per-page channel that keeps the panes of a side-by-side diff at the same pan and zoom. */
function syncChannel(): EventTarget {
  const w = window as unknown as { __wbGraphSync?: EventTarget };
  return (w.__wbGraphSync ??= new EventTarget());
}

export class GraphCanvas {
  readonly root: HTMLElement;
  readonly model: AnyModel<GraphState>;
  readonly frame: HTMLDivElement;
  readonly search: HTMLInputElement;
  readonly results: HTMLUListElement;
  readonly canvasWrap: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  readonly minimap: HTMLCanvasElement;
  readonly legend: HTMLDivElement;
  readonly stats: HTMLDivElement;
  readonly details: HTMLDivElement;
  readonly title: HTMLSpanElement;
  readonly ctx: CanvasRenderingContext2D;
  g: GraphData = decodeGraph(EMPTY_PAYLOAD);
  expanded = new Set<number>();
  visible!: Visible;
  L!: Layout;
  view: ViewTransform = { s: 1, tx: 0, ty: 0 };
  selected = -1;
  selectedGroup = -1;
  matches: Match[] = [];
  /** visible boxes that hold a search match */
  highlighted = new Set<number>();
  overlay: OverlayColors | null = null;
  autoFit = true;
  layoutMs = 0;
  readyMs = 0;
  private dirty = true;
  private raf = 0;
  private readonly t0 = performance.now();
  private readonly pending = new Map<string, (msg: DetailsReply) => void>();
  private grid = new Map<string, number[]>();
  private readonly cell = 200;
  private ro: ResizeObserver | null = null;
  private syncing = false;
  private readonly onSync = (e: Event): void => this.applySync(e as CustomEvent<{ group: string; from: GraphCanvas; view: ViewTransform }>);

  constructor(root: HTMLElement, model: AnyModel<GraphState>) {
    this.root = root;
    this.model = model;
    root.classList.add("wb-graph-host");
    this.frame = el("div", "wb-graph");
    const bar = el("div", "wb-graph-toolbar");
    this.search = el("input", "wb-graph-search");
    this.search.type = "search";
    this.search.placeholder = "search modules, nodes, ops…";
    const button = (text: string, tip: string, fn: () => void): HTMLButtonElement => {
      const b = el("button", "wb-graph-btn", text);
      b.title = tip;
      b.onclick = fn;
      return b;
    };
    this.title = el("span", "wb-graph-title");
    bar.append(this.search,
      button("Fit", "fit the graph in view (readable size)", () => { this.autoFit = true; this.fit(); }),
      button("Fold", "fold every module", () => this.foldAll()),
      button("Unfold", "unfold one more level of modules", () => this.unfoldLevel()),
      button("Stats", "model statistics", () => { this.stats.hidden = !this.stats.hidden; }),
      button("SVG", "download the visible graph as SVG", () => download(`${this.fileStem()}.svg`, new Blob([this.exportSVG()], { type: "image/svg+xml" }))),
      button("PNG", "download the visible graph as PNG", () => { void this.exportPNG().then((b) => download(`${this.fileStem()}.png`, b)); }),
      this.title);
    this.results = el("ul", "wb-graph-results");
    this.results.hidden = true;
    const body = el("div", "wb-graph-body");
    this.canvasWrap = el("div", "wb-graph-canvas-wrap");
    this.canvas = el("canvas", "wb-graph-canvas");
    this.legend = el("div", "wb-graph-legend");
    this.stats = el("div", "wb-graph-stats");
    this.stats.hidden = true;
    this.minimap = el("canvas", "wb-graph-minimap");
    this.minimap.width = MINIMAP_W;
    this.minimap.height = MINIMAP_H;
    this.minimap.title = "overview: click or drag to move the view";
    this.canvasWrap.append(this.canvas, this.legend, this.stats, this.minimap);
    this.details = el("div", "wb-graph-details");
    this.details.append(el("div", "wb-graph-hint", "Click a node for its details; double-click a module to fold or unfold it."));
    body.append(this.canvasWrap, this.details);
    this.frame.append(bar, this.results, body);
    root.replaceChildren(this.frame);
    const ctx = this.canvas.getContext("2d");
    if (!ctx) throw new Error("no 2D canvas in this browser");
    this.ctx = ctx;
    this.setHeight(model.get("height"));
    this.setData(model.get("data"));
    this.bind();
    syncChannel().addEventListener("view", this.onSync);
  }

  // -- data and folding -------------------------------------------------------------------------
  setHeight(px: number): void {
    // the frame owns its height: a flex parent (VBox/HBox, Voilà's grid) cannot squeeze it
    const hpx = `${Math.max(120, px || 560)}px`;
    this.frame.style.height = hpx;
    this.root.style.minHeight = hpx;
    this.dirty = true;
    this.schedule();
  }

  setData(raw: unknown): void {
    try {
      this.g = decodeGraph(raw ?? EMPTY_PAYLOAD);
    } catch (err) {
      if (!(err instanceof PayloadError)) throw err;
      this.g = decodeGraph(EMPTY_PAYLOAD);
      this.details.replaceChildren(el("div", "wb-graph-error", `Cannot draw this graph: ${err.message}`));
    }
    const st = this.g.payload.stats;
    this.title.textContent = `${this.g.title} · ${count(st.nodes ?? this.g.n, "node")} · ${human(st.params ?? 0)} params · ${human(st.macs ?? 0)} MACs`;
    this.expanded = initialFold(this.g, this.model.get("fold_threshold") || 40);
    this.matches = [];
    this.selected = -1;
    this.selectedGroup = -1;
    this.autoFit = true;
    this.renderStats();
    this.applyOverlay();
    this.relayout();
    if (this.search.value.trim()) this.runSearch();
  }

  foldAll(): void {
    this.expanded.clear();
    this.relayout();
    this.autoFit = true;
    this.fit();
  }

  unfoldLevel(): void {
    if (unfoldLevel(this.g, this.expanded)) this.relayout();
  }

  toggle(scope: number, expand: boolean): void {
    this.autoFit = false; // the box under the pointer stays where it is
    if (expand) this.expanded.add(scope);
    else { foldScope(this.g, this.expanded, scope); this.selected = -1; this.selectedGroup = scope; }
    const anchor = this.selectedVis();
    const before = anchor >= 0 ? [this.L.x[anchor]!, this.L.y[anchor]!] as const : null;
    this.relayout();
    const after = this.selectedVis();
    if (before && after >= 0) {
      this.view.tx += (before[0] - this.L.x[after]!) * this.view.s;
      this.view.ty += (before[1] - this.L.y[after]!) * this.view.s;
    }
    this.clampView();
    this.touch();
  }

  nodeLabel(v: number): [string, string] {
    const item = this.visible.vis[v]!;
    const g = this.g;
    if (item.kind === "group") return [g.scopeLabel[item.id]!, count(g.scopeCount[item.id]!, "node")];
    const i = item.id;
    return [g.op[i]!, g.cat[i] === "io" ? g.name[i]! : g.shape[i]!];
  }

  relayout(): void {
    const t = performance.now();
    this.visible = buildVisible(this.g, this.expanded);
    const ctx = this.ctx;
    ctx.font = FONT;
    const cache = new Map<string, number>();
    const widths = new Float64Array(this.visible.vis.length);
    this.visible.vis.forEach((_, v) => {
      const [a, b] = this.nodeLabel(v);
      const key = a + "\u0000" + b;
      let wd = cache.get(key);
      if (wd === undefined) {
        wd = Math.min(220, Math.max(ctx.measureText(truncate(a, 28)).width + 12, ctx.measureText(truncate(b, 32)).width * 0.85) + 18);
        cache.set(key, wd);
      }
      widths[v] = Math.max(56, wd);
    });
    this.L = layout({
      count: this.visible.vis.length, edges: this.visible.edges,
      width: (v) => widths[v]!, height: (v) => (this.visible.vis[v]!.kind === "group" ? GROUP_H : NODE_H),
    });
    this.buildGrid();
    this.layoutMs = performance.now() - t;
    this.mark("visible", String(this.visible.vis.length));
    this.refreshHighlights();
    // the graph changed shape: fit it again until the user moved the view, else keep part of it on screen
    if (this.autoFit) this.fit(); else this.clampView();
    this.touch();
  }

  private buildGrid(): void {
    const { x, y, w, h } = this.L;
    const cell = this.cell;
    this.grid = new Map();
    for (let v = 0; v < x.length; v++) {
      const x0 = Math.floor((x[v]! - w[v]! / 2) / cell), x1 = Math.floor((x[v]! + w[v]! / 2) / cell);
      const y0 = Math.floor((y[v]! - h[v]! / 2) / cell), y1 = Math.floor((y[v]! + h[v]! / 2) / cell);
      for (let gx = x0; gx <= x1; gx++) for (let gy = y0; gy <= y1; gy++) {
        const k = `${gx},${gy}`;
        const list = this.grid.get(k);
        if (list) list.push(v); else this.grid.set(k, [v]);
      }
    }
  }

  hit(px: number, py: number): number {
    const wx = (px - this.view.tx) / this.view.s, wy = (py - this.view.ty) / this.view.s;
    const list = this.grid.get(`${Math.floor(wx / this.cell)},${Math.floor(wy / this.cell)}`) ?? [];
    const { x, y, w, h } = this.L;
    for (const v of list) if (Math.abs(wx - x[v]!) <= w[v]! / 2 && Math.abs(wy - y[v]!) <= h[v]! / 2) return v;
    return -1;
  }

  // -- view transform ---------------------------------------------------------------------------
  size(): [number, number] {
    const r = this.canvasWrap.getBoundingClientRect();
    return [Math.max(50, r.width), Math.max(50, r.height)];
  }

  /** The whole graph when it fits at a readable size; otherwise its top, readable, the width fitted
   * where possible (the minimap shows the rest). */
  fit(): void {
    const [W, H] = this.size();
    const [x0, y0, x1, y1] = this.L.bounds;
    const gw = Math.max(1, x1 - x0), gh = Math.max(1, y1 - y0);
    const all = Math.min(1.2, (W - 24) / gw, (H - 24) / gh);
    let s = all;
    if (all < MIN_READABLE) s = Math.max(MIN_READABLE, Math.min(1, (W - 24) / gw));
    this.view.s = s;
    this.view.tx = gw * s <= W ? (W - gw * s) / 2 - x0 * s : 12 - x0 * s;
    this.view.ty = gh * s <= H ? (H - gh * s) / 2 - y0 * s : 12 - y0 * s;
    this.touch();
  }

  /** Keeps part of the graph on screen: pan and zoom never lose it. */
  clampView(): void {
    const [W, H] = this.size();
    const [x0, y0, x1, y1] = this.L.bounds;
    const { s } = this.view;
    const margin = 60;
    this.view.tx = Math.min(W - margin - x0 * s, Math.max(margin - x1 * s, this.view.tx));
    this.view.ty = Math.min(H - margin - y0 * s, Math.max(margin - y1 * s, this.view.ty));
  }

  zoomAt(px: number, py: number, factor: number): void {
    const [W, H] = this.size();
    const [x0, y0, x1, y1] = this.L.bounds;
    const floor = Math.min(0.2, 0.5 * Math.min(W / Math.max(1, x1 - x0), H / Math.max(1, y1 - y0)));
    const ns = Math.max(floor, Math.min(4, this.view.s * factor));
    this.view.tx = px - (px - this.view.tx) * (ns / this.view.s);
    this.view.ty = py - (py - this.view.ty) * (ns / this.view.s);
    this.view.s = ns;
    this.clampView();
    this.userMoved();
  }

  centerOn(v: number): void {
    this.autoFit = false;
    const [W, H] = this.size();
    if (this.view.s < 0.6) this.view.s = 0.9;
    this.view.tx = W / 2 - this.L.x[v]! * this.view.s;
    this.view.ty = H / 2 - this.L.y[v]! * this.view.s;
    this.touch();
  }

  private userMoved(): void {
    this.autoFit = false;
    this.touch();
    const group = this.model.get("sync_group");
    if (group && !this.syncing) {
      syncChannel().dispatchEvent(new CustomEvent("view", { detail: { group, from: this, view: { ...this.view } } }));
    }
  }

  private applySync(e: CustomEvent<{ group: string; from: GraphCanvas; view: ViewTransform }>): void {
    const d = e.detail;
    if (d.from === this || !d.group || d.group !== this.model.get("sync_group")) return;
    this.syncing = true;
    this.view = { ...d.view };
    this.autoFit = false;
    this.clampView();
    this.touch();
    this.syncing = false;
  }

  touch(): void {
    this.dirty = true;
    this.schedule();
  }

  schedule(): void {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => { this.raf = 0; if (this.dirty) this.draw(); });
  }

  // -- drawing -----------------------------------------------------------------------------------
  colorOf(v: number): string {
    const item = this.visible.vis[v]!;
    if (item.kind === "group") return (this.overlay && this.overlay.groupColor.get(item.id)) || CATEGORY_COLORS.group!;
    if (this.overlay) return this.overlay.colors[item.id] ?? "#eeeeee";
    return CATEGORY_COLORS[this.g.cat[item.id]!] ?? CATEGORY_COLORS.other!;
  }

  /** Status of a visible box in a merged diff ("removed", "added", …), "" otherwise. */
  statusOf(v: number): string {
    const status = this.g.payload.status;
    const item = this.visible.vis[v]!;
    return status && item.kind === "node" ? status[this.g.name[item.id]!] ?? "" : "";
  }

  draw(): void {
    this.dirty = false;
    const [W, H] = this.size();
    const dpr = window.devicePixelRatio || 1;
    const cv = this.canvas;
    if (cv.width !== Math.round(W * dpr) || cv.height !== Math.round(H * dpr)) {
      cv.width = Math.round(W * dpr); cv.height = Math.round(H * dpr);
      cv.style.width = `${W}px`; cv.style.height = `${H}px`;
    }
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const { s, tx, ty } = this.view;
    ctx.setTransform(dpr * s, 0, 0, dpr * s, dpr * tx, dpr * ty);
    const vx0 = -tx / s, vy0 = -ty / s, vx1 = (W - tx) / s, vy1 = (H - ty) / s;
    const { x, y, w, h, routes } = this.L;
    const edges = this.visible.edges;
    const sel = this.selectedVis();
    const inView = (r: Float64Array): boolean => {
      let ax = Infinity, bx = -Infinity, ay = Infinity, by = -Infinity;
      for (let k = 0; k < r.length; k += 2) { ax = Math.min(ax, r[k]!); bx = Math.max(bx, r[k]!); ay = Math.min(ay, r[k + 1]!); by = Math.max(by, r[k + 1]!); }
      return !(bx < vx0 || ax > vx1 || by < vy0 || ay > vy1);
    };
    const move = (px: number, py: number): void => ctx.moveTo(px, py);
    const curve = (a: number, b: number, c: number, d: number, e: number, f: number): void => ctx.bezierCurveTo(a, b, c, d, e, f);
    ctx.lineWidth = Math.max(0.6, 1 / s);
    ctx.strokeStyle = "#9aa0a6";
    ctx.beginPath();
    const shown: number[] = [];
    for (let k = 0; k < edges.length; k++) {
      const r = routes[k]!;
      if (!inView(r)) continue;
      shown.push(k);
      routePath(r, move, curve);
    }
    ctx.stroke();
    // arrow heads
    ctx.fillStyle = "#9aa0a6";
    ctx.beginPath();
    for (const k of shown) {
      const r = routes[k]!, n = r.length;
      const ex = r[n - 2]!, ey = r[n - 1]!;
      ctx.moveTo(ex, ey); ctx.lineTo(ex - 3.5, ey - 7); ctx.lineTo(ex + 3.5, ey - 7); ctx.closePath();
    }
    ctx.fill();
    if (sel >= 0) {
      ctx.strokeStyle = "#1a73e8";
      ctx.lineWidth = Math.max(1.5, 2 / s);
      ctx.beginPath();
      for (const k of shown) if (edges[k]!.a === sel || edges[k]!.b === sel) routePath(routes[k]!, move, curve);
      ctx.stroke();
    }
    // tensor shapes on edges, once zoomed in enough to read them
    if (s >= 0.6) {
      ctx.font = "10px sans-serif";
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      ctx.fillStyle = "#5f6368";
      for (const k of shown) {
        const label = edges[k]!.shape;
        if (!label) continue;
        const r = routes[k]!;
        ctx.fillText(truncate(label, 24), r[0]! + 4, r[1]! + 10);
      }
    }
    const showText = s > 0.3;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    const vis = this.visible.vis;
    for (let v = 0; v < vis.length; v++) {
      const hw = w[v]! / 2, hh = h[v]! / 2;
      if (x[v]! + hw < vx0 || x[v]! - hw > vx1 || y[v]! + hh < vy0 || y[v]! - hh > vy1) continue;
      const group = vis[v]!.kind === "group";
      const fill = this.colorOf(v);
      ctx.fillStyle = fill;
      ctx.beginPath();
      if (showText) ctx.roundRect(x[v]! - hw, y[v]! - hh, w[v]!, h[v]!, group ? 8 : 4);
      else ctx.rect(x[v]! - hw, y[v]! - hh, w[v]!, h[v]!);
      ctx.fill();
      const status = this.statusOf(v);
      const hl = this.highlighted.has(v);
      if (group || v === sel || hl || status === "removed" || status === "added") {
        ctx.lineWidth = v === sel || hl ? Math.max(2, 3 / s) : Math.max(1, 1.4 / s);
        ctx.strokeStyle = v === sel ? "#1a73e8" : hl ? "#e37400" : status === "removed" ? "#d62728" : status === "added" ? "#1e7b1e" : "#6b6b80";
        if (group || status === "removed") ctx.setLineDash([5, 3]);
        ctx.stroke();
        ctx.setLineDash([]);
      }
      if (showText) {
        const [a, b] = this.nodeLabel(v);
        ctx.fillStyle = group || isLight(fill) ? "#202124" : "#ffffff";
        ctx.font = "bold " + FONT;
        ctx.fillText(truncate(a, 28), x[v]!, y[v]! - (b ? 7 : 0));
        if (b) { ctx.font = "10px sans-serif"; ctx.fillText(truncate(b, 32), x[v]!, y[v]! + 8); }
      }
    }
    this.drawMinimap();
    if (!this.readyMs) {
      this.readyMs = performance.now() - this.t0;
      this.mark("readyMs", this.readyMs.toFixed(1));
      this.mark("readyAt", performance.now().toFixed(1)); // since the page's time origin
      this.mark("layoutMs", this.layoutMs.toFixed(1));
      this.mark("state", "ready");
    }
    this.mark("frames", String((Number(this.root.dataset.frames) || 0) + 1));
  }

  private minimapScale(): { k: number; ox: number; oy: number } {
    const [x0, y0, x1, y1] = this.L.bounds;
    const k = Math.min((MINIMAP_W - 8) / Math.max(1, x1 - x0), (MINIMAP_H - 8) / Math.max(1, y1 - y0));
    return { k, ox: 4 - x0 * k + (MINIMAP_W - 8 - (x1 - x0) * k) / 2, oy: 4 - y0 * k };
  }

  drawMinimap(): void {
    const m = this.minimap.getContext("2d");
    if (!m) return;
    const { k, ox, oy } = this.minimapScale();
    m.setTransform(1, 0, 0, 1, 0, 0);
    m.clearRect(0, 0, MINIMAP_W, MINIMAP_H);
    m.fillStyle = "rgba(255,255,255,0.92)";
    m.fillRect(0, 0, MINIMAP_W, MINIMAP_H);
    const { x, y, w, h } = this.L;
    for (let v = 0; v < x.length; v++) {
      m.fillStyle = this.colorOf(v);
      m.fillRect(ox + (x[v]! - w[v]! / 2) * k, oy + (y[v]! - h[v]! / 2) * k, Math.max(1, w[v]! * k), Math.max(1, h[v]! * k));
    }
    const [W, H] = this.size();
    const { s, tx, ty } = this.view;
    m.strokeStyle = "#1a73e8";
    m.lineWidth = 1.5;
    m.strokeRect(ox + (-tx / s) * k, oy + (-ty / s) * k, (W / s) * k, (H / s) * k);
  }

  /** Moves the view so the point under the minimap's (px, py) is centred. */
  minimapJump(px: number, py: number): void {
    const { k, ox, oy } = this.minimapScale();
    const [W, H] = this.size();
    const wx = (px - ox) / k, wy = (py - oy) / k;
    this.view.tx = W / 2 - wx * this.view.s;
    this.view.ty = H / 2 - wy * this.view.s;
    this.clampView();
    this.userMoved();
  }

  selectedVis(): number {
    if (this.selected >= 0) return this.visible.rep[this.selected]!;
    if (this.selectedGroup >= 0) return this.visible.groupVis.get(this.selectedGroup) ?? -1;
    return -1;
  }

  /** State for tests and the benchmark, on the widget's element and on the .wb-graph frame. */
  private mark(key: string, value: string): void {
    this.root.dataset[key] = value;
    this.frame.dataset[key] = value;
  }

  // -- export ------------------------------------------------------------------------------------
  fileStem(): string {
    return (this.g.title || "graph").replace(/[^\w.-]+/g, "_").slice(0, 80) || "graph";
  }

  /** The visible graph (as folded now) as a standalone SVG document. */
  exportSVG(): string {
    return toSVG(this.L, this.visible.edges, this.visible.vis.map((_, v) => ({
      label: this.nodeLabel(v), fill: this.colorOf(v), group: this.visible.vis[v]!.kind === "group",
    })), this.g.title);
  }

  /** The visible graph as PNG, at most 8,192 px on its longer side. */
  async exportPNG(): Promise<Blob> {
    const svg = this.exportSVG();
    const [x0, y0, x1, y1] = this.L.bounds;
    const k = Math.min(2, 8192 / Math.max(1, x1 - x0 + 40, y1 - y0 + 40));
    const img = new Image();
    const url = URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
    try {
      await new Promise<void>((ok, fail) => { img.onload = () => ok(); img.onerror = () => fail(new Error("the SVG did not load")); img.src = url; });
      const c = document.createElement("canvas");
      c.width = Math.ceil((x1 - x0 + 40) * k); c.height = Math.ceil((y1 - y0 + 40) * k);
      const cx = c.getContext("2d");
      if (!cx) throw new Error("no 2D canvas");
      cx.fillStyle = "#fff"; cx.fillRect(0, 0, c.width, c.height);
      cx.drawImage(img, 0, 0, c.width, c.height);
      return await new Promise<Blob>((ok, fail) => c.toBlob((b) => (b ? ok(b) : fail(new Error("PNG encoding failed"))), "image/png"));
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  // -- interaction -------------------------------------------------------------------------------
  private bind(): void {
    const cv = this.canvas;
    let drag: { x: number; y: number; tx: number; ty: number; moved: boolean } | null = null;
    const local = (e: MouseEvent): [number, number] => { const r = cv.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    cv.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [px, py] = local(e);
      if (e.ctrlKey || e.metaKey || !e.shiftKey) this.zoomAt(px, py, Math.exp(-e.deltaY * (e.ctrlKey ? 0.01 : 0.0015)));
      else { this.view.tx -= e.deltaX || e.deltaY; this.clampView(); this.userMoved(); }
    }, { passive: false });
    cv.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, tx: this.view.tx, ty: this.view.ty, moved: false };
      cv.setPointerCapture?.(e.pointerId);
    });
    cv.addEventListener("pointermove", (e) => {
      if (drag) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        if (!drag.moved) return;
        this.view.tx = drag.tx + dx; this.view.ty = drag.ty + dy;
        this.clampView();
        this.userMoved();
      } else {
        const v = this.hit(...local(e));
        cv.style.cursor = v >= 0 ? "pointer" : "grab";
        cv.title = v >= 0 ? this.tooltip(v) : "";
      }
    });
    cv.addEventListener("pointerup", (e) => {
      const d = drag;
      drag = null;
      if (d && !d.moved) this.clickAt(...local(e));
    });
    cv.addEventListener("dblclick", (e) => {
      const v = this.hit(...local(e));
      if (v < 0) return;
      const item = this.visible.vis[v]!;
      if (item.kind === "group") this.toggle(item.id, true);
      else { // fold the innermost module around the node that holds more than it
        let s = this.g.scope[item.id]!;
        while (s >= 0 && this.g.scopeCount[s]! <= 1) s = this.g.scopeParent[s]!;
        if (s >= 0) this.toggle(s, false);
      }
    });
    let mdrag = false;
    const mm = (e: PointerEvent): void => { const r = this.minimap.getBoundingClientRect(); this.minimapJump(e.clientX - r.left, e.clientY - r.top); };
    this.minimap.addEventListener("pointerdown", (e) => { mdrag = true; this.minimap.setPointerCapture?.(e.pointerId); mm(e); });
    this.minimap.addEventListener("pointermove", (e) => { if (mdrag) mm(e); });
    this.minimap.addEventListener("pointerup", () => { mdrag = false; });
    this.search.addEventListener("input", () => this.runSearch());
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && this.matches[0]) this.focusMatch(this.matches[0]);
      if (e.key === "Escape") { this.search.value = ""; this.runSearch(); }
    });
    // the output area is laid out after render(): fit again when the real size arrives, until the
    // user pans or zooms
    this.ro = new ResizeObserver(() => { if (this.autoFit) this.fit(); else this.touch(); });
    this.ro.observe(this.canvasWrap);
  }

  tooltip(v: number): string {
    const item = this.visible.vis[v]!;
    const g = this.g;
    if (item.kind === "group") return `${g.scopePath[item.id]} — ${count(g.scopeCount[item.id]!, "node")} (double-click to unfold)`;
    const i = item.id;
    let t = `${g.name[i]}\n${g.op[i]}  ${g.shape[i]} ${g.dtype[i]}`;
    if (g.scope[i]! >= 0) t += `\nmodule: ${g.scopePath[g.scope[i]!]}`;
    const ov = this.overlay?.values[i];
    if (ov !== null && ov !== undefined) {
      const o = this.model.get("overlay_data");
      t += `\n${o.label || "value"}: ${fmtValue(ov)}${o.unit ? " " + o.unit : ""}`;
    }
    return t;
  }

  clickAt(px: number, py: number): void {
    const v = this.hit(px, py);
    if (v < 0) return;
    const item = this.visible.vis[v]!;
    if (item.kind === "group") { this.selected = -1; this.selectedGroup = item.id; this.showGroup(item.id); }
    else this.select(item.id, true);
    this.touch();
  }

  select(i: number, sync: boolean): void {
    this.selected = i;
    this.selectedGroup = -1;
    this.showDetails(i);
    if (sync && this.model.get("selected") !== this.g.name[i]) {
      this.model.set("selected", this.g.name[i]!);
      this.model.save_changes();
    }
    this.touch();
  }

  focusNode(i: number): void {
    if (revealNode(this.g, this.expanded, i)) this.relayout();
    this.select(i, true);
    this.centerOn(this.visible.rep[i]!);
  }

  focusScope(s: number): void {
    if (revealScope(this.g, this.expanded, s)) this.relayout();
    this.selected = -1;
    this.selectedGroup = s;
    const v = this.visible.groupVis.get(s);
    if (v !== undefined) this.centerOn(v);
    else { // open: centre on its first node
      for (let i = 0; i < this.g.n; i++) if (this.g.encloses(s, this.g.scope[i]!)) { this.centerOn(this.visible.rep[i]!); break; }
    }
    this.showGroup(s);
    this.touch();
  }

  focusMatch(m: Match): void {
    if (m.kind === "node") this.focusNode(m.id); else this.focusScope(m.id);
  }

  /** Boxes that hold a search match: the node itself, or the folded module around it. */
  refreshHighlights(): void {
    this.highlighted.clear();
    for (const m of this.matches) {
      if (m.kind === "node") this.highlighted.add(this.visible.rep[m.id]!);
      else {
        const v = this.visible.groupVis.get(m.id);
        if (v !== undefined) this.highlighted.add(v);
      }
    }
    this.mark("highlighted", String(this.highlighted.size));
  }

  runSearch(): void {
    const q = this.search.value;
    this.results.replaceChildren();
    this.matches = search(this.g, q);
    this.refreshHighlights();
    this.touch();
    if (!q.trim()) { this.results.hidden = true; return; }
    this.results.hidden = false;
    const g = this.g;
    const n = this.matches.length;
    this.results.append(el("li", "wb-graph-result-count", `${n >= 200 ? "200+ matches" : count(n, "match", "matches")}${n > 50 ? " (first 50)" : ""}`));
    for (const m of this.matches.slice(0, 50)) {
      const li = el("li", "wb-graph-result");
      if (m.kind === "module") li.append(el("b", null, "module"), el("span", null, ` ${g.scopePath[m.id]} · ${count(g.scopeCount[m.id]!, "node")}`));
      else li.append(el("b", null, g.op[m.id]!), el("span", null, ` ${g.name[m.id]}`));
      li.onclick = () => this.focusMatch(m);
      this.results.append(li);
    }
  }

  // -- panels ------------------------------------------------------------------------------------
  private kv(t: HTMLTableElement, k: string, v: string): void {
    const tr = el("tr");
    tr.append(el("th", null, k), el("td", null, v));
    t.append(tr);
  }

  showGroup(s: number): void {
    const g = this.g;
    const d = this.details;
    d.replaceChildren(el("h3", "wb-graph-details-title", g.scopeLabel[s]!));
    const t = el("table", "wb-graph-kv");
    this.kv(t, "module", g.scopePath[s]!);
    this.kv(t, "nodes", String(g.scopeCount[s]));
    let p = 0, m = 0;
    const ops = new Map<string, number>();
    for (let i = 0; i < g.n; i++) {
      if (!g.encloses(s, g.scope[i]!)) continue;
      p += g.params[i]!; m += g.macs[i]!;
      ops.set(g.op[i]!, (ops.get(g.op[i]!) ?? 0) + 1);
    }
    this.kv(t, "params", human(p));
    this.kv(t, "MACs", human(m));
    this.kv(t, "ops", [...ops.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([o, c]) => `${o}×${c}`).join(", "));
    d.append(t);
    const open = this.expanded.has(s);
    const btn = el("button", "wb-graph-btn", open ? "Fold" : "Unfold");
    btn.onclick = () => this.toggle(s, !open);
    d.append(btn);
  }

  showDetails(i: number): void {
    const g = this.g;
    const d = this.details;
    d.replaceChildren(el("h3", "wb-graph-details-title", g.op[i]!));
    const t = el("table", "wb-graph-kv");
    this.kv(t, "name", g.name[i]!);
    if (g.scope[i]! >= 0) this.kv(t, "module", g.scopePath[g.scope[i]!]!);
    this.kv(t, "output", `${g.shape[i]} ${g.dtype[i]}`);
    if (g.params[i]) this.kv(t, "params", human(g.params[i]));
    if (g.macs[i]) this.kv(t, "MACs", human(g.macs[i]));
    if (g.precision[i]) this.kv(t, "precision", g.precision[i]!);
    const status = g.payload.status?.[g.name[i]!];
    if (status) this.kv(t, "diff", status);
    const changes = g.payload.changes?.[g.name[i]!];
    if (changes?.length) this.kv(t, "changes", changes.join(", "));
    const ov = this.overlay?.values[i];
    if (ov !== null && ov !== undefined) {
      const o = this.model.get("overlay_data");
      this.kv(t, o.label || "overlay", `${fmtValue(ov)}${o.unit ? " " + o.unit : ""}`);
    }
    const ex = this.model.get("extra")?.[g.name[i]!];
    if (ex) for (const [k, v] of Object.entries(ex)) this.kv(t, k, String(v));
    d.append(t);
    const io = g.cat[i] === "io";
    const more = el("div", "wb-graph-more", io ? "" : "loading attributes and weights…");
    d.append(more);
    if (!io) {
      const id = Math.random().toString(36).slice(2);
      this.pending.set(id, (msg) => { if (this.selected === i) this.renderMore(more, msg.details, msg.error); });
      this.model.send({ type: "details", name: g.name[i], id });
    }
  }

  renderMore(box: HTMLElement, det: NodeDetails | undefined, error: string | undefined): void {
    box.replaceChildren();
    if (error || !det) { box.append(el("div", "wb-graph-error", error || "no details")); return; }
    const sec = (title: string): HTMLTableElement => { box.append(el("h4", null, title)); const t = el("table", "wb-graph-kv"); box.append(t); return t; };
    const dims = (s: (number | string)[] | null | undefined): string => (s ? s.join("×") || "scalar" : "?");
    if (det.inputs?.length) {
      const t = sec("inputs");
      for (const x of det.inputs) this.kv(t, x.name, `${dims(x.shape)} ${x.dtype ?? ""}${x.from ? `  ← ${x.from}` : ""}`);
    }
    if (det.outputs?.length) {
      const t = sec("outputs");
      for (const x of det.outputs) {
        const to = x.to ?? [];
        this.kv(t, x.name, `${dims(x.shape)} ${x.dtype ?? ""}${to.length ? `  → ${to.slice(0, 3).join(", ")}${to.length > 3 ? "…" : ""}` : ""}`);
      }
    }
    const attrs = Object.entries(det.attributes ?? {});
    if (attrs.length) {
      const t = sec("attributes");
      for (const [k, v] of attrs) this.kv(t, k, typeof v === "string" ? v : JSON.stringify(v));
    }
    if (det.weights?.length) {
      const t = sec("weights");
      for (const w of det.weights) {
        let s = `${dims(w.shape)} ${w.dtype ?? ""}`;
        if (typeof w.min === "number") s += ` · min ${human(w.min)} · max ${human(w.max)} · mean ${human(w.mean)} · std ${human(w.std)} · zeros ${(100 * (w.zeros ?? 0)).toFixed(1)}%`;
        this.kv(t, w.name, s);
      }
    }
  }

  renderStats(): void {
    const st = this.g.payload.stats;
    const s = this.stats;
    s.replaceChildren(el("h4", null, "Model"));
    const t = el("table", "wb-graph-kv");
    this.kv(t, "format", st.format ?? this.g.format);
    this.kv(t, "nodes", String(st.nodes ?? ""));
    this.kv(t, "edges", String(st.edges ?? ""));
    this.kv(t, "parameters", human(st.params));
    this.kv(t, "MACs", human(st.macs));
    this.kv(t, "size", humanBytes(st.size_bytes));
    if (st.precision) this.kv(t, "precision", Object.entries(st.precision).map(([k, v]) => `${k}: ${v}`).join(", "));
    s.append(t);
    const hist = Object.entries(st.op_histogram ?? {});
    if (hist.length) {
      s.append(el("h4", null, "Ops"));
      const max = hist[0]![1];
      for (const [op, c] of hist.slice(0, 16)) {
        const row = el("div", "wb-graph-hist-row");
        const bar = el("span", "wb-graph-hist-bar");
        bar.style.width = `${Math.max(2, (100 * c) / max)}px`;
        row.append(el("span", "wb-graph-hist-op", op), bar, el("span", null, String(c)));
        s.append(row);
      }
    }
  }

  applyOverlay(): void {
    this.overlay = overlayColors(this.g, this.model.get("overlay_data") ?? {});
    this.legend.replaceChildren();
    const swatch = (color: string, text: string, cls = "wb-graph-legend-row"): HTMLDivElement => {
      const row = el("div", cls);
      const sw = el("span", "wb-graph-swatch");
      sw.style.background = color;
      row.append(sw, el("span", null, text));
      return row;
    };
    if (!this.overlay) {
      const present = new Set(this.g.cat);
      this.legend.append(el("div", "wb-graph-legend-title", "op family"));
      for (const [c, col] of Object.entries(CATEGORY_COLORS)) if (present.has(c as never)) this.legend.append(swatch(col, c));
      return;
    }
    const lg = this.overlay.legend;
    this.legend.append(el("div", "wb-graph-legend-title", lg.title));
    for (const r of lg.rows) this.legend.append(swatch(r.color, r.text));
    if (lg.gradient) {
      const bar = el("div", "wb-graph-ramp");
      bar.style.background = `linear-gradient(to right, ${lg.gradient.colors.join(",")})`;
      const ends = el("div", "wb-graph-ramp-ends");
      ends.append(el("span", null, lg.gradient.lo), el("span", null, lg.gradient.hi));
      this.legend.append(bar, ends);
    }
    if (lg.missing) this.legend.append(el("div", "wb-graph-legend-row wb-graph-muted", `no value: ${lg.missing}`));
  }

  /** Back-compat for tests and the benchmark: per real node colour, or null. */
  get nodeColors(): (string | null)[] | null {
    return this.overlay ? this.overlay.colors : null;
  }

  onMessage(msg: unknown): void {
    const m = msg as DetailsReply | null;
    if (m && m.type === "details" && typeof m.id === "string" && this.pending.has(m.id)) {
      const cb = this.pending.get(m.id)!;
      this.pending.delete(m.id);
      cb(m);
    }
  }

  selectByName(name: string): void {
    const i = this.g.index.get(name);
    if (i === undefined || i === this.selected) return;
    this.focusNode(i);
  }

  destroy(): void {
    this.ro?.disconnect();
    if (this.raf) cancelAnimationFrame(this.raf);
    syncChannel().removeEventListener("view", this.onSync);
  }
}

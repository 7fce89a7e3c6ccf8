/**
 * The CompareBoard's state and geometry as pure functions (tested in Node by vitest): which columns
 * show, how rows sort, which candidates count as "best", the Pareto front, and the plots' scales.
 */
import type { BoardPayload, BoardRow } from "../generated/compare_board";

export type { BoardPayload, BoardRow };

/** A numeric column of the table: the header carries the unit, the cells only numbers. */
export interface Column {
  key: keyof BoardRow;
  header: string;
  title: string;
  /** digits after the point at most (numbers are shown with 3 significant digits, fewer for large ones) */
  kind: "ms" | "count" | "ratio" | "error" | "mb" | "text";
}

export const COLUMNS: readonly Column[] = [
  { key: "batch", header: "batch", title: "batch size", kind: "text" },
  { key: "precision", header: "precision", title: "the precision it computed in", kind: "text" },
  { key: "p50_ms", header: "p50 (ms)", title: "median latency per call, milliseconds", kind: "ms" },
  { key: "p90_ms", header: "p90 (ms)", title: "90th percentile latency, milliseconds", kind: "ms" },
  { key: "p99_ms", header: "p99 (ms)", title: "99th percentile latency, milliseconds", kind: "ms" },
  { key: "throughput", header: "thrpt (/s)", title: "throughput, samples per second", kind: "count" },
  { key: "speedup", header: "speed-up (×)", title: "the reference's p50 over this p50, at the same batch; none for failed candidates", kind: "ratio" },
  { key: "rel_l2", header: "rel. L2", title: "relative L2 error against the reference (worst output)", kind: "error" },
  { key: "metric_drop", header: "metric drop", title: "drop of the task metric against the original", kind: "error" },
  { key: "top1", header: "top-1", title: "share of rows with the reference's arg-max (worst output)", kind: "ratio" },
  { key: "first_ms", header: "first (ms)", title: "load + compile + first call, milliseconds", kind: "ms" },
  { key: "rss_mb", header: "RSS (MB)", title: "peak resident memory while loaded and run, MiB", kind: "mb" },
  { key: "size_mb", header: "size (MB)", title: "model size on disk, MiB", kind: "mb" },
];

/** The columns that hold something: a column empty (or constant at batch 1) in every row is left out. */
export function visibleColumns(rows: readonly BoardRow[]): Column[] {
  return COLUMNS.filter((c) => {
    const vals = rows.map((r) => r[c.key]).filter((v) => v !== null && v !== undefined && v !== "");
    if (!vals.length) return false;
    if (c.key === "batch") return new Set(vals).size > 1 || vals.some((v) => v !== 1);
    return true;
  });
}

/** The columns a narrow board leaves out first (their figures stay in each row's detail), in order. */
export const DROP_ORDER: readonly (keyof BoardRow)[] = ["size_mb", "rss_mb", "first_ms", "top1", "p90_ms", "throughput",
  "batch", "precision", "p99_ms"];

/** `cols` less the `n` first of `DROP_ORDER` that are among them. */
export function dropColumns(cols: readonly Column[], n: number): Column[] {
  const present = DROP_ORDER.filter((k) => cols.some((c) => c.key === k)).slice(0, n);
  return cols.filter((c) => !present.includes(c.key));
}

/** How many columns `dropColumns` can leave out of `cols`. */
export function droppable(cols: readonly Column[]): number {
  return DROP_ORDER.filter((k) => cols.some((c) => c.key === k)).length;
}

/** "p90 0.077 ms · first 2.9 ms": the figures of the columns left out (of `all`, the columns that hold
 * something) for a row's detail. */
export function droppedText(row: BoardRow, shown: readonly Column[], all: readonly Column[] = COLUMNS): string {
  return all.filter((c) => !shown.includes(c) && DROP_ORDER.includes(c.key))
    .map((c) => [c, cellText(row, c)] as const)
    .filter(([, t]) => t !== "")
    .map(([c, t]) => `${c.header.replace(/ \(.*\)$/, "")} ${t}${/\((.*)\)$/.exec(c.header)?.[1] === "ms" ? " ms" : /\(MB\)/.test(c.header) ? " MB" : /\/s/.test(c.header) ? "/s" : ""}`)
    .join(" · ");
}

/** A number for a cell: 3 significant digits, no exponent for ordinary sizes, thousands grouped. */
export function fmtNum(v: number | null | undefined, kind: Column["kind"] = "ms"): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "";
  if (kind === "error") {
    if (v === 0) return "0";
    return Math.abs(v) < 0.001 || Math.abs(v) >= 1e4 ? v.toExponential(1) : v.toPrecision(2);
  }
  if (kind === "ratio") return v.toFixed(2);
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return "0";
  return v.toPrecision(2);
}

export function cellText(row: BoardRow, col: Column): string {
  const v = row[col.key];
  if (typeof v === "number") return col.kind === "text" ? String(v) : fmtNum(v, col.kind);
  return v === null || v === undefined ? "" : String(v);
}

export type SortDir = "asc" | "desc";
export interface SortState { key: keyof BoardRow | null; dir: SortDir }

/** Rows sorted by `key` (null: the payload's order); empty values go last either way; stable. */
export function sortRows(rows: readonly BoardRow[], sort: SortState): BoardRow[] {
  const key = sort.key;
  if (!key) return [...rows];
  const sign = sort.dir === "asc" ? 1 : -1;
  return rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => {
      const x = a.r[key], y = b.r[key];
      const xe = x === null || x === undefined || x === "", ye = y === null || y === undefined || y === "";
      if (xe || ye) return xe === ye ? a.i - b.i : xe ? 1 : -1;
      const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return c !== 0 ? sign * c : a.i - b.i;
    })
    .map((e) => e.r);
}

/** The next sort after a click on `key`'s header: ascending, descending, then the payload's order. */
export function nextSort(sort: SortState, key: keyof BoardRow): SortState {
  if (sort.key !== key) return { key, dir: "asc" };
  if (sort.dir === "asc") return { key, dir: "desc" };
  return { key: null, dir: "asc" };
}

/** May a row be called fast? It ran, it did not FAIL accuracy, and it has a latency. */
export function eligible(row: BoardRow): boolean {
  return row.status === "ok" && row.passed !== false && row.p50_ms !== null;
}

/** The best (lowest p50) eligible shown row per batch size; failed and hidden ones never are. */
export function bestRows(rows: readonly BoardRow[], hidden: ReadonlySet<string>): Map<number | null, BoardRow> {
  const best = new Map<number | null, BoardRow>();
  for (const r of rows) {
    if (hidden.has(r.id) || !eligible(r)) continue;
    const cur = best.get(r.batch);
    if (!cur || (r.p50_ms as number) < (cur.p50_ms as number)) best.set(r.batch, r);
  }
  return best;
}

export interface Point { id: string; label: string; x: number; y: number; status: BoardRow["status"]; reference: boolean }

/** The accuracy-vs-latency points of the shown rows that have both figures. */
export function accuracyPoints(rows: readonly BoardRow[], axis: BoardPayload["error_axis"], hidden: ReadonlySet<string>): Point[] {
  if (!axis) return [];
  const out: Point[] = [];
  for (const r of rows) {
    const y = r[axis];
    if (hidden.has(r.id) || r.status === "error" || r.p50_ms === null || y === null) continue;
    out.push({ id: r.id, label: r.label, x: r.p50_ms, y, status: r.status, reference: r.reference });
  }
  return out;
}

/** Ids of the Pareto-optimal points (no other point is at least as fast and as accurate, and better in
 * one): lower latency and lower error are better. FAILing points are not on the front. */
export function paretoFront(points: readonly Point[]): Set<string> {
  const ok = points.filter((p) => p.status === "ok");
  const front = new Set<string>();
  for (const p of ok) {
    const dominated = ok.some((q) => q !== p && q.x <= p.x && q.y <= p.y && (q.x < p.x || q.y < p.y));
    if (!dominated) front.add(p.id);
  }
  return front;
}

/** A mapping from data to pixels, linear or log10. */
export interface Scale { (v: number): number; lo: number; hi: number; log: boolean; ticks: number[] }

/** 1, 2, 2.5, 5 × 10^k steps covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

/** Maps [lo, hi] onto [a, b] pixels; `log` when the values span more than `logRatio` (runtimes orders
 * of magnitude apart) and all are positive, so every candidate stays visible. */
export function makeScale(values: readonly number[], a: number, b: number, opts: { zero?: boolean; logRatio?: number; forceLog?: boolean } = {}): Scale {
  const vals = values.filter((v) => Number.isFinite(v));
  let lo = vals.length ? Math.min(...vals) : 0;
  let hi = vals.length ? Math.max(...vals) : 1;
  const positive = vals.filter((v) => v > 0);
  const log = positive.length > 0 && (opts.forceLog === true || (lo > 0 && hi / lo > (opts.logRatio ?? 50)));
  let ticks: number[];
  if (log) {
    const plo = positive.length ? Math.min(...positive) : 1;
    lo = 10 ** Math.floor(Math.log10(plo));
    hi = 10 ** Math.ceil(Math.log10(Math.max(hi, lo * 10)));
    ticks = [];
    for (let e = Math.round(Math.log10(lo)); e <= Math.round(Math.log10(hi)); e++) ticks.push(10 ** e);
  } else {
    if (opts.zero !== false) lo = Math.min(0, lo);
    const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
    hi += pad;
    if (lo !== 0) lo -= pad;
    ticks = niceTicks(lo, hi).filter((t) => t >= lo - 1e-12 && t <= hi + 1e-12);
  }
  const f = ((v: number) => {
    if (log) {
      const lv = Math.log10(Math.max(v, lo)); // zeros (exact agreement) sit on the axis
      return a + ((lv - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)) * (b - a);
    }
    return a + ((v - lo) / (hi - lo || 1)) * (b - a);
  }) as Scale;
  f.lo = lo;
  f.hi = hi;
  f.log = log;
  f.ticks = ticks;
  return f;
}

/** Quantile of sorted values (linear interpolation). */
export function quantile(sorted: readonly number[], q: number): number {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const i = Math.floor(pos), f = pos - i;
  const a = sorted[i]!, b = sorted[Math.min(i + 1, sorted.length - 1)]!;
  return a + (b - a) * f;
}

/** What the latency plot draws for a row: a box (p25–p75, median, whiskers p1–p99) from per-call
 * samples, or, when the result kept none, the p50–p90–p99 range it recorded. */
export interface Dist { id: string; label: string; status: BoardRow["status"]; kind: "box" | "range";
  lo: number; q1: number; median: number; q3: number; hi: number; p90: number | null }

export function distribution(row: BoardRow): Dist | null {
  if (row.status === "error" || row.p50_ms === null) return null;
  const s = [...row.samples_ms].filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length >= 5) {
    return { id: row.id, label: row.label, status: row.status, kind: "box", lo: quantile(s, 0.01), q1: quantile(s, 0.25),
      median: quantile(s, 0.5), q3: quantile(s, 0.75), hi: quantile(s, 0.99), p90: row.p90_ms };
  }
  const p50 = row.p50_ms, p99 = row.p99_ms ?? row.p90_ms ?? p50;
  return { id: row.id, label: row.label, status: row.status, kind: "range", lo: p50, q1: p50, median: p50, q3: p50, hi: p99, p90: row.p90_ms };
}

/** Rows not drawn in the plots and why (so nothing disappears silently). */
export function leftOut(rows: readonly BoardRow[], hidden: ReadonlySet<string>): string[] {
  const timed = rows.some((r) => r.p50_ms !== null); // a board of comparisons alone has no plots to miss
  const out: string[] = [];
  for (const r of rows) {
    if (hidden.has(r.id)) continue;
    if (r.status === "error") out.push(`${r.label}: did not run`);
    else if (r.p50_ms === null && timed) out.push(`${r.label}: no latency measured`);
  }
  return out;
}

/** The one-line summary above the table. */
export function summary(rows: readonly BoardRow[], hidden: ReadonlySet<string>): string {
  const shown = rows.filter((r) => !hidden.has(r.id));
  const failed = shown.filter((r) => r.status !== "ok").length;
  if (!rows.some((r) => r.p50_ms !== null)) { // accuracy alone: how many pass
    const checked = shown.filter((r) => !r.reference);
    return `${checked.filter((r) => r.status === "ok" && r.passed !== false).length} of ${checked.length} candidates pass`
      + ` · ${shown.length} of ${rows.length} shown`;
  }
  const best = bestRows(rows, hidden);
  const parts = [...best.entries()].map(([batch, r]) =>
    `best${best.size > 1 && batch !== null ? ` at batch ${batch}` : ""}: ${r.label} (p50 ${fmtNum(r.p50_ms)} ms${r.speedup !== null && !r.reference ? `, ${r.speedup.toFixed(2)}×` : ""})`);
  if (!parts.length) parts.push("no candidate ran and passed");
  const tail = `${shown.length} of ${rows.length} shown` + (failed ? `, ${failed} failed` : "");
  return `${parts.join("; ")} · ${tail}`;
}

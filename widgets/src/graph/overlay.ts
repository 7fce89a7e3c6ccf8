/** Overlay colouring: per-node values (numbers or labels) to colours and a legend description. */
import type { OverlayPayload } from "../generated/schema";
import { fmtValue } from "../shared/format";
import { CATEGORICAL, STATUS_COLORS, ramp } from "./colors";
import type { GraphData } from "./data";

export interface LegendRow { color: string; text: string }
export interface Legend { title: string; rows: LegendRow[]; gradient?: { colors: string[]; lo: string; hi: string }; missing: number }

export interface OverlayColors {
  /** per real node: its colour, null without a value */
  colors: (string | null)[];
  values: (number | string | null)[];
  /** a folded module shows its highest-ranked member's colour */
  groupColor: Map<number, string>;
  legend: Legend;
}

export function overlayColors(g: GraphData, o: OverlayPayload): OverlayColors | null {
  if (!o.values) return null;
  const vals: (number | string | null)[] = new Array(g.n).fill(null);
  for (const [k, v] of Object.entries(o.values)) { const i = g.index.get(k); if (i !== undefined) vals[i] = v; }
  const colors: (string | null)[] = new Array(g.n).fill(null);
  const rank = new Float64Array(g.n).fill(-Infinity);
  const legend: Legend = { title: `${o.label || "overlay"}${o.unit ? ` (${o.unit})` : ""}`, rows: [], missing: 0 };
  if (o.kind === "categorical") {
    const cats = o.categories ?? [...new Set(vals.filter((v): v is string => typeof v === "string"))];
    const palette: Record<string, string> = { ...(o.colors ?? {}) };
    cats.forEach((c, k) => { palette[c] ??= STATUS_COLORS[c] ?? CATEGORICAL[k % CATEGORICAL.length]!; });
    vals.forEach((v, i) => { if (v !== null) { colors[i] = palette[String(v)] ?? "#eeeeee"; rank[i] = cats.indexOf(String(v)); } });
    for (const c of cats) legend.rows.push({ color: palette[c]!, text: `${c} (${vals.filter((v) => v === c).length})` });
  } else {
    const nums = vals.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
    let lo = 0, hi = 1;
    if (nums.length) { lo = nums.reduce((a, b) => Math.min(a, b)); hi = nums.reduce((a, b) => Math.max(a, b)); }
    const th = [...(o.thresholds ?? [])].sort((a, b) => a - b);
    if (th.length) {
      const binColor = (k: number): string => ramp(k / th.length);
      vals.forEach((v, i) => {
        if (typeof v !== "number") return;
        let k = 0;
        while (k < th.length && v >= th[k]!) k++;
        colors[i] = binColor(k); rank[i] = v;
      });
      const edges = [-Infinity, ...th, Infinity];
      for (let k = 0; k <= th.length; k++) {
        const text = k === 0 ? `< ${fmtValue(th[0]!)}` : k === th.length ? `≥ ${fmtValue(th[k - 1]!)}` : `${fmtValue(edges[k]!)} – ${fmtValue(edges[k + 1]!)}`;
        const n = nums.filter((v) => v >= edges[k]! && v < edges[k + 1]!).length;
        legend.rows.push({ color: binColor(k), text: `${text} (${n})` });
      }
    } else {
      const log = o.scale === "log" && lo > 0;
      const f = (v: number): number => log ? (Math.log(v) - Math.log(lo)) / Math.max(1e-12, Math.log(hi) - Math.log(lo)) : (v - lo) / Math.max(1e-12, hi - lo);
      vals.forEach((v, i) => { if (typeof v === "number" && Number.isFinite(v)) { colors[i] = ramp(f(v)); rank[i] = v; } });
      legend.gradient = { colors: [0, 0.25, 0.5, 0.75, 1].map(ramp), lo: fmtValue(lo), hi: fmtValue(hi) };
    }
    legend.missing = vals.filter((v) => v === null).length;
  }
  const best = new Map<number, [number, string]>();
  for (let i = 0; i < g.n; i++) {
    const c = colors[i];
    if (!c) continue;
    for (let s = g.scope[i]!; s >= 0; s = g.scopeParent[s]!) {
      const b = best.get(s);
      if (!b || rank[i]! > b[0]) best.set(s, [rank[i]!, c]);
    }
  }
  const groupColor = new Map<number, string>();
  for (const [s, [, c]] of best) groupColor.set(s, c);
  return { colors, values: vals, groupColor, legend };
}

/**
 * The CompareBoard's two plots, drawn as SVG in the browser from the payload: the latency distribution
 * per candidate and accuracy against latency with the Pareto front. A candidate that FAILs accuracy is
 * drawn hollow and red, never as a speed-up; one that did not run is listed under the plot.
 */
import {
  type BoardPayload, type BoardRow, accuracyPoints, distribution, fmtNum, leftOut, makeScale, paretoFront,
} from "./logic";

const NS = "http://www.w3.org/2000/svg";
export const PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#72b7b2", "#9d755d", "#eeca3b", "#ff9da6", "#bab0ac"];
const FAIL = "#cf222e";

function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function frame(width: number, height: number, title: string): SVGSVGElement {
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "font-family": "sans-serif", "font-size": 11 });
  svg.append(s("title", {}, title));
  svg.append(s("text", { x: width / 2, y: 14, "text-anchor": "middle", "font-size": 12, "font-weight": "bold" }, title));
  return svg;
}

function tip(node: SVGElement, text: string): SVGElement {
  node.append(s("title", {}, text));
  return node;
}

/** Horizontal boxes (or p50–p99 ranges) of the shown candidates; rows keep the table's colours. */
export function latencyPlot(rows: readonly BoardRow[], hidden: ReadonlySet<string>, colors: Map<string, string>, width = 460): SVGSVGElement | null {
  const dists = rows.filter((r) => !hidden.has(r.id)).map(distribution).filter((d) => d !== null);
  if (!dists.length) return null;
  const rowH = 22, top = 26, labelW = Math.min(170, Math.round(width * 0.36)), right = width - 14;
  const height = top + rowH * dists.length + 34;
  const svg = frame(width, height, "Latency per call (box p25–p75, whiskers p1–p99)");
  svg.classList.add("wb-cb-latency");
  const x = makeScale(dists.flatMap((d) => [d.lo, d.hi]), labelW + 8, right);
  const yEnd = top + rowH * dists.length;
  for (const t of x.ticks) {
    const px = x(t);
    svg.append(s("line", { x1: px, y1: top, x2: px, y2: yEnd, stroke: "#eaeef2" }));
    svg.append(s("text", { x: px, y: yEnd + 13, "text-anchor": "middle", fill: "#57606a" }, fmtNum(t)));
  }
  svg.append(s("text", { x: (labelW + right) / 2, y: yEnd + 28, "text-anchor": "middle", fill: "#57606a" }, x.log ? "ms (log scale)" : "ms"));
  dists.forEach((d, i) => {
    const y = top + i * rowH + rowH / 2;
    const failed = d.status === "fail";
    const c = failed ? FAIL : colors.get(d.id) ?? PALETTE[0]!;
    const g = s("g", { "data-id": d.id, class: failed ? "wb-cb-mark wb-cb-failed" : "wb-cb-mark" });
    const fit = Math.max(8, Math.floor((labelW - (failed ? 14 : 4)) / 6)); // ~6 px per character at 11 px
    const name = d.label.length > fit ? d.label.slice(0, fit - 1) + "…" : d.label;
    g.append(s("text", { x: labelW, y: y + 4, "text-anchor": "end", fill: failed ? FAIL : "#1f2328" }, (failed ? "✘ " : "") + name));
    g.append(s("line", { x1: x(d.lo), y1: y, x2: x(d.hi), y2: y, stroke: c }));
    if (d.kind === "box") {
      g.append(s("rect", { x: x(d.q1), y: y - 7, width: Math.max(1, x(d.q3) - x(d.q1)), height: 14, fill: failed ? "none" : c,
        "fill-opacity": 0.35, stroke: c, "stroke-dasharray": failed ? "3 2" : "none" }));
    } else if (d.p90 !== null) {
      g.append(s("line", { x1: x(d.p90), y1: y - 5, x2: x(d.p90), y2: y + 5, stroke: c }));
    }
    g.append(s("line", { x1: x(d.median), y1: y - 8, x2: x(d.median), y2: y + 8, stroke: c, "stroke-width": 2 }));
    tip(g, `${d.label}${failed ? " — FAILs accuracy" : ""}: p50 ${fmtNum(d.median)} ms, ${d.kind === "box" ? "p1–p99" : "p50–p99"} ${fmtNum(d.lo)}–${fmtNum(d.hi)} ms`);
    svg.append(g);
  });
  return svg;
}

const AXIS_LABEL: Record<string, string> = { rel_l2: "relative L2 error (log)", metric_drop: "metric drop" };

/** Accuracy (error: lower is better) against median latency; the Pareto front joined; FAILing
 * candidates hollow red, the reference a square, the best one ringed. */
export function accuracyPlot(rows: readonly BoardRow[], axis: BoardPayload["error_axis"], hidden: ReadonlySet<string>,
  colors: Map<string, string>, bestIds: ReadonlySet<string>, width = 460): SVGSVGElement | null {
  const pts = accuracyPoints(rows, axis, hidden);
  if (!pts.length || !axis) return null;
  const height = 300, left = 56, right = width - 16, top = 26, bottom = height - 40;
  const svg = frame(width, height, "Accuracy vs latency (lower left is better)");
  svg.classList.add("wb-cb-accuracy");
  const x = makeScale(pts.map((p) => p.x), left, right);
  const y = makeScale(pts.map((p) => p.y), bottom, top, { forceLog: axis === "rel_l2" });
  for (const t of x.ticks) {
    svg.append(s("line", { x1: x(t), y1: top, x2: x(t), y2: bottom, stroke: "#eaeef2" }));
    svg.append(s("text", { x: x(t), y: bottom + 13, "text-anchor": "middle", fill: "#57606a" }, fmtNum(t)));
  }
  const clamped = y.log && pts.some((p) => p.y < y.lo); // exact agreement (0) sits on the bottom line
  for (const t of y.ticks) {
    svg.append(s("line", { x1: left, y1: y(t), x2: right, y2: y(t), stroke: "#eaeef2" }));
    const text = (clamped && t === y.ticks[0] ? "≤" : "") + fmtNum(t, "error");
    svg.append(s("text", { x: left - 4, y: y(t) + 4, "text-anchor": "end", fill: "#57606a" }, text));
  }
  svg.append(s("text", { x: (left + right) / 2, y: bottom + 28, "text-anchor": "middle", fill: "#57606a" }, `median latency (ms)${x.log ? ", log" : ""}`));
  svg.append(s("text", { x: 12, y: (top + bottom) / 2, transform: `rotate(-90 12 ${(top + bottom) / 2})`, "text-anchor": "middle", fill: "#57606a" }, AXIS_LABEL[axis] ?? axis));
  const front = paretoFront(pts);
  const line = pts.filter((p) => front.has(p.id)).sort((a, b) => a.x - b.x);
  if (line.length > 1) {
    svg.append(s("polyline", { points: line.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" "), fill: "none",
      stroke: "#f58518", "stroke-width": 1.5, class: "wb-cb-front" }));
  }
  for (const p of pts) {
    const failed = p.status === "fail";
    const c = failed ? FAIL : colors.get(p.id) ?? PALETTE[0]!;
    const px = x(p.x), py = y(p.y);
    const g = s("g", { "data-id": p.id, class: "wb-cb-mark" + (failed ? " wb-cb-failed" : "") + (front.has(p.id) ? " wb-cb-on-front" : "") });
    if (p.reference) g.append(s("rect", { x: px - 5, y: py - 5, width: 10, height: 10, fill: "#1f2328" }));
    else g.append(s("circle", { cx: px, cy: py, r: 5, fill: failed ? "white" : c, stroke: c, "stroke-width": failed ? 2 : 1 }));
    if (bestIds.has(p.id)) g.append(s("circle", { cx: px, cy: py, r: 9, fill: "none", stroke: "#f58518", "stroke-width": 2 }));
    if (front.has(p.id) || failed || p.reference) {
      const name = p.label.length > 26 ? p.label.slice(0, 25) + "…" : p.label;
      g.append(s("text", { x: Math.min(px + 8, right - 4), y: py - 7, "font-size": 10, "text-anchor": px + 8 > right - 120 ? "end" : "start",
        fill: failed ? FAIL : "#1f2328" }, (failed ? "✘ " : "") + name));
    }
    tip(g, `${p.label}${failed ? " — FAILs accuracy" : ""}${p.reference ? " (reference)" : ""}: p50 ${fmtNum(p.x)} ms, ${axis} ${fmtNum(p.y, "error")}`);
    svg.append(g);
  }
  return svg;
}

/** "Not drawn: …" under the plots, for the rows with nothing to draw. */
export function leftOutNote(rows: readonly BoardRow[], hidden: ReadonlySet<string>): string {
  const out = leftOut(rows, hidden);
  return out.length ? `Not drawn: ${out.join("; ")}.` : "";
}

/** The visible graph as a standalone SVG document (the "SVG" button; PNG rasterises this). */
import { escapeXml, truncate } from "../shared/format";
import { isLight } from "./colors";
import type { VisibleEdge } from "./fold";
import { type Layout, routePath } from "./layout";

export interface SvgBox { label: [string, string]; fill: string; group: boolean }

export function toSVG(L: Layout, edges: readonly VisibleEdge[], boxes: readonly SvgBox[], title: string): string {
  const [x0, y0, x1, y1] = L.bounds;
  const pad = 20;
  const W = Math.ceil(x1 - x0 + 2 * pad), H = Math.ceil(y1 - y0 + 2 * pad);
  const f = (v: number): string => (Math.round(v * 10) / 10).toString();
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="${f(x0 - pad)} ${f(y0 - pad)} ${W} ${H}" font-family="sans-serif">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect x="${f(x0 - pad)}" y="${f(y0 - pad)}" width="${W}" height="${H}" fill="#ffffff"/>`,
    `<g fill="none" stroke="#9aa0a6" stroke-width="1">`,
  ];
  edges.forEach((e, k) => {
    const d: string[] = [];
    routePath(L.routes[k]!, (x, y) => d.push(`M${f(x)} ${f(y)}`), (a, b, c, dd, x, y) => d.push(`C${f(a)} ${f(b)} ${f(c)} ${f(dd)} ${f(x)} ${f(y)}`));
    out.push(`<path d="${d.join("")}"${e.shape ? ` data-shape="${escapeXml(e.shape)}"` : ""}/>`);
  });
  out.push("</g>", `<g font-size="10" fill="#5f6368">`);
  edges.forEach((e, k) => {
    if (!e.shape) return;
    const r = L.routes[k]!;
    out.push(`<text x="${f(r[0]! + 4)}" y="${f(r[1]! + 13)}">${escapeXml(truncate(e.shape, 24))}</text>`);
  });
  out.push("</g>", `<g text-anchor="middle">`);
  boxes.forEach((b, v) => {
    const x = L.x[v]!, y = L.y[v]!, w = L.w[v]!, h = L.h[v]!;
    const text = b.group || isLight(b.fill) ? "#202124" : "#ffffff";
    out.push(`<g class="${b.group ? "module" : "node"}"><rect x="${f(x - w / 2)}" y="${f(y - h / 2)}" width="${f(w)}" height="${f(h)}" rx="${b.group ? 8 : 4}" fill="${escapeXml(b.fill)}"${b.group ? ` stroke="#6b6b80" stroke-dasharray="5 3"` : ""}/>`);
    const [a, sub] = b.label;
    out.push(`<text x="${f(x)}" y="${f(y - (sub ? 3 : -4))}" font-size="12" font-weight="bold" fill="${text}">${escapeXml(truncate(a, 28))}</text>`);
    if (sub) out.push(`<text x="${f(x)}" y="${f(y + 12)}" font-size="10" fill="${text}">${escapeXml(truncate(sub, 32))}</text>`);
    out.push("</g>");
  });
  out.push("</g></svg>");
  return out.join("\n");
}

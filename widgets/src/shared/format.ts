/** Number and text formatting shared by the widgets. */

/** "1 node", "2 nodes"; `plural` defaults to `word + "s"`. */
export function count(n: number, word: string, plural?: string): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? word : (plural ?? word + "s")}`;
}

/** 1234567 -> "1.23 M". */
export function human(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return "";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(2) + " G";
  if (a >= 1e6) return (n / 1e6).toFixed(2) + " M";
  if (a >= 1e3) return (n / 1e3).toFixed(1) + " k";
  return Number.isInteger(n) ? String(n) : n.toPrecision(3);
}

export function humanBytes(n: number | null | undefined): string {
  if (!n) return "0 B";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** A number for a legend or tooltip; labels pass through. */
export function fmtValue(v: number | string): string {
  if (typeof v !== "number") return v;
  return Math.abs(v) >= 0.01 || v === 0 ? human(v) : v.toExponential(2);
}

export function truncate(s: string, max: number): string {
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

/** Escapes text for SVG/HTML markup. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
}

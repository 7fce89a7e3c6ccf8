/** Colours: op families, diff status, categorical overlays and the green-to-red ramp. */
export const CATEGORY_COLORS: Record<string, string> = {
  conv: "#4e79a7", matmul: "#59a14f", norm: "#76b7b2", pool: "#9c755f", activation: "#f28e2b",
  shape: "#bab0ac", elementwise: "#edc948", quant: "#b07aa1", io: "#555555", other: "#8cd17d",
  group: "#e8e8f0",
};
export const STATUS_COLORS: Record<string, string> = { same: "#c9cdd3", changed: "#f28e2b", added: "#2ca02c", removed: "#d62728" };
export const CATEGORICAL = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"];

/** Green (low) to red (high), readable on white; t in [0, 1]. */
export function ramp(t: number): string {
  const stops = [[44, 160, 44], [188, 189, 34], [255, 187, 0], [255, 127, 14], [214, 39, 40]] as const;
  const c = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(c)), f = c - i;
  const a = stops[i]!, b = stops[i + 1]!;
  return `rgb(${[0, 1, 2].map((k) => Math.round(a[k]! + (b[k]! - a[k]!) * f)).join(",")})`;
}

/** Whether dark text reads better than white on `color` (#rrggbb or rgb()). */
export function isLight(color: string): boolean {
  let r = 255, g = 255, b = 255;
  const m = /^rgb\((\d+),(\d+),(\d+)\)$/.exec(color);
  if (m) { r = +m[1]!; g = +m[2]!; b = +m[3]!; }
  else if (color[0] === "#" && color.length >= 7) {
    r = parseInt(color.slice(1, 3), 16); g = parseInt(color.slice(3, 5), 16); b = parseInt(color.slice(5, 7), 16);
  }
  return 0.299 * r + 0.587 * g + 0.114 * b > 150;
}

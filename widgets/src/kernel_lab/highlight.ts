/** Python syntax highlighting for the KernelLab editor: one regex pass, HTML-escaped output. */

const KEYWORDS = new Set(("False None True and as assert break class continue def del elif else except " +
  "finally for from global if import in is lambda nonlocal not or pass raise return try while with yield").split(" "));

export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// comments, strings, decorators, numbers, identifiers
const TOKEN = /(#[^\n]*)|("""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?)|(@[\w.]+)|(\b\d[\d_]*(?:\.\d*)?(?:e[+-]?\d+)?\b|\b0x[0-9a-fA-F]+\b)|([A-Za-z_]\w*)/g;

/** The source as HTML with `<span class="tok-…">` around tokens; every character of `src` is escaped. */
export function highlight(src: string): string {
  let out = "";
  let last = 0;
  let prev = "";
  for (const m of src.matchAll(TOKEN)) {
    const at = m.index ?? 0;
    out += escapeHtml(src.slice(last, at));
    const text = escapeHtml(m[0]);
    let cls: string | null = null;
    if (m[1]) cls = "tok-com";
    else if (m[2]) cls = "tok-str";
    else if (m[3]) cls = "tok-dec";
    else if (m[4]) cls = "tok-num";
    else if (m[5]) {
      if (KEYWORDS.has(m[5])) cls = "tok-kw";
      else if (prev === "def" || prev === "class") cls = "tok-def";
      else if (m[5] === "tl" || m[5] === "triton") cls = "tok-tl";
      prev = m[5];
    }
    out += cls ? `<span class="${cls}">${text}</span>` : text;
    last = at + m[0].length;
  }
  return out + escapeHtml(src.slice(last)) + "\n";
}

/** RGBA pixels of one tensor's access map: reads blue, writes red, both purple (sqrt-scaled). */
export function accessPixels(reads: number[][], writes: number[][]): Uint8ClampedArray {
  const rows = reads.length, cols = rows ? reads[0]!.length : 0;
  const maxOf = (a: number[][]): number => Math.max(1, ...a.map((r) => Math.max(0, ...r)));
  const rMax = maxOf(reads), wMax = maxOf(writes);
  const px = new Uint8ClampedArray(4 * Math.max(1, rows) * Math.max(1, cols));
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
    const r = Math.sqrt((reads[i]![j] ?? 0) / rMax), w = Math.sqrt((writes[i]?.[j] ?? 0) / wMax), k = 4 * (i * cols + j);
    px[k] = 255 - 190 * r;
    px[k + 1] = Math.max(0, 255 - 120 * r - 170 * w);
    px[k + 2] = 255 - 185 * w;
    px[k + 3] = 255;
  }
  return px;
}

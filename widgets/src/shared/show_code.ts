/**
 * "Show code": every view shows the Python its state stands for, ready to copy and run. The Python half
 * of each widget computes the code (a synced `code` trait); this renders it under a toggle.
 */
import { el } from "./dom";

export interface CodePanel {
  /** The outer element, to place in the widget. */
  root: HTMLElement;
  /** Shows `code` (an empty string hides the control). */
  update(code: string): void;
}

/** A "Show code" toggle with the code in a <pre> and a Copy button. */
export function codePanel(): CodePanel {
  const root = el("details", "wb-show-code");
  root.style.cssText = "margin:4px 0;font:12px sans-serif";
  const summary = el("summary", null, "Show code");
  summary.style.cssText = "cursor:pointer;color:#0969da;user-select:none";
  const pre = el("pre", "wb-code");
  pre.style.cssText = "margin:4px 0;padding:6px 8px;background:#f6f8fa;border:1px solid #d0d7de;border-radius:4px;"
    + "font:12px/1.4 ui-monospace,monospace;white-space:pre;overflow:auto;max-height:320px";
  const copy = el("button", "wb-copy", "Copy");
  copy.type = "button";
  copy.style.cssText = "font-size:12px";
  copy.addEventListener("click", () => {
    const text = pre.textContent ?? "";
    const done = () => { copy.textContent = "Copied"; setTimeout(() => (copy.textContent = "Copy"), 1200); };
    if (navigator.clipboard?.writeText) navigator.clipboard.writeText(text).then(done, () => selectText(pre));
    else selectText(pre);
  });
  root.append(summary, pre, copy);
  return {
    root,
    update(code: string) {
      pre.textContent = code;
      root.style.display = code ? "" : "none";
    },
  };
}

/** Selects the text of `node` (where the clipboard API is refused: http, an iframe), for Ctrl+C. */
function selectText(node: HTMLElement): void {
  const range = document.createRange();
  range.selectNodeContents(node);
  const sel = window.getSelection();
  sel?.removeAllRanges();
  sel?.addRange(range);
}

/**
 * anywidget entry of workbench.ui.KernelLab (bundled to workbench/widgets/kernel_lab.js): a
 * Python-highlighting editor (a transparent textarea over a highlighted <pre>), Run / Check /
 * Benchmark buttons that ask the kernel to act, the mode badge, the output panel and the access map.
 * No network, no editor library: works in JupyterLab, Notebook 7, Voilà and behind a base URL.
 * Whether the code may be edited or run is the kernel's decision (a published app never runs a
 * visitor's code); this side only shows it.
 */
import type { AccessMapPayload } from "../generated/schema";
import type { RenderProps } from "../shared/anywidget";
import { el } from "../shared/dom";
import { codePanel } from "../shared/show_code";
import { accessPixels, highlight } from "./highlight";

export interface KernelLabState {
  code: string;
  title: string;
  mode_name: string;
  mode_text: string;
  output: string;
  status: string;
  error_line: number;
  editable: boolean;
  can_check: boolean;
  access_map: AccessMapPayload;
  code_text: string;
}

type Action = "run" | "check" | "bench";

function render({ model, el: host }: RenderProps<KernelLabState>): () => void {
  const root = el("div", "wb-kl");
  const head = el("div", "wb-kl-head");
  const title = el("span", "wb-kl-title");
  const badge = el("span", "wb-kl-badge");
  const button = (action: Action, text: string, tip: string): HTMLButtonElement => {
    const b = el("button", null, text);
    b.dataset.action = action;
    b.title = tip;
    return b;
  };
  const buttons = [
    button("run", "▶ Run", "Execute the code (Shift+Enter)"),
    button("check", "✔ Check", "Check the launcher against the reference on many shapes"),
    button("bench", "Benchmark", "Time the launcher and the reference"),
  ];
  head.append(title, badge, ...buttons);
  const editor = el("div", "wb-kl-editor");
  const gutter = el("div", "wb-kl-gutter");
  const pre = el("pre");
  pre.setAttribute("aria-hidden", "true");
  const area = el("textarea");
  area.spellcheck = false;
  area.setAttribute("autocapitalize", "off");
  area.setAttribute("autocomplete", "off");
  area.setAttribute("aria-label", "kernel code");
  editor.append(gutter, pre, area);
  const out = el("pre", "wb-kl-out");
  out.setAttribute("role", "status");
  const mapEl = el("div", "wb-kl-map");
  mapEl.hidden = true;
  // "Show code": the lab as a plain script (the kernel writes it: KernelLab.script())
  const code = codePanel();
  root.append(head, editor, out, mapEl, code.root);
  host.appendChild(root);
  const showCode = () => code.update(model.get("code_text") ?? "");
  showCode();
  model.on("change:code_text", showCode);

  // access map: one canvas per tensor, programs down, elements across
  function drawMap(): void {
    const m = model.get("access_map") ?? {};
    const tensors = m.tensors ?? [];
    mapEl.hidden = tensors.length === 0;
    mapEl.replaceChildren();
    if (!tensors.length) return;
    const grid = (m.grid ?? []).filter((g) => g > 1).join("×") || "1";
    mapEl.append(el("div", "wb-kl-map-head",
      `access map · ${m.kernel ?? ""} · ${m.programs ?? 0} programs (grid ${grid}) · blue read, red written, purple both`));
    const row = el("div", "wb-kl-map-row");
    for (const t of tensors) {
      const box = el("figure");
      const rows = t.reads.length, cols = rows ? t.reads[0]!.length : 0;
      const canvas = el("canvas", "wb-kl-map-canvas");
      canvas.width = Math.max(cols, 1);
      canvas.height = Math.max(rows, 1);
      canvas.dataset.tensor = t.name;
      const ctx = canvas.getContext("2d");
      if (ctx) {
        const img = ctx.createImageData(canvas.width, canvas.height);
        img.data.set(accessPixels(t.reads, t.writes));
        ctx.putImageData(img, 0, 0);
      }
      const counts = Object.entries(t.counts).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(", ");
      box.append(canvas, el("figcaption", null, `${t.name} [${t.shape.join("×")}] · ${counts}`));
      row.append(box);
    }
    mapEl.append(row);
    for (const r of m.races ?? []) mapEl.append(el("div", "wb-kl-map-race", `✘ ${r}`));
  }

  function paint(): void {
    const code = area.value;
    pre.innerHTML = highlight(code); // every character escaped by highlight()
    const n = code.split("\n").length;
    const errLine = model.get("error_line");
    gutter.replaceChildren(...Array.from({ length: n }, (_, i) => {
      const line = el("span", i + 1 === errLine ? "err" : null, String(i + 1));
      return i + 1 < n ? [line, "\n"] : [line];
    }).flat());
    area.style.height = `${pre.scrollHeight}px`;
  }

  function sync(): void {
    title.textContent = model.get("title");
    const mode = model.get("mode_name");
    badge.textContent = mode === "compiled" ? "compiled · GPU" : "interpreter · CPU";
    badge.className = `wb-kl-badge ${mode}`;
    badge.title = model.get("mode_text");
    if (area.value !== model.get("code")) area.value = model.get("code");
    area.readOnly = !model.get("editable");
    const status = model.get("status");
    out.className = `wb-kl-out ${status}`;
    out.textContent = status === "running" ? "running…" : model.get("output");
    const busy = status === "running";
    for (const b of buttons) b.disabled = busy || (b.dataset.action !== "run" && !model.get("can_check"));
    paint();
  }

  let timer: ReturnType<typeof setTimeout> | undefined;
  area.addEventListener("input", () => {
    paint();
    clearTimeout(timer);
    timer = setTimeout(() => { model.set("code", area.value); model.save_changes(); }, 250);
  });
  area.addEventListener("keydown", (e) => {
    if (e.key === "Tab" && !area.readOnly) { // indent instead of leaving the editor
      e.preventDefault();
      area.setRangeText("    ", area.selectionStart, area.selectionEnd, "end");
      area.dispatchEvent(new Event("input"));
    } else if (e.key === "Enter" && e.shiftKey) {
      e.preventDefault();
      act("run");
    }
  });

  function act(action: Action): void {
    clearTimeout(timer);
    model.set("code", area.value);
    model.set("status", "running");
    model.save_changes();
    model.send({ action });
    sync();
  }
  for (const b of buttons) b.addEventListener("click", () => act(b.dataset.action as Action));
  for (const name of ["code", "output", "status", "mode_name", "mode_text", "editable", "title", "error_line", "can_check"]) {
    model.on(`change:${name}`, sync);
  }
  model.on("change:access_map", drawMap);
  sync();
  drawMap();
  return () => clearTimeout(timer);
}

export default { render };

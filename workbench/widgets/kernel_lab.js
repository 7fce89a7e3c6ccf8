// KernelLab: the browser half. A Python-highlighting editor (a transparent textarea over a highlighted
// <pre>), Run / Check / Benchmark buttons that ask the kernel to act, the mode badge and the output panel.
// No network, no external editor library: works in JupyterLab, Notebook 7, Voilà and behind a base URL.

const KEYWORDS = new Set(("False None True and as assert break class continue def del elif else except " +
  "finally for from global if import in is lambda nonlocal not or pass raise return try while with yield").split(" "));

function escapeHtml(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// One regex pass over the source: comments, strings, decorators, numbers, identifiers.
const TOKEN = /(#[^\n]*)|("""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?)|(@[\w.]+)|(\b\d[\d_]*(?:\.\d*)?(?:e[+-]?\d+)?\b|\b0x[0-9a-fA-F]+\b)|([A-Za-z_]\w*)/g;

export function highlight(src) {
  let out = "";
  let last = 0;
  let prev = "";
  for (const m of src.matchAll(TOKEN)) {
    out += escapeHtml(src.slice(last, m.index));
    const text = escapeHtml(m[0]);
    let cls = null;
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
    last = m.index + m[0].length;
  }
  return out + escapeHtml(src.slice(last)) + "\n";
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "wb-kl";
  root.innerHTML = `
    <div class="wb-kl-head">
      <span class="wb-kl-title"></span>
      <span class="wb-kl-badge"></span>
      <button data-action="run" title="Execute the code (Shift+Enter)">▶ Run</button>
      <button data-action="check" title="Check the launcher against the reference on many shapes">✔ Check</button>
      <button data-action="bench" title="Time the launcher and the reference">Benchmark</button>
    </div>
    <div class="wb-kl-editor"><div class="wb-kl-gutter"></div><pre aria-hidden="true"></pre>
      <textarea spellcheck="false" autocapitalize="off" autocomplete="off" aria-label="kernel code"></textarea></div>
    <pre class="wb-kl-out" role="status"></pre>
    <div class="wb-kl-map" hidden></div>`;
  el.appendChild(root);
  const title = root.querySelector(".wb-kl-title");
  const badge = root.querySelector(".wb-kl-badge");
  const pre = root.querySelector(".wb-kl-editor pre");
  const gutter = root.querySelector(".wb-kl-gutter");
  const area = root.querySelector("textarea");
  const out = root.querySelector(".wb-kl-out");
  const buttons = [...root.querySelectorAll("button")];
  const mapEl = root.querySelector(".wb-kl-map");

  // Access map: one canvas per tensor, programs down, elements across; reads blue, writes red.
  function drawMap() {
    const m = model.get("access_map") || {};
    const tensors = m.tensors || [];
    mapEl.hidden = tensors.length === 0;
    mapEl.innerHTML = "";
    if (!tensors.length) return;
    const head = document.createElement("div");
    head.className = "wb-kl-map-head";
    head.textContent = `access map · ${m.kernel} · ${m.programs} programs (grid ${m.grid.filter((g) => g > 1).join("×") || 1})` +
      " · blue read, red written, purple both";
    mapEl.appendChild(head);
    const row = document.createElement("div");
    row.className = "wb-kl-map-row";
    for (const t of tensors) {
      const box = document.createElement("figure");
      const rows = t.reads.length, cols = rows ? t.reads[0].length : 0;
      const canvas = document.createElement("canvas");
      canvas.width = cols; canvas.height = rows;
      canvas.className = "wb-kl-map-canvas";
      canvas.dataset.tensor = t.name;
      const ctx = canvas.getContext("2d");
      const img = ctx.createImageData(Math.max(cols, 1), Math.max(rows, 1));
      const maxOf = (a) => Math.max(1, ...a.map((r) => Math.max(...r)));
      const rMax = maxOf(t.reads), wMax = maxOf(t.writes);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
        const r = Math.sqrt(t.reads[i][j] / rMax), w = Math.sqrt(t.writes[i][j] / wMax), k = 4 * (i * cols + j);
        img.data[k] = 255 - 190 * r; img.data[k + 1] = Math.max(0, 255 - 120 * r - 170 * w);
        img.data[k + 2] = 255 - 185 * w; img.data[k + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
      const cap = document.createElement("figcaption");
      cap.textContent = `${t.name} [${t.shape.join("×")}] · ` +
        Object.entries(t.counts).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(", ");
      box.append(canvas, cap);
      row.appendChild(box);
    }
    mapEl.appendChild(row);
    for (const r of m.races || []) {
      const d = document.createElement("div");
      d.className = "wb-kl-map-race";
      d.textContent = "✘ " + r;
      mapEl.appendChild(d);
    }
  }

  function paint() {
    const code = area.value;
    pre.innerHTML = highlight(code);
    const n = code.split("\n").length;
    const errLine = model.get("error_line");
    gutter.innerHTML = Array.from({ length: n }, (_, i) =>
      i + 1 === errLine ? `<span class="err">${i + 1}</span>` : String(i + 1)).join("\n");
    area.style.height = pre.scrollHeight + "px";
  }

  function sync() {
    title.textContent = model.get("title");
    badge.textContent = model.get("mode_name") === "compiled" ? "compiled · GPU" : "interpreter · CPU";
    badge.className = "wb-kl-badge " + model.get("mode_name");
    badge.title = model.get("mode_text");
    if (area.value !== model.get("code")) area.value = model.get("code");
    area.readOnly = !model.get("editable");
    const status = model.get("status");
    out.className = "wb-kl-out " + status;
    out.textContent = status === "running" ? "running…" : model.get("output");
    const busy = status === "running";
    buttons.forEach((b) => {
      b.disabled = busy || (b.dataset.action !== "run" && !model.get("can_check"));
    });
    paint();
  }

  let timer = null;
  area.addEventListener("input", () => {
    paint();
    clearTimeout(timer);
    timer = setTimeout(() => { model.set("code", area.value); model.save_changes(); }, 250);
  });
  area.addEventListener("keydown", (e) => {
    if (e.key === "Tab" && !area.readOnly) {  // indent instead of leaving the editor
      e.preventDefault();
      const s = area.selectionStart;
      area.setRangeText("    ", s, area.selectionEnd, "end");
      area.dispatchEvent(new Event("input"));
    } else if (e.key === "Enter" && e.shiftKey) {
      e.preventDefault();
      act("run");
    }
  });

  function act(action) {
    clearTimeout(timer);
    model.set("code", area.value);
    model.set("status", "running");
    model.save_changes();
    model.send({ action });
    sync();
  }
  buttons.forEach((b) => b.addEventListener("click", () => act(b.dataset.action)));

  for (const name of ["code", "output", "status", "mode_name", "mode_text", "editable", "title", "error_line", "can_check"]) {
    model.on(`change:${name}`, sync);
  }
  model.on("change:access_map", drawMap);
  sync();
  drawMap();
  return () => clearTimeout(timer);
}

export default { render };

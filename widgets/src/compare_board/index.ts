/**
 * anywidget entry of workbench.ui.CompareBoard (bundled to workbench/widgets/compare_board.js): one
 * line per candidate (sticky header, numbers right-aligned with the unit in the header, sortable, the
 * reference and the best marked, failed rows marked with their error a click away), a checkbox per row
 * that hides it from the plots and from "best", the latency and accuracy-vs-latency plots, the report
 * download and Show code. Long text (noise reasons, errors) never sits in a cell that squeezes the table.
 */
import { type DownloadReply, decodeReply } from "../download/index";
import type { RenderProps } from "../shared/anywidget";
import { download, el } from "../shared/dom";
import { codePanel } from "../shared/show_code";
import {
  type BoardPayload, type BoardRow, type Column, type SortState, bestRows, cellText, dropColumns, droppable, droppedText,
  nextSort, sortRows, summary, visibleColumns,
} from "./logic";
import { PALETTE, accuracyPlot, latencyPlot, leftOutNote } from "./plots";

export interface BoardState {
  payload: BoardPayload;
  hidden: string[];
  code_text: string;
}

const EMPTY: BoardPayload = { title: "", rows: [], error_axis: "", notes: [], environment: "", kinds: [] };

function badge(text: string, cls: string, title: string): HTMLSpanElement {
  const b = el("span", `wb-cb-badge ${cls}`, text);
  b.title = title;
  return b;
}

function render({ model, el: host }: RenderProps<BoardState>): () => void {
  const root = el("div", "wb-cb");
  const head = el("div", "wb-cb-head");
  const title = el("span", "wb-cb-title");
  const sum = el("span", "wb-cb-summary");
  const actions = el("span", "wb-cb-actions");
  const status = el("span", "wb-cb-status");
  const dlButton = (what: "html" | "json", text: string, tipText: string): HTMLButtonElement => {
    const b = el("button", "wb-cb-download jupyter-button", text);
    b.type = "button";
    b.title = tipText;
    b.dataset.what = what;
    b.addEventListener("click", () => {
      status.textContent = "preparing…";
      status.className = "wb-cb-status";
      model.send({ kind: "request", what });
    });
    return b;
  };
  actions.append(dlButton("html", "⬇ Download report", "the standalone HTML report (tables and plots, no JavaScript)"),
    dlButton("json", "⬇ JSON", "the results as JSON (readable back with from_json)"), status);
  head.append(title, sum, actions);
  const wrap = el("div", "wb-cb-table-wrap");
  const table = el("table", "wb-cb-table");
  wrap.append(table);
  const plots = el("div", "wb-cb-plots");
  const notes = el("div", "wb-cb-notes");
  const code = codePanel();
  root.append(head, wrap, plots, notes, code.root);
  host.replaceChildren(root);

  let sort: SortState = { key: null, dir: "asc" };
  const expanded = new Set<string>();
  const hidden = (): Set<string> => new Set(model.get("hidden") ?? []);
  const payload = (): BoardPayload => model.get("payload") ?? EMPTY;

  function colorsOf(rows: readonly BoardRow[]): Map<string, string> {
    return new Map(rows.map((r, i) => [r.id, PALETTE[i % PALETTE.length]!]));
  }

  function drawPlots(): void {
    const p = payload();
    const h = hidden();
    const colors = colorsOf(p.rows);
    const best = new Set([...bestRows(p.rows, h).values()].map((r) => r.id));
    // two plots side by side when each gets 320 px, else one above the other at the board's width
    const avail = (root.clientWidth || 960) - 24;
    const width = avail / 2 >= 320 ? Math.min(560, Math.floor(avail / 2)) : Math.max(280, Math.min(560, avail));
    const figs = [latencyPlot(p.rows, h, colors, width), accuracyPlot(p.rows, p.error_axis, h, colors, best, width)];
    plots.replaceChildren(...figs.filter((f) => f !== null));
    const left = leftOutNote(p.rows, h);
    notes.replaceChildren();
    if (left) notes.append(el("div", "wb-cb-left-out", left));
    if (p.rows.some((r) => r.status === "fail")) {
      notes.append(el("div", null, "✘ FAIL: it ran, but its outputs fail the accuracy check — its speed is not a speed-up and it is never best."));
    }
    for (const n of p.notes) notes.append(el("div", null, n));
    if (p.environment) notes.append(el("div", "wb-cb-env", `Measured on: ${p.environment}`));
    sum.textContent = summary(p.rows, h);
  }

  function statusCell(r: BoardRow, isBest: boolean): HTMLTableCellElement {
    const td = el("td", "wb-cb-state");
    if (r.status === "error") td.append(badge("ERROR", "wb-cb-bad", r.error || "did not run"));
    else if (r.status === "fail") td.append(badge("FAIL", "wb-cb-bad", r.error || "fails the accuracy check"));
    else if (r.passed === true) td.append(badge("PASS", "wb-cb-good", "passes the accuracy check"));
    if (r.reference) td.append(badge("REF", "wb-cb-ref", "the reference: speed-ups and errors are measured against it"));
    if (isBest) td.append(badge("★ best", "wb-cb-best", "the fastest shown candidate that ran and passed"));
    return td;
  }

  // columns left out so the table fits the board's width (0: all); recomputed when the width changes
  let dropped = 0;

  /** Draws the table, leaving out the least needed columns until it fits (their figures go to the detail). */
  function drawTable(): void {
    const all = visibleColumns(payload().rows);
    const most = droppable(all);
    const fits = () => !wrap.clientWidth || wrap.scrollWidth <= wrap.clientWidth + 1;
    // the label takes at most 30% of the board (140–260 px; the whole label is its tooltip)
    const labelMax = Math.round(Math.min(260, Math.max(140, 0.3 * (wrap.clientWidth || 960))));
    root.style.setProperty("--wb-cb-label-max", `${labelMax}px`);
    for (dropped = 0; ; dropped++) {
      drawTableWith(dropColumns(all, dropped), all);
      if (fits()) break;
      if (dropped >= most) { // nothing left to drop: the label gives way
        root.style.setProperty("--wb-cb-label-max", "110px");
        break;
      }
    }
  }

  function drawTableWith(cols: Column[], all: Column[]): void {
    const p = payload();
    const h = hidden();
    const best = new Set([...bestRows(p.rows, h).values()].map((r) => r.id));
    const nCols = 3 + cols.length;
    const thead = el("thead");
    const hr = el("tr");
    const th0 = el("th", "wb-cb-toggle-col");
    th0.title = "shown in the plots and in 'best'";
    th0.textContent = "show";
    hr.append(th0, el("th", "wb-cb-state", "status"));
    const sortable = (th: HTMLTableCellElement, key: keyof BoardRow) => {
      th.classList.add("wb-cb-sortable");
      th.dataset.key = String(key);
      if (sort.key === key) th.dataset.sort = sort.dir;
      th.addEventListener("click", () => { sort = nextSort(sort, key); drawTableWith(cols, all); });
    };
    const thLabel = el("th", "wb-cb-label", "candidate");
    sortable(thLabel, "label");
    hr.append(thLabel);
    for (const c of cols) {
      const th = el("th", c.kind === "text" ? "wb-cb-text" : "wb-cb-num", c.header);
      th.title = c.title + " (click to sort)";
      sortable(th, c.key);
      hr.append(th);
    }
    thead.append(hr);
    const tbody = el("tbody");
    for (const r of sortRows(p.rows, sort)) {
      const tr = el("tr", "wb-cb-row");
      tr.dataset.id = r.id;
      tr.dataset.status = r.status;
      if (r.reference) tr.classList.add("wb-cb-reference");
      if (h.has(r.id)) tr.classList.add("wb-cb-off");
      if (r.status !== "ok") tr.classList.add("wb-cb-failed");
      const tdBox = el("td", "wb-cb-toggle-col");
      const box = el("input");
      box.type = "checkbox";
      box.checked = !h.has(r.id);
      box.title = "show this candidate in the plots and in 'best'";
      box.setAttribute("aria-label", `show ${r.label}`);
      box.addEventListener("click", (ev) => ev.stopPropagation());
      box.addEventListener("change", () => {
        const next = hidden();
        if (box.checked) next.delete(r.id); else next.add(r.id);
        model.set("hidden", [...next]);
        model.save_changes();
        tr.classList.toggle("wb-cb-off", !box.checked);
        drawPlots();
        refreshBest();
      });
      tdBox.append(box);
      const extra = droppedText(r, cols, all);
      const more = r.notes.length > 0 || r.error !== "" || extra !== "";
      const tdLabel = el("td", "wb-cb-label");
      tdLabel.title = r.label + (more ? " — click the row for details" : "");
      if (more) tdLabel.append(el("span", "wb-cb-more", expanded.has(r.id) ? "▾ " : "▸ "));
      tdLabel.append(el("span", "wb-cb-name", r.label));
      if (r.noisy) tdLabel.append(badge("~", "wb-cb-noisy", "noisy: " + (r.notes[0] ?? "the machine was busy")));
      tr.append(tdBox, statusCell(r, best.has(r.id)), tdLabel);
      if (r.status === "error") {
        // the error's text takes the width the figures would have, never more: it is laid out
        // out of the flow (see the stylesheet), so a long message cannot widen the table
        const td = el("td", "wb-cb-error");
        td.append(el("span", null, `did not run: ${r.error}`), "\u00a0");
        td.colSpan = cols.length;
        td.title = r.error;
        tr.append(td);
      } else {
        for (const c of cols) tr.append(numCell(r, c));
      }
      tbody.append(tr);
      if (more) {
        const dr = el("tr", "wb-cb-detail");
        dr.dataset.id = r.id;
        dr.hidden = !expanded.has(r.id);
        const td = el("td");
        td.colSpan = nCols;
        if (r.error) td.append(el("div", "wb-cb-detail-error", r.error));
        if (extra) td.append(el("div", "wb-cb-detail-figures", extra));
        if (r.notes.length) {
          const ul = el("ul");
          for (const n of r.notes) ul.append(el("li", null, n));
          td.append(ul);
        }
        dr.append(td);
        tbody.append(dr);
        tr.classList.add("wb-cb-expandable");
        tr.addEventListener("click", () => {
          if (expanded.has(r.id)) expanded.delete(r.id); else expanded.add(r.id);
          dr.hidden = !expanded.has(r.id);
          const m = tr.querySelector(".wb-cb-more");
          if (m) m.textContent = expanded.has(r.id) ? "▾ " : "▸ ";
        });
      }
    }
    table.replaceChildren(thead, tbody);
  }

  function numCell(r: BoardRow, c: Column): HTMLTableCellElement {
    const td = el("td", c.kind === "text" ? "wb-cb-text" : "wb-cb-num", cellText(r, c));
    if (c.key === "speedup" && r.status === "fail") {
      td.textContent = "—";
      td.title = "fails the accuracy check: not a speed-up";
    }
    return td;
  }

  function refreshBest(): void {
    const p = payload();
    const best = new Set([...bestRows(p.rows, hidden()).values()].map((r) => r.id));
    for (const tr of table.querySelectorAll<HTMLTableRowElement>("tr.wb-cb-row")) {
      const r = p.rows.find((x) => x.id === tr.dataset.id);
      if (r) tr.children[1]?.replaceWith(statusCell(r, best.has(r.id)));
    }
  }

  function drawAll(): void {
    const p = payload();
    title.textContent = p.title;
    drawTable();
    drawPlots();
  }

  const onMessage = (msg: DownloadReply, buffers: (ArrayBuffer | DataView)[]) => {
    const out = decodeReply(msg, buffers ?? []);
    if ("error" in out) {
      status.textContent = out.error;
      status.className = "wb-cb-status wb-cb-status-error";
      return;
    }
    download(out.name, out.blob);
    status.textContent = `${out.name} (${(out.blob.size / 1e6).toFixed(2)} MB)`;
    status.className = "wb-cb-status";
  };
  const onPayload = () => { expanded.clear(); drawAll(); };
  const onHidden = () => { drawTable(); drawPlots(); };
  const onCode = () => code.update(model.get("code_text") ?? "");
  model.on("msg:custom", onMessage as never);
  model.on("change:payload", onPayload);
  model.on("change:hidden", onHidden);
  model.on("change:code_text", onCode);
  drawAll();
  onCode();
  // the plots take half the board's width: redraw when the board first gets (or changes) its width
  let lastWidth = root.clientWidth;
  const ro = typeof ResizeObserver !== "undefined" ? new ResizeObserver(() => {
    if (Math.abs(root.clientWidth - lastWidth) < 8) return;
    lastWidth = root.clientWidth;
    drawTable();
    drawPlots();
  }) : null;
  ro?.observe(root);
  return () => {
    ro?.disconnect();
    model.off?.("msg:custom", onMessage as never);
    model.off?.("change:payload", onPayload);
    model.off?.("change:hidden", onHidden);
    model.off?.("change:code_text", onCode);
  };
}

export default { render };

/**
 * anywidget entry of workbench.ui.ModelPicker (bundled to workbench/widgets/model_picker.js): one row with
 * the source (zoo, upload, path), a status line and "Show code".
 *
 * An upload is checked here first (size against the kernel's limit, count, pairs such as .xml + .bin) so
 * nothing is sent in vain, then read slice by slice (never the whole file in memory) and sent in chunks
 * over the comm, at most `in_flight` chunks ahead of the kernel's acknowledgements. The kernel checks
 * everything again and decides what loads; this side only shows what it says.
 */
import type { PickerMessage, PickerModelInfo, PickerReply, PickerUploadStart } from "../generated/model_picker";
import type { RenderProps } from "../shared/anywidget";
import { el } from "../shared/dom";
import { humanBytes } from "../shared/format";
import { codePanel } from "../shared/show_code";
import {
  type Chunk, type UploadEvent, type UploadState, IDLE, canSend, checkFiles, chunksOf, progressText, reduce,
  splitError, uploadId,
} from "./logic";

export interface ModelPickerState {
  source: string;
  value: string;
  zoo: string[];
  zoo_missing: Record<string, string>;
  allow_path: boolean;
  allow_trust: boolean;
  trust: boolean;
  max_upload_bytes: number;
  chunk_bytes: number;
  in_flight: number;
  max_files: number;
  formats_hint: string;
  status: string;
  message: string;
  error: string;
  info: PickerModelInfo;
  code_text: string;
}

type Source = "zoo" | "upload" | "path";

/** An upload stops when the kernel has not acknowledged anything for this long (the kernel drops it too). */
const STALL_MS = 120_000;

function render({ model, el: host }: RenderProps<ModelPickerState>): () => void {
  const send = (msg: PickerMessage, buffers?: ArrayBuffer[]) => model.send(msg, undefined, buffers);
  const root = el("div", "wb-mp");
  const row = el("div", "wb-mp-row");
  const tabs = el("div", "wb-mp-tabs");
  tabs.setAttribute("role", "tablist");
  const tab = (source: Source, text: string, tip: string): HTMLButtonElement => {
    const b = el("button", "wb-mp-tab", text);
    b.type = "button";
    b.dataset.source = source;
    b.title = tip;
    b.setAttribute("role", "tab");
    b.addEventListener("click", () => setSource(source));
    return b;
  };
  const tabButtons = [
    tab("zoo", "Zoo", "A built-in model"),
    tab("upload", "Upload", "Your own model file(s) from this computer"),
    tab("path", "Path", "A file or folder on the kernel's machine"),
  ];
  tabs.append(...tabButtons);

  // zoo: a dropdown that loads on change
  const zooPane = el("div", "wb-mp-pane");
  zooPane.dataset.pane = "zoo";
  const select = el("select", "wb-mp-select");
  select.setAttribute("aria-label", "zoo model");
  select.addEventListener("change", () => send({ kind: "pick_zoo", name: select.value }));
  zooPane.append(select);

  // upload: a drop area with a file input
  const upPane = el("div", "wb-mp-pane");
  upPane.dataset.pane = "upload";
  const drop = el("label", "wb-mp-drop");
  const input = el("input", "wb-mp-file");
  input.type = "file";
  input.multiple = true;
  const dropText = el("span", "wb-mp-drop-text");
  drop.append(input, dropText);
  const cancel = el("button", "wb-mp-cancel", "Cancel");
  cancel.type = "button";
  cancel.hidden = true;
  upPane.append(drop, cancel);

  // path: a text field and Load
  const pathPane = el("div", "wb-mp-pane");
  pathPane.dataset.pane = "path";
  const pathInput = el("input", "wb-mp-path");
  pathInput.type = "text";
  pathInput.placeholder = "path to a model file or folder (.onnx, .xml, .pt2, a Hugging Face folder, …)";
  pathInput.setAttribute("aria-label", "model path");
  const pathLoad = el("button", "wb-mp-load", "Load");
  pathLoad.type = "button";
  const loadPath = () => {
    if (pathInput.value.trim()) send({ kind: "pick_path", path: pathInput.value.trim() });
  };
  pathLoad.addEventListener("click", loadPath);
  pathInput.addEventListener("keydown", (e) => { if (e.key === "Enter") loadPath(); });
  pathPane.append(pathInput, pathLoad);

  const trustLabel = el("label", "wb-mp-trust");
  const trustBox = el("input");
  trustBox.type = "checkbox";
  trustLabel.title = "Allow loading a pickle (torch.save, .pt2) or a folder's own code: only for files you trust";
  trustLabel.append(trustBox, document.createTextNode(" trust this file"));
  trustBox.addEventListener("change", () => { model.set("trust", trustBox.checked); model.save_changes(); });

  row.append(tabs, zooPane, upPane, pathPane, trustLabel);
  const status = el("div", "wb-mp-status");
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  const hint = el("div", "wb-mp-hint");
  const code = codePanel();
  root.append(row, status, hint, code.root);
  host.replaceChildren(root);

  // -- upload ----------------------------------------------------------------------------------------
  let up: UploadState = IDLE;
  let files: File[] = [];
  let plan: Chunk[] = [];
  let pumping = false;
  let stall: ReturnType<typeof setTimeout> | undefined;
  const dispatch = (event: UploadEvent) => { up = reduce(up, event); showStatus(); };
  /** Stops waiting when the kernel has not answered for STALL_MS (it restarted, or its page was closed). */
  const watch = () => {
    clearTimeout(stall);
    if (up.phase !== "starting" && up.phase !== "sending") return;
    const id = up.id;
    stall = setTimeout(() => {
      if (up.id !== id || (up.phase !== "starting" && up.phase !== "sending")) return;
      dispatch({ type: "abort", id, error: `the kernel did not answer for ${STALL_MS / 60_000} minutes: the upload stopped `
        + "— fix: try again (after a kernel restart, run the cell again)" });
      send({ kind: "upload_cancel", id });
    }, STALL_MS);
  };

  async function pump(): Promise<void> {
    if (pumping) return; // one sender: chunks leave in order
    pumping = true;
    try {
      const chunkBytes = model.get("chunk_bytes");
      while (canSend(up, plan.length, chunkBytes, model.get("in_flight"))) {
        const id = up.id;
        const c = plan[up.next]!;
        dispatch({ type: "sent", bytes: c.length });
        const buffer = await files[c.file]!.slice(c.offset, c.offset + c.length).arrayBuffer();
        if (up.id !== id || (up.phase !== "sending" && up.phase !== "loading")) return; // cancelled or refused meanwhile
        send({ kind: "upload_chunk", id, file: c.file, offset: c.offset }, [buffer]);
      }
    } catch (err) {
      const id = up.id;
      dispatch({ type: "abort", id, error: `the file could not be read: ${String(err)}` });
      send({ kind: "upload_cancel", id });
    } finally {
      pumping = false;
    }
  }

  function startUpload(chosen: File[]): void {
    if (up.phase === "starting" || up.phase === "sending") {
      dispatch({ type: "refuse", error: "an upload is running: wait for it, or cancel it" });
      return;
    }
    setSource("upload");
    const decl = chosen.map((f) => ({ name: f.name, size: f.size }));
    const problem = checkFiles(decl, { maxBytes: model.get("max_upload_bytes"), maxFiles: model.get("max_files") });
    if (problem) {
      dispatch({ type: "refuse", error: problem }); // nothing was sent
      return;
    }
    files = chosen;
    plan = chunksOf(decl.map((f) => f.size), model.get("chunk_bytes"));
    dispatch({ type: "start", id: uploadId(), files: decl });
    send({ kind: "upload_start", id: up.id, files: decl as PickerUploadStart["files"] }); // checkFiles: not empty
    watch();
  }

  const onMessage = (msg: PickerReply) => {
    if (!msg || typeof msg !== "object") return;
    if (msg.kind === "ack") {
      dispatch({ type: "ack", id: msg.id, received: msg.received ?? 0, done: msg.done });
      watch();
      void pump();
    } else if (msg.kind === "abort") {
      dispatch({ type: "abort", id: msg.id, error: msg.error ?? "the kernel stopped the upload" });
    }
  };
  model.on("msg:custom", onMessage as never);

  input.addEventListener("change", () => {
    const chosen = Array.from(input.files ?? []);
    input.value = ""; // choosing the same file again fires "change" again
    if (chosen.length) startUpload(chosen);
  });
  cancel.addEventListener("click", () => {
    const id = up.id;
    dispatch({ type: "cancel" });
    send({ kind: "upload_cancel", id });
  });
  const onDragOver = (e: DragEvent) => {
    if (!e.dataTransfer?.types.includes("Files")) return;
    e.preventDefault();
    e.stopPropagation(); // the notebook's own drop handling (open the file) stays out of it
    root.classList.add("wb-mp-dragging");
  };
  const onDragLeave = () => root.classList.remove("wb-mp-dragging");
  const onDrop = (e: DragEvent) => {
    root.classList.remove("wb-mp-dragging");
    if (!e.dataTransfer?.files.length) return;
    e.preventDefault();
    e.stopPropagation();
    startUpload(Array.from(e.dataTransfer.files));
  };
  root.addEventListener("dragover", onDragOver);
  root.addEventListener("dragleave", onDragLeave);
  root.addEventListener("drop", onDrop);

  // -- what the kernel says --------------------------------------------------------------------------
  function setSource(source: Source): void {
    if (source === "path" && !model.get("allow_path")) return;
    if (model.get("source") !== source) {
      model.set("source", source);
      model.save_changes();
    }
    syncSource();
  }

  function syncSource(): void {
    let source = model.get("source") as Source;
    if (source === "path" && !model.get("allow_path")) source = "zoo";
    root.dataset.source = source;
    for (const b of tabButtons) {
      const on = b.dataset.source === source;
      b.classList.toggle("wb-mp-on", on);
      b.setAttribute("aria-selected", String(on));
    }
    tabButtons[2]!.hidden = !model.get("allow_path");
    pathPane.hidden = source !== "path" || !model.get("allow_path");
    zooPane.hidden = source !== "zoo";
    upPane.hidden = source !== "upload";
    trustLabel.hidden = !model.get("allow_trust") || source === "zoo";
    trustBox.checked = model.get("trust");
    hint.hidden = source !== "upload";
    const limit = humanBytes(model.get("max_upload_bytes"));
    hint.textContent = `${model.get("formats_hint")} · several files at once for a model with its weights beside it, `
      + `a .zip for a folder · up to ${limit}`;
    dropText.textContent = `Drop model file(s) here, or click to choose (up to ${limit})`;
  }

  function syncZoo(): void {
    const names = model.get("zoo") ?? [];
    const missing = model.get("zoo_missing") ?? {};
    const current = model.get("value");
    const options = names.map((n) => {
      const o = el("option", null, missing[n] ? `${n} (not installed)` : n);
      o.value = n;
      o.disabled = Boolean(missing[n]);
      if (missing[n]) o.title = missing[n]!;
      return o;
    });
    if (!names.includes(current)) {
      const o = el("option", null, current ? "— another model —" : "— choose a model —");
      o.value = "";
      o.disabled = true;
      options.unshift(o);
    }
    select.replaceChildren(...options);
    select.value = names.includes(current) ? current : "";
  }

  function showStatus(): void {
    const uploading = up.phase === "starting" || up.phase === "sending" || up.phase === "loading";
    cancel.hidden = !(up.phase === "starting" || up.phase === "sending");
    input.disabled = uploading;
    select.disabled = uploading || model.get("status") === "loading";
    status.replaceChildren();
    let state = model.get("status");
    if (up.phase === "refused" || up.phase === "cancelled" || (uploading && state !== "error" && up.phase !== "loading")) {
      state = up.phase === "refused" ? "error" : up.phase === "cancelled" ? "idle" : "uploading";
      if (up.phase === "refused") appendError(up.error);
      else status.append(el("span", "wb-mp-msg", progressText(up)));
      if (up.phase === "sending" || up.phase === "starting") {
        const bar = el("progress", "wb-mp-progress");
        bar.max = Math.max(1, up.total);
        bar.value = up.acked;
        status.prepend(bar);
      }
    } else if (state === "error") {
      appendError(model.get("error"));
      if (model.get("info")?.format) status.append(el("span", "wb-mp-kept", `(${model.get("value")} stays loaded)`));
    } else if (state === "loading") {
      status.append(el("span", "wb-mp-msg", `⏳ ${model.get("message") || progressText(up)}`));
    } else if (state === "ready") {
      const info = model.get("info") ?? {};
      const parts = [`✔ ${model.get("value")}`, info.format ?? ""];
      if (info.inputs?.length) parts.push(`in: ${info.inputs.join(", ")}`);
      if (info.size) parts.push(humanBytes(info.size));
      status.append(el("span", "wb-mp-msg wb-mp-ok", parts.filter(Boolean).join(" · ")));
      if (info.path) status.title = info.path;
      if (model.get("error")) appendError(model.get("error")); // a callback's error, after a good load
    } else if (model.get("message")) {
      status.append(el("span", "wb-mp-msg", model.get("message")));
    }
    root.dataset.status = state;
    root.dataset.upload = up.phase; // idle, starting, sending, loading (all sent), refused, cancelled
  }

  function appendError(text: string): void {
    const { problem, fix } = splitError(text);
    const box = el("span", "wb-mp-error", `✖ ${problem}`);
    status.append(box);
    if (fix) {
      const f = el("span", "wb-mp-fix");
      f.append(el("b", null, "Fix: "), document.createTextNode(fix));
      status.append(f);
    }
  }

  const onStatus = () => {
    if (up.phase === "loading" && model.get("status") !== "loading") dispatch({ type: "settled" });
    else {
      if (up.phase === "refused" || up.phase === "cancelled") up = IDLE; // the kernel's news replaces ours
      showStatus();
    }
  };
  const onZoo = () => { syncZoo(); showStatus(); };
  const onSource = () => syncSource();
  const onCode = () => code.update(model.get("code_text"));
  syncSource();
  syncZoo();
  showStatus();
  onCode();
  const events: [string, () => void][] = [
    ["change:status", onStatus], ["change:error", onStatus], ["change:message", onStatus], ["change:info", onStatus],
    ["change:value", onZoo], ["change:zoo", onZoo], ["change:zoo_missing", onZoo],
    ["change:source", onSource], ["change:allow_path", onSource], ["change:allow_trust", onSource],
    ["change:trust", onSource], ["change:max_upload_bytes", onSource], ["change:formats_hint", onSource],
    ["change:code_text", onCode],
  ];
  for (const [name, fn] of events) model.on(name, fn);
  return () => {
    clearTimeout(stall);
    model.off?.("msg:custom", onMessage as never);
    for (const [name, fn] of events) model.off?.(name, fn);
  };
}

export default { render };

/**
 * The ModelPicker's upload logic, free of the DOM (tested in Node): which files may be sent, how they are
 * cut into chunks, and the state of one upload as the kernel acknowledges it. The kernel checks all of it
 * again: this side only spares the user a useless upload and says why at once.
 */
import { humanBytes } from "../shared/format";

/** A file as the browser declares it to the kernel. */
export interface FileDecl {
  name: string;
  size: number;
}

export interface Limits {
  /** the largest upload, every file together (the kernel's ``max_upload_bytes``) */
  maxBytes: number;
  /** the most files in one upload */
  maxFiles: number;
}

/** `name` without its last suffix, and that suffix lower-cased (".onnx"; "" for none). */
export function splitName(name: string): [string, string] {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? [name.slice(0, dot), name.slice(dot).toLowerCase()] : [name, ""];
}

/** Why `files` cannot be uploaded as one model, or null: checked before a byte is sent. */
export function checkFiles(files: readonly FileDecl[], limits: Limits): string | null {
  if (files.length === 0) return "no file was chosen";
  if (files.length > limits.maxFiles) {
    return `${files.length} files at once, more than ${limits.maxFiles}: choose the model's files only, or a .zip of its folder`;
  }
  const empty = files.filter((f) => f.size <= 0);
  if (empty.length) return `${empty.map((f) => f.name).join(", ")} ${empty.length === 1 ? "is" : "are"} empty (0 bytes)`;
  const limit = humanBytes(limits.maxBytes);
  const big = files.find((f) => f.size > limits.maxBytes);
  if (big) return `${big.name} is ${humanBytes(big.size)}, more than the upload limit of ${limit}: nothing was sent`;
  const total = files.reduce((s, f) => s + f.size, 0);
  if (total > limits.maxBytes) {
    return `these files are ${humanBytes(total)} together, more than the upload limit of ${limit}: nothing was sent`;
  }
  const seen = new Set<string>();
  for (const f of files) {
    const key = f.name.toLowerCase();
    if (seen.has(key)) return `${f.name} was chosen twice`;
    seen.add(key);
  }
  if (files.length > 1 && files.some((f) => splitName(f.name)[1] === ".zip")) {
    return "a .zip is uploaded on its own: put every file of the model in it";
  }
  // the weights a graph file names by its own stem (OpenVINO IR, ncnn)
  for (const f of files) {
    const [stem, ext] = splitName(f.name);
    if ((ext === ".xml" || ext === ".param") && !seen.has(`${stem}.bin`.toLowerCase())) {
      const what = ext === ".xml" ? "an OpenVINO IR" : "an ncnn model";
      return `${f.name} is ${what} graph: choose its weights ${stem}.bin with it (both files at once)`;
    }
  }
  return null;
}

export interface Chunk {
  file: number;
  offset: number;
  length: number;
}

/** Every chunk of the files, in the order the kernel expects them: file by file, offset by offset. */
export function chunksOf(sizes: readonly number[], chunkBytes: number): Chunk[] {
  if (!(chunkBytes > 0)) throw new Error("chunkBytes must be positive");
  const out: Chunk[] = [];
  sizes.forEach((size, file) => {
    for (let offset = 0; offset < size; offset += chunkBytes) {
      out.push({ file, offset, length: Math.min(chunkBytes, size - offset) });
    }
  });
  return out;
}

export type Phase = "idle" | "starting" | "sending" | "loading" | "refused" | "cancelled";

/** One upload as the browser sees it. */
export interface UploadState {
  phase: Phase;
  id: string;
  files: FileDecl[];
  total: number;
  /** bytes handed to the comm */
  sent: number;
  /** bytes the kernel says it wrote */
  acked: number;
  /** the next chunk to send (an index into `chunksOf`) */
  next: number;
  error: string;
}

export type UploadEvent =
  | { type: "start"; id: string; files: FileDecl[] }
  | { type: "refuse"; error: string }
  | { type: "sent"; bytes: number }
  | { type: "ack"; id: string; received: number; done?: boolean }
  | { type: "abort"; id: string; error: string }
  | { type: "cancel" }
  | { type: "settled" };

export const IDLE: UploadState = { phase: "idle", id: "", files: [], total: 0, sent: 0, acked: 0, next: 0, error: "" };

/** The state after `event`; events of another upload (an old id) change nothing. */
export function reduce(state: UploadState, event: UploadEvent): UploadState {
  switch (event.type) {
    case "start":
      return { ...IDLE, phase: "starting", id: event.id, files: event.files,
        total: event.files.reduce((s, f) => s + f.size, 0) };
    case "refuse":
      return { ...IDLE, phase: "refused", error: event.error };
    case "sent":
      if (state.phase !== "sending") return state;
      return { ...state, sent: state.sent + event.bytes, next: state.next + 1 };
    case "ack":
      if (event.id !== state.id || (state.phase !== "starting" && state.phase !== "sending")) return state;
      if (event.received < state.acked || event.received > state.sent) return state; // never goes back
      return { ...state, acked: event.received, phase: event.done ? "loading" : "sending" };
    case "abort":
      if (event.id !== state.id || state.phase === "idle") return state;
      return { ...state, phase: "refused", error: event.error };
    case "cancel":
      if (state.phase !== "starting" && state.phase !== "sending") return state;
      return { ...state, phase: "cancelled" };
    case "settled": // the kernel finished loading (or failed): its status line takes over
      return state.phase === "loading" ? { ...IDLE } : state;
  }
}

/** True when the next chunk may go: sending, chunks left, and fewer than `inFlight` chunks unacknowledged. */
export function canSend(state: UploadState, planLength: number, chunkBytes: number, inFlight: number): boolean {
  return state.phase === "sending" && state.next < planLength && state.sent - state.acked < Math.max(1, inFlight) * chunkBytes;
}

/** The progress line: "uploading model.onnx: 1.0 MB of 4.0 MB (25%)". */
export function progressText(state: UploadState): string {
  const names = state.files.map((f) => f.name).join(" + ");
  switch (state.phase) {
    case "starting":
      return `uploading ${names}…`;
    case "sending": {
      const pct = state.total ? Math.floor((100 * state.acked) / state.total) : 0;
      return `uploading ${names}: ${humanBytes(state.acked)} of ${humanBytes(state.total)} (${pct}%)`;
    }
    case "loading":
      return `uploaded ${names} (${humanBytes(state.total)}); loading…`;
    case "refused":
      return state.error;
    case "cancelled":
      return "upload cancelled";
    default:
      return "";
  }
}

/** A WorkbenchError's text split into the problem and its fix ("problem — fix: fix"). */
export function splitError(text: string): { problem: string; fix: string } {
  const at = text.indexOf(" — fix: ");
  return at < 0 ? { problem: text, fix: "" } : { problem: text.slice(0, at), fix: text.slice(at + 8) };
}

/** A short random id for one upload (letters and digits, as the kernel accepts). */
export function uploadId(random: () => number = Math.random): string {
  let s = "";
  for (let i = 0; i < 16; i++) s += "abcdefghijklmnopqrstuvwxyz0123456789"[Math.floor(random() * 36)];
  return s;
}

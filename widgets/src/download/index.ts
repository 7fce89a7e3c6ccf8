/**
 * anywidget entry of workbench.ui.DownloadButton (bundled to workbench/widgets/download.js): a button
 * whose click asks the kernel for a file and saves what comes back as a browser download. The file never
 * touches a path the visitor would have to reach on the server (a published Voilà app has none).
 */
import type { RenderProps } from "../shared/anywidget";
import { download, el } from "../shared/dom";

export interface DownloadState {
  label: string;
  disabled: boolean;
  tooltip: string;
}

/** What the kernel answers: the file's name and type with its bytes as the message's buffer, or an error. */
export interface DownloadReply {
  kind: "file" | "error";
  name?: string;
  mime?: string;
  error?: string;
}

/** The file a reply carries, or the error it reports. */
export function decodeReply(reply: DownloadReply, buffers: readonly (ArrayBuffer | DataView)[]): { name: string; blob: Blob } | { error: string } {
  if (reply.kind === "error") return { error: reply.error ?? "the download failed" };
  const first = buffers[0];
  if (!reply.name || first === undefined) return { error: "the kernel sent no file" };
  // a copy into a fresh ArrayBuffer: the comm's buffer may be a view into a larger (or shared) one
  const bytes = first instanceof DataView
    ? new Uint8Array(first.buffer, first.byteOffset, first.byteLength).slice()
    : new Uint8Array(first).slice();
  // a name from the kernel is still only a suggestion to the browser: keep it a plain file name
  const name = reply.name.replace(/[\\/:*?"<>|\u0000-\u001f]/g, "_").slice(0, 180) || "download";
  return { name, blob: new Blob([bytes.buffer as ArrayBuffer], { type: reply.mime || "application/octet-stream" }) };
}

function render({ model, el: host }: RenderProps<DownloadState>): () => void {
  const button = el("button", "wb-download jupyter-button");
  button.type = "button";
  const status = el("span", "wb-download-status");
  status.style.cssText = "margin-left:8px;font:12px sans-serif;color:#57606a";
  const sync = () => {
    button.textContent = `⬇ ${model.get("label")}`;
    button.disabled = model.get("disabled");
    button.title = model.get("tooltip");
  };
  sync();
  button.addEventListener("click", () => {
    status.textContent = "preparing…";
    status.style.color = "#57606a";
    model.send({ kind: "request" });
  });
  const onMessage = (msg: DownloadReply, buffers: (ArrayBuffer | DataView)[]) => {
    const out = decodeReply(msg, buffers ?? []);
    if ("error" in out) {
      status.textContent = out.error;
      status.style.color = "#cf222e";
      return;
    }
    download(out.name, out.blob);
    status.textContent = `${out.name} (${(out.blob.size / 1e6).toFixed(2)} MB)`;
  };
  model.on("msg:custom", onMessage as never);
  model.on("change:label", sync);
  model.on("change:disabled", sync);
  model.on("change:tooltip", sync);
  host.replaceChildren(button, status);
  return () => model.off?.("msg:custom", onMessage as never);
}

export default { render };

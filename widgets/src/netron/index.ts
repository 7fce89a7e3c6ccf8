/**
 * anywidget entry of workbench.ui.NetronView (bundled to workbench/widgets/netron.js): Netron's own
 * viewer (the `netron` Python package's web assets) in an iframe inside the cell output. Netron's
 * HTML, CSS, JavaScript modules and the model's bytes all arrive over the widget's comm channel, so
 * there is no second server or port: it works wherever the kernel's websocket works (JupyterLab,
 * Notebook 7, Voilà, a server base URL, Binder's reverse proxy).
 */
import type { RenderProps } from "../shared/anywidget";
import { el } from "../shared/dom";
import HOST_SOURCE from "./host.mjs?raw";
import { type FrameWindow, ModuleLoader, type Rpc, concat, pageHtml } from "./loader";

export interface NetronState {
  identifier: string;
  files: string[];
  height: number;
  netron_version: string;
}

interface Reply { id?: string; type?: string; error?: string; text?: string; size?: number }

let counter = 0;

function makeRpc(model: RenderProps<NetronState>["model"]): Rpc {
  const waiting = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  model.on("msg:custom", ((msg: Reply | null, buffers?: DataView[]) => {
    if (!msg?.id || !waiting.has(msg.id)) return;
    const { resolve, reject } = waiting.get(msg.id)!;
    waiting.delete(msg.id);
    if (msg.error) { reject(new Error(msg.error)); return; }
    if (msg.type === "file") {
      const dv = buffers?.[0];
      resolve({ bytes: dv ? new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength) : new Uint8Array(0), size: msg.size ?? 0 });
    } else resolve(msg.text ?? "");
  }) as never);
  const call = <T>(type: string, name: string, extra: Record<string, unknown>): Promise<T> => new Promise<T>((resolve, reject) => {
    const id = `n${++counter}-${Math.random().toString(36).slice(2)}`;
    waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
    model.send({ type, name, id, ...extra });
  });
  // a model file comes in chunks (at most 1 MiB each), asked for one after the other
  const file = async (name: string): Promise<Uint8Array> => {
    const parts: Uint8Array[] = [];
    let offset = 0, size = 0;
    do {
      const chunk = await call<{ bytes: Uint8Array; size: number }>("file", name, { offset });
      size = chunk.size;
      parts.push(chunk.bytes);
      offset += chunk.bytes.byteLength;
      if (!chunk.bytes.byteLength) break;
    } while (offset < size);
    return concat(parts);
  };
  return ((type: "asset" | "file", name: string) => (type === "file" ? file(name) : call<string>(type, name, {}))) as Rpc;
}

interface HostModule { start(bridge: unknown): Promise<unknown> }

function render({ model, el: host }: RenderProps<NetronState>): () => void {
  const t0 = performance.now();
  host.classList.add("wb-netron");
  const status = el("div", "wb-netron-status", "Loading Netron…");
  const frame = el("iframe", "wb-netron-frame");
  frame.title = "Netron";
  Object.assign(frame.style, { width: "100%", height: `${model.get("height") || 600}px`, border: "1px solid #d0d4d9", borderRadius: "6px" });
  host.append(status, frame);
  model.on("change:height", () => { frame.style.height = `${model.get("height")}px`; });
  const rpc = makeRpc(model);
  const fail = (prefix: string, message: string): void => {
    host.dataset.readyMs = (performance.now() - t0).toFixed(1);
    host.dataset.state = "error";
    status.textContent = `${prefix}: ${message}`;
    status.classList.add("wb-netron-error");
  };
  void (async () => {
    try {
      const [html, css] = await Promise.all([rpc("asset", "index.html"), rpc("asset", "grapher.css")]);
      await new Promise((resolve) => { frame.addEventListener("load", resolve, { once: true }); frame.srcdoc = pageHtml(html, css); });
      const win = frame.contentWindow as FrameWindow | null;
      const doc = frame.contentDocument;
      if (!win || !doc) throw new Error("the viewer's frame did not load");
      const boot = doc.createElement("script");
      boot.textContent = "window.__wbImport = (u) => import(u); window.exports = window.exports || {};";
      doc.head.append(boot);
      const loader = new ModuleLoader(win, rpc);
      win.__wbRequire = (id) => loader.load(id);
      const hostModule = (await win.__wbImport(await loader.fromSource(HOST_SOURCE))) as HostModule;
      const files = model.get("files") ?? [];
      const fileCache = new Map<string, Promise<Uint8Array>>();
      const bridge = {
        identifier: model.get("identifier"),
        files,
        asset: (name: string) => rpc("asset", name),
        file: (name: string): Promise<Uint8Array> => {
          // bytes must belong to the iframe's realm: Netron checks `instanceof Uint8Array`
          let bytes = fileCache.get(name);
          if (!bytes) { bytes = rpc("file", name).then((u8) => new win.Uint8Array(u8)); fileCache.set(name, bytes); }
          return bytes;
        },
        failed: (message: string) => fail("Netron could not open this model", message),
        done: (result: string) => {
          host.dataset.readyMs = (performance.now() - t0).toFixed(1);
          if (result === "" || result === "context-open-attachment") {
            status.textContent = `Netron ${model.get("netron_version") || ""} · ${model.get("identifier")}`;
            host.dataset.state = "ready";
          } else {
            host.dataset.state = "error";
            status.textContent = "Netron could not open this model (see the message in the viewer).";
          }
        },
      };
      (host as HTMLElement & { __wbNetron?: unknown }).__wbNetron = { frame, loader };
      await hostModule.start(bridge);
    } catch (err) {
      fail("Netron could not show this model", err instanceof Error ? err.message : String(err));
    }
  })();
  return () => { try { frame.srcdoc = ""; } catch { /* gone */ } };
}

export default { render };

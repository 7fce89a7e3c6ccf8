// The browser half of workbench.ui.NetronView: Netron's own viewer (from the `netron` Python package's
// web assets) running in an iframe inside the cell output. Everything -- Netron's HTML, CSS, JavaScript
// modules, metadata and the model's bytes -- arrives over the widget's comm channel, so there is no
// second server or port: it works wherever the kernel's websocket works (JupyterLab, Notebook 7,
// Voila, a server base URL, Binder's reverse proxy).
//
// Netron's modules import each other with relative specifiers ('./base.js'). Each module is turned into
// a blob: URL after its relative imports are rewritten to the blob URLs of its dependencies; dynamic
// imports go through window.__wbRequire. A small host class replaces Netron's browser host: no
// telemetry, no cookies, no update check, no network; files come from the kernel.

const HOST_SOURCE = `
import * as base from './base.js';
import * as browser from './browser.js';
import * as view from './view.js';

class NotebookContext {
  constructor(host, identifier, stream) { this._host = host; this._identifier = identifier; this._stream = stream; }
  get identifier() { return this._identifier; }
  get name() { return this._identifier; }
  get stream() { return this._stream; }
  async asset(file) { return this._host.asset(file); }
  async fetch(file, encoding) { return this._host.fetch(file, encoding); }
  async require(id) { return this._host.require(id); }
  error() {}
}

class NotebookHost extends browser.Host {
  constructor(bridge) {
    super();
    this._bridge = bridge;
    this._environment.type = 'Notebook';
    this._environment.serial = true;   // layout on this thread: no Worker script URL needed
    this._environment.menu = false;
    this._environment.packaged = false; // no "report issue" links, no telemetry
    this._assetCache = new Map();
  }
  async view(view) { this._view = view; }
  async start() {
    const bytes = await this._bridge.file(this._bridge.identifier);
    const stream = new base.BinaryStream(bytes);
    const context = new NotebookContext(this, this._bridge.identifier, stream);
    const status = await this._openContext(context);
    this._bridge.done(status);
  }
  async require(id) { return window.__wbRequire(id.replace(/^\\.\\//, '')); }
  worker() { throw new Error('workers are not used in the notebook'); }
  async asset(file) {
    if (!this._assetCache.has(file)) this._assetCache.set(file, this._bridge.asset(file));
    return this._assetCache.get(file);
  }
  async fetch(file, encoding) {
    const name = file.split('/').pop();
    if (!this._bridge.files.includes(name)) throw new Error("File not found '" + file + "'.");
    const bytes = await this._bridge.file(name);
    if (encoding) return new TextDecoder(encoding).decode(bytes);
    return new base.BinaryStream(bytes);
  }
  async message(message, alert, action) {
    if (alert) this._bridge.failed(message);
    return super.message(message, alert, action);
  }
  exception() {}
  event() {}
  openURL(url) { window.open(url, '_blank', 'noopener'); }
  _setCookie() {}
  _getCookie() { return ''; }
}

export async function start(bridge) {
  const host = new NotebookHost(bridge);
  window.__view__ = new view.View(host);
  await window.__view__.start();
  return host;
}
`;

let counter = 0;

function makeRpc(model) {
  const waiting = new Map();
  model.on("msg:custom", (msg, buffers) => {
    if (!msg || !waiting.has(msg.id)) return;
    const { resolve, reject } = waiting.get(msg.id);
    waiting.delete(msg.id);
    if (msg.error) { reject(new Error(msg.error)); return; }
    if (msg.type === "file") {
      const dv = buffers && buffers[0];
      const u8 = dv ? new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength) : new Uint8Array(0);
      resolve({ bytes: u8, size: msg.size });
    } else resolve(msg.text);
  });
  const call = (type, name, extra) => new Promise((resolve, reject) => {
    const id = `n${++counter}-${Math.random().toString(36).slice(2)}`;
    waiting.set(id, { resolve, reject });
    model.send({ type, name, id, ...extra });
  });
  // A model file comes in chunks (at most 1 MiB each), asked for one after the other.
  const file = async (name) => {
    const parts = [];
    let offset = 0, size = 0;
    do {
      const chunk = await call("file", name, { offset });
      size = chunk.size;
      parts.push(chunk.bytes);
      offset += chunk.bytes.byteLength;
      if (!chunk.bytes.byteLength) break;
    } while (offset < size);
    const all = new Uint8Array(offset); // a copy the iframe's realm can own
    let at = 0;
    for (const p of parts) { all.set(p, at); at += p.byteLength; }
    return all;
  };
  return (type, name) => (type === "file" ? file(name) : call(type, name, {}));
}

class ModuleLoader {
  constructor(win, rpc) { this.win = win; this.rpc = rpc; this.urls = new Map(); this.loading = new Set(); }
  url(id) {
    if (!this.urls.has(id)) {
      if (this.loading.has(id)) throw new Error(`circular import of ${id}.js`);
      this.loading.add(id);
      this.urls.set(id, this.rpc("asset", `${id}.js`).then((src) => this.fromSource(src)));
    }
    return this.urls.get(id);
  }
  async fromSource(src) {
    const stat = /(\bfrom\s*)(['"])\.\/([\w-]+)\.js\2/g;
    const deps = [...new Set([...src.matchAll(stat)].map((m) => m[3]))];
    const urls = {};
    await Promise.all(deps.map(async (d) => { urls[d] = await this.url(d); }));
    src = src.replace(stat, (m, from, q, d) => `${from}'${urls[d]}'`);
    src = src.replace(/\bimport\((['"])\.\/([\w-]+)\.js\1\)/g, (m, q, d) => `window.__wbRequire('${d}')`);
    const blob = new this.win.Blob([src], { type: "text/javascript" });
    return this.win.URL.createObjectURL(blob);
  }
  async load(id) { return this.win.__wbImport(await this.url(id)); }
}

function pageHtml(html, css) {
  return html
    .replace(/<meta http-equiv="Content-Security-Policy"[^>]*>/i, "")
    .replace(/<link rel="stylesheet"[^>]*grapher\.css"[^>]*>/i, () => `<style>${css}</style>`)
    .replace(/<link [^>]*rel="(shortcut icon|icon|apple-touch-icon[^"]*|fluid-icon)"[^>]*>/gi, "")
    .replace(/<script[^>]*src="index\.js"[^>]*><\/script>/i, "");
}

async function render({ model, el }) {
  const t0 = performance.now();
  el.classList.add("wb-netron");
  const status = document.createElement("div");
  status.className = "wb-netron-status";
  status.textContent = "Loading Netron…";
  const frame = document.createElement("iframe");
  frame.className = "wb-netron-frame";
  frame.title = "Netron";
  frame.style.width = "100%";
  frame.style.height = (model.get("height") || 600) + "px";
  frame.style.border = "1px solid #d0d4d9";
  frame.style.borderRadius = "6px";
  el.append(status, frame);
  model.on("change:height", () => { frame.style.height = model.get("height") + "px"; });
  const rpc = makeRpc(model);
  const fail = (err) => {
    status.textContent = `Netron could not show this model: ${err && err.message ? err.message : err}`;
    status.classList.add("wb-netron-error");
    el.dataset.state = "error";
  };
  try {
    const [html, css] = await Promise.all([rpc("asset", "index.html"), rpc("asset", "grapher.css")]);
    await new Promise((resolve) => { frame.addEventListener("load", resolve, { once: true }); frame.srcdoc = pageHtml(html, css); });
    const win = frame.contentWindow;
    const doc = frame.contentDocument;
    const boot = doc.createElement("script");
    boot.textContent = "window.__wbImport = (u) => import(u); window.exports = window.exports || {};";
    doc.head.append(boot);
    const loader = new ModuleLoader(win, rpc);
    win.__wbRequire = (id) => loader.load(id);
    const hostUrl = await loader.fromSource(HOST_SOURCE);
    const hostModule = await win.__wbImport(hostUrl);
    const files = model.get("files") || [];
    const fileCache = new Map();
    const bridge = {
      identifier: model.get("identifier"),
      files,
      asset: (name) => rpc("asset", name),
      file: (name) => {
        // bytes must belong to the iframe's realm: Netron checks `instanceof Uint8Array`
        if (!fileCache.has(name)) fileCache.set(name, rpc("file", name).then((u8) => new win.Uint8Array(u8)));
        return fileCache.get(name);
      },
      failed: (message) => {
        el.dataset.readyMs = (performance.now() - t0).toFixed(1);
        el.dataset.state = "error";
        status.textContent = `Netron could not open this model: ${message}`;
        status.classList.add("wb-netron-error");
      },
      done: (result) => {
        el.dataset.readyMs = (performance.now() - t0).toFixed(1);
        if (result === "" || result === "context-open-attachment") {
          status.textContent = `Netron ${model.get("netron_version") || ""} · ${model.get("identifier")}`;
          el.dataset.state = "ready";
        } else {
          el.dataset.state = "error";
          status.textContent = "Netron could not open this model (see the message in the viewer).";
        }
      },
    };
    el.__wbNetron = { frame, loader };
    await hostModule.start(bridge);
  } catch (err) {
    fail(err);
  }
  return () => { try { frame.srcdoc = ""; } catch (e) { /* gone */ } };
}

export default { render };

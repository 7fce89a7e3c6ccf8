// Netron's host inside the viewer's iframe (workbench.ui.NetronView). Not bundled: the widget loads
// this file's text as a module in the iframe's realm, after rewriting its relative imports of Netron's
// own modules ('./base.js', …) to blob: URLs of those modules, which come from the kernel. It replaces
// Netron's browser host: no telemetry, no cookies, no update check, no network; files come from the kernel.
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
  async require(id) { return window.__wbRequire(id.replace(/^\.\//, '')); }
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

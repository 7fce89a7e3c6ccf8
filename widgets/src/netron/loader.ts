/** Netron's modules as blob: URLs in the iframe's realm, and its page without CSP, icons or its own boot script. */

export type Rpc = {
  (type: "asset", name: string): Promise<string>;
  (type: "file", name: string): Promise<Uint8Array>;
};

// static imports of sibling modules: `from './base.js'`; dynamic ones: `import('./onnx.js')`
const STATIC_IMPORT = /(\bfrom\s*)(['"])\.\/([\w-]+)\.js\2/g;
const DYNAMIC_IMPORT = /\bimport\((['"])\.\/([\w-]+)\.js\1\)/g;

/** The ids of the sibling modules `src` imports statically. */
export function staticDeps(src: string): string[] {
  return [...new Set([...src.matchAll(STATIC_IMPORT)].map((m) => m[3]!))];
}

/** `src` with static imports pointing at `urls[id]` and dynamic ones going through `window.__wbRequire`. */
export function rewriteImports(src: string, urls: Record<string, string>): string {
  return src
    .replace(STATIC_IMPORT, (_m, from: string, _q: string, d: string) => {
      const url = urls[d];
      if (url === undefined) throw new Error(`no URL for module ${d}.js`);
      return `${from}'${url}'`;
    })
    .replace(DYNAMIC_IMPORT, (_m, _q: string, d: string) => `window.__wbRequire('${d}')`);
}

/** Netron's index.html as the iframe's srcdoc: its CSS inlined, no CSP meta (blob: modules), no icons,
 * no index.js (the host boots Netron instead). */
export function pageHtml(html: string, css: string): string {
  return html
    .replace(/<meta http-equiv="Content-Security-Policy"[^>]*>/i, "")
    .replace(/<link rel="stylesheet"[^>]*grapher\.css"[^>]*>/i, () => `<style>${css}</style>`)
    .replace(/<link [^>]*rel="(shortcut icon|icon|apple-touch-icon[^"]*|fluid-icon)"[^>]*>/gi, "")
    .replace(/<script[^>]*src="index\.js"[^>]*><\/script>/i, "");
}

/** One byte array from the chunks of a file (a copy the iframe's realm can own). */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) { all.set(p, at); at += p.byteLength; }
  return all;
}

export interface FrameWindow extends Window {
  __wbImport: (url: string) => Promise<unknown>;
  __wbRequire: (id: string) => Promise<unknown>;
  Blob: typeof Blob;
  URL: typeof URL;
  Uint8Array: typeof Uint8Array;
}

export class ModuleLoader {
  private readonly urls = new Map<string, Promise<string>>();
  private readonly loading = new Set<string>();

  constructor(private readonly win: FrameWindow, private readonly rpc: Rpc) {}

  url(id: string): Promise<string> {
    let url = this.urls.get(id);
    if (!url) {
      if (this.loading.has(id)) throw new Error(`circular import of ${id}.js`);
      this.loading.add(id);
      url = this.rpc("asset", `${id}.js`).then((src) => this.fromSource(src));
      this.urls.set(id, url);
    }
    return url;
  }

  async fromSource(src: string): Promise<string> {
    const urls: Record<string, string> = {};
    await Promise.all(staticDeps(src).map(async (d) => { urls[d] = await this.url(d); }));
    const blob = new this.win.Blob([rewriteImports(src, urls)], { type: "text/javascript" });
    return this.win.URL.createObjectURL(blob);
  }

  async load(id: string): Promise<unknown> {
    return this.win.__wbImport(await this.url(id));
  }
}

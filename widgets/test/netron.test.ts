import { describe, expect, it } from "vitest";
import HOST_SOURCE from "../src/netron/host.mjs?raw";
import { concat, pageHtml, rewriteImports, staticDeps } from "../src/netron/loader";

describe("Netron host", () => {
  it("finds and rewrites sibling imports; dynamic ones go through __wbRequire", () => {
    const src = "import * as base from './base.js';\nimport { View } from \"./view.js\";\nconst m = await import('./onnx.js');";
    expect(staticDeps(src)).toEqual(["base", "view"]);
    const out = rewriteImports(src, { base: "blob:b", view: "blob:v" });
    expect(out).toContain("from 'blob:b'");
    expect(out).toContain("from 'blob:v'");
    expect(out).toContain("window.__wbRequire('onnx')");
    expect(() => rewriteImports(src, { base: "blob:b" })).toThrow(/no URL for module view.js/);
  });

  it("the host module imports Netron's base, browser and view modules only", () => {
    expect(staticDeps(HOST_SOURCE)).toEqual(["base", "browser", "view"]);
    expect(HOST_SOURCE).toContain("export async function start(bridge)");
    expect(HOST_SOURCE).not.toMatch(/https?:\/\//); // no network
  });

  it("strips the page's CSP, icons and boot script and inlines the CSS", () => {
    const html = '<head><meta http-equiv="Content-Security-Policy" content="x"><link rel="stylesheet" href="grapher.css">' +
      '<link rel="icon" href="favicon.ico"><script type="module" src="index.js"></script></head>';
    const out = pageHtml(html, ".g{}");
    expect(out).toBe("<head><style>.g{}</style></head>");
  });

  it("joins a file's chunks", () => {
    expect([...concat([Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3)])]).toEqual([1, 2, 3]);
  });
});

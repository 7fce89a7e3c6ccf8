// The TypeScript decoder run from the command line, for Python's cross-language round-trip test
// (tests/test_widgets.py): reads a GraphPayload (JSON) on stdin, decodes it with src/graph/data.ts
// and src/graph/fold.ts exactly as the widget does, and prints what the browser sees per node.
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = await build({
  stdin: {
    contents: `export { decodeGraph } from "./src/graph/data"; export { initialFold, buildVisible, search } from "./src/graph/fold";`,
    resolveDir: join(here, ".."), loader: "ts",
  },
  bundle: true, format: "esm", write: false, platform: "neutral", logLevel: "error",
});
const mod = await import("data:text/javascript;base64," + Buffer.from(out.outputFiles[0].text).toString("base64"));
const g = mod.decodeGraph(JSON.parse(readFileSync(0, "utf8")));
const limit = Number(process.argv[2] || 40);
const vis = mod.buildVisible(g, mod.initialFold(g, limit));
const query = process.argv[3] || "";
console.log(JSON.stringify({
  nodes: g.name.map((name, i) => ({
    name, op: g.op[i], category: g.cat[i], module: g.scope[i] >= 0 ? g.scopePath[g.scope[i]] : "",
    shape: g.shape[i], dtype: g.dtype[i], params: g.params[i], macs: g.macs[i], precision: g.precision[i],
  })),
  edges: Array.from(g.edges.src, (s, k) => [g.name[s], g.name[g.edges.dst[k]], g.edges.shape[k]]),
  boxes: vis.vis.map((v) => (v.kind === "group" ? { module: g.scopePath[v.id], label: g.scopeLabel[v.id] } : { node: g.name[v.id] })),
  search: query ? mod.search(g, query).map((m) => (m.kind === "module" ? "module:" + g.scopePath[m.id] : g.name[m.id])) : [],
}));

// Which layered layout to use: @dagrejs/dagre vs elkjs (layered) vs the widget's own (src/graph/layout.ts)
// on the same synthetic network graphs (a chain of residual blocks, like benchmarks/graph_render.py's
// models). Prints one JSON line per (engine, size); an engine that fails (dagre overflows its stack
// near 5,000 nodes) reports the error; one slower than --budget seconds is not run on larger graphs.
// Usage: node scripts/bench-layout.mjs [sizes...]   (default 500 1500 5000 20000)
import dagre from "@dagrejs/dagre";
import ELK from "elkjs/lib/elk.bundled.js";
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const bundled = await build({
  entryPoints: [join(here, "..", "src", "graph", "layout.ts")], bundle: true, format: "esm", write: false, logLevel: "error",
});
const own = await import("data:text/javascript;base64," + Buffer.from(bundled.outputFiles[0].text).toString("base64"));

function network(n) {
  const nodes = [], edges = [];
  let prev = -1;
  for (let i = 0; i < n; i++) {
    nodes.push({ id: String(i), width: 90, height: 34 });
    if (prev >= 0) edges.push([prev, i]);
    if (i % 5 === 4 && i >= 5) edges.push([i - 5, i]); // residual
    prev = i;
  }
  return { nodes, edges };
}

async function runElk(g) {
  const elk = new ELK();
  const t = performance.now();
  await elk.layout({
    id: "root",
    layoutOptions: { "elk.algorithm": "layered", "elk.direction": "DOWN", "elk.edgeRouting": "SPLINES" },
    children: g.nodes,
    edges: g.edges.map(([a, b], k) => ({ id: "e" + k, sources: [String(a)], targets: [String(b)] })),
  });
  return performance.now() - t;
}

function runDagre(g) {
  const t = performance.now();
  const G = new dagre.graphlib.Graph();
  G.setGraph({ rankdir: "TB", nodesep: 14, ranksep: 34 });
  G.setDefaultEdgeLabel(() => ({}));
  for (const v of g.nodes) G.setNode(v.id, { width: v.width, height: v.height });
  for (const [a, b] of g.edges) G.setEdge(String(a), String(b));
  dagre.layout(G);
  return performance.now() - t;
}

function runOwn(g) {
  const t = performance.now();
  own.layout({ count: g.nodes.length, edges: g.edges.map(([a, b]) => ({ a, b })), width: () => 90, height: () => 34 });
  return performance.now() - t;
}

const sizes = process.argv.slice(2).map(Number);
const slow = new Set();
for (const n of sizes.length ? sizes : [500, 1500, 5000, 20000]) {
  const g = network(n);
  for (const [name, fn] of [["own", runOwn], ["dagre", runDagre], ["elk", runElk]]) {
    if (slow.has(name)) { console.log(JSON.stringify({ bench: "layout", engine: name, nodes: n, skipped: "over 10 s on a smaller graph" })); continue; }
    try {
      const ms = await fn(g);
      if (ms > 10000) slow.add(name);
      console.log(JSON.stringify({ bench: "layout", engine: name, nodes: n, edges: g.edges.length, ms: Math.round(ms) }));
    } catch (err) {
      slow.add(name);
      console.log(JSON.stringify({ bench: "layout", engine: name, nodes: n, error: String(err).slice(0, 80) }));
    }
  }
}

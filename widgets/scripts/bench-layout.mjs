// Which layered layout to use: @dagrejs/dagre vs elkjs (layered) on the same synthetic network graphs
// (a chain of residual blocks, like the benchmark's ONNX models). Prints one JSON line per (engine, size).
// Usage: node scripts/bench-layout.mjs [sizes...]   (default 500 1500 5000)
import dagre from "@dagrejs/dagre";
import ELK from "elkjs/lib/elk.bundled.js";

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

const sizes = process.argv.slice(2).map(Number);
for (const n of sizes.length ? sizes : [500, 1500, 5000]) {
  const g = network(n);
  for (const [name, fn] of [["dagre", runDagre], ["elk", runElk]]) {
    const ms = await fn(g);
    console.log(JSON.stringify({ bench: "layout", engine: name, nodes: n, edges: g.edges.length, ms: Math.round(ms) }));
  }
}

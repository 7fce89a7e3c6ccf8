/** Synthetic payloads for the tests: a transformer-like module tree of any size. */
import type { GraphPayload } from "../src/generated/schema";
import { type GraphData, decodeGraph } from "../src/graph/data";

export function transformer(layers: number, perBlock: number): GraphData {
  const p: GraphPayload = {
    version: 2, name: `bert${layers}`, format: "torch", stats: {},
    nodes: { name: [], op: [], category: [], scope: [], shape: [], dtype: [], params: [], macs: [], precision: [] },
    edges: { src: [], dst: [], shape: [] },
    scopes: { label: [], parent: [], path: [] },
  };
  const scope = (label: string, parent: number, path: string): number => {
    p.scopes.label.push(label); p.scopes.parent.push(parent); p.scopes.path.push(path);
    return p.scopes.path.length - 1;
  };
  const node = (name: string, op: string, s: number): number => {
    const t = p.nodes;
    t.name.push(name); t.op.push(op); t.category.push(op === "MatMul" ? "matmul" : "other"); t.scope.push(s);
    t.shape.push("1×8×32"); t.dtype.push("float32"); t.params.push(0); t.macs.push(0); t.precision.push("float32");
    const i = t.name.length - 1;
    if (i > 0) { p.edges.src.push(i - 1); p.edges.dst.push(i); p.edges.shape.push("1×8×32"); }
    return i;
  };
  node("input_ids", "Input", -1);
  const emb = scope("embeddings", -1, "embeddings");
  for (let k = 0; k < 4; k++) node(`embeddings.op${k}`, "Add", emb);
  const enc = scope("encoder", -1, "encoder");
  const list = scope("layer", enc, "encoder.layer");
  for (let l = 0; l < layers; l++) {
    const lay = scope(`layer.${l}`, list, `encoder.layer.${l}`);
    for (const part of ["attention", "intermediate", "output"]) {
      const s = scope(part, lay, `encoder.layer.${l}.${part}`);
      for (let k = 0; k < perBlock; k++) node(`encoder.layer.${l}.${part}.op${k}`, k % 2 ? "MatMul" : "Add", s);
    }
  }
  node("output", "Output", -1);
  return decodeGraph(p);
}

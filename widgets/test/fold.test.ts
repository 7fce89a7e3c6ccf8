import { describe, expect, it } from "vitest";
import type { GraphPayload } from "../src/generated/schema";
import tinyJson from "../schema/examples/tiny.json";
import { decodeGraph } from "../src/graph/data";
import { buildVisible, foldScope, initialFold, isLayerList, revealNode, search, unfoldLevel } from "../src/graph/fold";
import { transformer } from "./synthetic";

const tiny = decodeGraph(structuredClone(tinyJson) as unknown as GraphPayload);

describe("folding", () => {
  it("a small graph opens fully; folding a module makes one box with merged edges", () => {
    const open = initialFold(tiny, 40);
    expect(open.size).toBe(tiny.scopes);
    expect(buildVisible(tiny, open).vis.length).toBe(7);
    foldScope(tiny, open, 0); // encoder and everything in it
    const v = buildVisible(tiny, open);
    expect(v.vis.length).toBe(4); // input, encoder box, head Gemm, output
    const enc = v.groupVis.get(0)!;
    expect(v.vis[enc]).toEqual({ kind: "group", id: 0 });
    expect(v.edges.filter((e) => e.b === enc).length).toBe(1); // two input edges merged into one
    expect(v.edges.find((e) => e.b === enc)!.shape).toBe("1×8");
  });

  it("unfold level and reveal", () => {
    const open = new Set<number>();
    expect(unfoldLevel(tiny, open)).toBe(true);
    expect([...open].sort()).toEqual([0, 7]);
    const relu = tiny.index.get("/encoder/layer.1/act/Relu")!;
    expect(revealNode(tiny, open, relu)).toBe(true);
    expect(buildVisible(tiny, open).vis.some((it) => it.kind === "node" && it.id === relu)).toBe(true);
  });

  it("a transformer opens by layer, not as one box or a strip", () => {
    const g = transformer(12, 16);
    expect(isLayerList(g, g.scopePath.indexOf("encoder.layer"))).toBe(true);
    const open = initialFold(g, 40);
    const vis = buildVisible(g, open);
    const labels = vis.vis.filter((v) => v.kind === "group").map((v) => g.scopeLabel[v.id]);
    expect(labels).toContain("layer.0");
    expect(labels).toContain("layer.11");
    expect(labels.some((l) => /^\d+$/.test(l!))).toBe(false);
    expect(vis.vis.length).toBeLessThanOrEqual(80);
    expect(vis.vis.length).toBeGreaterThanOrEqual(12);
  });
});

describe("search", () => {
  it("matches module paths as well as node names and ops", () => {
    const hits = search(tiny, "layer.1");
    expect(hits[0]).toEqual({ kind: "module", id: 4 });
    const nodes = hits.filter((m) => m.kind === "node").map((m) => tiny.name[m.id]);
    expect(nodes).toEqual(["/encoder/layer.1/fc/MatMul", "/encoder/layer.1/act/Relu"]);
    expect(search(tiny, "GEMM").map((m) => m.kind === "node" && tiny.name[m.id])).toEqual(["/head/Gemm"]);
    expect(search(tiny, "  ")).toEqual([]);
    expect(search(tiny, "nothing-here")).toEqual([]);
  });
});

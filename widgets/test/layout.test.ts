import { describe, expect, it } from "vitest";
import { buildVisible } from "../src/graph/fold";
import { layout } from "../src/graph/layout";
import { transformer } from "./synthetic";

function chainWithSkips(n: number): { count: number; edges: { a: number; b: number }[] } {
  const edges: { a: number; b: number }[] = [];
  for (let i = 1; i < n; i++) edges.push({ a: i - 1, b: i });
  for (let i = 5; i < n; i += 5) edges.push({ a: i - 5, b: i });
  return { count: n, edges };
}

describe("layout", () => {
  it("puts every edge's target below its source and no two boxes on top of each other", () => {
    const { count, edges } = chainWithSkips(60);
    const L = layout({ count, edges, width: () => 80, height: () => 30 });
    for (const { a, b } of edges) expect(L.y[b]!).toBeGreaterThan(L.y[a]!);
    for (let u = 0; u < count; u++) for (let v = u + 1; v < count; v++) {
      const overlap = Math.abs(L.x[u]! - L.x[v]!) < 80 && Math.abs(L.y[u]! - L.y[v]!) < 30;
      expect(overlap).toBe(false);
    }
  });

  it("routes long edges around the boxes in between", () => {
    const { count, edges } = chainWithSkips(11);
    const L = layout({ count, edges, width: () => 80, height: () => 30 });
    const k = edges.findIndex((e) => e.a === 0 && e.b === 5);
    const r = L.routes[k]!;
    expect(r.length).toBeGreaterThan(4); // source, dummy points, target
    for (let p = 2; p < r.length - 2; p += 2) {
      for (let v = 1; v < 5; v++) {
        const inside = Math.abs(r[p]! - L.x[v]!) < 40 && Math.abs(r[p + 1]! - L.y[v]!) < 15;
        expect(inside).toBe(false);
      }
    }
    expect(r[0]).toBeCloseTo(L.x[0]!);
    expect(r[r.length - 1]).toBeCloseTo(L.y[5]! - 15);
  });

  it("survives cycles (folded modules can make them) and empty graphs", () => {
    const L = layout({ count: 3, edges: [{ a: 0, b: 1 }, { a: 1, b: 2 }, { a: 2, b: 0 }], width: () => 50, height: () => 20 });
    expect(L.x.every(Number.isFinite)).toBe(true);
    expect(L.routes).toHaveLength(3);
    expect(layout({ count: 0, edges: [], width: () => 1, height: () => 1 }).bounds[2]).toBe(1);
  });

  it("lays out 5,000 boxes quickly", () => {
    const g = transformer(100, 16);
    const vis = buildVisible(g, new Set(Array.from({ length: g.scopes }, (_, s) => s)));
    expect(vis.vis.length).toBeGreaterThan(4800);
    const t = performance.now();
    const L = layout({ count: vis.vis.length, edges: vis.edges, width: () => 90, height: () => 34 });
    const ms = performance.now() - t;
    expect(L.x.length).toBe(vis.vis.length);
    expect(ms).toBeLessThan(5000); // typically ~100 ms; generous for a loaded CI machine
  });
});

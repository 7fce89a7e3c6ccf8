import { describe, expect, it } from "vitest";
import type { GraphPayload } from "../src/generated/schema";
import tinyJson from "../schema/examples/tiny.json";
import { PayloadError, decodeGraph } from "../src/graph/data";

const example = (): GraphPayload => structuredClone(tinyJson) as unknown as GraphPayload;

describe("graph payload", () => {
  it("decodes named columns (the example Python validates against the same schema)", () => {
    const g = decodeGraph(example());
    expect(g.n).toBe(7);
    const mm = g.index.get("/encoder/layer.1/fc/MatMul")!;
    expect(g.op[mm]).toBe("MatMul");
    expect(g.cat[mm]).toBe("matmul");
    expect(g.scopePath[g.scope[mm]!]).toBe("encoder.layer.1.fc");
    expect(g.params[mm]).toBe(64);
    expect(g.scopeDepth[g.scope[mm]!]).toBe(2);
    expect(g.scopeCount[0]).toBe(4); // encoder holds the four layer nodes
    expect(g.ancestors(mm).map((s) => g.scopeLabel[s])).toEqual(["encoder", "layer.1", "fc"]);
  });

  it("round-trips through JSON unchanged", () => {
    const p = example();
    const again = JSON.parse(JSON.stringify(p)) as GraphPayload;
    expect(again).toEqual(p);
    const a = decodeGraph(p), b = decodeGraph(again);
    expect([...b.scope]).toEqual([...a.scope]);
    expect([...b.edges.src]).toEqual(p.edges.src);
    expect(b.edges.shape).toEqual(p.edges.shape);
  });

  it("names what is wrong with a bad payload", () => {
    const short = example();
    short.nodes.op.pop();
    expect(() => decodeGraph(short)).toThrow(/nodes.op has 6 entries, nodes.name has 7/);
    const rows = { ...example(), nodes: [["x", "Relu"]] };
    expect(() => decodeGraph(rows)).toThrow(PayloadError);
    expect(() => decodeGraph({ ...example(), version: 1 })).toThrow(/version 1/);
    const edge = example();
    edge.edges.dst[0] = 99;
    expect(() => decodeGraph(edge)).toThrow(/edge 0 joins nodes 0 and 99/);
  });
});

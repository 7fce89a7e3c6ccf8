import { describe, expect, it } from "vitest";
import {
  type BoardRow, accuracyPoints, bestRows, distribution, droppable, droppedText, dropColumns, fmtNum, leftOut, makeScale,
  nextSort, paretoFront, sortRows, summary, visibleColumns,
} from "../src/compare_board/logic";

function row(id: string, over: Partial<BoardRow> = {}): BoardRow {
  return {
    id, label: id, group: "benchmark", backend: "onnxruntime", format: "onnx", precision: "fp32", batch: 1,
    status: "ok", reference: false, p50_ms: 1, p90_ms: 1.2, p99_ms: 1.5, mean_ms: 1.05, throughput: 1000,
    first_ms: 20, rss_mb: 300, size_mb: 0.2, speedup: 1, passed: null, rel_l2: null, max_abs: null, cosine: null,
    top1: null, metric_drop: null, noisy: false, notes: [], error: "", samples_ms: [], ...over,
  };
}

const ref = row("ref", { reference: true, p50_ms: 2, speedup: 1, rel_l2: 0 });
const fast = row("fast", { p50_ms: 1, speedup: 2, rel_l2: 1e-6, passed: true });
const int8 = row("int8", { p50_ms: 0.5, speedup: null, rel_l2: 0.02, passed: false, status: "fail", error: "FAILs accuracy" });
const broken = row("broken", { status: "error", error: "no GPU", p50_ms: null, p90_ms: null, p99_ms: null, throughput: null, speedup: null });
const rows = [ref, fast, int8, broken];

describe("compare board table", () => {
  it("sorts numbers both ways with empty values last, then back to the payload's order", () => {
    let sort = nextSort({ key: null, dir: "asc" }, "p50_ms");
    expect(sortRows(rows, sort).map((r) => r.id)).toEqual(["int8", "fast", "ref", "broken"]);
    sort = nextSort(sort, "p50_ms");
    expect(sortRows(rows, sort).map((r) => r.id)).toEqual(["ref", "fast", "int8", "broken"]);
    sort = nextSort(sort, "p50_ms");
    expect(sort.key).toBeNull();
    expect(sortRows(rows, sort).map((r) => r.id)).toEqual(["ref", "fast", "int8", "broken"]);
    expect(sortRows(rows, { key: "label", dir: "asc" }).map((r) => r.id)).toEqual(["broken", "fast", "int8", "ref"]);
  });

  it("shows only columns that hold something (batch only when it varies or is not 1)", () => {
    const keys = visibleColumns(rows).map((c) => c.key);
    expect(keys).toContain("p50_ms");
    expect(keys).toContain("rel_l2");
    expect(keys).not.toContain("metric_drop");
    expect(keys).not.toContain("batch");
    expect(visibleColumns([row("a", { batch: 4 })]).map((c) => c.key)).toContain("batch");
  });

  it("formats numbers short and unbroken", () => {
    expect(fmtNum(0.012358)).toBe("0.012");
    expect(fmtNum(12345.6, "count")).toBe("12,346");
    expect(fmtNum(3.14159)).toBe("3.14");
    expect(fmtNum(2e-6, "error")).toBe("2.0e-6");
    expect(fmtNum(null)).toBe("");
    expect(fmtNum(NaN)).toBe("");
  });
});

describe("narrow boards", () => {
  it("leave out the least needed columns first and keep their figures for the detail", () => {
    const all = visibleColumns([{ ...fast, batch: 4 }]);
    const fewer = dropColumns(all, 2);
    expect(all.map((c) => c.key)).toContain("size_mb");
    expect(fewer.map((c) => c.key)).not.toContain("size_mb");
    expect(fewer.map((c) => c.key)).not.toContain("rss_mb");
    expect(fewer.map((c) => c.key)).toContain("p50_ms");
    expect(droppable(all)).toBe(8); // top-1 holds nothing here
    expect(dropColumns(all, 99).map((c) => c.key)).toEqual(["p50_ms", "speedup", "rel_l2"]);
    expect(droppedText({ ...fast, batch: 4 }, fewer, all)).toBe("RSS 300 MB · size 0.20 MB");
    // a column hidden because it says nothing (batch 1 everywhere) is not in the detail either
    expect(droppedText(fast, dropColumns(visibleColumns([fast]), 99), visibleColumns([fast]))).not.toMatch(/batch/);
  });
});

describe("best, toggles and failures", () => {
  it("never calls a failed or a hidden candidate best", () => {
    expect(bestRows(rows, new Set()).get(1)?.id).toBe("fast"); // int8 is faster but FAILs
    expect(bestRows(rows, new Set(["fast"])).get(1)?.id).toBe("ref");
    expect(bestRows(rows, new Set(["fast", "ref"])).size).toBe(0);
    expect(summary(rows, new Set(["fast", "ref"]))).toMatch(/no candidate ran and passed/);
  });

  it("keeps one best per batch size", () => {
    const b4 = row("b4", { batch: 4, p50_ms: 3 });
    const best = bestRows([...rows, b4], new Set());
    expect(best.get(4)?.id).toBe("b4");
    expect(best.get(1)?.id).toBe("fast");
  });

  it("says which rows are not drawn and why, and leaves out the hidden", () => {
    expect(leftOut(rows, new Set())).toEqual(["broken: did not run"]);
    expect(leftOut(rows, new Set(["broken"]))).toEqual([]);
  });

  it("says how many pass when nothing was timed (comparisons alone)", () => {
    const acc = rows.map((r) => ({ ...r, p50_ms: null, p90_ms: null, p99_ms: null }));
    expect(summary(acc, new Set())).toBe("1 of 3 candidates pass · 4 of 4 shown");
    expect(leftOut(acc, new Set())).toEqual(["broken: did not run"]);
  });

  it("summarises shown and failed counts", () => {
    expect(summary(rows, new Set(["int8"]))).toMatch(/best: fast \(p50 1\.00 ms, 2\.00×\) · 3 of 4 shown, 1 failed/);
  });
});

describe("plots", () => {
  it("puts FAILing points off the Pareto front and hidden ones off the plot", () => {
    const pts = accuracyPoints(rows, "rel_l2", new Set());
    expect(pts.map((p) => p.id)).toEqual(["ref", "fast", "int8"]); // broken did not run
    const front = paretoFront(pts);
    expect([...front].sort()).toEqual(["fast", "ref"]); // int8 is faster and FAILs: not on the front
    expect(accuracyPoints(rows, "rel_l2", new Set(["fast"])).map((p) => p.id)).toEqual(["ref", "int8"]);
    expect(accuracyPoints(rows, "", new Set())).toEqual([]);
  });

  it("a dominated point is off the front", () => {
    const pts = accuracyPoints([row("a", { p50_ms: 1, rel_l2: 0.1 }), row("b", { p50_ms: 2, rel_l2: 0.2 }), row("c", { p50_ms: 3, rel_l2: 0.01 })], "rel_l2", new Set());
    expect([...paretoFront(pts)].sort()).toEqual(["a", "c"]);
  });

  it("scales linearly from zero, or on a log axis when values are orders of magnitude apart", () => {
    const lin = makeScale([1, 4], 0, 100);
    expect(lin.log).toBe(false);
    expect(lin(lin.lo)).toBeCloseTo(0);
    expect(lin(lin.hi)).toBeCloseTo(100);
    expect(lin(4)).toBeLessThan(100);
    expect(lin.ticks[0]).toBe(0);
    const log = makeScale([0.01, 50], 0, 100);
    expect(log.log).toBe(true);
    expect(log.ticks).toEqual([0.01, 0.1, 1, 10, 100]);
    expect(log(0.01)).toBeCloseTo(0);
    expect(log(100)).toBeCloseTo(100);
    const err = makeScale([0, 1e-6, 0.02], 200, 0, { forceLog: true });
    expect(err(0)).toBeCloseTo(200); // exact agreement sits on the axis
    expect(err(0.02)).toBeLessThan(err(1e-6));
  });

  it("draws a box from samples, or the recorded p50–p99 range without them", () => {
    const samples = Array.from({ length: 101 }, (_, i) => 1 + i / 100);
    const box = distribution(row("s", { samples_ms: samples }))!;
    expect(box.kind).toBe("box");
    expect(box.median).toBeCloseTo(1.5);
    expect(box.q1).toBeCloseTo(1.25);
    const range = distribution(row("r", { p50_ms: 2, p99_ms: 5 }))!;
    expect(range.kind).toBe("range");
    expect([range.median, range.hi]).toEqual([2, 5]);
    expect(distribution(broken)).toBeNull();
  });
});

import { describe, expect, it } from "vitest";
import type { StepperOption, StepperPlanRow, StepperRow } from "../src/generated/pipeline_stepper";
import { badge, displayValue, figuresText, NONE, parseOption, planEdges, planLine, progressOf, timeText } from "../src/pipeline_stepper/state";

function option(over: Partial<StepperOption>): StepperOption {
  return { name: "x", kind: "int", default: 1, choices: [], minimum: null, maximum: null, optional: false, help: "",
    none_label: "auto", value: 1, changed: false, ...over };
}

function row(over: Partial<StepperRow>): StepperRow {
  return { index: 1, label: "ONNX export", status: "planned", final: false, detail: "", seconds: null, cached: false,
    verdict: "", figures: [], error: "", fix: "", hints: [], artifact: "", ...over };
}

describe("option values from form controls", () => {
  it("reads checkboxes as booleans", () => {
    expect(parseOption(option({ kind: "bool" }), false)).toEqual({ value: false });
    expect(parseOption(option({ kind: "bool" }), true)).toEqual({ value: true });
  });

  it("bounds numbers and keeps ints whole", () => {
    const opset = option({ name: "opset", minimum: 7, maximum: 23 });
    expect(parseOption(opset, "17")).toEqual({ value: 17 });
    expect(parseOption(opset, "6")).toEqual({ error: "at least 7" });
    expect(parseOption(opset, "24")).toEqual({ error: "at most 23" });
    expect(parseOption(opset, "17.5")).toEqual({ error: "needs a whole number" });
    expect(parseOption(opset, "abc")).toHaveProperty("error");
    expect(parseOption(opset, "")).toEqual({ error: "needs a number" });
    expect(parseOption(option({ kind: "float", optional: true }), "")).toEqual({ value: null });
    expect(parseOption(option({ kind: "float" }), "0.5")).toEqual({ value: 0.5 });
  });

  it("takes a choice only from its list, with its own type", () => {
    const bits = option({ kind: "choice", choices: [8, 4, 2], optional: true });
    expect(parseOption(bits, "4")).toEqual({ value: 4 });
    expect(parseOption(bits, NONE)).toEqual({ value: null });
    expect(parseOption(bits, "3")).toHaveProperty("error");
    expect(displayValue(bits, null)).toBe(NONE);
    expect(displayValue(bits, 8)).toBe("8");
  });

  it("splits lists of names and refuses anything else", () => {
    const ops = option({ kind: "names", optional: true });
    expect(parseOption(ops, "MatMul, Gemm")).toEqual({ value: ["MatMul", "Gemm"] });
    expect(parseOption(ops, " ")).toEqual({ value: null });
    expect(parseOption(ops, "MatMul, ../../etc")).toHaveProperty("error");
    expect(parseOption(ops, "a b")).toHaveProperty("error");
    expect(displayValue(ops, ["MatMul", "Gemm"])).toBe("MatMul, Gemm");
  });
});

describe("rows", () => {
  it("badges verdicts over statuses", () => {
    expect(badge(row({ status: "done", final: true, verdict: "PASS" }))).toEqual({ text: "PASS", cls: "pass" });
    expect(badge(row({ status: "done", final: true, verdict: "FAIL" })).cls).toBe("fail");
    expect(badge(row({ status: "failed", final: true })).text).toBe("failed");
    expect(badge(row({ status: "validating" })).text).toBe("validating…");
    expect(badge(row({ status: "cancelled", final: true })).cls).toBe("skip");
    expect(badge(row({})).text).toBe("planned");
    expect(badge(row({ status: "done" })).cls).toBe("run");  // reported from inside the step: not ended yet
    expect(badge(row({ status: "done", final: true })).text).toBe("done");
  });

  it("says cached, never 0.0 s, for a cached step", () => {
    expect(timeText(row({ status: "cached", final: true, cached: true, seconds: null, verdict: "PASS" }))).toBe("cached");
    expect(timeText(row({ status: "done", final: true, seconds: 2.345 }))).toBe("2.3 s");
    expect(timeText(row({ status: "done", final: true, seconds: 42.6 }))).toBe("43 s");
    expect(timeText(row({ status: "done", final: true, seconds: 9.96 }))).toBe("10 s");
    expect(timeText(row({ status: "done", final: true, seconds: 9.94 }))).toBe("9.9 s");
    expect(timeText(row({ status: "running" }))).toBe("");
    expect(timeText(row({ status: "failed", final: true, seconds: 0.01 }))).toBe("");
  });

  it("joins the figures", () => {
    const r = row({ figures: [{ name: "rel. L2", value: 1e-7, text: "1.00e-07" }, { name: "accuracy drop", value: 0.01, text: "+0.0100" }] });
    expect(figuresText(r)).toBe("rel. L2 1.00e-07 · accuracy drop +0.0100");
  });

  it("counts finished steps and finds the running one", () => {
    const rows = [row({ index: 1, status: "cached", final: true, cached: true }), row({ index: 2, status: "cached", cached: true }),
      row({ index: 3, status: "validating", label: "INT8" }), row({ index: 0, status: "skipped", final: true })];
    const p = progressOf(rows);
    expect(p.done).toBe(1);  // step 2 reported "cached" from inside: not finished until the pipeline says so
    expect(p.total).toBe(3);
    expect(p.current?.label).toBe("INT8");
  });
});

describe("the plan", () => {
  const plan: StepperPlanRow[] = [
    { index: 1, label: "ONNX export", what: "export onnx", source: "input", takes: "torch", gives: "onnx", ok: true, problem: "" },
    { index: 2, label: "INT8", what: "quantize onnxruntime", source: "step 1", takes: "onnx", gives: "onnx", ok: true, problem: "" },
    { index: 0, label: "NNCF", what: "quantize nncf", source: "", takes: "", gives: "", ok: false, problem: "needs the result of OpenVINO IR: tick it too" },
  ];

  it("says which step feeds which", () => {
    expect(planLine(plan[0]!)).toBe("1. ONNX export ← the model (torch → onnx)");
    expect(planLine(plan[1]!)).toBe("2. INT8 ← step 1 (onnx → onnx)");
    expect(planLine(plan[2]!)).toBe("— NNCF: needs the result of OpenVINO IR: tick it too");
    expect(planEdges(plan)).toEqual([[0, 1], [1, 2]]);
  });
});

/**
 * The PipelineStepper's state logic, free of the DOM (tested with vitest in Node): how a form control's
 * raw value becomes an option value the kernel will accept, what each row's badge and time say, the
 * run's headline, and the plan as lines.
 */
import type { StepperOption, StepperPlanRow, StepperRow, StepperValue } from "../generated/pipeline_stepper";

/** What a control yields: a checkbox's state or an input's / select's text. */
export type RawInput = boolean | string;

/** The value to send for `option` from a control's raw value, or an error to show beside it. */
export function parseOption(option: StepperOption, raw: RawInput): { value: StepperValue } | { error: string } {
  if (option.kind === "bool") return { value: raw === true || raw === "true" };
  const text = typeof raw === "string" ? raw.trim() : String(raw);
  if (option.optional && (text === "" || text === NONE)) return { value: null };
  if (option.kind === "choice") {
    const found = option.choices.find((c) => String(c) === text);
    return found === undefined ? { error: `choose one of ${option.choices.join(", ")}` } : { value: found };
  }
  if (option.kind === "names") {
    const names = text.split(",").map((s) => s.trim()).filter(Boolean);
    const bad = names.find((n) => !/^[A-Za-z_][A-Za-z0-9_./:-]{0,199}$/.test(n));
    if (bad !== undefined) return { error: `${JSON.stringify(bad)} is not a plain name` };
    return { value: names.length || !option.optional ? names : null };
  }
  if (text === "") return { error: "needs a number" };
  const n = Number(text);
  if (!Number.isFinite(n)) return { error: `${JSON.stringify(text)} is not a number` };
  if (option.kind === "int" && !Number.isInteger(n)) return { error: "needs a whole number" };
  if (option.minimum !== null && n < option.minimum) return { error: `at least ${option.minimum}` };
  if (option.maximum !== null && n > option.maximum) return { error: `at most ${option.maximum}` };
  return { value: n };
}

/** The select entry standing for None (an optional option's default behaviour). */
export const NONE = "\u0000none";

/** The text a control shows for a value. */
export function displayValue(option: StepperOption, value: StepperValue): string {
  if (value === null) return option.kind === "choice" ? NONE : "";
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

export interface Badge {
  text: string;
  cls: "pass" | "fail" | "run" | "cached" | "muted" | "skip";
}

/** The badge of a row: the verdict once it ran, else its status (running / validating / cached …). */
export function badge(row: StepperRow): Badge {
  if (row.verdict === "PASS") return { text: "PASS", cls: "pass" };
  if (row.verdict === "FAIL") return { text: "FAIL", cls: "fail" };
  if (row.verdict === "SKIPPED") return { text: "not checked", cls: "skip" };
  switch (row.status) {
    case "failed": return { text: "failed", cls: "fail" };
    case "running": return { text: "running…", cls: "run" };
    case "validating": return { text: "validating…", cls: "run" };
    case "cached": return { text: "cached", cls: "cached" };
    case "cancelled": return { text: "cancelled", cls: "skip" };
    case "skipped": return { text: "skipped", cls: "skip" };
    case "done": return row.final ? { text: "done", cls: "pass" } : { text: "finishing…", cls: "run" };
    default: return { text: "planned", cls: "muted" };
  }
}

/** The time column: "cached" for a result served from the cache (never "0.0 s"), seconds once done. */
export function timeText(row: StepperRow): string {
  if (row.cached) return "cached";
  if (row.seconds === null || (row.status !== "done" && row.seconds < 0.05)) return "";  // refused at once: no time
  const tenths = Math.round(row.seconds * 10) / 10;  // 9.96 s is "10 s", not "10.0 s"
  return tenths < 10 ? `${tenths.toFixed(1)} s` : `${Math.round(row.seconds)} s`;
}

/** The figures of a row as one line: "rel. L2 1.2e-07 · cosine 1.000000 · accuracy 0.9800". */
export function figuresText(row: StepperRow): string {
  return row.figures.map((f) => `${f.name} ${f.text}`).join(" · ");
}

/** Progress over the run: finished steps of all steps that can run, and the running one's row. */
export function progressOf(rows: readonly StepperRow[]): { done: number; total: number; current: StepperRow | null } {
  const runnable = rows.filter((r) => r.index > 0);
  const finished = runnable.filter((r) => r.final);
  const current = runnable.find((r) => r.status === "running" || r.status === "validating") ?? null;
  return { done: finished.length, total: runnable.length, current };
}

/** One line of the plan: "2. OpenVINO IR: convert openvino ← step 1 (onnx → openvino)". */
export function planLine(row: StepperPlanRow): string {
  if (row.index === 0) return `— ${row.label}: ${row.problem}`;
  const from = row.source === "input" ? "the model" : row.source;
  const formats = row.takes || row.gives ? ` (${row.takes} → ${row.gives})` : "";
  return `${row.index}. ${row.label} ← ${from}${formats}${row.ok ? "" : `: ${row.problem}`}`;
}

/** The edges of the plan (which step feeds which) for drawing: [from, to], 0 the model. */
export function planEdges(plan: readonly StepperPlanRow[]): [number, number][] {
  return plan.filter((r) => r.index > 0).map((r) => [r.source === "input" ? 0 : Number(r.source.replace(/^step /, "")), r.index]);
}

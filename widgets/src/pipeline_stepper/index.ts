/**
 * anywidget entry of workbench.ui.PipelineStepper (bundled to workbench/widgets/pipeline_stepper.js):
 * the steps offered for the model with their options forms, the plan, Run / Cancel, one row per step
 * with its status, badge, figures and, for a failure, the error, its fix and hints (with "Try this"
 * for a hint the step's options can apply), and Show code.
 *
 * The kernel owns the state (traits steps, plan, rows, running, status, error, code_text); the browser
 * sends requests only (tick, option, reset, apply, run, cancel), which the kernel checks.
 */
import type { RenderProps } from "../shared/anywidget";
import { el } from "../shared/dom";
import { codePanel } from "../shared/show_code";
import type {
  StepperOption,
  StepperPlanRow,
  StepperRequest,
  StepperRow,
  StepperStep,
} from "../generated/pipeline_stepper";
import { badge, displayValue, figuresText, NONE, parseOption, planLine, progressOf, timeText } from "./state";

export interface StepperState {
  model_name: string;
  steps: StepperStep[];
  plan: StepperPlanRow[];
  rows: StepperRow[];
  running: boolean;
  status: string;
  error: string;
  code_text: string;
  published: boolean;
}

function optionControl(step: StepperStep, option: StepperOption, send: (r: StepperRequest) => void,
  disabled: boolean): HTMLElement {
  const wrap = el("label", "wb-stepper-option");
  wrap.title = option.help;
  wrap.dataset.option = option.name;
  const name = el("span", "wb-stepper-option-name", option.name.replace(/_/g, " "));
  const note = el("span", "wb-stepper-option-error");
  const submit = (raw: boolean | string) => {
    const parsed = parseOption(option, raw);
    if ("error" in parsed) {
      note.textContent = parsed.error;
      return;
    }
    note.textContent = "";
    send({ type: "option", label: step.label, name: option.name, value: parsed.value });
  };
  let control: HTMLInputElement | HTMLSelectElement;
  if (option.kind === "bool") {
    const box = el("input");
    box.type = "checkbox";
    box.checked = option.value === true;
    box.addEventListener("change", () => submit(box.checked));
    control = box;
    wrap.append(box, name);
  } else if (option.kind === "choice") {
    const select = el("select");
    if (option.optional) select.append(new Option(option.none_label, NONE));
    for (const c of option.choices) select.append(new Option(String(c), String(c)));
    select.value = displayValue(option, option.value);
    select.addEventListener("change", () => submit(select.value));
    control = select;
    wrap.append(name, select);
  } else {
    const input = el("input");
    if (option.kind === "names") {
      input.type = "text";
      input.placeholder = option.optional ? option.none_label : "";
    } else {
      input.type = "number";
      input.step = option.kind === "int" ? "1" : "any";
      if (option.minimum !== null) input.min = String(option.minimum);
      if (option.maximum !== null) input.max = String(option.maximum);
      input.placeholder = option.optional ? option.none_label : "";
    }
    input.value = displayValue(option, option.value);
    input.addEventListener("change", () => submit(input.value));
    control = input;
    wrap.append(name, input);
  }
  control.disabled = disabled;
  control.setAttribute("aria-label", `${step.label}: ${option.name}`);
  if (option.changed) wrap.classList.add("wb-changed");
  wrap.append(note);
  return wrap;
}

function stepCard(step: StepperStep, send: (r: StepperRequest) => void, disabled: boolean,
  open: Set<string>): HTMLElement {
  const card = el("div", "wb-stepper-step");
  card.dataset.step = step.label;
  const head = el("label", "wb-stepper-step-head");
  const tick = el("input");
  tick.type = "checkbox";
  tick.checked = step.ticked;
  tick.disabled = disabled;
  tick.setAttribute("aria-label", step.label);
  tick.addEventListener("change", () => send({ type: "tick", label: step.label, on: tick.checked }));
  head.append(tick, el("b", null, step.label));
  if (step.needs.length) head.append(el("span", "wb-stepper-needs", ` ← ${step.needs.join(", ")}`));
  card.append(head);
  if (step.description) card.append(el("div", "wb-stepper-desc", step.description));
  if (step.options.length) {
    const details = el("details", "wb-stepper-options");
    details.open = open.has(step.label);
    details.addEventListener("toggle", () => (details.open ? open.add(step.label) : open.delete(step.label)));
    const changed = step.options.filter((o) => o.changed).length;
    details.append(el("summary", null, changed ? `Options (${changed} changed)` : "Options"));
    const form = el("div", "wb-stepper-form");
    for (const option of step.options) form.append(optionControl(step, option, send, disabled));
    if (changed) {
      const reset = el("button", "wb-stepper-reset", "Reset");
      reset.type = "button";
      reset.disabled = disabled;
      reset.addEventListener("click", () => send({ type: "reset", label: step.label }));
      form.append(reset);
    }
    details.append(form);
    card.append(details);
  }
  return card;
}

function rowElement(row: StepperRow, send: (r: StepperRequest) => void, running: boolean): HTMLElement {
  const tr = el("tr", `wb-stepper-row wb-status-${row.status}`);
  tr.dataset.step = row.label;
  tr.dataset.final = String(row.final);
  tr.dataset.verdict = row.verdict;
  const b = badge(row);
  const figures = figuresText(row);
  const what = el("td");
  what.append(el("span", null, row.label));
  if (row.artifact) what.append(el("div", "wb-stepper-artifact", row.artifact));
  const state = el("td");
  state.append(el("span", `wb-badge wb-badge-${b.cls}`, b.text));
  if (row.detail && !row.final) state.append(el("div", "wb-stepper-detail", row.detail));
  const out = el("td", "wb-stepper-outcome");
  if (figures) out.append(el("div", "wb-stepper-figures", figures));
  if (row.error) out.append(el("div", "wb-stepper-error", row.error));
  if (row.fix) out.append(el("div", "wb-stepper-fix", `Fix: ${row.fix}`));
  if (row.hints.length) {
    const list = el("ul", "wb-stepper-hints");
    for (const hint of row.hints) {
      const li = el("li", null, hint.text);
      if (hint.code) li.append(" ", el("code", null, hint.code));
      if (Object.keys(hint.options).length) {
        const apply = el("button", "wb-stepper-apply", "Try this");
        apply.type = "button";
        apply.disabled = running;
        apply.title = "set these options on the step; then Run steps again";
        apply.addEventListener("click", () => send({ type: "apply", label: row.label, options: hint.options }));
        li.append(" ", apply);
      }
      list.append(li);
    }
    const title = el("div", "wb-stepper-hints-title", "What to try");
    out.append(title, list);
  }
  tr.append(what, state, el("td", "wb-stepper-time", timeText(row)), out);
  return tr;
}

function render({ model, el: host }: RenderProps<StepperState>): () => void {
  const root = el("div", "wb-stepper");
  const title = el("div", "wb-stepper-title");
  const stepsBox = el("div", "wb-stepper-steps");
  const planBox = el("ol", "wb-stepper-plan");
  const runButton = el("button", "wb-stepper-run jupyter-button mod-primary", "Run steps");
  runButton.type = "button";
  const cancelButton = el("button", "wb-stepper-cancel jupyter-button mod-warning", "Cancel");
  cancelButton.type = "button";
  const bar = el("progress", "wb-stepper-progress");
  const status = el("span", "wb-stepper-status");
  const error = el("div", "wb-stepper-message");
  const table = el("table", "wb-stepper-table");
  const code = codePanel();
  const open = new Set<string>();
  const send = (request: StepperRequest) => model.send(request);
  runButton.addEventListener("click", () => send({ type: "run" }));
  cancelButton.addEventListener("click", () => {
    cancelButton.disabled = true;
    send({ type: "cancel" });
  });
  const controls = el("div", "wb-stepper-controls");
  controls.append(runButton, cancelButton, bar, status);
  const planTitle = el("div", "wb-stepper-section", "Plan");
  root.append(title, stepsBox, planTitle, planBox, controls, error, table, code.root);

  // each part is redrawn only when what it shows changes (rows change often during a run)
  const syncSteps = () => {
    const running = model.get("running");
    title.textContent = model.get("model_name") ? `Deploy ${model.get("model_name")}` : "Pick a model to deploy";
    const steps = model.get("steps");
    stepsBox.replaceChildren(...(steps.length || !model.get("model_name")
      ? steps.map((s) => stepCard(s, send, running, open))
      : [el("div", "wb-stepper-empty", "No registered export, conversion or quantization step takes this model's format.")]));
  };
  const syncPlan = () => {
    const running = model.get("running");
    const plan = model.get("plan");
    planBox.replaceChildren(...plan.map((p) => {
      const li = el("li", p.ok ? "wb-plan-ok" : "wb-plan-problem", planLine(p));
      li.dataset.step = p.label;
      return li;
    }));
    planTitle.style.display = plan.length ? "" : "none";
    runButton.disabled = running || !plan.some((p) => p.index > 0);
    cancelButton.style.display = running ? "" : "none";
    if (!running) cancelButton.disabled = false;
  };
  const syncRows = () => {
    const running = model.get("running");
    const rows = model.get("rows");
    const p = progressOf(rows);
    bar.max = Math.max(p.total, 1);
    bar.value = p.done;
    bar.style.display = rows.length ? "" : "none";
    status.textContent = model.get("status");
    error.textContent = model.get("error");
    error.style.display = model.get("error") ? "" : "none";
    if (rows.length) {
      const head = el("tr");
      for (const h of ["step", "check", "time", "figures / what to try"]) head.append(el("th", null, h));
      table.replaceChildren(head, ...rows.map((r) => rowElement(r, send, running)));
    } else {
      table.replaceChildren();
    }
  };
  const syncCode = () => code.update(model.get("code_text"));
  const handlers: [string, () => void][] = [
    ["model_name", syncSteps], ["steps", syncSteps], ["running", syncSteps], ["plan", syncPlan], ["running", syncPlan],
    ["rows", syncRows], ["running", syncRows], ["status", syncRows], ["error", syncRows], ["code_text", syncCode],
  ];
  syncSteps();
  syncPlan();
  syncRows();
  syncCode();
  for (const [name, fn] of handlers) model.on(`change:${name}`, fn);
  host.replaceChildren(root);
  return () => {
    for (const [name, fn] of handlers) model.off?.(`change:${name}`, fn);
  };
}

export default { render };

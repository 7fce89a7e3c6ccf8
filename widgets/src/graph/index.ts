/** anywidget entry of workbench.ui.GraphView (bundled to workbench/widgets/graph.js). */
import type { RenderProps } from "../shared/anywidget";
import { codePanel } from "../shared/show_code";
import { GraphCanvas, type GraphState } from "./view";

function render({ model, el }: RenderProps<GraphState & { code_text: string }>): () => void {
  const view = new GraphCanvas(el, model);
  // "Show code" under the graph (hidden while the kernel sends no code: a diff's panes)
  const code = codePanel();
  el.append(code.root);
  const showCode = () => code.update(model.get("code_text") ?? "");
  showCode();
  model.on("change:code_text", showCode);
  // tests and the benchmark read positions and timings from the widget's element or its .wb-graph frame
  for (const node of [el, view.frame]) (node as HTMLElement & { __wbGraph?: GraphCanvas }).__wbGraph = view;
  model.on("change:data", () => { view.readyMs = 0; view.setData(model.get("data")); });
  model.on("change:overlay_data", () => {
    view.applyOverlay();
    view.touch();
    if (view.selected >= 0) view.showDetails(view.selected);
  });
  model.on("change:selected", () => view.selectByName(model.get("selected")));
  model.on("change:height", () => view.setHeight(model.get("height")));
  model.on("change:fold_threshold", () => view.setData(model.get("data")));
  model.on("msg:custom", (msg: never) => view.onMessage(msg));
  const sel = model.get("selected");
  if (sel) requestAnimationFrame(() => view.selectByName(sel));
  return () => view.destroy();
}

export default { render };

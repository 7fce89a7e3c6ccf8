"""Graph rendering speed: the workbench's graph widget vs Netron and Model Explorer, same graphs, same run.

Builds synthetic ONNX models with a module hierarchy (stages > blocks > layers) of about 5,000,
20,000 and 100,000 nodes, reads each through the workbench's graph builder (``formats.onnx.read_graph``
then ``Graph.to_view()``: ``python_read_ms`` and ``python_view_ms``, wall time) and times in headless
Chromium (Debian's /usr/bin/chromium via Playwright):

- ``native``: ``workbench/widgets/graph.js`` (built from ``widgets/``, the TypeScript package) with
  its default folding: ``ready_ms`` from the start of ``render()`` to the first complete frame,
  ``page_ready_ms`` from navigation (payload download and JSON parse included), and
  ``interactive_ms``: ``page_ready_ms`` plus a zoom and a click until the frame after both is drawn.
  ``native-unfolded`` draws every node (graphs up to 20,000 nodes).
- ``netron``: Netron's own viewer code (the installed ``netron`` package's assets, loaded the way
  ``wb.show(model, viewer="netron")`` loads them) from the start to the graph being drawn.
- ``model-explorer``: Google's Model Explorer (``ai-edge-model-explorer`` on PyPI; ``pip install
  -c constraints.txt ai-edge-model-explorer``), its own server on 127.0.0.1, given the same graph in its
  JSON graph format (``graph_builder``: nodes with their namespace and incoming edges); from navigation
  until its graph info panel reports the graph and two more frames were drawn. Skipped when the
  package is not installed.

Each viewer stops at ``--timeout`` seconds and reports ``timed_out``. The native and Netron pages are
served from 127.0.0.1 (no Jupyter), with the widget's comm replaced by HTTP fetches from the same
server, so the figures are the viewers' own cost.

Prints one JSON line per (graph, viewer). Usage::

    python benchmarks/graph_render.py                 # 5000, 20000, 100000 nodes
    python benchmarks/graph_render.py --sizes 5000 --repeat 3 --viewers native model-explorer
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/widgets/graph.css"><link rel="stylesheet" href="/widgets/netron.css">
<style>body{margin:0} #root{width:1200px}</style></head><body><div id="root"></div>
<script type="module">
// a stand-in for the anywidget model: state from the query, comm requests answered over HTTP
const q = new URLSearchParams(location.search);
const kind = q.get("viewer");
const state = kind === "native"
  ? {data: await (await fetch("/payload/" + q.get("graph") + ".json")).json(), height: 700,
     fold_threshold: +(q.get("fold") || 40),
     overlay_data: {}, extra: {}, selected: ""}
  : {identifier: q.get("graph") + ".onnx", files: [q.get("graph") + ".onnx"], height: 700, netron_version: ""};
const handlers = {};
const model = {
  get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes() {},
  on: (ev, cb) => { (handlers[ev] ||= []).push(cb); },
  async send(msg) {
    let reply, buffers = [];
    if (msg.type === "asset") reply = {type: "asset", id: msg.id, text: await (await fetch("/netron/" + msg.name)).text()};
    else if (msg.type === "file") { const b = await (await fetch("/model/" + msg.name)).arrayBuffer(); reply = {type: "file", id: msg.id}; buffers = [new DataView(b)]; }
    else reply = {type: msg.type, id: msg.id, details: {name: msg.name, attributes: {}, inputs: [], outputs: [], weights: []}};
    for (const cb of handlers["msg:custom"] || []) cb(reply, buffers);
  },
};
const mod = await import(kind === "native" ? "/widgets/graph.js" : "/widgets/netron.js");
window.__t0 = performance.now();
mod.default.render({model, el: document.getElementById("root")});
</script></body></html>"""


def synthetic_onnx(n_nodes: int, path: Path) -> int:
    """An ONNX model of about ``n_nodes`` nodes: stages of blocks of (MatMul, Add, Relu, MatMul, Add)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    d = 8
    rng = np.random.default_rng(0)
    per_block = 5
    blocks = max(1, n_nodes // per_block)
    per_stage = 20
    nodes, inits = [], []
    x = "input"
    for b in range(blocks):
        s = f"/stage{b // per_stage}/block{b % per_stage}"
        w1, w2 = f"s{b}.fc1.weight", f"s{b}.fc2.weight"
        b1, b2 = f"s{b}.fc1.bias", f"s{b}.fc2.bias"
        for w in (w1, w2):
            inits.append(numpy_helper.from_array(rng.standard_normal((d, d)).astype(np.float32) * 0.1, w))
        for bb in (b1, b2):
            inits.append(numpy_helper.from_array(np.zeros(d, np.float32), bb))
        h1, h2, h3, h4, out = (f"{s}/{k}" for k in ("h1", "h2", "h3", "h4", "out"))
        nodes += [
            helper.make_node("MatMul", [x, w1], [h1], name=f"{s}/fc1/MatMul"),
            helper.make_node("Add", [h1, b1], [h2], name=f"{s}/fc1/Add"),
            helper.make_node("Relu", [h2], [h3], name=f"{s}/act/Relu"),
            helper.make_node("MatMul", [h3, w2], [h4], name=f"{s}/fc2/MatMul"),
            helper.make_node("Add", [h4, x], [out], name=f"{s}/Add"),
        ]
        x = out
    graph = helper.make_graph(nodes, f"synthetic{n_nodes}",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, d])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, d])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return len(nodes)


class _Handler(SimpleHTTPRequestHandler):
    routes: dict[str, Path] = {}

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        path = self.path.split("?")[0]
        if path == "/page.html":
            body, ctype = PAGE.encode(), "text/html"
        else:
            prefix, _, name = path.lstrip("/").partition("/")
            base = self.routes.get(prefix)
            file = (base / name).resolve() if base else None
            if file is None or file.parent != base.resolve() or not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
            ctype = {".js": "text/javascript", ".css": "text/css", ".json": "application/json",
                     ".html": "text/html"}.get(file.suffix, "application/octet-stream")
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_explorer_json(graph, path: Path) -> None:
    """The workbench's ``Graph`` in Model Explorer's JSON graph format (its ``graph_builder``): one op
    node per node, its module path as namespace, incoming edges from producers and graph inputs."""
    import dataclasses

    from model_explorer import graph_builder as gb

    nodes = [gb.GraphNode(id=f"input:{t}", label="Input", namespace="") for t in graph.inputs]
    for n in graph.nodes:
        node = gb.GraphNode(id=n.name, label=n.op, namespace="/".join(s.rpartition(".")[2] for s in n.scope))
        for k, t in enumerate(n.inputs):
            src = graph.producer.get(t) or (f"input:{t}" if t in graph.inputs else None)
            if src:
                node.incomingEdges.append(gb.IncomingEdge(sourceNodeId=src, targetNodeInputId=str(k)))
        nodes.append(node)
    coll = gb.GraphCollection(label=graph.name, graphs=[gb.Graph(id=graph.name, nodes=nodes)])
    path.write_text(json.dumps(dataclasses.asdict(coll)))


def _model_explorer_server(files: list[Path], work: Path):
    """Model Explorer's own server on 127.0.0.1 with ``files``; returns (process, {file: page URL})."""
    import subprocess

    port = _free_port()
    script = ("import sys\nfrom model_explorer import config, server\ncfg = config()\n"
              "for p in sys.argv[2:]:\n    cfg.add_model_from_path(p)\n"
              "server.start(host='127.0.0.1', port=int(sys.argv[1]), config=cfg, no_open_in_browser=True)\n")
    log = work / "model-explorer.log"
    proc = subprocess.Popen([sys.executable, "-c", script, str(port), *map(str, files)], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "Starting Model Explorer server" not in log.read_text():
        if proc.poll() is not None:
            raise RuntimeError(f"Model Explorer's server exited: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    from urllib.parse import quote

    urls = {f: f"http://127.0.0.1:{port}/?data=" + quote(json.dumps({"models": [{"url": str(f)}]})) for f in files}
    return proc, urls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 100000])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per viewer and graph")
    ap.add_argument("--viewers", nargs="+", default=["native", "native-unfolded", "netron", "model-explorer"])
    ap.add_argument("--skip-netron", action="store_true")
    ap.add_argument("--screenshots", type=Path, default=None, help="folder for one screenshot per run")
    args = ap.parse_args(argv)
    viewers = [v for v in args.viewers if not (args.skip_netron and v == "netron")]
    if "model-explorer" in viewers:
        try:
            import model_explorer  # noqa: F401
        except ImportError:
            print(json.dumps({"bench": "graph_render", "viewer": "model-explorer", "skipped":
                              "not installed: pip install -c constraints.txt ai-edge-model-explorer"}), flush=True)
            viewers.remove("model-explorer")

    import netron
    from playwright.sync_api import sync_playwright

    from workbench.formats.onnx import read_graph

    work = Path(tempfile.mkdtemp(prefix="wb-graph-bench-"))
    for sub in ("model", "payload", "me"):
        (work / sub).mkdir()
    names = []
    for n in args.sizes:
        name = f"synthetic{n}"
        real = synthetic_onnx(n, work / "model" / f"{name}.onnx")
        t = time.perf_counter()
        g = read_graph(str(work / "model" / f"{name}.onnx"))
        t_read = time.perf_counter()
        payload = g.to_view()
        t_view = time.perf_counter()
        (work / "payload" / f"{name}.json").write_text(json.dumps(payload))
        if "model-explorer" in viewers:
            model_explorer_json(g, work / "me" / f"{name}.json")
        # CPU time of the whole Python build, best of 3 (of 1 above 20,000 nodes): the wall times above
        # also count whatever else this shared machine runs
        cpu = []
        for _ in range(3 if n <= 20000 else 1):
            c = time.process_time()
            read_graph(str(work / "model" / f"{name}.onnx")).to_view()
            cpu.append(time.process_time() - c)
        names.append((name, real, {"python_read_ms": round((t_read - t) * 1000, 1),
                                   "python_view_ms": round((t_view - t_read) * 1000, 1),
                                   "python_cpu_ms": round(min(cpu) * 1000, 1)}))
    _Handler.routes = {"widgets": ROOT / "workbench" / "widgets", "netron": Path(netron.__file__).parent,
                       "model": work / "model", "payload": work / "payload"}
    port = _free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(_Handler))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    me_proc, me_urls = (None, {})
    if "model-explorer" in viewers:
        me_proc, me_urls = _model_explorer_server([work / "me" / f"{name}.json" for name, _, _ in names], work)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for name, real, py in names:
                for label in viewers:
                    if label == "native-unfolded" and real > 20000:
                        continue
                    for rep in range(args.repeat):
                        page = browser.new_page(viewport={"width": 1280, "height": 800})
                        rec = {"bench": "graph_render", "graph": name, "nodes": real, "viewer": label, "repeat": rep}
                        try:
                            if label == "model-explorer":
                                rec.update(_model_explorer_ms(page, me_urls[work / "me" / f"{name}.json"], args.timeout))
                            else:
                                viewer, fold = ("native", 10**9) if label == "native-unfolded" else (label, 40)
                                page.goto(f"http://127.0.0.1:{port}/page.html?viewer={viewer}&graph={name}&fold={fold}")
                                page.wait_for_function("document.getElementById('root').dataset.state",
                                                       timeout=args.timeout * 1000)
                                root = "document.getElementById('root').dataset"
                                rec["state"] = page.evaluate(f"{root}.state")
                                rec["ready_ms"] = float(page.evaluate(f"{root}.readyMs"))
                                if viewer == "native":
                                    rec.update(py)
                                    rec["page_ready_ms"] = float(page.evaluate(f"{root}.readyAt"))
                                    rec["visible_boxes"] = int(page.evaluate(f"{root}.visible"))
                                    rec["layout_ms"] = float(page.evaluate(f"{root}.layoutMs"))
                                    rec["interactive_ms"] = round(rec["page_ready_ms"] + _interaction_ms(page), 1)
                                    rec.update(_folding_ms(page))
                                else:
                                    rec["svg_nodes"] = page.evaluate(
                                        "document.querySelector('iframe').contentDocument.querySelectorAll('g.node').length")
                        except Exception as err:  # noqa: BLE001 - report and go on
                            rec["timed_out"] = True
                            rec["error"] = str(err).splitlines()[0][:120]
                            rec["ready_ms"] = None
                        if args.screenshots:
                            args.screenshots.mkdir(parents=True, exist_ok=True)
                            page.screenshot(path=str(args.screenshots / f"{name}-{label}-{rep}.png"))
                        print(json.dumps(rec), flush=True)
                        page.close()
            browser.close()
    finally:
        server.shutdown()
        if me_proc is not None:
            import os
            import signal

            os.killpg(me_proc.pid, signal.SIGTERM)
            me_proc.wait(timeout=15)
    return 0


def _model_explorer_ms(page, url: str, timeout: float) -> dict:
    """Navigation to Model Explorer showing the graph: its info panel counts the graph's op nodes (the
    worker has processed it) and two more animation frames were drawn (the WebGL scene is on screen)."""
    page.goto(url)
    page.wait_for_function("(document.querySelector('info-panel')?.innerText || '').includes('op node count')",
                           timeout=timeout * 1000)
    at = page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now()))))")
    return {"page_ready_ms": round(float(at), 1), "ready_ms": round(float(at), 1)}


def _folding_ms(page) -> dict:
    """Usability of a folded graph: unfold one level, search and jump to the last node, fold back."""
    return page.evaluate("""() => {
      const root = document.getElementById('root'); const v = root.__wbGraph;
      let t = performance.now(); v.unfoldLevel(); v.draw();
      const unfold = performance.now() - t, after = v.visible.vis.length;
      t = performance.now(); v.search.value = 'Relu'; v.runSearch(); v.focusNode(v.g.n - 2); v.draw();
      const jump = performance.now() - t;
      t = performance.now(); v.expanded.clear(); v.relayout(); v.fit(); v.draw();
      const fold = performance.now() - t;
      return {unfold_level_ms: +unfold.toFixed(1), boxes_after_unfold: after, search_and_jump_ms: +jump.toFixed(1),
              fold_all_ms: +fold.toFixed(1)};
    }""")


def _interaction_ms(page) -> float:
    """Zoom at the centre and click a node; the time until the frame after both is drawn."""
    return float(page.evaluate("""async () => {
      const root = document.getElementById('root'); const view = root.__wbGraph;
      const cv = root.querySelector('canvas'); const r = cv.getBoundingClientRect();
      const t = performance.now(); const frames = +root.dataset.frames;
      cv.dispatchEvent(new WheelEvent('wheel', {deltaY: -200, clientX: r.left + r.width / 2, clientY: r.top + 100, bubbles: true}));
      const v = 0; const L = view.L;
      const px = L.x[v] * view.view.s + view.view.tx + r.left, py = L.y[v] * view.view.s + view.view.ty + r.top;
      cv.dispatchEvent(new PointerEvent('pointerdown', {clientX: px, clientY: py, bubbles: true}));
      cv.dispatchEvent(new PointerEvent('pointerup', {clientX: px, clientY: py, bubbles: true}));
      while (+root.dataset.frames <= frames) await new Promise(requestAnimationFrame);
      return performance.now() - t;
    }"""))


if __name__ == "__main__":
    raise SystemExit(main())

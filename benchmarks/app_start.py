"""App start to first interactive render: the published Voilà app (``notebooks/apps/workbench_app.ipynb``)
served as ``scripts/start --app`` serves it (standalone Voilà with ``binder/app/voila.json``: the app's
kernel manager, memory cap, culling, no tracebacks), opened in headless Chromium (Debian's, driven by
Playwright) on 127.0.0.1.

Two figures, each over ``--repeat`` runs:

- **cold**: a fresh server with no preheated kernel (``preheat_kernel=False``), timed from the server's
  start: the server comes up, the browser asks for the page, Voilà starts a kernel and runs the
  notebook in it, the page loads Voilà's and the widgets' JavaScript, the widgets are drawn from the
  kernel's state, and the first click is answered by the kernel.
- **preheated**: the app's own configuration (a pool of ``default_pool_size`` kernels that have
  already run the notebook), timed from the browser's navigation once the pool is filled and quiet.

"Interactive" is a user's first action answered: the model picker is drawn and enabled, and a click
that only the kernel can answer (a control whose change the kernel turns into new text on the page)
has come back. Each run also reports where its time went, from the page's own clock (``phases``):
time to the HTML's first byte (Voilà renders the notebook, from the preheated kernel or a new one),
the HTML read, Voilà's JavaScript loaded, the kernel's websocket opened, the first widget drawn, the
app drawn with the kernel's data, the click's answer; and, for cold runs, the server's own start.

Prints one JSON line per run and one summary line per mode, with the machine's load average (1 min)
before and after each run. Targets (issue 15): cold ≤ 8 s, preheated ≤ 2 s (medians).

    python benchmarks/app_start.py                      # 3 cold + 3 preheated runs
    python benchmarks/app_start.py --repeat 5 --modes preheated
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ui.jupyter_servers import CHROMIUM, CHROMIUM_ARGS, voila  # noqa: E402

APP = ROOT / "notebooks" / "apps" / "workbench_app.ipynb"
TARGETS = {"cold": 8.0, "preheated": 2.0}

# Recorded in the page from its first script on: the moment (performance.now(), ms from navigation)
# each of these first matches, and when the first kernel websocket opens. Selectors are tried in
# order; the first that exists marks the phase.
MARKS = {
    "first_widget": [".jupyter-widgets.widget-container", ".jupyter-widgets"],
    "app_drawn": [".wb-app"],
    # the model picker drawn with its model loaded (the kernel's state), and the steps for that model
    "picker_enabled": [".wb-app .wb-mp[data-status=ready] select.wb-mp-select:not([disabled])"],
    "steps_drawn": [".wb-app .wb-stepper-step input[type=checkbox]"],
}
INIT_SCRIPT = """
(() => {
  const marks = window.__wbMarks = {};
  const wanted = __MARKS__;
  const check = () => {
    for (const [name, sels] of Object.entries(wanted)) {
      if (marks[name] === undefined && sels.some(s => { try { return document.querySelector(s); } catch (e) { return false; } }))
        marks[name] = performance.now();
    }
  };
  new MutationObserver(check).observe(document, {childList: true, subtree: true, attributes: true});
  const WS = window.WebSocket;
  window.WebSocket = function (url, protocols) {
    const ws = protocols === undefined ? new WS(url) : new WS(url, protocols);
    if (String(url).includes('/channels')) {
      if (marks.ws_created === undefined) marks.ws_created = performance.now();
      ws.addEventListener('open', () => { if (marks.ws_open === undefined) marks.ws_open = performance.now(); });
      ws.addEventListener('message', () => { marks.ws_messages = (marks.ws_messages || 0) + 1;
        if (marks.ws_first_message === undefined) marks.ws_first_message = performance.now(); });
    }
    return ws;
  };
  window.WebSocket.prototype = WS.prototype;
  Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
})();
""".replace("__MARKS__", json.dumps(MARKS))

# The page's own timings for the HTML (ms from navigation) and Voilà's scripts.
NAV_TIMING = r"""() => {
  const n = performance.getEntriesByType('navigation')[0];
  const js = performance.getEntriesByType('resource').filter(r => r.initiatorType === 'script' || r.name.endsWith('.js'));
  return {html_first_byte: n.responseStart, html_read: n.responseEnd, dom_content_loaded: n.domContentLoadedEventEnd,
          load_event: n.loadEventEnd, scripts: js.length,
          scripts_kb: Math.round(js.reduce((a, r) => a + (r.encodedBodySize || 0), 0) / 1024),
          scripts_done: js.length ? Math.max(...js.map(r => r.responseEnd)) : null,
          // kB and the last script's end per source: Voilà's own bundle or a lab extension's
          by_source: js.reduce((a, r) => { const p = new URL(r.name).pathname;
            const m = p.match(/labextensions\/((?:@[^/]+\/)?[^/]+)/); const k = m ? m[1] : p.split('/').slice(0, 3).join('/');
            a[k] = a[k] || {kb: 0, n: 0, end_s: 0}; a[k].kb += Math.round((r.encodedBodySize || 0) / 1024); a[k].n += 1;
            a[k].end_s = Math.max(a[k].end_s, Math.round(r.responseEnd) / 1000); return a; }, {})};
}"""


def _load1() -> float:
    return round(os.getloadavg()[0], 2)


def _first_click(page, timeout_ms: float) -> None:
    """The first action a visitor takes, answered by the kernel: on the Deploy tab, untick (or tick)
    a step; the kernel re-plans and the page shows the new plan (the browser only sends the request)."""
    page.get_by_role("tab", name="Deploy").click(timeout=timeout_ms)
    plan = ".wb-app .wb-stepper-plan"
    before = page.locator(plan).text_content(timeout=timeout_ms)
    page.locator(".wb-app .wb-stepper-step input[type=checkbox]").first.click(timeout=timeout_ms)
    page.wait_for_function("([sel, b]) => { const s = document.querySelector(sel); return s && s.textContent !== b; }",
                           arg=[plan, before], timeout=timeout_ms)


def visit(browser, url: str, timeout_s: float) -> dict:
    """Open the app in a fresh browser context; seconds from navigation to each phase."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.add_init_script(INIT_SCRIPT)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)[:200]))
    ms = timeout_s * 1000
    out: dict = {}
    t0 = time.perf_counter()
    try:
        page.goto(url, timeout=ms, wait_until="commit")
        page.wait_for_selector(MARKS["picker_enabled"][0], timeout=ms)
        page.wait_for_selector(MARKS["steps_drawn"][0], state="attached", timeout=ms)  # on the Deploy tab, hidden
        out["rendered_s"] = round(time.perf_counter() - t0, 3)
        t_click = time.perf_counter()
        _first_click(page, ms)
        out["interactive_s"] = round(time.perf_counter() - t0, 3)
        out["click_answer_s"] = round(time.perf_counter() - t_click, 3)
        nav = page.evaluate(NAV_TIMING)
        marks = page.evaluate("() => window.__wbMarks")
        phases = {k: round(v / 1000, 3) for k, v in {**nav, **marks}.items()
                  if isinstance(v, int | float) and k not in ("scripts", "scripts_kb", "ws_messages")}
        out["scripts_by_source"] = nav["by_source"]
        out["phases"] = dict(sorted(phases.items(), key=lambda kv: kv[1]))
        out["scripts"], out["scripts_kb"] = nav["scripts"], nav["scripts_kb"]
        out["ws_messages"] = marks.get("ws_messages", 0)
        out["ok"] = True
    except Exception as err:  # noqa: BLE001 - reported in the run's line
        out.update(ok=False, error=f"{type(err).__name__}: {str(err).splitlines()[0][:300]}")
    finally:
        out["page_errors"] = errors[:3]
        ctx.close()  # leaves like a closed tab; the server culls the kernel
    return out


def _pool_ready(log: Path, server, pool: int, deadline: float) -> bool:
    """Voilà logs "filled" once the pool's kernels have started; they have run the notebook when the
    server's process tree then goes quiet (under 0.2 CPU-seconds over 2 s)."""
    while time.monotonic() < deadline:
        if log.exists() and f"is filled with {pool} kernel" in log.read_text(errors="replace"):
            break
        time.sleep(0.5)
    while time.monotonic() < deadline:
        procs = [server, *server.children(recursive=True)]
        before = sum(_cpu(p) for p in procs)
        time.sleep(2)
        if sum(_cpu(p) for p in procs) - before < 0.2:
            return True
    return False


def _cpu(p) -> float:
    import psutil

    try:
        t = p.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def run_cold(browser, root: Path, timeout_s: float, extra: tuple[str, ...] = ()) -> dict:
    """A fresh server without a pool: from its start to the first click answered."""
    load = _load1()
    t0 = time.perf_counter()
    flags = ("--VoilaConfiguration.preheat_kernel=False", "--VoilaConfiguration.default_pool_size=0",
             "--MappingKernelManager.cull_idle_timeout=5", "--MappingKernelManager.cull_interval=2", *extra)
    with voila(root, APP.name, app_config=True, args=flags) as url:
        up = time.perf_counter() - t0
        out = visit(browser, url, timeout_s)
    total = time.perf_counter() - t0
    result = {"benchmark": "app_start", "mode": "cold", "server_up_s": round(up, 3), **out,
              "load1_before": load, "load1_after": _load1()}
    if out.get("ok"):
        result["rendered_s"] = round(up + out["rendered_s"], 3)  # from the server's start
        result["interactive_s"] = round(up + out["interactive_s"], 3)
    result["wall_s"] = round(total, 1)
    return result


def run_preheated(browser, root: Path, repeat: int, timeout_s: float, pool_timeout_s: float,
                  extra: tuple[str, ...] = ()) -> list[dict]:
    """The app's configuration (its preheated pool); each visit waits for a full, quiet pool first."""
    import psutil

    procs: list = []
    results = []
    flags = ("--MappingKernelManager.cull_idle_timeout=5", "--MappingKernelManager.cull_interval=2", *extra)
    config = json.loads((ROOT / "binder" / "app" / "voila.json").read_text())
    pool = int(config["VoilaConfiguration"].get("default_pool_size", 1))
    for arg in extra:  # a pool size given on the command line
        if arg.startswith("--VoilaConfiguration.default_pool_size="):
            pool = int(arg.split("=", 1)[1])
    with voila(root, APP.name, app_config=True, args=flags, proc_out=procs) as url:
        log = next(root.glob("voila-*.log"))
        server = psutil.Process(procs[0].pid)
        t_start = time.monotonic()
        for i in range(repeat):
            t_pool = time.monotonic()
            ready = _pool_ready(log, server, pool, time.monotonic() + pool_timeout_s)
            result = {"benchmark": "app_start", "mode": "preheated", "run": i + 1, "pool_size": pool,
                      "pool_ready": ready, "pool_wait_s": round(time.monotonic() - t_pool, 1)}
            if i == 0:
                result["pool_ready_from_start_s"] = round(time.monotonic() - t_start, 1)
            load = _load1()
            result.update(visit(browser, url, timeout_s))
            result.update(load1_before=load, load1_after=_load1())
            results.append(result)
            print(json.dumps(result), flush=True)
    return results


def summary(mode: str, runs: list[dict]) -> dict:
    times = sorted(r["interactive_s"] for r in runs if r.get("ok"))
    out: dict = {"benchmark": "app_start", "mode": mode, "summary": True, "runs": len(runs), "ok": len(times),
                 "target_s": TARGETS[mode]}
    if times:
        out.update(interactive_median_s=round(statistics.median(times), 3), interactive_min_s=times[0],
                   interactive_max_s=times[-1], target_met=statistics.median(times) <= TARGETS[mode])
        rendered = sorted(r["rendered_s"] for r in runs if r.get("ok"))
        out["rendered_median_s"] = round(statistics.median(rendered), 3)
    out["load1_range"] = [min(r["load1_before"] for r in runs), max(r["load1_after"] for r in runs)]
    out["cpus"] = os.cpu_count()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per mode")
    ap.add_argument("--modes", default="cold,preheated", help="comma-separated: cold, preheated")
    ap.add_argument("--timeout", type=float, default=180, help="seconds a page waits at most")
    ap.add_argument("--pool-timeout", type=float, default=600, help="seconds to wait for the pool")
    ap.add_argument("--keep", action="store_true", help="keep the servers' folders and logs (printed)")
    ap.add_argument("--voila-arg", action="append", default=[], metavar="ARG",
                    help="added to Voilà's command line, e.g. --voila-arg=--VoilaConfiguration.default_pool_size=1")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    repeat = max(1, min(args.repeat, 20))
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(TARGETS)
    if unknown:
        ap.error(f"unknown mode(s) {sorted(unknown)}: pass cold and/or preheated")
    root = Path(tempfile.mkdtemp(prefix="wb-app-start-"))
    lines = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for mode in modes:
                    if mode == "cold":
                        runs = []
                        for i in range(repeat):
                            folder = root / f"cold-{i + 1}"
                            folder.mkdir()
                            shutil.copy(APP, folder / APP.name)
                            r = run_cold(browser, folder, args.timeout, tuple(args.voila_arg))
                            r["run"] = i + 1
                            print(json.dumps(r), flush=True)
                            runs.append(r)
                    else:
                        folder = root / "preheated"
                        folder.mkdir()
                        shutil.copy(APP, folder / APP.name)
                        runs = run_preheated(browser, folder, repeat, args.timeout, args.pool_timeout,
                                             tuple(args.voila_arg))
                    lines.append(summary(mode, runs))
            finally:
                browser.close()
    finally:
        if args.keep:
            print(json.dumps({"benchmark": "app_start", "folder": str(root)}), flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    for line in lines:
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()

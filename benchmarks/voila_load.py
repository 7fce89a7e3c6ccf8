"""Load on the published app: concurrent visitors of ``notebooks/apps/workbench_app.ipynb`` served by
standalone Voilà with the app's own configuration (``binder/app/voila.json``, what ``scripts/start
--app`` runs), on 127.0.0.1 only, bounded in visitors, time and memory.

1. Voilà starts with a preheated pool of ``--pool`` kernels (default: one per visitor) and culling
   shortened for the run (``--cull-timeout`` / ``--cull-interval``); the run waits until Voilà logs
   that the pool is filled and the kernels have run the notebook (``pool_ready_s``).
2. ``--visitors`` visitors open the app at the same moment. ``--browsers`` of them (default 2) are
   headless Chromium pages (Debian's chromium via Playwright, one context each): their **time to
   first render** runs from the request to the app's widgets drawn in the page with their data from
   the kernel (the model description ``digits-cnn (torch)``), i.e. a working page. The others do on
   the wire what a browser does: the page's HTML, every script and style it names from this server,
   the kernel's websocket (v1 protocol) and the app widget's state from the kernel; their time runs
   to that state's arrival. (Twenty Chromium pages on the same two cores as the server measure the
   client machine, not the server: each page parses ~10 MB of JavaScript.)
3. The visitors leave by closing their browser context or socket (as a killed tab does) and
   the run counts, after the cull interval, the kernels that served them and are still alive
   (``kernels_left``, target 0), and the kernels alive in all (the refilled pool).
4. ``peak_rss_mb``: the highest resident memory of the server and all its kernels together, sampled
   every 0.5 s over the whole run.

Prints one JSON line. Targets: every visitor gets a working page; ``ttfr_p90_s`` ≤ 10 s with
preheated kernels; ``kernels_left`` 0 after the cull interval.

    python benchmarks/voila_load.py                       # 20 visitors, pool 20
    python benchmarks/voila_load.py --visitors 5 --pool 5 --cull-timeout 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ui.jupyter_servers import CHROMIUM, CHROMIUM_ARGS, voila  # noqa: E402

APP = ROOT / "notebooks" / "apps" / "workbench_app.ipynb"
READY = "pre.wb-describe >> text=digits-cnn (torch)"


def _kernel_pids(server) -> set[int]:
    import psutil

    pids = set()
    for p in server.children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and any("ipykernel" in a for a in p.cmdline()):
                pids.add(p.pid)
        except psutil.Error:
            pass
    return pids


class MemorySampler(threading.Thread):
    """Peak RSS of a process tree, sampled every 0.5 s until stopped."""

    def __init__(self, server) -> None:
        super().__init__(daemon=True)
        self.server, self.peak, self.peak_kernels, self._halt = server, 0, 0, threading.Event()

    def run(self) -> None:
        import psutil

        while not self._halt.wait(0.5):
            total = 0
            try:
                procs = [self.server, *self.server.children(recursive=True)]
            except psutil.Error:
                return
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            if total > self.peak:
                self.peak, self.peak_kernels = total, len(_kernel_pids(self.server))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


async def _visit(browser, url: str, i: int, timeout_s: float) -> dict:
    ctx = await browser.new_context()
    page = await ctx.new_page()
    t0 = time.perf_counter()
    out: dict = {"visitor": i, "browser": True}
    try:
        await page.goto(url, timeout=timeout_s * 1000)
        out["html_s"] = round(time.perf_counter() - t0, 2)
        await page.wait_for_selector(READY, timeout=timeout_s * 1000)
        out["ttfr_s"] = round(time.perf_counter() - t0, 2)
        out["ok"] = await page.locator("text=Deployment Workbench").count() > 0
    except Exception as err:  # noqa: BLE001 - reported per visitor
        out.update(ok=False, error=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
    finally:
        await ctx.close()  # leaves like a killed tab: the kernel is not asked to shut down
    return out


def _visit_protocol(url: str, i: int, timeout_s: float) -> dict:
    """A visitor without a browser: what a browser fetches and says, on the wire. The page's HTML, its
    scripts and styles from this server, then the kernel's websocket (the browsers' v1 protocol) and
    the app widget's state from the kernel: the page works when that state arrives."""
    import re
    import urllib.request

    from tests.ui.kernel_ws import KernelSocket, page_ids

    out: dict = {"visitor": i, "browser": False}
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:  # noqa: S310 - 127.0.0.1 only
            page = r.read().decode()
        kernel_id, models = page_ids(page)  # one request: each takes a kernel from the pool
        html_bytes = 0
        for ref in dict.fromkeys(re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css)[^"]*)"', page)):
            with urllib.request.urlopen(url.rstrip("/") + ref, timeout=timeout_s) as r:  # noqa: S310
                html_bytes += len(r.read())
        out["html_s"] = round(time.perf_counter() - t0, 2)
        out["assets_kb"] = html_bytes // 1024
        sock = KernelSocket(url, kernel_id, v1=True)
        try:
            sock.comm(models[-1], {"method": "request_state"})
            for msg in sock.messages(timeout_s):
                data = msg.get("content", {}).get("data", {})
                if msg.get("msg_type") == "comm_msg" and data.get("method") == "update" and data.get("state"):
                    out["ttfr_s"] = round(time.perf_counter() - t0, 2)
                    out["ok"] = bool(data["state"].get("_view_name"))
                    break
            else:
                out.update(ok=False, error="no widget state from the kernel")
        finally:
            sock.close()  # leaves without asking the kernel to shut down
    except Exception as err:  # noqa: BLE001 - reported per visitor
        out.update(ok=False, error=f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")
    return out


async def _visitors(url: str, n: int, browsers: int, timeout_s: float) -> list[dict]:
    from concurrent.futures import ThreadPoolExecutor

    from playwright.async_api import async_playwright

    loop = asyncio.get_running_loop()
    wire = n - browsers
    with ThreadPoolExecutor(max_workers=max(1, wire)) as pool:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS) if browsers else None
            try:
                tasks = [_visit(browser, url, i, timeout_s) for i in range(browsers)]
                tasks += [loop.run_in_executor(pool, _visit_protocol, url, i, timeout_s) for i in range(browsers, n)]
                return list(await asyncio.gather(*tasks))
            finally:
                if browser is not None:
                    await browser.close()


def _cpu_seconds(server) -> float:
    import psutil

    total = 0.0
    for p in [server, *server.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _wait_pool(log: Path, server, pool: int, deadline: float) -> bool:
    """Voilà logs "filled" when the pool's kernels have started; they have run the notebook when the
    whole process tree then goes quiet (under 0.2 CPU-seconds over 3 s)."""
    while time.monotonic() < deadline:
        if log.exists() and f"is filled with {pool} kernel" in log.read_text(errors="replace"):
            break
        time.sleep(1)
    while time.monotonic() < deadline:
        before = _cpu_seconds(server)
        time.sleep(3)
        if _cpu_seconds(server) - before < 0.2 and len(_kernel_pids(server)) >= pool:
            return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--visitors", type=int, default=20)
    ap.add_argument("--browsers", type=int, default=2,
                    help="how many of the visitors are headless Chromium pages (the rest speak the protocol)")
    ap.add_argument("--pool", type=int, default=None, help="preheated kernels (default: one per visitor)")
    ap.add_argument("--cull-timeout", type=float, default=30, help="seconds idle before a kernel is culled")
    ap.add_argument("--cull-interval", type=float, default=5)
    ap.add_argument("--page-timeout", type=float, default=180, help="seconds a visitor waits at most")
    ap.add_argument("--pool-timeout", type=float, default=900, help="seconds to wait for the pool")
    ap.add_argument("--keep", action="store_true", help="keep the server's folder and log (printed)")
    args = ap.parse_args()
    import psutil

    visitors = max(1, min(args.visitors, 64))  # bounded: this is a load test on one machine
    pool = visitors if args.pool is None else args.pool
    root = Path(tempfile.mkdtemp(prefix="wb-voila-load-"))
    shutil.copy(APP, root / APP.name)
    procs: list = []
    # the pool refills only after the visitors' kernels could be culled: the run measures the
    # visitors and the culler, not the next pool's start competing with them for two cores
    wait = 2 * args.cull_timeout + 4 * args.cull_interval + 30  # the most the run waits for the culler
    fill_delay = wait + 30
    flags = (f"--VoilaConfiguration.default_pool_size={pool}",
             f"--MappingKernelManager.cull_idle_timeout={args.cull_timeout:g}",
             f"--MappingKernelManager.cull_interval={args.cull_interval:g}",
             f"--VoilaKernelManager.fill_delay={fill_delay:g}")
    result: dict = {"benchmark": "voila_load", "visitors": visitors, "pool": pool,
                    "cull_idle_timeout_s": args.cull_timeout, "cull_interval_s": args.cull_interval}
    t_start = time.monotonic()
    try:
        with voila(root, APP.name, app_config=True, args=flags, proc_out=procs) as url:
            server = psutil.Process(procs[0].pid)
            sampler = MemorySampler(server)
            sampler.start()
            log = next(root.glob("voila-*.log"))
            result["pool_ready"] = _wait_pool(log, server, pool, time.monotonic() + args.pool_timeout) if pool else True
            result["pool_ready_s"] = round(time.monotonic() - t_start, 1)
            served = _kernel_pids(server)
            runs = asyncio.run(_visitors(url, visitors, min(args.browsers, visitors), args.page_timeout))
            times = sorted(r["ttfr_s"] for r in runs if "ttfr_s" in r)
            result["browser_ttfr_s"] = sorted(r["ttfr_s"] for r in runs if r["browser"] and "ttfr_s" in r)
            result["browser_pages_ok"] = sum(bool(r.get("ok")) for r in runs if r["browser"])
            result["working_pages"] = sum(bool(r.get("ok")) for r in runs)
            html = sorted(r["html_s"] for r in runs if "html_s" in r)
            if html:  # the page's HTML (the preheated kernel's rendered notebook) arrived
                result["html_p50_s"], result["html_max_s"] = round(statistics.median(html), 2), html[-1]
            result["errors"] = [r["error"] for r in runs if "error" in r][:5]
            if times:
                q = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else [times[0]] * 9
                result.update(ttfr_p50_s=round(statistics.median(times), 2), ttfr_p90_s=round(q[8], 2),
                              ttfr_max_s=times[-1], ttfr_min_s=times[0])
            result["kernels_after_visits"] = len(_kernel_pids(server))
            # the visitors' kernels: those of the preheated pool (each visitor took one) plus any
            # started for a visitor who found the pool empty
            visitor_kernels = served | (_kernel_pids(server) - served) if pool < visitors else served
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and (_kernel_pids(server) & visitor_kernels):
                time.sleep(1)
            result["kernels_left"] = len(_kernel_pids(server) & visitor_kernels)
            result["kernels_left_after_s"] = round(wait - max(0.0, deadline - time.monotonic()), 1)
            result["kernels_alive"] = len(_kernel_pids(server))
            sampler.stop()
            result["peak_rss_mb"] = round(sampler.peak / 2**20)
            result["peak_kernels"] = sampler.peak_kernels
    finally:
        if args.keep:
            result["folder"] = str(root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    result["ttfr_p90_target_met"] = result.get("ttfr_p90_s", 1e9) <= 10
    result["wall_s"] = round(time.monotonic() - t_start, 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

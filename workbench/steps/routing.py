"""Routing: bring a model into a format a runtime takes, through the registered export/convert steps.

The planning itself lives in the registry (``registry.route``, ``registry.prepare_for``), because
``Model.evaluate`` in core needs it too; this module is the steps layer's name for it."""

from __future__ import annotations

from workbench.core import registry
from workbench.core.model import Model


def default_backend(model: Model) -> str:
    """The natural runtime for a model's format (declared by the runtimes: ``Runner.default_for``)."""
    return registry.default_runtime(model.format)


prepare_for = registry.prepare_for
runner = registry.open_runner

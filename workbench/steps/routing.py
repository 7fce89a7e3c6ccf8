"""Routing: bring a model into a format a runtime takes, through the registered export/convert steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.core import registry
from workbench.core.errors import IncompatibleModel
from workbench.core.model import Model

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.runner import Runner


def default_backend(model: Model) -> str:
    """The natural runtime for a model's format (declared by the runtimes: ``Runner.default_for``)."""
    return registry.default_runtime(model.format)


def prepare_for(model: Model, backend: str) -> Model:
    """``model`` in a format ``backend`` takes: itself, or the result of the shortest chain of registered
    export/convert steps to such a format (cached on the model, run unvalidated: callers compare)."""
    cls = registry.get_runtime(backend)
    if model.format in cls.formats:
        return model
    chains = []
    for fmt in cls.formats:
        try:
            chains.append(registry.route(model.format, fmt))
        except Exception:  # noqa: BLE001 - no route to this format; try the next
            continue
    if not chains:
        raise IncompatibleModel(
            f"{cls.name} cannot run a {model.format} model, and there is no conversion path from {model.format}",
            f"{cls.name} takes: {', '.join(cls.formats)}",
        )
    chain = min(chains, key=len)
    cache = model.metadata.setdefault("runner_conversions", {})
    key = " > ".join(f"{s.kind}:{s.target}" for s in chain)
    if key not in cache:
        current = model
        for step in chain:
            current = step.func(current, validate=False)  # the caller compares if it wants
        cache[key] = current
    return cache[key]


def runner(model: Model, backend: str, **options: Any) -> Runner:
    """A Runner for ``model`` on ``backend``, converting the model first when the runtime needs another format."""
    return registry.get_runtime(backend)(prepare_for(model, backend), **options)

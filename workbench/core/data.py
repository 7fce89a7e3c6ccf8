"""Inputs to run models on: the one place example, batched and renamed feeds are made.

* ``feeds_for(model, feeds)``: ``feeds`` with ``model``'s input names (a converted model may rename its
  inputs; the arrays are matched by position then);
* ``input_sets(model, n, batch)``: ``n`` seeded input sets from the model's task (or its input specs);
* ``batch_feeds(model, batch, source=None)``: one input set of ``batch`` items for ``model``, drawn from
  ``source``'s task (the model a step's result came from), refusing a batch a fixed axis cannot take.

The feeds themselves come from ``Model.example_inputs`` (the task's real data, the example given at load
time, or seeded random arrays shaped by the input specs: ``workbench.core.model.random_feeds``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from workbench.core.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.model import Model

Feeds = dict[str, np.ndarray]


def feeds_for(model: Model, feeds: Feeds) -> Feeds:
    """``feeds`` renamed to ``model``'s input names by position when the names differ."""
    names = model.input_names
    if not names or all(n in feeds for n in names):
        return {n: feeds[n] for n in names} if names else feeds
    if len(names) == len(feeds):
        return dict(zip(names, feeds.values(), strict=True))
    raise InputError(f"inputs {list(feeds)} do not match {model.name}'s inputs {names}",
                     "pass inputs= with the model's input names")


def input_sets(model: Model, n: int = 3, batch: int | None = None) -> list[Feeds]:
    """``n`` seeded input sets (seeds ``0 … n-1``) from the model's task, or its input specs."""
    return [model.example_inputs(batch=batch, seed=seed) for seed in range(n)]


def batch_feeds(model: Model, batch: int, source: Model | None = None) -> Feeds:
    """Example inputs of ``batch`` items for ``model``, from ``source``'s task (default: ``model``'s own).

    Raises InputError when an input of ``model`` has a fixed batch axis of another size.
    """
    for spec in model.inputs:
        if spec.shape and isinstance(spec.shape[0], int) and spec.shape[0] != batch:
            raise InputError(f"{model.name} has a fixed batch of {spec.shape[0]} on input {spec.name!r}",
                             "benchmark that batch size, or export the model with a dynamic batch axis")
    return feeds_for(model, (source or model).example_inputs(batch=batch))


def batch_of(feeds: Feeds | None) -> int:
    """The batch size of a feeds dict: the first axis of its first input (1 for none or a scalar)."""
    if not feeds:
        return 1
    first = next(iter(feeds.values()))
    return int(np.shape(first)[0]) if np.ndim(first) else 1

"""What a zoo entry is: a model builder plus a ``Task`` (its data and its metric)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core import settings

Feeds = dict[str, np.ndarray]
Predict = Callable[[Feeds], Feeds]


def cache_dir() -> Path:
    """Where trained zoo weights are cached (``$WORKBENCH_CACHE``, default ``~/.cache/workbench``)."""
    root = settings.cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    return root


class Task:
    """The data a model comes with: example inputs, calibration data and, where real data exists,
    evaluation data with a task metric. Every model derived from a zoo model (exported, converted,
    quantized) keeps its task, so each step can be scored the same way."""

    name: str = "task"
    metric_name: str = "none"
    description: str = ""
    has_evaluation: bool = False
    #: ``metric: larger is better``; used to compute a "drop"
    higher_is_better: bool = True

    def example_inputs(self, batch: int | None = None, seed: int = 0) -> Feeds:
        raise NotImplementedError

    def calibration_data(self, n: int = 32, batch: int = 1) -> list[Feeds]:
        return [self.example_inputs(batch=batch, seed=1000 + i) for i in range(n)]

    def evaluate(self, predict: Predict, batch_size: int | None = None) -> dict[str, float]:
        """Run ``predict`` (a Runner's ``infer``) over the evaluation data; return the metrics."""
        raise NotImplementedError(f"task {self.name!r} has no evaluation data")

    def __repr__(self) -> str:
        return f"<Task {self.name} metric={self.metric_name}>"


class RandomTask(Task):
    """Seeded random inputs for architectures without real data (their weights are random too)."""

    def __init__(self, name: str, specs: list[Any], default_batch: int = 1):
        from workbench.core.model import random_feeds

        self.name = name
        self._specs = specs
        self._random_feeds = random_feeds
        self._default_batch = default_batch
        self.description = "seeded random inputs; random weights: for speed and numerics work, not accuracy"

    def example_inputs(self, batch: int | None = None, seed: int = 0) -> Feeds:
        return self._random_feeds(self._specs, batch=batch or self._default_batch, seed=seed)


@dataclass(frozen=True)
class ZooEntry:
    """One built-in model: ``build()`` returns the ``Model``."""

    name: str
    summary: str
    build: Callable[..., Any]
    task: str
    needs: str | None = None  # the pip extra that must be installed, if any

    def available(self) -> tuple[bool, str | None]:
        if self.needs is None:
            return True, None
        from workbench.zoo import extra_missing

        missing = extra_missing(self.name)
        return (missing is None), missing

"""``resnet18``: ResNet-18 (He et al. 2015), written here; seeded random weights."""

from __future__ import annotations

from typing import Any


def resnet18_module(num_classes: int = 1000) -> Any:
    from workbench.zoo.nets import ResNet18

    return ResNet18(num_classes)


def build(seed: int = 0, **_: Any) -> Any:
    """ResNet-18 as a torch ``Model`` with seeded random weights and seeded random example images."""
    from workbench.zoo.weights import random_image_classifier

    return random_image_classifier("resnet18", resnet18_module(), seed)

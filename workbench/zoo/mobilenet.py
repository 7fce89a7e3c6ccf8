"""``mobilenetv2``: MobileNetV2 (Sandler et al. 2018), width 1.0, written here; seeded random weights."""

from __future__ import annotations

from typing import Any


def divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def mobilenetv2_module(num_classes: int = 1000) -> Any:
    from workbench.zoo.nets import MobileNetV2

    return MobileNetV2(num_classes)


def build(seed: int = 0, **_: Any) -> Any:
    """MobileNetV2 as a torch ``Model`` with seeded random weights and seeded random example images."""
    from workbench.zoo.weights import random_image_classifier

    return random_image_classifier("mobilenetv2", mobilenetv2_module(), seed)

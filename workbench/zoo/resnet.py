"""``resnet18``: ResNet-18 (He et al. 2015), written here; seeded random weights."""

from __future__ import annotations

from typing import Any

from workbench.zoo.base import RandomTask

INPUT, OUTPUT = "input", "logits"
SHAPE = (3, 224, 224)


def resnet18_module(num_classes: int = 1000) -> Any:
    from workbench.zoo.nets import ResNet18

    return ResNet18(num_classes)


def build(seed: int = 0, **_: Any) -> Any:
    """ResNet-18 as a torch ``Model`` with seeded random weights and seeded random example images."""
    from workbench.formats.torch_module import from_module
    from workbench.model import TensorSpec
    from workbench.zoo._init import seeded_init

    module = resnet18_module()
    seeded_init(module, seed, (4, *SHAPE))
    task = RandomTask("random-images", [TensorSpec(INPUT, ("batch", *SHAPE), "float32")])
    return from_module(module, task.example_inputs(batch=1), name="resnet18", task=task,
                       input_names=[INPUT], output_names=[OUTPUT])

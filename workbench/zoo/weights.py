"""Deterministic initialisation shared by the random-weight zoo architectures."""

from __future__ import annotations

from typing import Any


def seeded_init(model: Any, seed: int, calib_shape: tuple[int, ...], batches: int = 2) -> None:
    """Seeded Kaiming init, then BatchNorm statistics estimated on seeded random images.

    With BN statistics fitted to the data, activations stay near unit scale through the network,
    so the random-weight models behave numerically like trained ones (important for fp16/bf16/INT8
    comparisons).
    """
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
            with torch.no_grad():
                m.weight.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=g)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.normal_(0.0, 0.01, generator=g)
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(calib_shape, generator=g))
    model.eval()


IMAGE_INPUT, IMAGE_OUTPUT, IMAGE_SHAPE = "input", "logits", (3, 224, 224)


def random_image_classifier(name: str, module: Any, seed: int) -> Any:
    """An ImageNet-shaped classifier (``input`` N×3×224×224 → ``logits``) as a torch ``Model``, with
    seeded random weights (``seeded_init``) and seeded random example images."""
    from workbench.core.model import TensorSpec
    from workbench.formats.torch_module import from_module
    from workbench.zoo.base import RandomTask

    seeded_init(module, seed, (4, *IMAGE_SHAPE))
    task = RandomTask("random-images", [TensorSpec(IMAGE_INPUT, ("batch", *IMAGE_SHAPE), "float32")])
    return from_module(module, task.example_inputs(batch=1), name=name, task=task,
                       input_names=[IMAGE_INPUT], output_names=[IMAGE_OUTPUT])

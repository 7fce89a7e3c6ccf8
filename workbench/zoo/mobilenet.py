"""``mobilenetv2``: MobileNetV2 (Sandler et al. 2018), width 1.0, written here; seeded random weights."""

from __future__ import annotations

from typing import Any

from workbench.zoo.base import RandomTask

INPUT, OUTPUT = "input", "logits"
SHAPE = (3, 224, 224)


def _divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def mobilenetv2_module(num_classes: int = 1000) -> Any:
    import torch
    from torch import nn

    def conv_bn(inp: int, oup: int, k: int, stride: int, groups: int = 1, act: bool = True) -> nn.Sequential:
        layers = [nn.Conv2d(inp, oup, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(oup)]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        return nn.Sequential(*layers)

    class InvertedResidual(nn.Module):
        def __init__(self, inp: int, oup: int, stride: int, expand: int):
            super().__init__()
            hidden = inp * expand
            self.use_res = stride == 1 and inp == oup
            layers = [conv_bn(inp, hidden, 1, 1)] if expand != 1 else []
            layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, oup, 1, 1, act=False)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.conv(x) if self.use_res else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
            inp = _divisible(32)
            feats: list[nn.Module] = [conv_bn(3, inp, 3, 2)]
            for t, c, n, s in settings:
                out = _divisible(c)
                for i in range(n):
                    feats.append(InvertedResidual(inp, out, s if i == 0 else 1, t))
                    inp = out
            feats.append(conv_bn(inp, 1280, 1, 1))
            self.features = nn.Sequential(*feats)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002
            x = nn.functional.adaptive_avg_pool2d(self.features(input), 1)
            return self.classifier(torch.flatten(x, 1))

    return MobileNetV2()


def build(seed: int = 0, **_: Any) -> Any:
    """MobileNetV2 as a torch ``Model`` with seeded random weights and seeded random example images."""
    from workbench.formats.torch_module import from_module
    from workbench.model import TensorSpec
    from workbench.zoo._init import seeded_init

    module = mobilenetv2_module()
    seeded_init(module, seed, (4, *SHAPE))
    task = RandomTask("random-images", [TensorSpec(INPUT, ("batch", *SHAPE), "float32")])
    return from_module(module, task.example_inputs(batch=1), name="mobilenetv2", task=task,
                       input_names=[INPUT], output_names=[OUTPUT])

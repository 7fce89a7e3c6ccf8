"""``resnet18``: ResNet-18 (He et al. 2015), written here; seeded random weights."""

from __future__ import annotations

from typing import Any

from workbench.zoo.base import RandomTask

INPUT, OUTPUT = "input", "logits"
SHAPE = (3, 224, 224)


def resnet18_module(num_classes: int = 1000) -> Any:
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes: int, planes: int, stride: int = 1):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    class ResNet18(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            layers, inplanes = [], 64
            for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers.append(nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes)))
                inplanes = planes
            self.layer1, self.layer2, self.layer3, self.layer4 = layers
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, num_classes)

        def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - the input's public name
            x = self.maxpool(self.relu(self.bn1(self.conv1(input))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet18()


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

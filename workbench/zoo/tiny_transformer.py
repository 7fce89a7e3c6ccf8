"""``tiny-transformer``: a 2-layer pre-norm Transformer encoder for exporter and kernel work.

Attention is written out (no fused SDPA) so every piece is a visible, swappable module: each block's
``attn.softmax`` is an ``nn.Softmax(dim=-1)`` and its norms are ``nn.LayerNorm`` modules, so a
kernel-backed module can replace them by module swap. Seeded random weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.zoo.base import Feeds, Task

INPUT, OUTPUT = "input_ids", "logits"
VOCAB, D_MODEL, HEADS, LAYERS, FF, CLASSES, MAX_LEN = 1000, 64, 4, 2, 128, 8, 128
EXAMPLE_SEQ = 12


def tiny_transformer_module() -> Any:
    from workbench.zoo.nets import TinyTransformer

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

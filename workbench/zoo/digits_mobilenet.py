"""``digits-mobilenet``: a small MobileNet (depthwise-separable convolutions, BatchNorm, ReLU6) trained here
on scikit-learn's digits, where per-tensor INT8 genuinely fails.

The failure is the one MobileNets are known for (Krishnamoorthi 2018, "Quantizing deep convolutional
networks for efficient inference"; Nagel et al. 2019, "Data-Free Quantization"), and nothing here plants
it: trained with a high learning rate, some ReLU6 channels die (their output is 0 for every input); the
depthwise convolution after a dead channel sees only zeros, so its BatchNorm's running variance decays to
~1e-8, and when the BatchNorm is folded into the convolution (the exporter and ONNX Runtime's
pre-processing both do) that channel's weights are multiplied by ``gamma / sqrt(var + eps)`` ≈ 300×. The
float model does not care (the channel multiplies zeros), but one INT8 scale per tensor must now cover
weights ~300× larger than the live channels', which are left with a level or two: accuracy falls from
~97% to ~10%. Per-channel weight scales (or keeping those depthwise layers float) bring it back. The
quantization debugger finds the layers and says why (``weight_spread``).

Trained once (~10 s on one CPU thread, deterministic: one thread, fixed seeds) and cached; the held-out
25% split of digits is its evaluation data and accuracy its metric (the ``digits-cnn`` task).
"""

from __future__ import annotations

from typing import Any

from workbench.zoo.base import cache_dir
from workbench.zoo.digits import INPUT, OUTPUT, DigitsTask, splits

WEIGHTS_VERSION = "v1"  # bump when the architecture or the training recipe changes
NAME = "digits-mobilenet"
WIDTH = 48
#: Adam at a high learning rate (where channels die), then a tenth of it to settle
EPOCHS, SETTLE_EPOCHS, LR, BATCH = 5, 3, 0.05, 64


def _train(model: Any) -> None:
    import torch

    x_tr, _, y_tr, _ = splits()
    g = torch.Generator().manual_seed(0)
    x, y = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()
    for epoch in range(EPOCHS + SETTLE_EPOCHS):
        for group in opt.param_groups:
            group["lr"] = LR if epoch < EPOCHS else LR / 10
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()


def build(**_: Any) -> Any:
    """The trained ``digits-mobilenet`` as a torch ``Model`` (trained on first use, then loaded from cache)."""
    import torch
    from safetensors.torch import load_file, save_file

    from workbench.formats.torch_module import from_module
    from workbench.zoo.nets import DigitsMobileNet

    path = cache_dir() / f"{NAME}-{WEIGHTS_VERSION}.safetensors"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = DigitsMobileNet(WIDTH)
        if path.exists():
            model.load_state_dict(load_file(str(path)))
        else:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # one thread: the same sums in the same order on every machine
            try:
                _train(model)
            finally:
                torch.set_num_threads(threads)
            tmp = path.with_suffix(f".{id(model)}.tmp")
            save_file(model.state_dict(), str(tmp))
            tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    model.eval()
    task = DigitsTask()
    return from_module(model, task.example_inputs(batch=1), name=NAME, task=task,
                       input_names=[INPUT], output_names=[OUTPUT], dynamic_axes={INPUT: {0: "batch"}})

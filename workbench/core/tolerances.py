"""Tolerances per precision, stated in one place.

Every "do these outputs match?" check in the workbench (runner agreement, step validation,
``wb.compare`` defaults) takes its thresholds from here. Errors are measured relative to the output's
scale, so one table serves logits, embeddings and feature maps alike:

* ``rel_l2``: ‖candidate − reference‖₂ / ‖reference‖₂ must be at most this;
* ``max_abs``: max |candidate − reference| / (max |reference| + 1e-12) must be at most this;
* ``cosine``: the cosine similarity of the flattened outputs must be at least this.

The figures come from what the runtimes give on the zoo models here: fp32 runtimes differ from torch
eager by ~1e-6 relative (operation order, fused kernels); bf16 keeps 8 bits of mantissa (~4e-3 per
operation, growing with depth: OpenVINO's bf16 MobileNetV2 here is 9e-2 relative L2 and cosine 0.996 from
fp32); INT8 post-training quantization typically keeps cosine ≥ 0.99.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    rel_l2: float
    max_abs: float
    cosine: float

    def check(self, rel_l2: float, max_abs_rel: float, cosine: float) -> bool:
        return rel_l2 <= self.rel_l2 and max_abs_rel <= self.max_abs and cosine >= self.cosine


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(rel_l2=1e-4, max_abs=1e-3, cosine=0.99999),
    "fp16": Tolerance(rel_l2=1e-2, max_abs=5e-2, cosine=0.9995),
    "bf16": Tolerance(rel_l2=1.5e-1, max_abs=3e-1, cosine=0.99),
    "int8": Tolerance(rel_l2=2e-1, max_abs=5e-1, cosine=0.98),
    "int4": Tolerance(rel_l2=3e-1, max_abs=1.0, cosine=0.95),
}


def tolerance(precision: str) -> Tolerance:
    """The tolerance for ``precision`` (``"fp32"``, ``"fp16"``, ``"bf16"``, ``"int8"``, ``"int4"``)."""
    key = {"f32": "fp32", "f16": "fp16", "float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(precision, precision)
    if key not in TOLERANCES:
        raise KeyError(f"no tolerance for precision {precision!r}; known: {sorted(TOLERANCES)}")
    return TOLERANCES[key]


def metrics(reference, candidate) -> tuple[float, float, float]:  # noqa: ANN001 - numpy arrays
    """(rel_l2, max_abs relative to the reference's max magnitude, cosine) of two arrays."""
    import numpy as np

    ref = np.asarray(reference, np.float64).ravel()
    cand = np.asarray(candidate, np.float64).ravel()
    diff = cand - ref
    norm = np.linalg.norm(ref)
    rel_l2 = float(np.linalg.norm(diff) / norm) if norm > 0 else float(np.linalg.norm(diff))
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    max_abs = float(np.abs(diff).max() / (scale + 1e-12)) if ref.size else 0.0
    denom = np.linalg.norm(ref) * np.linalg.norm(cand)
    cosine = float(ref @ cand / denom) if denom > 0 else (1.0 if not diff.any() else 0.0)
    return rel_l2, max_abs, cosine

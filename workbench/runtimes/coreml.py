"""Core ML (Apple). Prediction needs macOS; elsewhere the backend reports itself unavailable, and
Core ML models can still be converted, loaded and inspected."""

from __future__ import annotations

import platform
from typing import ClassVar

import numpy as np

from workbench.core.errors import BackendUnavailable
from workbench.core.registry import register_runtime
from workbench.core.runner import Runner


@register_runtime
class CoreMLRunner(Runner):
    """Options: ``compute_units`` (``"ALL"`` default, ``"CPU_ONLY"``, ``"CPU_AND_GPU"``, ``"CPU_AND_NE"``)."""

    name: ClassVar[str] = "coreml"
    formats: ClassVar[tuple[str, ...]] = ("coreml",)
    distributions: ClassVar[tuple[str, ...]] = ("coremltools",)
    aliases: ClassVar[tuple[str, ...]] = ()
    default_for: ClassVar[tuple[str, ...]] = ("coreml",)
    devices: ClassVar[tuple[str, ...]] = ("CPU", "GPU", "ANE")
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "int8")

    @classmethod
    def _check_available(cls) -> str:
        import importlib.metadata as md

        try:
            version = md.version("coremltools")
        except md.PackageNotFoundError:
            raise BackendUnavailable("coremltools is not installed",
                                     "pip install 'deployment-workbench[coreml]'") from None
        if platform.system() != "Darwin":
            raise BackendUnavailable(
                f"Core ML prediction needs macOS (the Core ML framework); this machine runs {platform.system()}",
                "run Core ML models on a Mac; here you can still convert (wb.convert(m, 'coreml')) and inspect them",
            )
        return version

    def _prepare_impl(self) -> None:
        import coremltools as ct

        units = getattr(ct.ComputeUnit, self.options.get("compute_units", "ALL"))
        self.mlmodel = ct.models.MLModel(str(self.model.path), compute_units=units)

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.mlmodel.predict(feeds)
        return {s.name: np.asarray(out[s.name]) for s in self.model.outputs}

    def _close_impl(self) -> None:
        self.mlmodel = None

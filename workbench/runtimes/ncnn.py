"""ncnn (Tencent's inference runtime for mobile and embedded CPUs), through its Python binding.

ncnn runs one sample at a time and its blobs have no batch axis: the runner feeds each sample of a
batch in turn and stacks the outputs. Its default options store activations in fp16/bf16 where the CPU
supports it (as on phones); ``precision="fp32"`` turns that off (what validation uses).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from workbench.core.errors import BackendUnavailable, InferenceError, WorkbenchError
from workbench.core.registry import register_runtime
from workbench.core.runner import Runner, physical_cores

INSTALL = "pip install 'deployment-workbench[ncnn]'"
#: ncnn.Option switches per precision (None: ncnn's own defaults)
PRECISIONS: dict[str, dict[str, bool]] = {
    "fp32": {"use_fp16_storage": False, "use_fp16_packed": False, "use_fp16_arithmetic": False,
             "use_bf16_storage": False},
    "fp16": {"use_fp16_storage": True, "use_fp16_packed": True, "use_fp16_arithmetic": True,
             "use_bf16_storage": False},
    "bf16": {"use_fp16_storage": False, "use_fp16_packed": False, "use_fp16_arithmetic": False,
             "use_bf16_storage": True},
}


def _ncnn() -> Any:
    try:
        import ncnn
    except ImportError:
        raise BackendUnavailable("ncnn is not installed", INSTALL) from None
    return ncnn


@register_runtime
class NcnnRunner(Runner):
    """Options:
        precision: ``"fp32"`` (validation's choice), ``"fp16"``, ``"bf16"``; default: ncnn's own options
            (fp16 storage where the CPU has it).
        threads: ``Option.num_threads`` (default: the physical cores).
        light_mode: free intermediate blobs as soon as they are read (ncnn's default, True).
    """

    name: ClassVar[str] = "ncnn"
    formats: ClassVar[tuple[str, ...]] = ("ncnn",)
    distributions: ClassVar[tuple[str, ...]] = ("ncnn",)
    default_for: ClassVar[tuple[str, ...]] = ("ncnn",)
    tunable: ClassVar[tuple[str, ...]] = ("threads", "precision")
    devices: ClassVar[tuple[str, ...]] = ("CPU",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16")

    @classmethod
    def _check_available(cls) -> str:
        return str(getattr(_ncnn(), "__version__", "?"))

    @classmethod
    def reference_options(cls) -> dict[str, Any]:
        """fp32: ncnn's defaults store activations in fp16 on CPUs that have F16C/NEON fp16."""
        return {"precision": "fp32"}

    def _prepare_impl(self) -> None:
        ncnn = _ncnn()
        precision = self.options.get("precision")
        if precision is not None and precision not in PRECISIONS:
            raise WorkbenchError(f"unknown ncnn precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
        net = ncnn.Net()
        net.opt.num_threads = int(self.options.get("threads") or physical_cores())
        net.opt.lightmode = bool(self.options.get("light_mode", True))
        for key, value in PRECISIONS.get(precision or "", {}).items():
            setattr(net.opt, key, value)
        path = self.model.path
        if path is None:
            raise WorkbenchError("the ncnn runner needs a model on disk (.param + .bin)",
                                 "convert with wb.convert(model, 'ncnn') or load a .param file")
        if net.load_param(str(path)) != 0 or net.load_model(str(path.with_suffix(".bin"))) != 0:
            raise InferenceError(f"ncnn could not load {path.name} with {path.with_suffix('.bin').name}",
                                 "the .bin does not match the .param (or uses a layer this ncnn lacks): "
                                 "export both again with pnnx")
        self.net = net
        self._inputs = list(self.model.input_names)
        self._outputs = list(self.model.output_names)

    def effective_precision(self) -> str | None:
        """fp16 / bf16 / fp32, from the storage options ncnn runs with."""
        if not self.is_prepared:
            return super().effective_precision()
        opt = self.net.opt
        return "fp16" if opt.use_fp16_storage else "bf16" if opt.use_bf16_storage else "fp32"

    def effective_threads(self) -> int | None:
        return int(self.net.opt.num_threads) if self.is_prepared else super().effective_threads()

    def run_one(self, sample: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One sample (no batch axis) through an Extractor: the outputs in the model's order."""
        import ncnn

        with self.net.create_extractor() as ex:
            mats = []  # keep the Mats alive until extraction ends
            for name in self._inputs:
                mat = ncnn.Mat(np.ascontiguousarray(sample[name], dtype=np.float32))
                mats.append(mat)
                ex.input(name, mat)
            out = []
            for name in self._outputs:
                ret, mat = ex.extract(name)
                if ret != 0:
                    raise InferenceError(f"ncnn could not compute {name!r} (error {ret})",
                                         "check the input shapes: ncnn takes one sample of the shape the "
                                         "model was exported with")
                out.append(np.array(mat, copy=True))
        return out

    def inference_call(self, feeds: dict[str, np.ndarray]) -> Any:
        """One Extractor run per sample on Mats made once; outputs left in ncnn's Mats."""
        import ncnn

        batch = next(iter(feeds.values())).shape[0] if feeds else 1
        arrays = [[np.ascontiguousarray(feeds[n][i], dtype=np.float32) for n in self._inputs] for i in range(batch)]
        mats = [[ncnn.Mat(a) for a in sample] for sample in arrays]
        net, inputs, outputs = self.net, self._inputs, self._outputs

        def call() -> list[Any]:
            out = []
            for sample in mats:
                with net.create_extractor() as ex:
                    for name, mat in zip(inputs, sample, strict=True):
                        ex.input(name, mat)
                    out.extend(ex.extract(name)[1] for name in outputs)
            return out

        call.keep = arrays  # type: ignore[attr-defined]  # the Mats read these arrays' memory
        return call

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = next(iter(feeds.values())).shape[0] if feeds else 1
        per_sample = [self.run_one({n: feeds[n][i] for n in self._inputs}) for i in range(batch)]
        return {name: np.stack([s[k] for s in per_sample]) for k, name in enumerate(self._outputs)}

    def _close_impl(self) -> None:
        net = getattr(self, "net", None)
        if net is not None:
            net.clear()
        self.net = None


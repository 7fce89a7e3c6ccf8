"""The facade: the one place that turns what a user passes (a zoo name, a path, an ``nn.Module``) into a
``Model``, and that plans the conversions a runtime needs.

Everything here is derived from the registry (``workbench.core.registry``): the runtimes ``backends()``
lists, the formats ``load()`` detects, the chain of steps ``runner()`` runs to bring a model into a
format the runtime takes.
"""

from __future__ import annotations

import os
import re
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core import registry
from workbench.core.errors import ModelFormatError
from workbench.core.model import Model
from workbench.steps import base, pipeline, routing
from workbench.steps import convert as convert_step
from workbench.steps import export as export_step
from workbench.steps import quantize as quantize_step

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from workbench.core.runner import Runner

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def load(source: Any, example_inputs: Any = None, *, trust: bool = False, **options: Any) -> Model:
    """Load a model from anything the workbench understands, and return a ``Model``.

    Args:
        source: a zoo name (``wb.zoo.list()``); a ``torch.nn.Module`` (pass ``example_inputs``);
            a path to a file or folder of any registered format (``.pt`` TorchScript, ``.pt2``
            ExportedProgram, ``.onnx`` with its external data, ``.xml`` + ``.bin`` OpenVINO IR,
            ``.mlpackage``/``.mlmodel`` Core ML, a Hugging Face model folder, …); or a Hugging Face hub
            id (needs network access).
        example_inputs: for an ``nn.Module``: a tensor, a tuple of tensors, or a dict name -> tensor.
        trust: allow unpickling arbitrary objects (a ``torch.save``-d whole module). Only for files
            you trust: unpickling runs code.
        **options: format-specific options (``input_names=``, ``output_names=`` for modules).

    The format is detected from the content, not only the extension.
    """
    if isinstance(source, Model):
        return source
    if _is_torch_module(source):
        from workbench.formats import torch_module

        return torch_module.from_module(source, example_inputs, **options)
    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        path = Path(text).expanduser()
        if path.exists():
            if example_inputs is not None:
                options["example_inputs"] = example_inputs
            from workbench.core.detect import load_path

            return load_path(path, trust=trust, **options)
        from workbench import zoo

        if text in zoo.names():
            return zoo.load(text, **options)
        if _HUB_ID.match(text):
            from workbench.formats import hf

            return hf.load_hub(text, **options)
        raise ModelFormatError(
            f"{text!r} is not a file, a folder or a zoo model",
            f"pass an existing path, or one of the zoo names: {', '.join(zoo.names())}",
        )
    raise ModelFormatError(
        f"cannot load a model from a {type(source).__name__}",
        "pass a path, a zoo name, or a torch.nn.Module with example_inputs=",
    )


def _is_torch_module(obj: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")  # a Module can only exist if torch is imported already
    return torch is not None and isinstance(obj, torch.nn.Module)


def backends(as_frame: bool = True) -> pd.DataFrame | list[Any]:
    """Every runtime: available or not, its version, the formats it takes, and if unavailable why and the fix."""
    rows = [cls.availability() for cls in registry.runtimes().values()]
    if not as_frame:
        return rows
    import pandas as pd

    return pd.DataFrame([{
        "backend": a.name, "available": a.available, "version": a.version or "",
        "formats": ", ".join(a.formats), "devices": ", ".join(a.devices), "precisions": ", ".join(a.precisions),
        "reason": a.reason or "", "fix": a.fix or "",
    } for a in rows]).set_index("backend")


def runner(model: Model | Any, backend: str, *, isolate: bool | None = None, timeout: float | None = None,
           memory: int | None = None, **options: Any) -> Runner:
    """A Runner for ``model`` on ``backend``; converts the model when the runtime needs another format.

    Options go to the runtime (e.g. ``providers=``, ``graph_optimization_level=``, ``threads=`` for
    ONNX Runtime; ``device=``, ``hint=``, ``precision=`` for OpenVINO). See each runtime's docstring.

    ``isolate=True`` runs the runtime in the worker process (``workbench.steps.isolation``): a
    crash, a hang past ``timeout`` seconds or an allocation past ``memory`` bytes ends in a
    ``StepError`` and the notebook's process is untouched; use it for untrusted or huge models.
    Default: on in a published app's kernel, off elsewhere.
    """
    from workbench.steps.isolation import IsolatedRunner, isolation_default

    if isolate or (isolate is None and isolation_default()):
        return IsolatedRunner(model_of(model), backend, timeout=timeout, memory=memory, **options)  # type: ignore[return-value]
    return routing.runner(model_of(model), backend, **options)


default_backend = routing.default_backend


# -- the public entry points: load what the user passed, then call the engine --------------------------
def model_of(source: Any) -> Model:
    """``source`` as a Model (anything ``load`` takes); a workspace artifact gets its lineage back from the
    manifest (``workbench.steps.base.source_model``), so a step on ``digits-cnn.onnx`` knows its origin."""
    if isinstance(source, Model):
        return source
    return base.source_model(load(source))


def _target_of(item: Any) -> Any:
    """A compare/benchmark target with its model loaded: a Model, ``(model, backend[, options])`` or a Runner."""
    from workbench.core.runner import Runner

    if isinstance(item, Runner | Model):
        return item
    if isinstance(item, tuple) and item:
        return (model_of(item[0]), *item[1:])
    return model_of(item)


def _targets_of(items: Any) -> Any:
    if isinstance(items, list):
        return [_target_of(i) for i in items]
    return _target_of(items)


@wraps(export_step.export)
def export(model: Any, target: str, **options: Any) -> Model:
    return export_step.export(model_of(model), target, **options)


@wraps(convert_step.convert)
def convert(model: Any, target: str, **options: Any) -> Model:
    return convert_step.convert(model_of(model), target, **options)


def quantize(model: Any, tool: str, method: str | None = None, *, accuracy_budget: float | None = None,
             **options: Any) -> Model:
    """``wb.quantize``: see ``workbench.steps.quantize.quantize``; the model may be a name or path.

    ``accuracy_budget=0.01``: accuracy-aware quantization (``workbench.analysis.quant_debug
    .quantize_within_budget``): the layers that hurt the task metric most stay float, the fewest needed to
    keep the drop within the budget; ``result.metadata["accuracy_budget"]`` tells which and why."""
    if accuracy_budget is not None:
        from workbench.analysis import quant_debug

        return quant_debug.quantize_within_budget(model_of(model), tool, method, accuracy_budget=accuracy_budget,
                                                  **options)
    return quantize_step.quantize(model_of(model), tool, method, **options)


quantize.__doc__ = (quantize_step.quantize.__doc__ or "") + "\n" + (quantize.__doc__ or "")


def quantize_debug(model: Any, quantized: Any, **options: Any) -> Any:
    """``wb.quantize_debug``: see ``workbench.analysis.quant_debug.quantize_debug``; models may be names or paths."""
    from workbench.analysis import quant_debug

    return quant_debug.quantize_debug(model_of(model), model_of(quantized), **options)


class Pipeline(pipeline.Pipeline):
    """``wb.Pipeline``: the engine's Pipeline (``workbench.steps.pipeline``) whose ``run``, ``plan`` and
    ``to_script`` also take a zoo name, a path or an ``nn.Module``."""

    def plan(self, model: Any = None) -> list[dict[str, Any]]:
        return super().plan(None if model is None else model_of(model))

    def check(self, model: Any) -> None:
        super().check(model_of(model))

    def run(self, model: Any, **options: Any) -> pipeline.PipelineRun:
        return super().run(model_of(model), **options)

    def to_script(self, model: Any = None, **options: Any) -> str:
        return super().to_script(None if model is None else model_of(model), **options)


def compare(reference: Any, candidates: Any, *args: Any, **options: Any) -> Any:
    """``wb.compare``: see ``workbench.analysis.compare.compare``; models may be names or paths."""
    from workbench.analysis import compare as module

    return module.compare(_target_of(reference), _targets_of(candidates), *args, **options)


def compare_layers(model: Any, *args: Any, reference: Any = None, **options: Any) -> Any:
    """``wb.compare_layers``: see ``workbench.analysis.layerwise.compare_layers``; models may be names or paths."""
    from workbench.analysis import layerwise

    ref = None if reference is None else model_of(reference)
    return layerwise.compare_layers(model_of(model), *args, reference=ref, **options)


def benchmark(models_or_runners: Any, **options: Any) -> Any:
    """``wb.benchmark``: see ``workbench.analysis.bench.benchmark``; models may be names or paths."""
    from workbench.analysis import bench

    return bench.benchmark(_targets_of(models_or_runners), **options)


def profile_nodes(model: Any, *args: Any, **options: Any) -> Any:
    """``wb.profile_nodes``: see ``workbench.analysis.profile.profile_nodes``; the model may be a name or path."""
    from workbench.analysis import profile

    return profile.profile_nodes(model_of(model), *args, **options)


def autotune(model: Any, **options: Any) -> Any:
    """``wb.autotune``: see ``workbench.analysis.autotune.autotune``; the model may be a name or path."""
    from workbench.analysis import autotune as module

    return module.autotune(model_of(model), **options)


def sweep(models: Any, **options: Any) -> Any:
    """``wb.sweep``: see ``workbench.analysis.sweep.sweep``; models may be names, paths or Models. Each
    trial (a Ray task, or a step of the sequential executor) loads names and paths with ``model_of``."""
    from workbench.analysis import sweep as module

    items = models if isinstance(models, list | tuple) else [models]
    # names and paths travel as they are (each trial loads them where it runs); anything else is loaded here
    loaded = [m if isinstance(m, str | os.PathLike | Model) else model_of(m) for m in items]
    return module.sweep(loaded, loader=options.pop("loader", model_of), **options)


def package(model: Any, target: str, **options: Any) -> Any:
    """``wb.package``: see ``workbench.serving.package``; the model may be a name or path."""
    from workbench import serving

    return serving.package(model_of(model), target, **options)


def serve(model: Any, target: str = "http", **options: Any) -> Any:
    """``wb.serve``: see ``workbench.serving.serve``; the model may be a name or path."""
    from workbench import serving
    from workbench.core import registry as reg

    reg.get_server(target).check_available()  # a server that cannot start here fails before any loading
    return serving.serve(model_of(model), target, **options)


def load_test(endpoint: Any, **options: Any) -> Any:
    """``wb.load_test``: see ``workbench.serving.load_test.load_test``."""
    from workbench.serving import load_test as module

    return module.load_test(endpoint, **options)

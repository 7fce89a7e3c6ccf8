"""Hugging Face transformers models: a local model folder (``config.json`` + weights), or a hub id."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import BackendUnavailable, ModelFormatError, OfflineError, UntrustedCodeError
from workbench.core.model import Model
from workbench.core.registry import Format, register_format
from workbench.formats import hf_tasks
from workbench.formats.torch_module import from_module, read_graph

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.graph import Graph

SAMPLE_TEXT = hf_tasks.SAMPLE_TEXT


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise BackendUnavailable("transformers is not installed", "pip install 'deployment-workbench[hf]'") from None
    transformers.utils.logging.disable_progress_bar()
    return transformers


def custom_code(path: Path) -> dict[str, Any]:
    """The ``auto_map`` of a folder's config files: the Python modules transformers would import from
    the folder (``{}`` when it names none)."""
    import json

    found: dict[str, Any] = {}
    for name in ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json"):
        file = path / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text(encoding="utf-8", errors="replace"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("auto_map"), dict):
            found.update(data["auto_map"])
    return found


def load(path: Path, example_inputs: Any = None, task: str | None = None, *, trust: bool = False,
         **options: Any) -> Model:
    """Load a model folder (no network: ``local_files_only``) with the class its ``config.architectures``
    names (or the auto class of ``task=``), inputs from that class's ``forward`` and the config
    (``workbench.formats.hf_tasks``), example inputs from the folder's tokenizer / processor. The native
    object is a ``KeywordModule``: every caller passes the inputs by name, without a KV cache."""
    import torch

    tf = _transformers()
    # trust_remote_code is always passed: left out, transformers may stop and ask on stdin ("[y/N]")
    # whether to run the folder's own modules; they run only when the user passed trust=True
    try:
        config = tf.AutoConfig.from_pretrained(str(path), local_files_only=True, trust_remote_code=trust)
        cls = hf_tasks.model_class(tf, config, task)
        module = cls.from_pretrained(str(path), local_files_only=True, trust_remote_code=trust)
    except ModelFormatError:
        raise
    except Exception as err:  # noqa: BLE001 - transformers raises OSError/ValueError/KeyError
        code = custom_code(path)
        if code and not trust:
            refs = [r for v in code.values() for r in (v if isinstance(v, list) else [v]) if isinstance(r, str)]
            modules = sorted({r.split("--")[-1].split(".")[0] + ".py" for r in refs})
            raise UntrustedCodeError(
                f"the folder {path} needs its own Python code to load ({', '.join(modules)[:200]}, named by "
                "auto_map in its config), which the workbench does not run unasked",
                "if you trust that code, wb.load(path, trust=True); else use a folder of a built-in "
                "transformers architecture") from None
        first = " ".join(str(err).strip().split())[:400] or type(err).__name__
        raise ModelFormatError(f"transformers could not load the folder {path}: {first}",
                               "the folder needs config.json and the weights (model.safetensors or pytorch_model.bin)") from None
    module.eval()
    if task is not None and task.endswith("-with-past"):
        return _load_with_past(path, module, config, task, **options)
    plans = {p.name: p for p in hf_tasks.plan_inputs(module, config, path)} if example_inputs is None else {}
    feeds = dict(example_inputs) if example_inputs is not None else {n: p.example for n, p in plans.items()}
    names = list(feeds)
    dyn = {n: p.axes for n, p in plans.items()} or {n: {0: "batch", 1: "sequence"} for n in names}
    keyword_module = hf_tasks.keyword_module_class()
    fixed = hf_tasks.fixed_kwargs(module)
    with torch.no_grad():
        probe = keyword_module(module, names, None, fixed)(
            **{n: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
               for n, v in feeds.items()})
    wrapper = keyword_module(module, names, list(probe), fixed)
    wrapped = from_module(wrapper, feeds, name=path.name, input_names=names, output_names=list(probe),
                          dynamic_axes=dyn, **options)
    return Model("hf", name=path.name, path=path, inputs=wrapped.inputs, outputs=wrapped.outputs, native=wrapper,
                 example_feeds=wrapped.example_inputs(),
                 metadata={"architecture": ",".join(config.architectures or [config.model_type]),
                           "class": type(module).__name__, "task": task,
                           "parameters": wrapped.metadata["parameters"]})


def _load_with_past(path: Path, module: Any, config: Any, task: str, **options: Any) -> Model:
    """A decoder step with its KV cache as inputs and outputs (``KVCacheModule``)."""
    plans = hf_tasks.plan_kv_inputs(config, path)
    layers = hf_tasks.cache_layout(config)[0]
    wrapper = hf_tasks.kv_module_class()(module, layers)
    names = [p.name for p in plans]
    outputs = ["logits"] + [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    wrapped = from_module(wrapper, {p.name: p.example for p in plans}, name=path.name, input_names=names,
                          output_names=outputs, dynamic_axes={p.name: p.axes for p in plans}, **options)
    # present grows by the new tokens: past_sequence + sequence, a size of its own
    outs = [s if not s.name.startswith("present.") else
            type(s)(s.name, tuple("total_sequence" if i == 2 else d for i, d in enumerate(s.shape)), s.dtype)
            for s in wrapped.outputs]
    return Model("hf", name=path.name, path=path, inputs=wrapped.inputs, outputs=outs, native=wrapper,
                 example_feeds=wrapped.example_inputs(),
                 metadata={"architecture": ",".join(config.architectures or [config.model_type]),
                           "class": type(module).__name__, "task": task, "kv_cache_layers": layers,
                           "parameters": wrapped.metadata["parameters"]})


def load_hub(model_id: str, **options: Any) -> Model:
    """Download ``model_id`` from the Hugging Face hub (or take it from the local cache), then load it."""
    _transformers()
    from huggingface_hub import snapshot_download

    offline_fix = "pass a local folder: download the model where there is network access, copy the folder here, wb.load(\"/path/to/folder\")"
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        try:
            return load(Path(snapshot_download(model_id, local_files_only=True)), **options)
        except Exception:  # noqa: BLE001
            raise OfflineError(f"offline (HF_HUB_OFFLINE=1) and {model_id!r} is not in the local cache",
                               offline_fix) from None
    try:
        folder = snapshot_download(model_id, etag_timeout=10)
    except Exception as err:  # noqa: BLE001 - connection errors come in many types
        text = str(err)
        if any(k in text for k in ("ConnectError", "connection", "Name or service", "internet", "timed out")):
            raise OfflineError(f"offline: the Hugging Face hub cannot be reached to fetch {model_id!r}",
                               offline_fix) from None
        raise ModelFormatError(f"could not fetch {model_id!r} from the Hugging Face hub: {text.splitlines()[0][:200]}",
                               "check the model id, or pass a local folder") from None
    return load(Path(folder), **options)


@register_format
class HuggingFaceFormat(Format):
    name = "hf"
    description = "a Hugging Face model folder (config.json)"
    suffixes = ()
    folder = True
    priority = 60  # after Core ML: an .mlpackage is a folder too
    facts = ("architecture", "class", "task", "parameters")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return path.is_dir() and (path / "config.json").is_file()

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def graph(cls, model: Model) -> Graph:
        # the native KeywordModule takes the inputs by position, in the model's input order
        return read_graph(model.native(), model.example_inputs(), name=model.name,
                          input_names=model.input_names).with_file_size(model)


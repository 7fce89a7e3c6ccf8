"""Hugging Face transformers models: a local model folder (``config.json`` + weights), or a hub id."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import BackendUnavailable, ModelFormatError, OfflineError, UntrustedCodeError
from workbench.core.model import Model
from workbench.core.registry import Format, register_format
from workbench.formats import hf_perplexity, hf_tasks
from workbench.formats.torch_module import from_module, read_graph

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.graph import Graph

SAMPLE_TEXT = hf_tasks.SAMPLE_TEXT
#: what a folder of data holds (``HuggingFaceFormat.code_risk``): weights as safetensors, configs, tokenizers
DATA_SUFFIXES = frozenset({".safetensors", ".json", ".txt", ".md", ".model", ".jinja", ".tiktoken", ".vocab"})
DATA_NAMES = frozenset({"LICENSE", "NOTICE", "README", ".gitattributes", ".gitignore"})
MAX_FOLDER_FILES = 10_000


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
         component: str | None = None, **options: Any) -> Model:
    """Load a model folder (no network: ``local_files_only``) with the class its ``config.architectures``
    names (or the auto class of ``task=``), inputs from that class's ``forward`` and the config
    (``workbench.formats.hf_tasks``), example inputs from the folder's tokenizer / processor. The native
    object is a ``KeywordModule``: every caller passes the inputs by name, without a KV cache.

    With a ``*-with-past`` task, a decoder takes its KV cache as inputs and returns it; an encoder-decoder
    model (T5, BART, Whisper) is then loaded as one of its two parts, ``component="encoder"`` or
    ``component="decoder"`` (one decoder step with its self-attention cache), each exported on its own."""
    if component is not None and component not in hf_tasks.COMPONENTS:
        raise ModelFormatError(f"unknown component {component!r}", f"pass one of {hf_tasks.COMPONENTS}")
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
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    if task is not None and task.endswith("-with-past") and seq2seq:
        if component is None:
            raise ModelFormatError(f"{type(module).__name__} is an encoder-decoder model: with {task!r} it loads as "
                                   "two models, its encoder and one decoder step with the KV cache",
                                   f"load each: wb.load(folder, task={task!r}, component='encoder') and "
                                   "component='decoder'")
        return _load_seq2seq(path, module, config, task, component, **options)
    if component is not None:
        raise ModelFormatError(f"component={component!r} applies to encoder-decoder models loaded with a "
                               f"'-with-past' task; this is {type(module).__name__} with task {task!r}",
                               "leave component out, or pass task='text2text-generation-with-past'")
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
    # a causal LM is scored by its perplexity on a small real text at every step (formats/hf_perplexity.py)
    scored = (example_inputs is None and hf_perplexity.is_causal_lm(module) and "logits" in probe
              and set(names) <= {"input_ids", "attention_mask"})
    return Model("hf", name=path.name, path=path, inputs=wrapped.inputs, outputs=wrapped.outputs, native=wrapper,
                 task=hf_perplexity.PerplexityTask.for_folder(path, config, wrapped.example_inputs()) if scored else None,
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
                 task=hf_perplexity.PerplexityTask.for_folder(path, config, wrapped.example_inputs()),
                 example_feeds=wrapped.example_inputs(),
                 metadata={"architecture": ",".join(config.architectures or [config.model_type]),
                           "class": type(module).__name__, "task": task, "kv_cache_layers": layers,
                           "parameters": wrapped.metadata["parameters"]})


def _load_seq2seq(path: Path, module: Any, config: Any, task: str, component: str, **options: Any) -> Model:
    """The encoder, or one decoder step with its self-attention KV cache, of an encoder-decoder model
    (``hf_tasks.seq2seq_module_classes``)."""
    import torch
    from transformers import DynamicCache, EncoderDecoderCache

    encoder_cls, decoder_cls = hf_tasks.seq2seq_module_classes()
    plans = hf_tasks.seq2seq_encoder_inputs(hf_tasks.plan_inputs(module, config, path))
    encoder = encoder_cls(module, [p.name for p in plans])
    feeds = {p.name: torch.from_numpy(np.ascontiguousarray(p.example)) for p in plans}
    with torch.no_grad():
        hidden = encoder(**feeds)[0]
        # the cache's layout (layers, heads, head size) from one step of the model itself, not the config
        kw = {"attention_mask": feeds["attention_mask"]} if "attention_mask" in feeds else {}
        start = torch.zeros((hidden.shape[0], 1), dtype=torch.long)
        probe = module(encoder_outputs=(hidden,), decoder_input_ids=start, use_cache=True, return_dict=True,
                       past_key_values=EncoderDecoderCache(DynamicCache(), DynamicCache()), **kw)
    own = hf_tasks.cache_tensors(probe.past_key_values.self_attention_cache,
                                 len(probe.past_key_values.self_attention_cache.layers))
    layers, heads, head_dim = len(own) // 2, int(own[0].shape[1]), int(own[0].shape[3])
    meta = {"architecture": ",".join(config.architectures or [config.model_type]), "class": type(module).__name__,
            "task": task, "component": component}
    if component == "encoder":
        names, outputs, wrapper = [p.name for p in plans], ["last_hidden_state"], encoder
        dyn = {p.name: p.axes for p in plans}
        examples = {p.name: p.example for p in plans}
    else:
        dplans = hf_tasks.plan_seq2seq_decoder_inputs(config, plans, hidden.numpy(), (layers, heads, head_dim))
        wrapper = decoder_cls(module, layers, masked="attention_mask" in feeds)
        names = [p.name for p in dplans]
        outputs = ["logits"] + [f"present.{i}.decoder.{kv}" for i in range(layers) for kv in ("key", "value")]
        dyn = {p.name: p.axes for p in dplans}
        examples = {p.name: p.example for p in dplans}
        meta["kv_cache_layers"] = layers
    wrapped = from_module(wrapper, examples, name=f"{path.name}-{component}", input_names=names,
                          output_names=outputs, dynamic_axes=dyn, **options)
    # present: (batch, heads, past + new tokens, head size), named here (a head count equal to the example's
    # decoder length would otherwise be taken for its axis)
    outs = [s if not s.name.startswith("present.") else
            type(s)(s.name, ("batch", heads, "total_sequence", head_dim), s.dtype) for s in wrapped.outputs]
    meta["parameters"] = wrapped.metadata["parameters"]
    return Model("hf", name=f"{path.name}-{component}", path=path, inputs=wrapped.inputs, outputs=outs,
                 native=wrapper, example_feeds=wrapped.example_inputs(), metadata=meta)


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
    facts = ("architecture", "class", "task", "component", "parameters")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return path.is_dir() and (path / "config.json").is_file()

    @classmethod
    def code_risk(cls, path: Path) -> str | None:
        """None only for a folder of data: safetensors weights, JSON/text configs and tokenizer files, no
        ``auto_map`` (pickled ``.bin``/``.pt`` weights or Python files are a risk, whatever loads them)."""
        code = custom_code(path)
        if code:
            return f"the folder names its own Python code to load (auto_map: {', '.join(sorted(code))[:120]})"
        entries = list(itertools.islice(path.rglob("*"), MAX_FOLDER_FILES + 1))
        if len(entries) > MAX_FOLDER_FILES:
            return f"the folder holds more than {MAX_FOLDER_FILES:,} files, more than a model folder does"
        files = [p for p in sorted(entries) if p.is_file()]
        other = [p.relative_to(path).as_posix() for p in files
                 if p.suffix.lower() not in DATA_SUFFIXES and p.name not in DATA_NAMES]
        if other:
            return (f"the folder holds {', '.join(other[:3])}{' …' if len(other) > 3 else ''}, which is not plain "
                    "data (pickled weights or code); only safetensors weights with JSON/text files are")
        if not any(p.suffix.lower() == ".safetensors" for p in files):
            return "the folder has no .safetensors weights (other weight files are pickles)"
        return None

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def graph(cls, model: Model) -> Graph:
        # the native KeywordModule takes the inputs by position, in the model's input order
        return read_graph(model.native(), model.example_inputs(), name=model.name,
                          input_names=model.input_names).with_file_size(model)


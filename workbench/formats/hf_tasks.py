"""What a Hugging Face model folder computes and how to call it: the model class, its inputs, example data.

A smaller, local cousin of Optimum's ``TasksManager``:

* the model class comes from ``config.architectures`` (``T5EncoderModel`` stays an encoder, not a T5 with a
  random decoder) or from a ``task=`` (``"text-generation"`` → ``AutoModelForCausalLM``), ``AutoModel``
  otherwise;
* the inputs come from the class's ``forward`` signature and the config (``pixel_values`` for ViT/ConvNeXt/
  DETR, ``input_values`` for wav2vec2, ``input_features`` + ``decoder_input_ids`` for Whisper,
  ``input_ids`` / ``attention_mask`` / ``token_type_ids`` for text, ``decoder_input_ids`` for T5/BART);
* the model is wrapped (``KeywordModule``) so that every caller (the torch runtimes, the exporters,
  OpenVINO's converter) passes the inputs by name, never by position (GPT-2's second positional parameter
  is ``past_key_values``), with ``use_cache=False``: a decoder computes the logits of the whole sequence
  without a KV cache, which is what exports to ONNX with fixed inputs and outputs.
"""

from __future__ import annotations

import functools
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import ModelFormatError

#: task name -> the transformers auto classes that compute it (first that exists and takes the config)
TASKS: dict[str, tuple[str, ...]] = {
    "feature-extraction": ("AutoModel",),
    "text-generation": ("AutoModelForCausalLM",),
    # the decoder with its KV cache as inputs and outputs (past_key_values.{i}.key/value -> present.{i}.…),
    # the layout ONNX Runtime GenAI and Optimum use
    "text-generation-with-past": ("AutoModelForCausalLM",),
    "fill-mask": ("AutoModelForMaskedLM",),
    "text-classification": ("AutoModelForSequenceClassification",),
    "token-classification": ("AutoModelForTokenClassification",),
    "question-answering": ("AutoModelForQuestionAnswering",),
    "text2text-generation": ("AutoModelForSeq2SeqLM",),
    "image-classification": ("AutoModelForImageClassification",),
    "object-detection": ("AutoModelForObjectDetection",),
    "audio-classification": ("AutoModelForAudioClassification",),
    "automatic-speech-recognition": ("AutoModelForSpeechSeq2Seq", "AutoModelForCTC"),
    # encoder-decoder models as a pair (``component="encoder"`` / ``"decoder"``): the decoder takes its
    # self-attention KV cache as inputs and returns it grown (``past_key_values.{i}.decoder.key`` ->
    # ``present.{i}.decoder.key``); see ``seq2seq_module_classes``
    "text2text-generation-with-past": ("AutoModelForSeq2SeqLM",),
    "automatic-speech-recognition-with-past": ("AutoModelForSpeechSeq2Seq",),
}
#: the parts an encoder-decoder model exports as (``wb.load(folder, task=..., component=...)``)
COMPONENTS = ("encoder", "decoder")
TEXT_LENGTH = 16
DECODER_LENGTH = 4
AUDIO_SAMPLES = 4000
SAMPLE_TEXT = ["The workbench takes a model to deployment.", "Numbers are checked at every step."]


@dataclass
class InputPlan:
    """One input of a Hugging Face model: name, example array, dynamic axes."""

    name: str
    example: np.ndarray
    axes: dict[int, str] = field(default_factory=dict)


def model_class(tf: Any, config: Any, task: str | None = None) -> Any:
    """The transformers class to load a folder with: from ``task`` when given, else the folder's
    ``config.architectures[0]``, else ``AutoModel``."""
    if task is not None:
        if task not in TASKS:
            raise ModelFormatError(f"unknown task {task!r}", f"pass one of {sorted(TASKS)}")
        for auto in TASKS[task]:
            cls = getattr(tf, auto, None)
            if cls is not None and type(config) in getattr(cls, "_model_mapping", {}):
                return cls
        raise ModelFormatError(f"transformers has no {task!r} model for {type(config).__name__}",
                               f"pass another task (one of {sorted(TASKS)}) or none")
    for arch in config.architectures or []:
        cls = getattr(tf, arch, None)
        if cls is not None:
            return cls
    return tf.AutoModel


def forward_parameters(module: Any) -> list[str]:
    """The names of ``module.forward``'s parameters, in order."""
    try:
        return list(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        return []


def _sub(config: Any, name: str) -> Any:
    return getattr(config, name, None) or config


def _image_size(config: Any) -> tuple[int, int]:
    size = getattr(_sub(config, "vision_config"), "image_size", None)
    if isinstance(size, list | tuple):
        return int(size[0]), int(size[-1])
    if isinstance(size, int):
        return size, size
    return 64, 64  # DETR-like detectors take any size


def plan_inputs(module: Any, config: Any, path: Path | None = None) -> list[InputPlan]:
    """The inputs ``module`` (a transformers model) takes, with example arrays (batch 2) made by the
    folder's tokenizer / image processor / feature extractor where it has one, else seeded random data
    in the right range (token ids below the vocabulary size, a mask of ones)."""
    params = forward_parameters(module)
    rng = np.random.default_rng(0)
    plans: list[InputPlan] = []
    if "input_features" in params:  # Whisper: log-mel frames, exactly 2 x max_source_positions of them
        mels = int(getattr(config, "num_mel_bins", 80))
        frames = 2 * int(getattr(config, "max_source_positions", 1500))
        plans.append(InputPlan("input_features", rng.standard_normal((2, mels, frames)).astype(np.float32),
                               {0: "batch"}))
    elif "input_values" in params:  # wav2vec2 and friends: raw audio
        plans.append(InputPlan("input_values", _audio(path, rng), {0: "batch", 1: "samples"}))
    if "pixel_values" in params:
        plans.append(InputPlan("pixel_values", _image(path, config, rng), {0: "batch"}))
    if "input_ids" in params and not any(p.name == "input_features" for p in plans):
        ids, mask = _text(path, config, rng)
        plans.append(InputPlan("input_ids", ids, {0: "batch", 1: "sequence"}))
        if "attention_mask" in params:
            plans.append(InputPlan("attention_mask", mask, {0: "batch", 1: "sequence"}))
        if "token_type_ids" in params and int(getattr(config, "type_vocab_size", 0) or 0) > 1:
            plans.append(InputPlan("token_type_ids", np.zeros_like(ids), {0: "batch", 1: "sequence"}))
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        start = getattr(config, "decoder_start_token_id", None)
        start = int(start if start is not None else getattr(config, "pad_token_id", 0) or 0)
        vocab = int(getattr(config, "vocab_size", 100))
        dec = np.concatenate([np.full((2, 1), start, np.int64),
                              rng.integers(3, max(4, vocab), (2, DECODER_LENGTH - 1)).astype(np.int64)], axis=1)
        plans.append(InputPlan("decoder_input_ids", dec, {0: "batch", 1: "decoder_sequence"}))
    if not plans:
        raise ModelFormatError(
            f"cannot tell what {type(module).__name__} takes (forward({', '.join(params[:6])}, …))",
            "pass example_inputs={name: array} to wb.load, or task= (one of " + ", ".join(sorted(TASKS)) + ")")
    return plans


def _text(path: Path | None, config: Any, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    tok_file = path / "tokenizer.json" if path is not None else None
    if tok_file is not None and tok_file.is_file():
        from tokenizers import Tokenizer

        try:
            tok = Tokenizer.from_file(str(tok_file))
        except Exception as err:  # noqa: BLE001 - tokenizers raises a bare Exception on a damaged file
            detail = " ".join(str(err).split())[:200] or type(err).__name__
            raise ModelFormatError(f"{tok_file} is not a tokenizer the tokenizers library can read ({detail})",
                                   "copy the folder's tokenizer.json again, or pass example_inputs= to wb.load"
                                   ) from None
        tok.enable_padding(pad_id=getattr(config, "pad_token_id", 0) or 0, length=TEXT_LENGTH)
        tok.enable_truncation(max_length=TEXT_LENGTH)
        enc = tok.encode_batch(SAMPLE_TEXT)
        return (np.array([e.ids for e in enc], np.int64), np.array([e.attention_mask for e in enc], np.int64))
    vocab = int(getattr(config, "vocab_size", 100))
    ids = rng.integers(min(3, vocab - 1), vocab, (2, TEXT_LENGTH)).astype(np.int64)
    return ids, np.ones((2, TEXT_LENGTH), np.int64)


def _preprocessor(path: Path | None) -> dict[str, Any]:
    file = path / "preprocessor_config.json" if path is not None else None
    if file is None or not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _image(path: Path | None, config: Any, rng: np.random.Generator) -> np.ndarray:
    """Two images through the folder's image processor (a gradient and noise), else normalised noise."""
    channels = int(getattr(_sub(config, "vision_config"), "num_channels", 3))
    h, w = _image_size(config)
    if _preprocessor(path) and channels == 3:
        try:
            from transformers import AutoImageProcessor

            proc = AutoImageProcessor.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
            grad = np.linspace(0, 255, h * w * 3).reshape(h, w, 3).astype(np.uint8)
            noise = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
            pixels = proc(images=[grad, noise], return_tensors="np")["pixel_values"]
            return np.asarray(pixels, np.float32)
        except Exception:  # noqa: BLE001 - a processor we cannot run: made-up pixels still exercise the model
            pass
    return rng.standard_normal((2, channels, h, w)).astype(np.float32)


def _audio(path: Path | None, rng: np.random.Generator) -> np.ndarray:
    """Two clips (a tone and noise) normalised as the folder's feature extractor says, else as wav2vec2 does."""
    t = np.arange(AUDIO_SAMPLES, dtype=np.float32) / 16000.0
    clips = np.stack([np.sin(2 * np.pi * 440.0 * t), rng.standard_normal(AUDIO_SAMPLES).astype(np.float32)])
    if _preprocessor(path).get("do_normalize", True):
        clips = (clips - clips.mean(1, keepdims=True)) / np.sqrt(clips.var(1, keepdims=True) + 1e-7)
    return clips.astype(np.float32)


def fixed_kwargs(module: Any) -> dict[str, Any]:
    """The keyword arguments every call gets: no KV cache, outputs as a ``ModelOutput``."""
    params = forward_parameters(module)
    kw: dict[str, Any] = {}
    if "use_cache" in params:
        kw["use_cache"] = False
    if "return_dict" in params:
        kw["return_dict"] = True
    return kw


PAST_LENGTH = 3


def cache_layout(config: Any) -> tuple[int, int, int]:
    """(layers, key/value heads, head size) of a decoder's KV cache."""
    layers = int(config.num_hidden_layers)
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    return layers, kv_heads, head_dim


def plan_kv_inputs(config: Any, path: Path | None = None) -> list[InputPlan]:
    """Inputs of a decoder step with its cache: ``input_ids`` (the new tokens), ``attention_mask`` (past and
    new tokens), ``past_key_values.{i}.key`` / ``.value`` (batch, kv heads, past length, head size)."""
    rng = np.random.default_rng(0)
    ids, _ = _text(path, config, rng)
    ids = ids[:, :DECODER_LENGTH]
    layers, kv_heads, head_dim = cache_layout(config)
    plans = [InputPlan("input_ids", ids, {0: "batch", 1: "sequence"}),
             InputPlan("attention_mask", np.ones((2, PAST_LENGTH + ids.shape[1]), np.int64),
                       {0: "batch", 1: "total_sequence"})]
    for i in range(layers):
        for kv in ("key", "value"):
            plans.append(InputPlan(f"past_key_values.{i}.{kv}",
                                   rng.standard_normal((2, kv_heads, PAST_LENGTH, head_dim)).astype(np.float32),
                                   {0: "batch", 2: "past_sequence"}))
    return plans


@functools.cache
def kv_module_class() -> Any:
    """``KVCacheModule`` (built on first use, like ``KeywordModule``)."""
    import torch

    class KVCacheModule(torch.nn.Module):
        """A causal LM step with an explicit cache: ``(input_ids, attention_mask, *past)`` with ``past``
        the keys and values of each layer in order, returning ``(logits, *present)`` the same way."""

        def __init__(self, model: Any, layers: int) -> None:
            super().__init__()
            self.model = model
            self.layers = layers
            self.config = getattr(model, "config", None)

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            from transformers import DynamicCache

            names = ["input_ids", "attention_mask"] + [f"past_key_values.{i}.{kv}" for i in range(self.layers)
                                                       for kv in ("key", "value")]
            named = dict(zip(names, args, strict=False))
            named.update(kwargs)
            cache = DynamicCache()
            for i in range(self.layers):
                cache.update(named[f"past_key_values.{i}.key"], named[f"past_key_values.{i}.value"], i)
            out = self.model(input_ids=named["input_ids"], attention_mask=named["attention_mask"],
                             past_key_values=cache, use_cache=True, return_dict=True)
            return (out.logits, *cache_tensors(out.past_key_values, self.layers))

    KVCacheModule.__module__ = __name__
    KVCacheModule.__qualname__ = "KVCacheModule"
    return KVCacheModule


def cache_tensors(cache: Any, layers: int) -> list[Any]:
    """The keys and values of a transformers cache (``DynamicCache``), layer by layer: ``[k0, v0, k1, …]``."""
    out = []
    for i in range(layers):
        layer = cache.layers[i] if hasattr(cache, "layers") else None
        key, value = (layer.keys, layer.values) if layer is not None else cache[i]
        out += [key, value]
    return out


def seq2seq_encoder_inputs(plans: list[InputPlan]) -> list[InputPlan]:
    """The encoder's share of an encoder-decoder model's inputs (all but the decoder's)."""
    return [p for p in plans if not p.name.startswith("decoder_")]


def plan_seq2seq_decoder_inputs(config: Any, encoder_inputs: list[InputPlan], hidden: np.ndarray,
                                cache_shape: tuple[int, int, int]) -> list[InputPlan]:
    """Inputs of one decoder step of an encoder-decoder model with its self-attention cache: ``input_ids``
    (the new decoder tokens), ``encoder_attention_mask`` (when the encoder takes a mask),
    ``encoder_hidden_states`` (the encoder's output ``hidden``), ``past_key_values.{i}.decoder.key`` /
    ``.value`` (batch, heads, past length, head size; ``cache_shape`` = (layers, heads, head size))."""
    rng = np.random.default_rng(1)
    start = getattr(config, "decoder_start_token_id", None)
    start = int(start if start is not None else getattr(config, "pad_token_id", 0) or 0)
    vocab = int(getattr(config, "vocab_size", 100))
    batch = hidden.shape[0]
    ids = np.concatenate([np.full((batch, 1), start, np.int64),
                          rng.integers(3, max(4, vocab), (batch, DECODER_LENGTH - 1)).astype(np.int64)], axis=1)
    plans = [InputPlan("input_ids", ids, {0: "batch", 1: "sequence"})]
    mask = next((p for p in encoder_inputs if p.name == "attention_mask"), None)
    if mask is not None:
        plans.append(InputPlan("encoder_attention_mask", mask.example, {0: "batch", 1: "encoder_sequence"}))
    plans.append(InputPlan("encoder_hidden_states", hidden.astype(np.float32), {0: "batch", 1: "encoder_sequence"}))
    layers, heads, head_dim = cache_shape
    for i in range(layers):
        for kv in ("key", "value"):
            plans.append(InputPlan(f"past_key_values.{i}.decoder.{kv}",
                                   rng.standard_normal((batch, heads, PAST_LENGTH, head_dim)).astype(np.float32),
                                   {0: "batch", 2: "past_sequence"}))
    return plans


@functools.cache
def seq2seq_module_classes() -> tuple[Any, Any]:
    """``(Seq2SeqEncoder, Seq2SeqDecoder)``: an encoder-decoder model split into the pair it deploys as
    (Optimum's ``encoder_model.onnx`` + a decoder with past). The decoder handles every step, the first
    included, in one graph: its past may be empty (length 0), so no ``use_cache_branch`` is needed. Only
    the self-attention cache is carried: cross-attention keys and values are recomputed from
    ``encoder_hidden_states`` at each step (two small MatMuls per layer), which keeps the graph free of
    branches and of architecture-specific cache handling."""
    import torch

    class Seq2SeqEncoder(torch.nn.Module):
        """The encoder: its inputs by name -> ``last_hidden_state``."""

        def __init__(self, model: Any, input_names: list[str]) -> None:
            super().__init__()
            self.model = model
            self.input_names = list(input_names)
            self.config = getattr(model, "config", None)

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            named = dict(zip(self.input_names, args, strict=False))
            named.update(kwargs)
            return (self.model.get_encoder()(**named, return_dict=True).last_hidden_state,)

    class Seq2SeqDecoder(torch.nn.Module):
        """One decoder step: ``(input_ids, [encoder_attention_mask], encoder_hidden_states, *past)`` with
        ``past`` the self-attention keys and values of each layer, returning ``(logits, *present)``."""

        def __init__(self, model: Any, layers: int, masked: bool) -> None:
            super().__init__()
            self.model = model
            self.layers = layers
            self.masked = masked
            self.config = getattr(model, "config", None)

        @property
        def input_names(self) -> list[str]:
            return (["input_ids"] + (["encoder_attention_mask"] if self.masked else []) + ["encoder_hidden_states"]
                    + [f"past_key_values.{i}.decoder.{kv}" for i in range(self.layers) for kv in ("key", "value")])

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            from transformers import DynamicCache, EncoderDecoderCache

            named = dict(zip(self.input_names, args, strict=False))
            named.update(kwargs)
            own = DynamicCache()
            for i in range(self.layers):
                own.update(named[f"past_key_values.{i}.decoder.key"], named[f"past_key_values.{i}.decoder.value"], i)
            extra = {"attention_mask": named["encoder_attention_mask"]} if self.masked else {}
            out = self.model(encoder_outputs=(named["encoder_hidden_states"],), decoder_input_ids=named["input_ids"],
                             past_key_values=EncoderDecoderCache(own, DynamicCache()), use_cache=True,
                             return_dict=True, **extra)
            return (out.logits, *cache_tensors(out.past_key_values.self_attention_cache, self.layers))

    for cls in (Seq2SeqEncoder, Seq2SeqDecoder):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    return Seq2SeqEncoder, Seq2SeqDecoder


@functools.cache
def keyword_module_class() -> Any:
    """``KeywordModule`` (built on first use, so importing this module does not import torch)."""
    import torch

    class KeywordModule(torch.nn.Module):
        """A transformers model called by keyword: positional arguments are matched to ``input_names``;
        the outputs are the tensors named ``output_names`` of its ``ModelOutput``, as a tuple."""

        def __init__(self, model: Any, input_names: list[str], output_names: list[str] | None = None,
                     kwargs: dict[str, Any] | None = None) -> None:
            super().__init__()
            self.model = model
            self.input_names = list(input_names)
            self.output_names = list(output_names or [])
            self.fixed = dict(kwargs or {})
            self.config = getattr(model, "config", None)

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            named = dict(zip(self.input_names, args, strict=False))
            named.update(kwargs)
            out = self.model(**named, **self.fixed)
            items = {k: v for k, v in dict(out).items() if isinstance(v, torch.Tensor)}
            if not self.output_names:
                return items
            return tuple(items[k] for k in self.output_names)

    KeywordModule.__module__ = __name__
    KeywordModule.__qualname__ = "KeywordModule"
    return KeywordModule


def __getattr__(name: str) -> Any:  # pickle (the worker) finds the class by name
    if name == "KeywordModule":
        return keyword_module_class()
    if name == "KVCacheModule":
        return kv_module_class()
    if name in ("Seq2SeqEncoder", "Seq2SeqDecoder"):
        return seq2seq_module_classes()[name == "Seq2SeqDecoder"]
    raise AttributeError(name)

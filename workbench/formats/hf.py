"""Hugging Face transformers models: a local model folder (``config.json`` + weights), or a hub id."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import BackendUnavailable, ModelFormatError, OfflineError
from workbench.core.model import Model
from workbench.core.registry import Format, register_format
from workbench.formats.torch_module import from_module, read_graph

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.graph import Graph

SAMPLE_TEXT = ["The workbench takes a model to deployment.", "Numbers are checked at every step."]


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise BackendUnavailable("transformers is not installed", "pip install 'deployment-workbench[hf]'") from None
    transformers.utils.logging.disable_progress_bar()
    return transformers


def load(path: Path, example_inputs: Any = None, **options: Any) -> Model:
    """Load with ``AutoModel`` (no network: ``local_files_only``); inputs are ``input_ids`` and
    ``attention_mask`` (int64, dynamic batch and sequence), example inputs come from the folder's tokenizer."""
    tf = _transformers()
    try:
        config = tf.AutoConfig.from_pretrained(str(path), local_files_only=True)
        module = tf.AutoModel.from_pretrained(str(path), local_files_only=True)
    except Exception as err:  # noqa: BLE001 - transformers raises OSError/ValueError/KeyError
        first = str(err).strip().splitlines()[0][:240]
        raise ModelFormatError(f"transformers could not load the folder {path}: {first}",
                               "the folder needs config.json and the weights (model.safetensors or pytorch_model.bin)") from None
    feeds = example_inputs if example_inputs is not None else _example_feeds(path, config)
    names = ["input_ids", "attention_mask"]
    dyn = {n: {0: "batch", 1: "sequence"} for n in names}
    wrapped = from_module(module, {n: feeds[n] for n in names}, name=path.name, input_names=names,
                          dynamic_axes=dyn, **options)
    return Model("hf", name=path.name, path=path, inputs=wrapped.inputs, outputs=wrapped.outputs, native=module,
                 example_feeds=wrapped.example_inputs(),
                 metadata={"architecture": ",".join(config.architectures or [config.model_type]),
                           "parameters": wrapped.metadata["parameters"]})


def _example_feeds(path: Path, config: Any) -> dict[str, np.ndarray]:
    tok_file = path / "tokenizer.json"
    if tok_file.exists():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tok_file))
        tok.enable_padding(pad_id=getattr(config, "pad_token_id", 0) or 0, length=16)
        tok.enable_truncation(max_length=16)
        enc = tok.encode_batch(SAMPLE_TEXT)
        return {"input_ids": np.array([e.ids for e in enc], np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], np.int64)}
    rng = np.random.default_rng(0)
    vocab = int(getattr(config, "vocab_size", 100))
    return {"input_ids": rng.integers(0, vocab, (2, 16)).astype(np.int64),
            "attention_mask": np.ones((2, 16), np.int64)}


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

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return path.is_dir() and (path / "config.json").is_file()

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def graph(cls, model: Model) -> Graph:
        return read_graph(model.native(), model.example_inputs(), name=model.name, input_names=model.input_names,
                          keyword=True).with_file_size(model)

    @classmethod
    def describe(cls, model: Model) -> dict[str, Any]:
        return {k: model.metadata[k] for k in ("architecture", "parameters") if k in model.metadata}

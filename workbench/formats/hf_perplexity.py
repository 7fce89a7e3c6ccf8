"""Perplexity on a small real text: the task metric of a Hugging Face causal LM folder.

A causal LM loaded from a folder (``GPT2LMHeadModel``, ``LlamaForCausalLM``, …) gets a ``PerplexityTask``: every model derived from it (the ONNX export, its INT8 / INT4 quantizations, an
OpenVINO IR) is scored by its perplexity on the same tokens, and validation compares it with the
original's (``Validation.metrics`` / ``metric_drop``; a rise beyond the tolerance below fails the step).
Loaded with its KV cache (``task="text-generation-with-past"``), the model computes each window through
the cache: the first half with an empty cache, the second half fed the ``present.*`` the first returned
as ``past_key_values.*``, so validation covers the cache round trip that generation relies on.

The text ships with Python itself (PEP 20, "The Zen of Python", stored ROT13-encoded in the stdlib module
``this``; read from its source file, so nothing is printed or downloaded): 19 lines of English prose,
about 860 characters. It is tokenized with the folder's ``tokenizer.json`` when it has one; without one
(a model built from a config), the text's UTF-8 bytes modulo the vocabulary size stand in for tokens. The
check compares two models on the same token sequence, so it measures what a step changed even when the
ids mean nothing to the model (a random-weight model's perplexity is near its vocabulary size).

Tolerance: perplexity is ``exp(mean NLL)``, so a relative rise ``r`` is ``log(1 + r)`` nats per token more
surprise. Allowed rises, relative to the original's perplexity, by the loosest precision of the lineage:
fp32 0.1% (an export only reorders float arithmetic), fp16/bf16 1%, int8 5%, int4 (and lower) 10%.
Published weight-only and W8A8 results on real LLMs (GPTQ, AWQ, SmoothQuant on WikiText-2) stay within a
few percent for INT8 and about 5-10% for 4-bit weights on small models, so a larger rise means the step
broke something rather than paid the expected price of its precision.
"""

from __future__ import annotations

import codecs
import importlib.util
import re
from pathlib import Path
from typing import Any

import numpy as np

#: the largest rise in perplexity a step may cause, relative to the original's, by precision
TOLERANCE = {"fp32": 0.001, "fp16": 0.01, "bf16": 0.01, "int8": 0.05, "int4": 0.10}
WINDOW = 64  # tokens per evaluated window (less when the model's positions are fewer)
ROWS = 4  # windows per call


def reference_text() -> str:
    """PEP 20 (The Zen of Python), read from the source of the stdlib module ``this`` (not imported)."""
    spec = importlib.util.find_spec("this")
    source = Path(spec.origin).read_text(encoding="utf-8") if spec is not None and spec.origin else ""
    found = re.search(r's = """(.*?)"""', source, re.S)
    if found is None:  # a Python build without it: the stdlib's own description of itself
        import string

        return (string.__doc__ or "") * 4
    return codecs.decode(found.group(1), "rot13").strip()


def tokenize(text: str, path: Path | None, vocab_size: int) -> np.ndarray:
    """``text`` as token ids: with the folder's ``tokenizer.json``, else its UTF-8 bytes modulo the vocabulary."""
    file = path / "tokenizer.json" if path is not None else None
    if file is not None and file.is_file():
        try:
            from tokenizers import Tokenizer

            ids = Tokenizer.from_file(str(file)).encode(text).ids
            if len(ids) > 8 and max(ids) < vocab_size:
                return np.asarray(ids, np.int64)
        except Exception:  # noqa: BLE001 - a tokenizer that cannot read the text: bytes stand in
            pass
    return (np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int64) % max(2, vocab_size))


def max_positions(config: Any) -> int | None:
    """How many positions the model embeds (None: unbounded, e.g. rotary)."""
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class PerplexityTask:
    """The data of a causal LM folder: example and calibration inputs cut from the reference text, and
    its perplexity on that text as the metric (lower is better)."""

    name = "causal-lm-perplexity"
    metric_name = "perplexity"
    description = "perplexity on PEP 20 (The Zen of Python, shipped with Python), tokenized by the folder"
    has_evaluation = True
    higher_is_better = False

    def __init__(self, tokens: np.ndarray, example: dict[str, np.ndarray], window: int) -> None:
        self.tokens = np.asarray(tokens, np.int64)
        self.example = {k: np.asarray(v) for k, v in example.items()}
        self.window = int(window)
        # a decoder with its KV cache (task="text-generation-with-past"): past_key_values.* inputs
        self.past = {k: v for k, v in self.example.items() if k.startswith("past_key_values.")}

    @classmethod
    def for_folder(cls, path: Path | None, config: Any, example: dict[str, np.ndarray]) -> PerplexityTask:
        """The task of the model in folder ``path`` with ``config``; ``example`` its load-time inputs."""
        vocab = int(getattr(config, "vocab_size", 0) or 0) or 256
        tokens = tokenize(reference_text(), path, vocab)
        window = min(WINDOW, max_positions(config) or WINDOW, max(2, len(tokens) // 2))
        return cls(tokens, example, window)

    def _slices(self, batch: int, length: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        length = min(length, len(self.tokens))
        starts = rng.integers(0, len(self.tokens) - length + 1, batch)
        ids = np.stack([self.tokens[s:s + length] for s in starts])
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if self.past:  # a cache as long as the example's, of seeded values; the mask covers it too
            past_len = next(iter(self.past.values())).shape[2]
            feeds["attention_mask"] = np.ones((batch, past_len + length), np.int64)
            for name, arr in self.past.items():
                feeds[name] = rng.standard_normal((batch, *arr.shape[1:])).astype(arr.dtype)
        return feeds

    def _predict_window(self, predict: Any, ids: np.ndarray) -> np.ndarray:
        """Logits for every position of ``ids``: in one call, or through the KV cache (the first half with
        an empty cache, the second half with the cache the first returned), which the check then covers."""
        ones = np.ones_like(ids)
        if not self.past:
            return np.asarray(predict({"input_ids": ids, "attention_mask": ones})["logits"], np.float64)
        half = ids.shape[1] // 2
        empty = {k: np.zeros((len(ids), v.shape[1], 0, v.shape[3]), v.dtype) for k, v in self.past.items()}
        first = predict({"input_ids": ids[:, :half], "attention_mask": ones[:, :half], **empty})
        cache = {k: np.asarray(first[k.replace("past_key_values", "present", 1)]) for k in self.past}
        second = predict({"input_ids": ids[:, half:], "attention_mask": ones, **cache})
        return np.concatenate([np.asarray(first["logits"], np.float64), np.asarray(second["logits"], np.float64)],
                              axis=1)

    def example_inputs(self, batch: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """The load-time example (the folder's tokenizer on two sentences) for the defaults; else ``batch``
        slices of the reference text as long as the example's sequence."""
        if batch is None and seed == 0:
            return {k: v.copy() for k, v in self.example.items()}
        length = self.example["input_ids"].shape[1] if "input_ids" in self.example else 16
        return self._slices(batch or 2, length, seed)

    def calibration_data(self, n: int = 32, batch: int = 1) -> list[dict[str, np.ndarray]]:
        """``n`` slices of the reference text (real text makes better activation ranges than random ids)."""
        length = self.example["input_ids"].shape[1] if self.past else self.window
        return [self._slices(batch, length, 1000 + i) for i in range(n)]

    def windows(self) -> np.ndarray:
        """The text cut into non-overlapping windows of ``window`` tokens (the remainder dropped)."""
        n = len(self.tokens) // self.window
        return self.tokens[: n * self.window].reshape(n, self.window)

    def evaluate(self, predict: Any, batch_size: int | None = None) -> dict[str, float]:
        """Perplexity of ``predict`` (a runner's ``infer``; ``input_ids`` + ``attention_mask`` -> ``logits``)
        on the reference text: ``exp`` of the mean negative log-likelihood of each next token."""
        windows = self.windows()
        rows = batch_size or ROWS
        total, count = 0.0, 0
        for i in range(0, len(windows), rows):
            ids = windows[i:i + rows]
            if batch_size and len(ids) < batch_size:  # a model with a fixed batch: pad with the first rows
                ids = np.concatenate([ids, windows[: batch_size - len(ids)]])[:batch_size]
            logits = self._predict_window(predict, ids)[:, :-1]
            shifted = logits - logits.max(-1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
            nll = -np.take_along_axis(logp, ids[:, 1:, None], axis=-1)[..., 0]
            total += float(nll.sum())
            count += nll.size
        mean = total / max(count, 1)
        return {"perplexity": float(np.exp(mean)), "nll": mean}

    def metric_tolerance(self, precision: str, original: dict[str, float]) -> dict[str, float]:
        """The largest allowed drop of each metric (here a rise: lower is better) at ``precision``."""
        rel = TOLERANCE.get(precision, TOLERANCE["int4"])
        ppl = original.get("perplexity")
        return {} if ppl is None else {"perplexity": rel * ppl}

    def __repr__(self) -> str:
        return f"<Task {self.name} metric={self.metric_name} window={self.window}>"


def is_causal_lm(module: Any) -> bool:
    """Whether ``module`` is one of transformers' causal language models (a ``*ForCausalLM`` head)."""
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    except ImportError:  # pragma: no cover - older transformers
        return type(module).__name__.endswith(("ForCausalLM", "LMHeadModel"))
    names = {n for v in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values() for n in (v if isinstance(v, tuple) else (v,))}
    return type(module).__name__ in names

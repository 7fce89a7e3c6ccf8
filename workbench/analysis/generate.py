"""Greedy generation through language models on any runtime, and how two generations agree.

The loops take runners (``wb.runner(model, backend)``: anything with ``infer(feeds) -> outputs`` and a
``model`` whose inputs name the cache), so the same code drives the original (``torch_eager``) and its
exports (ONNX Runtime, OpenVINO):

* ``greedy(runner, ids, n)``: a decoder without cache; the whole sequence each step.
* ``greedy_with_past(runner, ids, n)``: a decoder loaded with ``task="text-generation-with-past"``; the
  prompt first with an empty cache, then one token a step, ``present.*`` fed back as ``past_key_values.*``.
* ``greedy_seq2seq(encoder, decoder, inputs, n)``: an encoder-decoder pair loaded with
  ``task="text2text-generation-with-past"`` (``component="encoder"`` / ``"decoder"``): the encoder once,
  then the decoder one token a step with its self-attention cache.
* ``greedy_seq2seq_reference(full, inputs, n)``: the same tokens from the whole model without a cache
  (``wb.load(folder)``: encoder inputs + ``decoder_input_ids`` -> ``logits``), the reference.

``agreement(a, b)`` says whether the tokens are the same, from which step they differ, and how far apart
the logits the tokens were chosen from are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError


@dataclass
class Generation:
    """Greedy tokens and the logits each new one was chosen from."""

    tokens: np.ndarray  # (batch, prompt + new): the prompt (or the decoder start token) and the new tokens
    logits: np.ndarray  # (batch, new, vocab)

    @property
    def new_tokens(self) -> np.ndarray:
        return self.tokens[:, self.tokens.shape[1] - self.logits.shape[1]:]


def _pick(logits: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    last = np.asarray(logits)[:, -1]
    return last, last.argmax(-1)[:, None].astype(ids.dtype)


def greedy(runner: Any, input_ids: np.ndarray, max_new_tokens: int) -> Generation:
    """``max_new_tokens`` greedy tokens through a decoder without cache (``input_ids`` + ``attention_mask``)."""
    ids, steps = np.asarray(input_ids), []
    names = _input_names(runner)
    for _ in range(max_new_tokens):
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        last, nxt = _pick(runner.infer({k: v for k, v in feeds.items() if k in names})["logits"], ids)
        steps.append(last)
        ids = np.concatenate([ids, nxt], axis=1)
    return Generation(ids, np.stack(steps, axis=1))


def _input_names(runner: Any) -> set[str]:
    model = getattr(runner, "model", None)
    return {s.name for s in model.inputs} if model is not None else {"input_ids", "attention_mask"}


def _empty_cache(runner: Any, batch: int, prefix: str) -> dict[str, np.ndarray]:
    """Zero-length ``past_key_values.*`` inputs of ``runner``'s model (batch, heads, 0, head size)."""
    past = {}
    for spec in runner.model.inputs:
        if spec.name.startswith(prefix):
            heads, head_dim = spec.shape[1], spec.shape[3]
            if not isinstance(heads, int) or not isinstance(head_dim, int):
                raise WorkbenchError(f"the cache input {spec.name} has shape {spec.shape}: the heads and head size "
                                     "must be known", "load the model with task='...-with-past'")
            past[spec.name] = np.zeros((batch, heads, 0, head_dim), np.dtype(spec.dtype))
    if not past:
        raise WorkbenchError(f"{runner.model.name} takes no KV cache (no input named {prefix}*)",
                             "load it with task='text-generation-with-past' (or the encoder-decoder pair "
                             "with task='text2text-generation-with-past')")
    return past


def _fed_back(out: dict[str, np.ndarray], past: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {n: np.asarray(out[n.replace("past_key_values", "present", 1)]) for n in past}


def greedy_with_past(runner: Any, input_ids: np.ndarray, max_new_tokens: int) -> Generation:
    """``max_new_tokens`` greedy tokens through a decoder with its KV cache as inputs and outputs."""
    ids = np.asarray(input_ids)
    past = _empty_cache(runner, ids.shape[0], "past_key_values.")
    step_ids, steps = ids, []
    for _ in range(max_new_tokens):
        out = runner.infer({"input_ids": step_ids, "attention_mask": np.ones((ids.shape[0], ids.shape[1]), ids.dtype),
                            **past})
        last, step_ids = _pick(out["logits"], ids)
        steps.append(last)
        ids = np.concatenate([ids, step_ids], axis=1)
        past = _fed_back(out, past)
    return Generation(ids, np.stack(steps, axis=1))


def _start(model: Any, start_token: int | None) -> int:
    if start_token is not None:
        return int(start_token)
    source = getattr(model, "original", model)  # an export's config is its original's
    config = getattr(source.native(), "config", None) if source.format == "hf" else None
    start = getattr(config, "decoder_start_token_id", None)
    if start is None:
        raise WorkbenchError(f"{model.name} does not say which token starts the decoder",
                             "pass start_token= (the model's decoder_start_token_id)")
    return int(start)


def greedy_seq2seq(encoder: Any, decoder: Any, inputs: dict[str, np.ndarray], max_new_tokens: int,
                   start_token: int | None = None) -> Generation:
    """Greedy tokens through an exported encoder-decoder pair: ``encoder`` once on ``inputs`` (its own
    inputs: ``input_ids`` / ``attention_mask``, ``input_features``, …), then ``decoder`` one token a step with
    its self-attention cache. ``start_token``: the decoder's first token (default: the config's
    ``decoder_start_token_id``, read from the decoder's model where it is a transformers one)."""
    enc_names = _input_names(encoder)
    hidden = np.asarray(encoder.infer({k: v for k, v in inputs.items() if k in enc_names})["last_hidden_state"])
    batch = hidden.shape[0]
    ids = np.full((batch, 1), _start(decoder.model, start_token), np.int64)
    past = _empty_cache(decoder, batch, "past_key_values.")
    fixed = {"encoder_hidden_states": hidden}
    if "encoder_attention_mask" in _input_names(decoder):
        fixed["encoder_attention_mask"] = np.asarray(inputs["attention_mask"])
    step_ids, steps = ids, []
    for _ in range(max_new_tokens):
        out = decoder.infer({"input_ids": step_ids, **fixed, **past})
        last, step_ids = _pick(out["logits"], ids)
        steps.append(last)
        ids = np.concatenate([ids, step_ids], axis=1)
        past = _fed_back(out, past)
    return Generation(ids, np.stack(steps, axis=1))


def greedy_seq2seq_reference(full: Any, inputs: dict[str, np.ndarray], max_new_tokens: int,
                             start_token: int | None = None) -> Generation:
    """The same generation through the whole model without a cache (``decoder_input_ids`` grows)."""
    names = _input_names(full)
    batch = next(iter(inputs.values())).shape[0]
    ids = np.full((batch, 1), _start(full.model, start_token), np.int64)
    steps = []
    for _ in range(max_new_tokens):
        feeds = {k: v for k, v in inputs.items() if k in names}
        last, nxt = _pick(full.infer({**feeds, "decoder_input_ids": ids})["logits"], ids)
        steps.append(last)
        ids = np.concatenate([ids, nxt], axis=1)
    return Generation(ids, np.stack(steps, axis=1))


def agreement(ours: Generation, reference: Generation) -> dict[str, Any]:
    """``same_tokens``; ``token_agreement`` (share of new tokens equal); ``first_difference`` (the first step
    whose token differs in any row, or None); ``logits_max_abs`` / ``logits_rel_l2`` over the steps up to
    and including it (after a different token the two runs see different text)."""
    a, b = ours.new_tokens, reference.new_tokens
    if a.shape != b.shape:
        raise WorkbenchError(f"the generations have different shapes ({a.shape} vs {b.shape})",
                             "generate the same number of tokens from the same inputs")
    differ = np.flatnonzero((a != b).any(axis=0))
    first = int(differ[0]) if differ.size else None
    upto = a.shape[1] if first is None else first + 1
    la, lb = ours.logits[:, :upto], reference.logits[:, :upto]
    return {"same_tokens": first is None, "token_agreement": float((a == b).mean()), "first_difference": first,
            "logits_max_abs": float(np.abs(la - lb).max()),
            "logits_rel_l2": float(np.linalg.norm(la - lb) / (np.linalg.norm(lb) + 1e-12))}

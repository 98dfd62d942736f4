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
import math
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

    def reweigh(self, base: Bm25Store) -> None:
        """Score words as if these passages and `base`'s were one corpus: each word's scores
        scaled by its idf over both against its idf over these alone (loaded whole, not
        memory-mapped, since the scores change in place)."""
        if self._retriever is None or base._retriever is None:
            return
        scores = self._retriever.scores
        data, indptr = scores["data"], scores["indptr"]
        if not data.flags.writeable:
            raise ValueError("load the delta's BM25 with mmap=False to reweigh it")
        base_indptr = base._retriever.scores["indptr"]
        own, everyone = len(self), len(self) + len(base)
        for word, column in self._vocab.items():
            if column + 1 >= len(indptr):  # a token of the vocabulary no passage holds
                continue
            start, end = int(indptr[column]), int(indptr[column + 1])
            if start == end:
                continue
            in_base = base._vocab.get(word)
            holding = end - start
            if in_base is not None and in_base + 1 < len(base_indptr):
                holding += int(base_indptr[in_base + 1] - base_indptr[in_base])
            data[start:end] *= lucene_idf(everyone, holding) / lucene_idf(own, end - start)

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


def lucene_idf(passages: int, holding: int) -> float:
    """bm25s's default idf (Lucene's) of a word in `holding` of `passages` passages."""
    return math.log(1 + (passages - holding + 0.5) / (holding + 0.5))


class LayeredLexicalStore:
    """A version in layers: the base's BM25 less the hidden passages, and the delta's, whose
    words are weighed by their frequency over both (the delta's own, over a few articles,
    would make any word it holds look rare). Passage lengths stay each layer's own."""

    def __init__(self, base: Bm25Store, delta: Bm25Store, hidden: Sequence[int]) -> None:
        self.base = base
        self.delta = delta
        self.hidden = {int(key) for key in hidden}
        delta.reweigh(base)

    def __len__(self) -> int:
        return len(self.base) - len(self.hidden) + len(self.delta)

    def search(self, queries: Sequence[str], k: int) -> list[dict[int, float]]:
        results = []
        for base, delta in zip(self.base.search(queries, k + len(self.hidden)),
                               self.delta.search(queries, k), strict=True):  # fmt: skip
            merged = {key: score for key, score in base.items() if key not in self.hidden}
            merged.update(delta)
            best = sorted(merged, key=lambda key: (-merged[key], key))[:k]
            results.append({key: merged[key] for key in best})
        return results

    def save(self, path: Path) -> None:
        raise ValueError("a version in layers is saved by its layers")

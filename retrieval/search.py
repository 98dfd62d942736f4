"""Retrieval: three rankings of the passages, fused by reciprocal rank.

- dense: the passage's vector against the question's (FAISS inner product);
- bm25: the passage's words, with its article's title, against the question's;
- sentences: the passage's best-matching sentence vector against the question's.
  A question is usually answered by one sentence, whose meaning a whole
  passage's vector dilutes; ranking passages by their best sentence found the
  answer's passage first in 80 % of tune-half questions, against 73 % without.

Owns the `Hit` record. `search_batch` is the primitive; `search` asks one
query through it. Every ranking comes from a store of the index (vectors,
BM25, the sentence -> passage table) as passage keys; only the fused top few
are fetched as passages.

Work that lets go of the GIL overlaps work that holds it: the question is embedded
(ONNX Runtime) while BM25 scores (Python and numpy), and the passage vectors are searched
(FAISS) while the sentence store searches and re-scores. At a million passages that took a
search from 31-34 to 19-27 ms p50 (three runs each of 200 questions, each search followed by
its `ask`). `QAEngine.ask` does the same (`search_embedding`): once numpy's BLAS threads no
longer spun beside the models (`runtime.one_numpy_blas_thread`) that saved it 4-6 ms at a
million passages with the two ways interleaved question by question (150 questions, two
runs), though the benchmark's loop, whose runs differ by 10 ms, does not show it (ask p50
115-137 ms in four runs against 116-125 in four); before, it had made the `ask` slower
(159-171 against 150-152 ms p50).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np

from retrieval.articles import Article
from retrieval.chunking import Chunk
from retrieval.embedding import Embedder
from retrieval.store import StoredIndex

Mode = Literal["hybrid", "dense", "bm25"]
T = TypeVar("T")
# Fusion, chosen on the tune half (24 articles, 1,000 questions; recall@5 0.942 -> 0.973
# with the 1,000-character passages): a small k lets each ranking's top places count, and
# the passage vectors, the weakest ranking alone, get half a vote.
RRF_K = 5
HYBRID_WEIGHTS = {"dense": 0.5, "bm25": 1.0, "sentences": 1.0}
SENTENCE_CANDIDATES = 100


def _check_top_k(top_k: int) -> None:
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    article: Article
    score: float
    dense_score: float
    lexical_score: float


class Searcher:
    """Searches an index's stores by id; holds no copy of the corpus."""

    def __init__(self, index: StoredIndex, embedder: Embedder, candidates: int = 30) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        self.index = index
        self.embedder = embedder
        self.candidates = candidates
        # The embedding or the passage-vector search of each of two concurrent searches (page
        # sessions share a Searcher), while the calling threads do the rest.
        self._beside = ThreadPoolExecutor(max_workers=2, thread_name_prefix="article-qa-search")

    def _later(self, work: Callable[..., T], *args: Any) -> Callable[[], T]:
        """Start `work(*args)` on a worker; the function returned gives its result, doing the
        work itself when no worker has started it (both busy with other sessions' searches)."""
        task = self._beside.submit(work, *args)
        return lambda: work(*args) if task.cancel() else task.result()

    def _dense(self, vectors: np.ndarray, k: int) -> list[dict[int, float]]:
        keys, scores = self.index.passages.search(vectors, k)
        return [
            {int(i): float(s) for i, s in zip(row_keys, row_scores, strict=True) if i >= 0}
            for row_keys, row_scores in zip(keys, scores, strict=True)
        ]

    def _sentences(self, vectors: np.ndarray) -> list[dict[int, float]]:
        """Passages ranked by their best sentence: passage key -> that sentence's similarity."""
        keys, scores = self.index.sentences.search(vectors, SENTENCE_CANDIDATES)
        passages_of = self.index.documents.passages_of_sentences(
            sorted({int(k) for k in keys.reshape(-1) if k >= 0})
        )
        ranked: list[dict[int, float]] = []
        for row_keys, row_scores in zip(keys, scores, strict=True):
            best: dict[int, float] = {}
            for sentence, score in zip(row_keys, row_scores, strict=True):
                for passage in passages_of.get(int(sentence), ()):
                    best.setdefault(passage, float(score))
            ranked.append(best)
        return ranked

    def search_batch(
        self,
        queries: Sequence[str],
        top_k: int = 5,
        mode: Mode = "hybrid",
        vectors: np.ndarray | None = None,
    ) -> list[list[Hit]]:
        """Hits for each query; `vectors` are the queries' embeddings when already computed."""
        _check_top_k(top_k)
        if vectors is None:
            embedding = self._later(self.embedder.embed, list(queries))
        else:
            embedding = lambda: vectors  # noqa: E731
        return self._search(queries, top_k, mode, embedding)[0]

    def search_embedding(
        self, query: str, also: Sequence[str] = (), top_k: int = 5, mode: Mode = "hybrid"
    ) -> tuple[list[Hit], np.ndarray]:
        """Hits for `query`, and the vectors of `query` and of the texts `also`, embedded in
        one model call while BM25 scores (what an `ask` needs: the question's vector again
        for its sentences, and a follow-up's own words')."""
        _check_top_k(top_k)
        embedding = self._later(self.embedder.embed, [query, *also])
        hits, vectors = self._search([query], top_k, mode, embedding)
        return hits[0], vectors

    def _search(
        self,
        queries: Sequence[str],
        top_k: int,
        mode: Mode,
        embedding: Callable[[], np.ndarray],
    ) -> tuple[list[list[Hit]], np.ndarray]:
        """The hits of each query, and what `embedding` gave (its first rows: the queries')."""
        k = max(self.candidates, top_k)
        lexical = self.index.lexical.search(queries, k)  # while the embedding runs
        embedded = embedding()
        vectors = embedded[: len(queries)]
        dense = self._later(self._dense, vectors, k)
        by_sentence = self._sentences(vectors) if mode == "hybrid" else [{}] * len(vectors)
        dense = dense()
        hits = [
            self._fuse(vector, {"dense": d, "bm25": lex, "sentences": sent}, top_k, mode)
            for vector, d, lex, sent in zip(vectors, dense, lexical, by_sentence, strict=True)
        ]
        return hits, embedded

    def search(self, query: str, top_k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        return self.search_batch([query], top_k, mode)[0]

    def _fuse(
        self,
        vector: np.ndarray,
        rankings: dict[str, dict[int, float]],
        top_k: int,
        mode: Mode,
    ) -> list[Hit]:
        weights = HYBRID_WEIGHTS if mode == "hybrid" else {mode: 1.0}
        depth = max(self.candidates, top_k)
        fused: dict[int, float] = {}
        for name, weight in weights.items():
            ranking = rankings[name]
            ordered = sorted(ranking, key=lambda key: (-ranking[key], key))[:depth]
            for rank, key in enumerate(ordered):
                fused[key] = fused.get(key, 0.0) + weight / (RRF_K + rank + 1)
        best = sorted(fused, key=lambda key: (-fused[key], key))[:top_k]
        if not best:
            return []
        chunks = self.index.documents.passages(best)
        articles = self.index.documents.articles_by_id(
            chunk.article_id for chunk in chunks.values()
        )
        dense_scores = self.index.passages.get(best) @ vector
        return [
            Hit(
                chunk=chunks[key],
                article=articles[chunks[key].article_id],
                score=fused[key],
                dense_score=float(dense),
                lexical_score=rankings["bm25"].get(key, 0.0),
            )
            for key, dense in zip(best, dense_scores, strict=True)
        ]

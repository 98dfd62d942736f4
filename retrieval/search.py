"""Retrieval: dense (FAISS inner product) and lexical (BM25), fused by reciprocal rank.

Owns the `Hit` record. `search_batch` is the primitive; `search` asks one
query through it. The BM25 index is rebuilt from the chunk texts when the
index loads (milliseconds for thousands of chunks), so it is never out of
step with the vectors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from retrieval.articles import Article
from retrieval.chunking import Chunk
from retrieval.embedding import Embedder
from retrieval.store import StoredIndex

Mode = Literal["hybrid", "dense", "bm25"]
RRF_K = 60


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    article: Article
    score: float
    dense_score: float
    lexical_score: float


def lexical_tokenizer():
    import Stemmer

    return Stemmer.Stemmer("english")


class Searcher:
    def __init__(self, index: StoredIndex, embedder: Embedder, candidates: int = 30) -> None:
        import bm25s
        import faiss

        # bm25s sets its logger to DEBUG on import and logs every index build.
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        self.index = index
        self.embedder = embedder
        self.candidates = candidates
        self.faiss = faiss.IndexFlatIP(index.manifest.dimension)
        if len(index.vectors):
            self.faiss.add(np.ascontiguousarray(index.vectors, dtype=np.float32))
        self._stemmer = lexical_tokenizer()
        self.bm25 = bm25s.BM25()
        texts = [chunk.text for chunk in index.chunks]
        self._lexical_ready = bool(texts)
        if texts:
            tokens = bm25s.tokenize(
                texts, stopwords="en", stemmer=self._stemmer, show_progress=False
            )
            self._vocab = tokens.vocab
            self.bm25.index(tokens, show_progress=False)

    def _dense(self, vectors: np.ndarray, k: int) -> list[dict[int, float]]:
        if not self.faiss.ntotal:
            return [{} for _ in range(len(vectors))]
        scores, ids = self.faiss.search(vectors, min(k, self.faiss.ntotal))
        return [
            {int(i): float(s) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0}
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    def _lexical(self, queries: Sequence[str], k: int) -> list[dict[int, float]]:
        import bm25s

        results: list[dict[int, float]] = []
        for query in queries:
            if not self._lexical_ready:
                results.append({})
                continue
            words = bm25s.tokenize(
                [query],
                stopwords="en",
                stemmer=self._stemmer,
                return_ids=False,
                show_progress=False,
            )[0]
            known = [w for w in words if w in self._vocab]
            if not known:
                results.append({})
                continue
            ids, scores = self.bm25.retrieve(
                [known], k=min(k, len(self.index.chunks)), show_progress=False
            )
            results.append(
                {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if s > 0}
            )
        return results

    def search_batch(
        self,
        queries: Sequence[str],
        top_k: int = 5,
        mode: Mode = "hybrid",
        vectors: np.ndarray | None = None,
    ) -> list[list[Hit]]:
        """Hits for each query; `vectors` are the queries' embeddings when already computed."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        k = max(self.candidates, top_k)
        if vectors is None:
            vectors = self.embedder.embed(list(queries))
        dense = self._dense(vectors, k)
        lexical = self._lexical(queries, k)
        return [
            self._fuse(vector, d, lex, top_k, mode)
            for vector, d, lex in zip(vectors, dense, lexical, strict=True)
        ]

    def search(self, query: str, top_k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        return self.search_batch([query], top_k, mode)[0]

    def _fuse(
        self,
        vector: np.ndarray,
        dense: dict[int, float],
        lexical: dict[int, float],
        top_k: int,
        mode: Mode,
    ) -> list[Hit]:
        fused: dict[int, float] = {}
        rankings = {"dense": [dense], "bm25": [lexical], "hybrid": [dense, lexical]}[mode]
        for ranking in rankings:
            ordered = sorted(ranking, key=ranking.__getitem__, reverse=True)
            for rank, row in enumerate(ordered):
                fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused, key=lambda row: (-fused[row], row))[:top_k]
        hits = []
        for row in best:
            chunk = self.index.chunks[row]
            hits.append(
                Hit(
                    chunk=chunk,
                    article=self.index.article_of(chunk),
                    score=fused[row],
                    dense_score=float(self.index.vectors[row] @ vector),
                    lexical_score=lexical.get(row, 0.0),
                )
            )
        return hits

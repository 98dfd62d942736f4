"""Retrieval: three rankings of the passages, fused by reciprocal rank.

- dense: the passage's vector against the question's (FAISS inner product);
- bm25: the passage's words, with its article's title, against the question's;
- sentences: the passage's best-matching sentence vector against the question's.
  A question is usually answered by one sentence, whose meaning a whole
  passage's vector dilutes; ranking passages by their best sentence found the
  answer's passage first in 80 % of tune-half questions, against 73 % without.

Owns the `Hit` record. `search_batch` is the primitive; `search` asks one
query through it. The BM25 index is rebuilt from the chunk texts when the
index loads (milliseconds for thousands of chunks), so it is never out of
step with the vectors.
"""

from __future__ import annotations

import bisect
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
# Fusion, chosen on the tune half (24 articles, 1,000 questions; recall@5 0.942 -> 0.973
# with the 1,000-character passages): a small k lets each ranking's top places count, and
# the passage vectors, the weakest ranking alone, get half a vote.
RRF_K = 5
HYBRID_WEIGHTS = {"dense": 0.5, "bm25": 1.0, "sentences": 1.0}
SENTENCE_CANDIDATES = 100


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
        self.sentence_faiss = faiss.IndexFlatIP(index.manifest.dimension)
        if len(index.sentence_vectors):
            self.sentence_faiss.add(np.ascontiguousarray(index.sentence_vectors, dtype=np.float32))
        self.sentence_chunks = chunks_of_sentences(index)
        self._stemmer = lexical_tokenizer()
        self.bm25 = bm25s.BM25()
        # The title goes with every passage: questions name the subject of the whole
        # article ("the tunnel") more often than the passage that answers them does.
        texts = [f"{index.article_of(chunk).title}\n{chunk.text}" for chunk in index.chunks]
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

    def _sentences(self, vectors: np.ndarray) -> list[dict[int, float]]:
        """Passages ranked by their best sentence: chunk row -> that sentence's similarity."""
        if not self.sentence_faiss.ntotal:
            return [{} for _ in range(len(vectors))]
        k = min(SENTENCE_CANDIDATES, self.sentence_faiss.ntotal)
        scores, ids = self.sentence_faiss.search(vectors, k)
        ranked: list[dict[int, float]] = []
        for row_ids, row_scores in zip(ids, scores, strict=True):
            best: dict[int, float] = {}
            for sentence, score in zip(row_ids, row_scores, strict=True):
                for chunk in self.sentence_chunks[sentence] if sentence >= 0 else ():
                    best.setdefault(chunk, float(score))
            ranked.append(best)
        return ranked

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
        by_sentence = self._sentences(vectors) if mode == "hybrid" else [{}] * len(vectors)
        return [
            self._fuse(vector, {"dense": d, "bm25": lex, "sentences": sent}, top_k, mode)
            for vector, d, lex, sent in zip(vectors, dense, lexical, by_sentence, strict=True)
        ]

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
            ordered = sorted(ranking, key=ranking.__getitem__, reverse=True)[:depth]
            for rank, row in enumerate(ordered):
                fused[row] = fused.get(row, 0.0) + weight / (RRF_K + rank + 1)
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
                    lexical_score=rankings["bm25"].get(row, 0.0),
                )
            )
        return hits


def chunks_of_sentences(index: StoredIndex) -> list[tuple[int, ...]]:
    """For each sentence row, the rows of the chunks that overlap it (one, or two at a seam)."""
    rows_of: dict[str, list[int]] = {}
    for row, chunk in enumerate(index.chunks):
        rows_of.setdefault(chunk.article_id, []).append(row)
    for rows in rows_of.values():
        rows.sort(key=lambda row: index.chunks[row].start)
    starts = {a: [index.chunks[row].start for row in rows] for a, rows in rows_of.items()}
    found: list[tuple[int, ...]] = []
    for sentence in index.sentences:
        rows = rows_of.get(sentence.article_id, [])
        # Chunks of an article start and end in order: walk back from the last one
        # starting before the sentence ends, while they still reach into it.
        at = bisect.bisect_left(starts.get(sentence.article_id, []), sentence.end) - 1
        overlapping = []
        while at >= 0 and index.chunks[rows[at]].end > sentence.start:
            overlapping.append(rows[at])
            at -= 1
        found.append(tuple(reversed(overlapping)))
    return found

"""Tests of retrieval.search: dense against brute force, BM25, and their fusion."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.embedding import FakeEmbedder
from retrieval.search import Searcher
from retrieval.store import load_index
from tests.helpers import build_fake, write_corpus


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    build_fake(write_corpus(root / "corpus"), root / "index")
    return Searcher(load_index(root / "index"), FakeEmbedder())


def test_dense_ranking_matches_brute_force(searcher):
    query = "who steered the ferry across the bay"
    vector = FakeEmbedder().embed([query])[0]
    expected = np.argsort(-(searcher.index.vectors @ vector), kind="stable")[:3]
    hits = searcher.search(query, top_k=3, mode="dense")
    assert [h.chunk.id for h in hits] == [searcher.index.chunks[i].id for i in expected]
    assert hits[0].dense_score == pytest.approx(float(searcher.index.vectors[expected[0]] @ vector))


def test_bm25_finds_the_rare_word(searcher):
    hits = searcher.search("Kettlebrook cider", top_k=1, mode="bm25")
    assert "Orchard" in hits[0].article.title
    assert hits[0].lexical_score > 0


def test_hybrid_returns_top_k_with_sources(searcher):
    hits = searcher.search("asteroid named by pupils", top_k=2)
    assert len(hits) == 2
    assert hits[0].article.title == "Students name a new asteroid"
    assert hits[0].score >= hits[1].score


def test_batch_equals_single_queries(searcher):
    queries = ["ferry repair cost", "festival visitors"]
    batch = searcher.search_batch(queries, top_k=3)
    assert [[h.chunk.id for h in hits] for hits in batch] == [
        [h.chunk.id for h in searcher.search(q, top_k=3)] for q in queries
    ]


def test_query_of_unknown_words_still_returns_dense_hits(searcher):
    assert searcher.search("zzzz qqqq", top_k=2, mode="hybrid")


def test_top_k_below_one_is_refused(searcher):
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        searcher.search("ferry", top_k=0)

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
    passages = searcher.index.documents.all_passages()
    vectors = searcher.index.passages.get([key for key, _ in passages])
    expected = np.argsort(-(vectors @ vector), kind="stable")[:3]
    hits = searcher.search(query, top_k=3, mode="dense")
    assert [h.chunk.id for h in hits] == [passages[i][1].id for i in expected]
    assert hits[0].dense_score == pytest.approx(float(vectors[expected[0]] @ vector))


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


@pytest.mark.parametrize("also", [(), ("who repaired it",)])
def test_a_search_that_embeds_gives_the_hits_of_a_search_and_every_text_s_vector(searcher, also):
    query = "ferry repair cost"
    hits, vectors = searcher.search_embedding(query, also, top_k=3)
    assert [h.chunk.id for h in hits] == [h.chunk.id for h in searcher.search(query, top_k=3)]
    np.testing.assert_allclose(vectors, FakeEmbedder().embed([query, *also]), atol=1e-6)


def test_a_search_that_embeds_refuses_top_k_below_one(searcher):
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        searcher.search_embedding("ferry", top_k=0)


def test_query_of_unknown_words_still_returns_dense_hits(searcher):
    assert searcher.search("zzzz qqqq", top_k=2, mode="hybrid")


def test_top_k_below_one_is_refused(searcher):
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        searcher.search("ferry", top_k=0)


def test_every_sentence_maps_to_exactly_the_chunks_overlapping_it(searcher):
    documents = searcher.index.documents
    sentences = documents.all_sentences()
    mapping = documents.passages_of_sentences([s.key for s in sentences])
    assert len(mapping) == len(sentences) == len(searcher.index.sentences)
    passages = documents.all_passages()
    for stored in sentences:
        sentence = stored.sentence
        expected = [
            key
            for key, chunk in passages
            if chunk.article_id == sentence.article_id
            and chunk.start < sentence.end
            and sentence.start < chunk.end
        ]
        assert sorted(mapping[stored.key]) == sorted(expected)
        assert expected  # chunks cover the whole article


def test_sentence_ranking_puts_the_passage_of_the_best_sentence_first(searcher):
    index = searcher.index
    sentences = index.documents.all_sentences()
    stored = sentences[len(sentences) // 2]
    sentence = stored.sentence
    # The sentence's own vector as the query: its passage must rank first.
    (ranking,) = searcher._sentences(index.sentences.get([stored.key]))
    first = max(ranking, key=ranking.__getitem__)
    chunk = index.documents.passages([first])[first]
    assert chunk.article_id == sentence.article_id
    assert chunk.start < sentence.end and sentence.start < chunk.end
    assert ranking[first] == pytest.approx(1.0, abs=1e-5)


def test_bm25_matches_a_title_word_missing_from_the_passage(searcher):
    documents = searcher.index.documents
    passages = [chunk for _, chunk in documents.all_passages()]
    # A word of some article's title that none of that article's passages contain.
    for article in documents.articles():
        text = " ".join(c.text.lower() for c in passages if c.article_id == article.id)
        missing = [w for w in article.title.lower().split() if len(w) > 4 and w not in text]
        if missing:
            hits = searcher.search(missing[0], top_k=1, mode="bm25")
            assert hits and hits[0].article.id == article.id
            return
    pytest.fail("the fixture corpus has no title word missing from its article's text")


def test_searches_from_many_threads_at_once_find_what_one_at_a_time_does(searcher):
    """Page sessions share a Searcher, whose rankings run partly on its own workers."""
    from concurrent.futures import ThreadPoolExecutor

    queries = ["ferry across the bay", "Kettlebrook cider", "asteroid named by pupils"] * 4
    alone = [[h.chunk.id for h in searcher.search(q, top_k=3)] for q in queries]
    with ThreadPoolExecutor(max_workers=6) as sessions:
        together = list(
            sessions.map(lambda q: [h.chunk.id for h in searcher.search(q, 3)], queries)
        )
    assert together == alone and all(alone)


def test_a_search_does_not_wait_for_workers_busy_with_other_searches(searcher):
    """What no worker has started is done by the searching thread itself."""
    import threading

    release = threading.Event()
    for _ in range(2):
        searcher._beside.submit(release.wait)  # both workers held by "other sessions"
    found = []
    session = threading.Thread(target=lambda: found.extend(searcher.search("Kettlebrook cider")))
    session.start()
    session.join(timeout=20)
    finished = not session.is_alive()
    release.set()
    session.join()
    assert finished, "the search waited for the busy workers"
    assert "Orchard" in found[0].article.title

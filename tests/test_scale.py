"""Tests of retrieval.bench.scale: distractor passages, ANN recall, the table, the CLI's errors."""

from __future__ import annotations

import numpy as np

from retrieval.bench.scale import (
    PASSAGES_PER_ARTICLE,
    SENTENCES_PER_PASSAGE,
    ann_recall,
    distractors,
    fill_noisy,
    format_scale_table,
)
from retrieval.vectors import FaissVectorStore

TEXTS = [f"Source sentence {n} says something about topic {n % 7}." for n in range(40)]


def _vectors(count, dimension=32, seed=0):
    vectors = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_distractors_are_sentences_of_the_pool_at_exact_offsets():
    made = distractors(TEXTS, count=23, seed=1)
    assert len(made.chunks) == 23 == len(made.drawn)
    assert len(made.articles) == 3  # ten passages an article, the last one short
    assert len(made.sentences) == 23 * SENTENCES_PER_PASSAGE == made.drawn.size
    articles = {a.id: a for a in made.articles}
    for chunk in made.chunks:
        assert articles[chunk.article_id].text[chunk.start : chunk.end] == chunk.text
    for sentence in made.sentences:
        assert articles[sentence.article_id].text[sentence.start : sentence.end] in TEXTS
    assert sum(c.article_id == made.articles[0].id for c in made.chunks) == PASSAGES_PER_ARTICLE


def test_a_distractor_passage_stays_within_the_chunk_size():
    texts = [f"Sentence {n} " + "word " * (40 * (n % 5) + 20) for n in range(40)]
    made = distractors(texts, count=200, seed=5, max_chars=1000)
    assert max(chunk.end - chunk.start for chunk in made.chunks) <= 1000
    assert (made.drawn[:, 0] >= 0).all() and (made.drawn == -1).any()
    assert len(made.sentences) == len(made.sentence_sources) == (made.drawn >= 0).sum()
    article = made.articles[0]
    sentences = [s for s in made.sentences if s.article_id == article.id]
    shown = [article.text[s.start : s.end] for s in sentences]
    assert shown == [texts[i] for i in made.sentence_sources[: len(shown)]]
    pool = _vectors(40)
    passages = np.zeros((len(made.chunks), 32), dtype=np.float32)
    fill_noisy(passages, pool, made.drawn, seed=7)
    first = made.drawn[0][made.drawn[0] >= 0]
    mean = pool[first].mean(axis=0)
    assert float(passages[0] @ mean / np.linalg.norm(mean)) > 0.8


def test_distractor_vectors_are_unit_and_near_their_sources():
    pool = _vectors(len(TEXTS), dimension=384)
    made = distractors(TEXTS, count=50, seed=2)
    sentences = np.zeros((made.drawn.size, 384), dtype=np.float32)
    fill_noisy(sentences, pool, made.drawn.reshape(-1), seed=3, block=64)
    assert np.allclose(np.linalg.norm(sentences, axis=1), 1.0, atol=1e-5)
    # Each sentence's vector is its own source's, paraphrased: near it, not a copy.
    cosines = np.sum(sentences * pool[made.drawn.reshape(-1)], axis=1)
    assert (cosines > 0.8).all() and (cosines < 0.97).all()
    text = made.articles[0].text
    assert [text[s.start : s.end] for s in made.sentences[:5]] == [TEXTS[i] for i in made.drawn[0]]
    passages = np.zeros((50, 384), dtype=np.float32)
    fill_noisy(passages, pool, made.drawn, seed=4)
    means = pool[made.drawn].mean(axis=1)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    assert (np.sum(passages * means, axis=1) > 0.8).all()


def test_no_distractors_asked_gives_empty_parts():
    made = distractors(TEXTS, count=0, seed=0)
    assert made.chunks == [] and made.articles == [] and made.drawn.shape == (0, 5)


def test_ann_recall_is_one_for_exact_search_and_high_for_ann(tmp_path):
    # Clustered like text embeddings (uniform random vectors in 32-d have no near
    # neighbours for a graph or an inverted file to find), questions near stored vectors.
    centres = _vectors(30, seed=3)
    vectors = centres[np.arange(3000) % 30] + 0.6 * _vectors(3000)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    keys = np.arange(1, 3001)
    queries = vectors[::150] + 0.5 * _vectors(20, seed=5)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = FaissVectorStore.create(32, keys, vectors)
    assert ann_recall(exact, queries, 10) == 1.0
    for hnsw_limit in (10_000, 1_000):  # a graph; IVF-PQ codes re-scored
        ann = FaissVectorStore.create(32, keys, vectors, exact_limit=100, hnsw_limit=hnsw_limit)
        assert ann.kind == ("hnsw" if hnsw_limit > 3000 else "ivfpq")
        assert 0.9 <= ann_recall(ann, queries, 10) <= 1.0
        assert ann_recall(ann, queries, 100) >= 0.9


def test_table_marks_missing_figures():
    row = {"passages": 1000, "open_s": 0.2, "search_p50_ms": 3.0, "ask_p50_ms": 80.0,
           "ask_p95_ms": 99.0, "sentence_encoding": "fp16", "ann_recall_at_10": 1.0,
           "gold_recall_at_5": 0.9,
           "rss_mb": 400.0, "disk_mb": 12.0, "add_one_article_s": None}  # fmt: skip
    table = format_scale_table([row])
    assert "| 1,000 | fp16 | 0.20 | 3.0 | 80.0 | 99.0 | 1.000 | 0.900 | 400 | 12 | n/a |" in table


def test_shaped_noise_stays_near_the_source_and_within_the_pool_span():
    pool = _vectors(len(TEXTS), dimension=64)
    made = distractors(TEXTS, count=30, seed=6)
    rows = made.drawn.reshape(-1)
    out = np.zeros((len(rows), 64), dtype=np.float32)
    fill_noisy(out, pool, rows, seed=7, noise="shaped")
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(out * pool[rows], axis=1)
    assert (cosines > 0.75).all() and (cosines < 0.999).all()
    # Every distractor vector is a combination of pool vectors: nothing outside their span.
    basis, *_ = np.linalg.lstsq(pool.T, out.T, rcond=None)
    assert np.allclose(pool.T @ basis, out.T, atol=1e-4)


def test_adding_one_article_to_a_large_index_reads_one_file_and_writes_a_layer(
    tmp_path, monkeypatch
):
    from retrieval import articles as articles_module
    from retrieval import indexing
    from retrieval.articles import Article, article_id
    from retrieval.bench.scale import add_one_article, write_corpus
    from retrieval.store import load_index
    from tests.helpers import FAKE, build_fake

    monkeypatch.setattr(indexing, "LAYER_FROM", 0)  # as if the index were large
    monkeypatch.setattr(indexing, "LAYER_SHARE", 100.0)
    corpus = tmp_path / "corpus"
    made = distractors(TEXTS, count=30, seed=3, folder=corpus).articles
    text = "The committee met in the old mill."
    real = [Article(article_id("squad:Mill", text), "Mill", "squad:Mill", text)]
    attributed = write_corpus(corpus, real, made)
    assert attributed[f"{corpus.as_posix()}/evaluation/0000.txt"] == {"squad:Mill": real[0].id}
    assert attributed[made[0].source] == {made[0].source: made[0].id}
    build_fake(corpus, tmp_path / "index")
    before = load_index(tmp_path / "index").manifest.passages
    read: list[str] = []
    reader = articles_module._load_file
    monkeypatch.setattr(articles_module, "_load_file", lambda p: read.append(p.name) or reader(p))

    row = add_one_article(tmp_path / "index", corpus, TEXTS, config=FAKE)

    assert read == ["item-added.txt"]
    assert row["add_one_article_layered"] and row["add_one_article_embedded"] > 0
    assert row["add_one_article_s"] > 0
    index = load_index(tmp_path / "index", FAKE)
    assert index.manifest.passages == len(index.passages) > before
    assert "Added item" in {a.title for a in index.documents.articles()}

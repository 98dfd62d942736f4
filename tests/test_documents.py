"""Tests of retrieval.documents: records by id, sentence/passage overlaps, build-time idf."""

from __future__ import annotations

import pytest

from retrieval.answering import idf_table
from retrieval.articles import Article, text_hash
from retrieval.chunking import ChunkingConfig, chunk_article, split_sentences
from retrieval.documents import (
    DocumentStore,
    passage_key,
    record_key,
    sentence_key,
    write_documents,
)
from retrieval.text import content_stems

FIRST = Article(
    id="a1",
    title="Ferry back",
    source="corpus/ferry.txt",
    text=" ".join(f"Sentence number {n} tells of the ferry and its crew." for n in range(40)),
)
SECOND = Article(id="b2", title="Kites", source="corpus/kites.txt", text="Kites flew. Wind rose.")
CONFIG = ChunkingConfig(size=200, overlap=50)


@pytest.fixture
def stored(tmp_path):
    chunks = [c for a in (FIRST, SECOND) for c in chunk_article(a, CONFIG)]
    sentences = [s for a in (FIRST, SECOND) for s in split_sentences(a)]
    write_documents(tmp_path / "d.sqlite", [FIRST, SECOND], chunks, sentences)
    return DocumentStore.open(tmp_path / "d.sqlite"), chunks, sentences


def test_keys_are_stable_positive_63_bit_integers():
    assert record_key("x") == record_key("x") != record_key("y")
    assert 0 <= record_key("anything") < 2**63


def test_passages_come_back_by_key_with_their_text_cut_from_the_article(stored):
    documents, chunks, _ = stored
    found = documents.passages([passage_key(chunks[3]), passage_key(chunks[0]), 99])
    assert found == {passage_key(chunks[3]): chunks[3], passage_key(chunks[0]): chunks[0]}
    assert documents.passage_count == len(chunks)
    assert [c for _, c in documents.all_passages()] == sorted(
        chunks, key=lambda c: (c.article_id, c.start)
    )


def test_sentences_of_a_passage_are_those_overlapping_it_in_order(stored):
    documents, chunks, sentences = stored
    chunk = chunks[2]
    inside = documents.sentences_in(chunk)
    expected = [
        s for s in sentences
        if s.article_id == chunk.article_id and s.start < chunk.end and s.end > chunk.start
    ]  # fmt: skip
    assert [s.sentence for s in inside] == expected
    assert [s.seq for s in inside] == [sentences.index(s) for s in expected]
    before = documents.sentence_at(chunk.article_id, inside[0].seq - 1)
    assert before.sentence == sentences[inside[0].seq - 1]
    assert documents.sentence_at(chunk.article_id, 10_000) is None


def test_every_sentence_maps_to_the_passages_it_overlaps(stored):
    documents, chunks, sentences = stored
    mapping = documents.passages_of_sentences([sentence_key(s) for s in sentences])
    for sentence in sentences:
        expected = {
            passage_key(c) for c in chunks
            if c.article_id == sentence.article_id
            and c.start < sentence.end and sentence.start < c.end
        }  # fmt: skip
        assert set(mapping[sentence_key(sentence)]) == expected and expected


def test_idf_matches_the_table_over_the_passages(stored):
    documents, chunks, _ = stored
    table = idf_table([content_stems(c.text) for c in chunks])
    for stem in ("ferri", "crew", "kite", "never-seen"):
        assert documents.idf(stem) == pytest.approx(table(stem))


def test_text_hashes_find_a_record_holding_the_same_text(stored):
    documents, chunks, sentences = stored
    text = SECOND.text[sentences[-1].start : sentences[-1].end]
    found = documents.keys_by_text("sentences", [text_hash(text), "none"])
    assert found == {text_hash(text): sentence_key(sentences[-1])}
    with pytest.raises(ValueError, match="no table"):
        documents.keys_by_text("articles", [])


def test_articles_by_id_prefix_and_count(stored):
    documents, chunks, _ = stored
    assert documents.article_count() == 2
    assert documents.article("b2") == SECOND and documents.article("zz") is None
    assert [a.id for a in documents.articles()] == ["a1", "b2"]  # by source
    assert documents.articles_by_prefix("b") == [SECOND]
    assert documents.passage_counts(["a1", "b2", "zz"]) == {
        "a1": sum(c.article_id == "a1" for c in chunks),
        "b2": 1,
    }
    assert documents.articles(limit=1) == [FIRST]


def test_finding_articles_needs_every_word_in_title_or_text(stored):
    documents, chunks, _ = stored
    entries, total = documents.find_articles("KITES wind")
    assert total == 1 and [e.id for e in entries] == ["b2"] and entries[0].passages == 1
    assert documents.find_articles("ferry kites") == ([], 0)
    entries, total = documents.find_articles("", limit=1)
    assert total == 2 and [e.title for e in entries] == ["Ferry back"]  # by title
    entries, _ = documents.find_articles("crew")
    assert entries[0].passages == sum(c.article_id == "a1" for c in chunks)


def test_a_missing_database_is_an_os_error(tmp_path):
    with pytest.raises(OSError, match="d.sqlite missing"):
        DocumentStore.open(tmp_path / "d.sqlite")


def test_threads_sharing_the_store_get_whole_answers(stored, monkeypatch):
    """The page's sessions share one store: a cache cleared by one never breaks another."""
    from concurrent.futures import ThreadPoolExecutor

    import retrieval.documents

    documents, chunks, _ = stored
    monkeypatch.setattr(retrieval.documents, "ARTICLE_CACHE", 0)  # cleared on every call
    keys = [passage_key(c) for c in chunks]

    def fetch(_):
        found = documents.passages(keys)
        return len(found) == len(chunks) and documents.article("b2") == SECOND

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(fetch, range(200)))

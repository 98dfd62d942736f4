"""Tests of retrieval.chunking: offsets always slice the article text exactly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.articles import Article
from retrieval.chunking import ChunkingConfig, chunk_article, split_offsets


def article(text: str) -> Article:
    return Article(id="a1", title="t", source="s.txt", text=text)


def test_chunks_slice_text_and_respect_size():
    text = " ".join(f"Sentence number {i} talks about the harbour." for i in range(60))
    config = ChunkingConfig(size=200, overlap=40)
    chunks = chunk_article(article(text), config)
    assert len(chunks) > 5
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert len(chunk.text) <= 200
    assert chunks[0].start == 0
    assert chunks[-1].end == len(text)


def test_chunks_prefer_sentence_ends():
    text = " ".join(f"Sentence number {i} talks about the harbour." for i in range(60))
    chunks = chunk_article(article(text), ChunkingConfig(size=200, overlap=40))
    assert all(chunk.text.endswith(".") for chunk in chunks)


def test_consecutive_chunks_overlap():
    text = " ".join(f"Word{i}" for i in range(400))
    chunks = chunk_article(article(text), ChunkingConfig(size=120, overlap=40))
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start < before.end


def test_chunk_ids_carry_article_and_offsets():
    chunk = chunk_article(article("A short text."), ChunkingConfig())[0]
    assert chunk.id == "a1:0-13"
    assert chunk.article_id == "a1"


def test_repeated_paragraphs_get_distinct_offsets():
    paragraph = "The same paragraph appears twice in this article, word for word."
    text = f"{paragraph}\n\n{paragraph}"
    offsets = split_offsets(text, ChunkingConfig(size=70, overlap=0))
    assert offsets == [(0, len(paragraph)), (len(paragraph) + 2, len(text))]


@pytest.mark.parametrize(
    ("size", "overlap", "message"),
    [(10, 0, "chunk size must be at least 50"), (100, 100, "chunk overlap must be between")],
)
def test_bad_chunking_settings_are_refused(size, overlap, message):
    with pytest.raises(ValueError, match=message):
        ChunkingConfig(size=size, overlap=overlap)


@settings(max_examples=200, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(list("ab .,!?\n\t'\"é字") + ["\n\n", ". ", "Mr. ", "word "]),
        max_size=300,
    ).map("".join),
    size=st.integers(min_value=50, max_value=200),
    overlap=st.integers(min_value=0, max_value=49),
)
def test_offsets_always_slice_the_text_exactly(text, size, overlap):
    for start, end in split_offsets(text, ChunkingConfig(size=size, overlap=overlap)):
        assert 0 <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip()

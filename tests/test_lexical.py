"""Tests of retrieval.lexical: BM25 by passage key, saved and memory-mapped."""

from __future__ import annotations

import pytest

from retrieval.lexical import Bm25Store

TEXTS = {
    101: "Ferry returns\nThe ferry crossed the harbour at dawn.",
    202: "Kettlebrook cider\nThe orchard pressed apples into cider.",
    303: "Council vote\nThe council voted on the harbour budget.",
}


@pytest.fixture(params=["built", "reopened"])
def store(request, tmp_path):
    built = Bm25Store.build(list(TEXTS), list(TEXTS.values()))
    if request.param == "built":
        return built
    built.save(tmp_path / "bm25")
    return Bm25Store.load(tmp_path / "bm25")


def test_results_are_keys_with_positive_scores_best_first(store):
    (found,) = store.search(["harbour ferries"], k=5)
    assert list(found)[0] == 101 and set(found) == {101, 303}
    assert all(score > 0 for score in found.values())


def test_unknown_words_and_stopwords_find_nothing(store):
    assert store.search(["zebra", "the of"], k=3) == [{}, {}]


def test_k_caps_the_results(store):
    (found,) = store.search(["the harbour cider ferry council"], k=2)
    assert len(found) == 2 and len(store) == 3


def test_an_empty_store_saves_and_finds_nothing(tmp_path):
    Bm25Store.build([], []).save(tmp_path / "bm25")
    empty = Bm25Store.load(tmp_path / "bm25")
    assert len(empty) == 0 and empty.search(["ferry"], k=3) == [{}]


def test_mismatched_keys_and_a_missing_folder_are_errors(tmp_path):
    with pytest.raises(ValueError, match="2 keys for 1 texts"):
        Bm25Store.build([1, 2], ["one"])
    with pytest.raises(OSError, match="keys.npy missing"):
        Bm25Store.load(tmp_path / "bm25")


def test_a_layered_store_scores_the_delta_as_one_corpus_with_the_base(tmp_path):
    from retrieval.lexical import LayeredLexicalStore

    # Passages of one length each, so that BM25's length term is the same in every layer.
    texts = {
        1: "harbour ferry crossing dawn",
        2: "orchard cider apples press",
        3: "council harbour budget vote",
        4: "school asteroid name pupils",
        5: "harbour ferry repair engineers",
    }
    whole = Bm25Store.build(list(texts), list(texts.values()))
    Bm25Store.build([1, 2, 3, 4], [texts[k] for k in (1, 2, 3, 4)]).save(tmp_path / "base")
    Bm25Store.build([5], [texts[5]]).save(tmp_path / "delta")
    layered = LayeredLexicalStore(
        Bm25Store.load(tmp_path / "base"), Bm25Store.load(tmp_path / "delta", mmap=False), [3]
    )
    assert len(layered) == 4
    (found,) = layered.search(["harbour ferry engineers"], k=5)
    (expected,) = whole.search(["harbour ferry engineers"], k=5)
    assert 3 not in found and set(found) == set(expected) - {3}
    assert found[5] == pytest.approx(expected[5], rel=1e-5)
    assert found[1] > 0  # (scored with the base's own counts)
    with pytest.raises(ValueError, match="mmap=False"):
        Bm25Store.load(tmp_path / "delta").reweigh(Bm25Store.load(tmp_path / "base"))

"""The vector-store contract, run against every backend of `retrieval.vectors`.

Each backend is made by a factory taking (dimension, folder) and reopened from
what it saved; a new backend joins by adding its factory to BACKENDS.
"""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.vectors import FaissVectorStore

DIM = 16


def _faiss(encoding="fp32", exact_limit=10_000, hnsw_limit=10_000):
    def make(tmp_path):
        return FaissVectorStore(DIM, encoding, exact_limit=exact_limit, hnsw_limit=hnsw_limit)

    def reopen(store, tmp_path, writable=True):
        path = tmp_path / "vectors.faiss"
        store.save(path)
        return FaissVectorStore.load(path, DIM, writable=writable)

    return make, reopen


def _milvus():
    """Milvus Lite: a local file per test, the same client code as a Milvus cluster's."""
    pytest.importorskip("pymilvus", reason="pymilvus is not installed")
    from retrieval.milvus import MilvusVectorStore

    def make(tmp_path):
        return MilvusVectorStore.create(str(tmp_path / "milvus.db"), "vectors", DIM)

    def reopen(store, tmp_path, writable=True):
        path = tmp_path / "vectors.milvus.json"
        store.save(path)
        return MilvusVectorStore.load(path, DIM, writable=writable)

    return make, reopen


BACKENDS = {
    "milvus-lite": _milvus,
    "faiss-flat": _faiss(),
    "faiss-flat-fp16": _faiss("fp16"),
    # A limit of 50 makes the saved store an ANN index for the 400-vector tests: a graph,
    # or with a graph limit of 100, IVF-PQ codes re-scored from the vectors.
    "faiss-hnsw": _faiss(exact_limit=50),
    "faiss-hnsw-fp16": _faiss("fp16", exact_limit=50),
    "faiss-ivfpq": _faiss(exact_limit=50, hnsw_limit=100),
    "faiss-ivfpq-fp16": _faiss("fp16", exact_limit=50, hnsw_limit=100),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    factory = BACKENDS[request.param]
    return factory() if callable(factory) else factory


def _unit(count, seed=0):
    rng = np.random.default_rng(seed)
    # Clustered like text embeddings: 20 topics, each vector near one of them.
    centres = rng.standard_normal((20, DIM))
    vectors = centres[rng.integers(0, 20, count)] + 0.4 * rng.standard_normal((count, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _keys(count, seed=0):
    keys = np.random.default_rng(seed + 1).choice(2**62, size=count, replace=False)
    return keys.astype(np.int64)


@pytest.fixture
def filled(backend, tmp_path):
    make, reopen = backend
    store = make(tmp_path)
    keys, vectors = _keys(400), _unit(400)
    store.add(keys, vectors)
    return reopen(store, tmp_path), keys, vectors


def test_each_vector_finds_itself_first_under_its_key(filled):
    store, keys, vectors = filled
    found, scores = store.search(vectors[:20], 3)
    assert found.shape == scores.shape == (20, 3)
    assert list(found[:, 0]) == list(keys[:20])
    assert np.allclose(scores[:, 0], 1.0, atol=1e-3)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_get_returns_the_vectors_of_the_keys_in_order(filled):
    store, keys, vectors = filled
    assert np.allclose(store.get([keys[5], keys[2]]), vectors[[5, 2]], atol=1e-3)
    with pytest.raises(KeyError):
        store.get([12345])


def test_deleted_keys_are_gone_from_search_get_and_count(filled):
    store, keys, vectors = filled
    assert store.delete([keys[0], keys[1], 777]) == 2
    assert len(store) == 398
    found, _ = store.search(vectors[:2], 5)
    assert keys[0] not in found and keys[1] not in found
    with pytest.raises(KeyError):
        store.get([keys[0]])


def test_added_vectors_are_found_after_a_reopen(filled, tmp_path):
    store, keys, vectors = filled
    extra = _unit(3, seed=9)
    store.add([1, 2, 3], extra)
    assert len(store) == 403
    found, _ = store.search(extra, 1)
    assert list(found[:, 0]) == [1, 2, 3]


def test_a_key_added_twice_is_refused(filled):
    store, keys, vectors = filled
    with pytest.raises(ValueError, match="added twice"):
        store.add([keys[3]], vectors[:1])
    with pytest.raises(ValueError, match="added twice"):
        store.add([5, 5], vectors[:2])


def test_vectors_of_another_dimension_are_refused(backend, tmp_path):
    store = backend[0](tmp_path)
    with pytest.raises(ValueError, match=rf"shape \(n, {DIM}\)"):
        store.add([1], np.ones((1, DIM + 1), dtype=np.float32))
    with pytest.raises(ValueError, match="2 keys for 1 vectors"):
        store.add([1, 2], np.ones((1, DIM), dtype=np.float32))


def test_an_empty_store_and_a_deep_k_pad_with_minus_one(backend, tmp_path):
    make, reopen = backend
    empty = reopen(make(tmp_path), tmp_path)
    found, _ = empty.search(_unit(2), 4)
    assert found.shape == (2, 4) and (found == -1).all()
    small = make(tmp_path)
    small.add([10, 20], _unit(2))
    found, _ = small.search(_unit(1), 5)
    assert sorted(found[0][:2]) == [10, 20] and (found[0][2:] == -1).all()


def test_search_agrees_with_exact_search(backend, tmp_path):
    """Recall@10 against brute force, as opened for answering: 1.0 for flat stores, ≥ 0.95
    for the ANN ones."""
    make, reopen = backend
    keys, vectors = _keys(400), _unit(400)
    store = make(tmp_path)
    store.add(keys, vectors)
    store = reopen(store, tmp_path, writable=False)
    assert len(store) == 400
    assert np.allclose(store.get([keys[7], keys[3]]), vectors[[7, 3]], atol=1e-3)
    queries = _unit(50, seed=5)
    exact = keys[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
    found, _ = store.search(queries, 10)
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
    assert recall >= (0.95 if not store.is_exact else 0.999)


def test_a_store_opened_for_reading_refuses_changes(backend, tmp_path):
    make, reopen = backend
    store = make(tmp_path)
    store.add(_keys(100), _unit(100))
    reader = reopen(store, tmp_path, writable=False)
    assert len(reader) == 100
    with pytest.raises(ValueError, match="is read-only"):
        reader.add([1], _unit(1))
    with pytest.raises(ValueError, match="is read-only"):
        reader.delete([1])


@pytest.mark.parametrize(("hnsw_limit", "kind"), [(1_000, "hnsw"), (200, "ivfpq")])
def test_a_large_store_is_saved_as_an_ann_index(tmp_path, hnsw_limit, kind):
    store = FaissVectorStore(DIM, exact_limit=100, hnsw_limit=hnsw_limit)
    store.add(_keys(300), _unit(300))
    assert store.is_exact
    store.save(tmp_path / "v.faiss")
    assert FaissVectorStore.load(tmp_path / "v.faiss", DIM).kind == kind
    created = FaissVectorStore.create(DIM, _keys(300), _unit(300), exact_limit=100,
                                      hnsw_limit=hnsw_limit)  # fmt: skip
    assert created.kind == kind and len(created) == 300


def test_a_one_question_search_gives_faiss_its_threads_back():
    import faiss

    store = FaissVectorStore.create(DIM, _keys(50), _unit(50))
    before = faiss.omp_get_max_threads()
    store.search(_unit(1), 3)
    assert faiss.omp_get_max_threads() == before


def test_an_ivfpq_store_reads_its_files_in_the_background_and_can_be_waited_for(tmp_path):
    from retrieval.vectors import LayeredVectorStore, wait_warm

    FaissVectorStore.create(DIM, _keys(300), _unit(300), exact_limit=100, hnsw_limit=200).save(
        tmp_path / "v.faiss"
    )
    store = FaissVectorStore.load(tmp_path / "v.faiss", DIM)
    assert store.kind == "ivfpq" and store.warming is not None
    layered = LayeredVectorStore(store, FaissVectorStore(DIM), hidden=[])
    wait_warm(layered)
    assert not store.warming.is_alive()
    exact = FaissVectorStore.create(DIM, _keys(10), _unit(10))
    assert exact.warming is None
    wait_warm(exact)  # nothing to wait for


def test_an_ann_store_changed_and_saved_small_becomes_exact(tmp_path):
    keys = _keys(300)
    FaissVectorStore.create(DIM, keys, _unit(300), exact_limit=100).save(tmp_path / "v.faiss")
    store = FaissVectorStore.load(tmp_path / "v.faiss", DIM, writable=True)
    assert store.delete(keys[:250]) == 250
    store.save(tmp_path / "v.faiss")
    reopened = FaissVectorStore.load(tmp_path / "v.faiss", DIM)
    assert reopened.is_exact and sorted(reopened.items()[0]) == sorted(keys[250:])


def test_a_key_table_that_does_not_match_its_index_is_refused(tmp_path):
    FaissVectorStore.create(DIM, _keys(300), _unit(300), exact_limit=100).save(tmp_path / "v.faiss")
    np.save(tmp_path / "v.faiss.keys.npy", np.zeros((3, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="v.faiss.keys.npy does not match v.faiss"):
        FaissVectorStore.load(tmp_path / "v.faiss", DIM)


def test_loading_checks_the_file_and_the_dimension(tmp_path):
    with pytest.raises(OSError, match="v.faiss missing"):
        FaissVectorStore.load(tmp_path / "v.faiss", DIM)
    FaissVectorStore(DIM).save(tmp_path / "v.faiss")
    with pytest.raises(ValueError, match="holds 16-d vectors, not 8-d"):
        FaissVectorStore.load(tmp_path / "v.faiss", 8)


@pytest.mark.parametrize("encoding", ["fp32", "fp16"])
@pytest.mark.parametrize(("exact_limit", "hnsw_limit"), [(10_000, 10_000), (50, 10_000), (50, 80)])
def test_a_reopened_store_knows_its_encoding(tmp_path, encoding, exact_limit, hnsw_limit):
    store = FaissVectorStore.create(DIM, _keys(100), _unit(100), encoding, exact_limit,
                                    hnsw_limit)  # fmt: skip
    store.save(tmp_path / "v.faiss")
    for writable in (False, True):
        assert FaissVectorStore.load(tmp_path / "v.faiss", DIM, writable).encoding == encoding


def test_a_layered_store_searches_both_layers_without_the_hidden_keys():
    from retrieval.vectors import LayeredVectorStore

    keys, vectors = _keys(400), _unit(400)
    base = FaissVectorStore.create(DIM, keys[:300], vectors[:300])
    delta = FaissVectorStore.create(DIM, keys[300:], vectors[300:])
    hidden = keys[:50]
    layered = LayeredVectorStore(base, delta, hidden)
    assert len(layered) == 350
    queries = _unit(30, seed=5)
    alive = np.arange(50, 400)
    exact = keys[alive][np.argsort(-(queries @ vectors[alive].T), axis=1)[:, :10]]
    found, scores = layered.search(queries, 10)
    assert [sorted(row) for row in found] == [sorted(row) for row in exact]
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    # A query whose nearest vectors are all hidden still gets ten live ones.
    found, _ = layered.search(vectors[:1], 10)
    assert not set(found[0]) & set(hidden) and (found[0] >= 0).all()
    assert np.allclose(layered.get([keys[320], keys[60]]), vectors[[320, 60]], atol=1e-6)
    with pytest.raises(KeyError):
        layered.get([keys[3]])
    assert sorted(np.concatenate([k for k, _ in layered.blocks(100)])) == sorted(keys[alive])
    with pytest.raises(ValueError, match="read-only"):
        layered.add([1], _unit(1))

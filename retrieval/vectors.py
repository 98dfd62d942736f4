"""Vector stores: vectors kept under integer ids, searched by inner product.

`VectorStore` is the seam retrieval talks to; `FaissVectorStore` is the local
backend. Up to `exact_limit` vectors it is exact (a flat index, every vector
read per search). Above that it is saved as an approximate (ANN) index over row
numbers, with the keys beside it in a `.keys.npy` file:

- up to `hnsw_limit` vectors, a graph (HNSW), whose distances are computed on
  the stored vectors themselves;
- above it, an inverted file of product-quantized codes (IVF-PQ, 48 bytes a
  vector) whose best `PQ_CANDIDATES` are scored again with the vectors, kept
  beside it in a `.vectors.npy` file read at random, so that memory holds the
  codes and only the pages of stored vectors a question's candidates touch.

Either kind can hold its vectors as fp32 or, to halve the memory, fp16. An ANN
store opens without building anything (a graph is read whole, inverted lists
and the keys are memory-mapped) and is read-only; opened to be changed, it is
read back into an exact index, and saved as an ANN index again. Ids are the document store's record
keys, so no caller ever sees a row number.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

Encoding = Literal["fp32", "fp16"]
# Up to this many vectors a search reads them all (a few ms at 100k x 384 on two cores).
EXACT_LIMIT = 100_000
# The graph: links per vector, and the breadth of the search when building and asking.
# Measured on `article-qa eval-scale`'s 1,000,000 passages (fp16, built in about 260 s on
# two cores; recall@10 against exact search, 200 test-half questions, one thread):
# efSearch 128 / 256 / 512 / 1024 / 2048 found 0.810 / 0.888 / 0.929 / 0.973 / 0.989 in
# 1.1 / 2.0 / 3.0 / 6.1 / 12.9 ms. Its distractors are a crowd of recombined sentences around
# every question, harder than most data: distractors drawn near the questions' own articles
# gave 0.962 at 128. An fp32 graph was no faster (1.3 against 0.8 ms at 128).
HNSW_LIMIT = 2_000_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 1024
# IVF-PQ: lists probed, and how many candidates its codes propose for exact scoring. On the
# 4,998,245 sentence vectors of `eval-scale`'s million passages (2 * sqrt(n) lists), recall
# of the top 100 (what search asks for) against exact search, warm page cache:
#   16 lists: 0.747 / 0.778 / 0.792 with 1,000 / 2,000 / 4,000 candidates (6.7 / 7.8 / 13 ms)
#   64 lists: 0.790 / 0.839 / 0.869 (7.6 / 10.1 / 15.3 ms)
# Drawn near the questions' own articles instead, 1,000 candidates from 16 lists found 0.959.
# The codes alone rank too coarsely: re-scoring is what finds the top.
PQ_NPROBE = 64
PQ_CANDIDATES = 2000


# Batches at least this big are searched with every core.
BATCH_THREADS_FROM = 16


@functools.cache
def _default_threads() -> int:
    import faiss

    return faiss.omp_get_max_threads()


class VectorStore(Protocol):
    dimension: int

    def __len__(self) -> int: ...

    def add(self, keys: Sequence[int], vectors: np.ndarray) -> None:
        """Add vectors under new keys (a key already present is an error)."""

    def delete(self, keys: Sequence[int]) -> int:
        """Remove these keys (unknown ones are ignored); returns how many went."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(keys, scores), each of shape (len(queries), k), best first; missing places -1."""

    def get(self, keys: Sequence[int]) -> np.ndarray:
        """The vectors of these keys, in order (KeyError for an unknown key)."""

    def blocks(self, size: int = 200_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(keys, vectors) of everything stored, a block at a time."""

    def save(self, path: Path) -> None: ...


def _as_matrix(vectors: np.ndarray, dimension: int) -> np.ndarray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] != dimension:
        raise ValueError(f"expected vectors of shape (n, {dimension}), got {matrix.shape}")
    return matrix


def _as_keys(keys: Sequence[int]) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(keys, dtype=np.int64).reshape(-1))


class FaissVectorStore:
    """The local vector store: a FAISS index on disk, memory-mapped when read."""

    def __init__(
        self,
        dimension: int,
        encoding: Encoding = "fp32",
        exact_limit: int = EXACT_LIMIT,
        index=None,
        read_only: bool = False,
        keys: np.ndarray | None = None,
        hnsw_limit: int = HNSW_LIMIT,
        stored: np.ndarray | VectorFile | None = None,
    ) -> None:
        import faiss

        if encoding not in ("fp32", "fp16"):
            raise ValueError(f"encoding must be fp32 or fp16, got {encoding!r}")
        self.dimension = dimension
        self.encoding = encoding
        self.exact_limit = exact_limit
        self.hnsw_limit = hnsw_limit
        self.index = index if index is not None else faiss.IndexIDMap2(self._flat())
        # An ANN store's keys (`_key_table`): row -> key, the keys sorted, and their rows.
        self.keys = keys
        self.stored = stored  # an IVF-PQ store's vectors, by row (in memory, or a VectorFile)
        self.read_only = read_only
        # efSearch of a graph, lists probed of an IVF-PQ index (None when exact).
        self.effort = {"hnsw": HNSW_EF_SEARCH, "ivfpq": PQ_NPROBE}.get(self.kind)
        # The background read of its files into the page cache (`warm`), while it runs.
        self.warming: threading.Thread | None = None

    def _writable(self) -> None:
        if self.read_only:
            raise ValueError(
                "this vector store is read-only (opened memory-mapped, or an ANN index: "
                "load it writable to change it)"
            )

    def _flat(self):
        import faiss

        if self.encoding == "fp16":
            return faiss.IndexScalarQuantizer(
                self.dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
        return faiss.IndexFlatIP(self.dimension)

    @property
    def kind(self) -> str:
        """How the store searches: "exact", "hnsw" (a graph) or "ivfpq" (codes re-scored)."""
        if self.keys is None:
            return "exact"
        return "hnsw" if hasattr(self.index, "hnsw") else "ivfpq"

    @property
    def is_exact(self) -> bool:
        return self.keys is None

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, keys: Sequence[int], vectors: np.ndarray) -> None:
        self._writable()
        ids = _as_keys(keys)
        matrix = _as_matrix(vectors, self.dimension)
        if len(ids) != len(matrix):
            raise ValueError(f"{len(ids)} keys for {len(matrix)} vectors")
        if not len(ids):
            return
        if len(np.unique(ids)) != len(ids) or (len(self) and self._present(ids).any()):
            raise ValueError("a key is added twice; delete it first to replace its vector")
        self.index.add_with_ids(matrix, ids)

    def _present(self, ids: np.ndarray) -> np.ndarray:
        present = np.zeros(len(ids), dtype=bool)
        for at, key in enumerate(ids):
            try:
                self.index.reconstruct(int(key))
                present[at] = True
            except RuntimeError:
                pass
        return present

    def delete(self, keys: Sequence[int]) -> int:
        self._writable()
        ids = _as_keys(keys)
        if not len(ids) or not len(self):
            return 0
        return int(self.index.remove_ids(ids))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        matrix = _as_matrix(queries, self.dimension)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not len(self):
            return (
                np.full((len(matrix), k), -1, dtype=np.int64),
                np.full((len(matrix), k), -np.inf, dtype=np.float32),
            )
        if len(matrix) >= BATCH_THREADS_FROM:
            return self._search(matrix, k)
        # A question or two: one thread. Two OpenMP threads took 3x as long for one query
        # over 100k vectors (33 against 9 ms), fighting ONNX Runtime's threads for the cores.
        import faiss

        threads = _default_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self._search(matrix, k)
        finally:
            faiss.omp_set_num_threads(threads)

    def _search(self, matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        if self.kind == "exact":
            scores, found = self.index.search(matrix, k)
            return found, scores
        if self.kind == "hnsw":
            parameters = faiss.SearchParametersHNSW()
            parameters.efSearch = max(self.effort, k)
            scores, found = self.index.search(matrix, k, params=parameters)
        else:
            parameters = faiss.SearchParametersIVF()
            parameters.nprobe = self.effort
            _, candidates = self.index.search(matrix, max(k, PQ_CANDIDATES), params=parameters)
            scores, found = self._rescore(matrix, candidates, k)
        keys = np.where(found >= 0, self.keys[0][np.maximum(found, 0)], -1)
        return keys, scores

    def _rescore(
        self, matrix: np.ndarray, candidates: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best `k` of each query's candidate rows by their stored vectors: (scores, rows)."""
        scores = np.full((len(matrix), k), -np.inf, dtype=np.float32)
        found = np.full((len(matrix), k), -1, dtype=np.int64)
        for at, (query, rows) in enumerate(zip(matrix, candidates, strict=True)):
            rows = np.sort(rows[rows >= 0])  # in file order: fewer, nearer page reads
            exact = np.asarray(self.stored[rows], dtype=np.float32) @ query
            best = np.argsort(-exact, kind="stable")[:k]
            scores[at, : len(best)] = exact[best]
            found[at, : len(best)] = rows[best]
        return scores, found

    def rows(self, keys: Sequence[int]) -> np.ndarray:
        """An ANN store's row of each key (KeyError for an unknown key): a binary search in
        the sorted keys, nothing built at open."""
        wanted = _as_keys(keys)
        ordered = self.keys[1]
        at = np.minimum(np.searchsorted(ordered, wanted), len(ordered) - 1)
        missing = ordered[at] != wanted
        if missing.any():
            raise KeyError(int(wanted[np.argmax(missing)]))
        return np.asarray(self.keys[2][at])

    def get(self, keys: Sequence[int]) -> np.ndarray:
        if self.keys is not None:
            if not len(keys):
                return np.empty((0, self.dimension), dtype=np.float32)
            return self._vectors(self.rows(keys))
        out = np.empty((len(keys), self.dimension), dtype=np.float32)
        for at, key in enumerate(keys):
            try:
                out[at] = self.index.reconstruct(int(key))
            except RuntimeError:
                raise KeyError(int(key)) from None
        return out

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        """An ANN store's vectors of these rows, as fp32."""
        if self.stored is not None:
            return np.asarray(self.stored[rows], dtype=np.float32)
        return self.index.reconstruct_batch(rows).reshape(-1, self.dimension)

    def stored_keys(self) -> np.ndarray:
        """Every key stored, in the order `blocks` gives their vectors; no vector read."""
        import faiss

        if self.keys is not None:
            return np.asarray(self.keys[0])
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def blocks(self, size: int = 200_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(keys, vectors) of everything stored, `size` at a time, in no particular order."""
        if self.keys is not None:
            for at in range(0, len(self), size):
                rows = np.arange(at, min(len(self), at + size))
                yield np.asarray(self.keys[0][rows]), self._vectors(rows)
            return
        keys = self.stored_keys()
        for at in range(0, len(self), size):
            count = min(size, len(self) - at)
            vectors = self.index.index.reconstruct_n(at, count).reshape(-1, self.dimension)
            yield keys[at : at + count], np.asarray(vectors, dtype=np.float32)

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys, vectors) of everything stored, in no particular order."""
        parts = list(self.blocks())
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dimension), dtype=np.float32)
        return np.concatenate([k for k, _ in parts]), np.vstack([v for _, v in parts])

    @classmethod
    def create(
        cls,
        dimension: int,
        keys: Sequence[int],
        vectors: np.ndarray,
        encoding: Encoding = "fp32",
        exact_limit: int = EXACT_LIMIT,
        hnsw_limit: int = HNSW_LIMIT,
    ) -> FaissVectorStore:
        """A store holding these vectors (one copy made); exact or ANN when saved, by size."""
        store = cls(dimension, encoding, exact_limit, hnsw_limit=hnsw_limit)
        ids = _as_keys(keys)
        if len(ids) <= exact_limit:
            store.add(ids, vectors)
            return store
        if len(np.unique(ids)) != len(ids):
            raise ValueError("a key is added twice; delete it first to replace its vector")
        matrix = _as_matrix(vectors, dimension)
        if len(ids) != len(matrix):
            raise ValueError(f"{len(ids)} keys for {len(matrix)} vectors")
        index, stored = store._ann(matrix)
        return cls(dimension, encoding, exact_limit, index=index, read_only=True,
                   keys=_key_table(ids), hnsw_limit=hnsw_limit, stored=stored)  # fmt: skip

    def _ann(self, vectors: np.ndarray):
        """An ANN index of these vectors over their row numbers: a graph up to `hnsw_limit`
        vectors, IVF-PQ codes above (and the vectors they are re-scored with). Returns
        (index, vectors kept beside it or None)."""
        import faiss

        dimension = self.dimension
        if len(vectors) <= self.hnsw_limit:
            if self.encoding == "fp16":
                index = faiss.IndexHNSWSQ(
                    dimension, faiss.ScalarQuantizer.QT_fp16, HNSW_M, faiss.METRIC_INNER_PRODUCT
                )
            else:
                index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        else:
            nlist = max(1, int(2 * math.sqrt(len(vectors))))
            quantizer = faiss.IndexFlatIP(dimension)
            # 8-bit codes of dimension/8 parts: 48 bytes a 384-d vector (fewer bits when
            # there are fewer vectors than a part's 256 centroids, as in tests).
            bits = min(8, int(math.log2(len(vectors))))
            codes = faiss.IndexIVFPQ(
                quantizer, dimension, nlist, _pq_parts(dimension), bits, faiss.METRIC_INNER_PRODUCT
            )
            codes.cp.min_points_per_centroid = 1  # small stores: no warning about the sample
            codes.own_fields = True
            quantizer.this.disown()
            sample = np.random.default_rng(0).permutation(len(vectors))[: 40 * nlist]
            codes.train(vectors[np.sort(sample)])
            index = codes
        for at in range(0, len(vectors), ADD_BLOCK):
            index.add(vectors[at : at + ADD_BLOCK])
        if hasattr(index, "hnsw"):
            return index, None
        return index, vectors.astype(np.float16 if self.encoding == "fp16" else np.float32)

    def save(self, path: Path) -> None:
        import faiss

        path = Path(path)
        table, beside = _key_table_path(path), _stored_path(path)
        if self.keys is None and len(self) <= self.exact_limit:
            table.unlink(missing_ok=True)
            beside.unlink(missing_ok=True)
            faiss.write_index(self.index, str(path))
            return
        if self.keys is not None:
            index, keys, stored = self.index, self.keys, self.stored
        else:  # grown past the exact limit: saved as an ANN index
            found, vectors = self.items()
            (index, stored), keys = self._ann(vectors), _key_table(found)
        faiss.write_index(index, str(path))
        np.save(table, keys)
        if stored is None:
            beside.unlink(missing_ok=True)
        else:
            np.save(beside, stored)

    @classmethod
    def load(cls, path: Path, dimension: int, writable: bool = False) -> FaissVectorStore:
        """The store saved at `path`: memory-mapped and read-only, or read whole to change it."""
        import faiss

        path = Path(path)
        if not path.is_file():
            raise OSError(f"{path.name} missing")
        table, beside = _key_table_path(path), _stored_path(path)
        keys = np.load(table, mmap_mode="r") if table.is_file() else None
        stored = VectorFile(beside) if keys is not None and beside.is_file() else None
        index = None
        if not writable:
            # Inverted lists are mapped; a graph is read whole: mapping its vectors too
            # (IO_FLAG_MMAP_IFC) made opening a million of them take 5.8 s from a cold
            # page cache, against 1.2 s read whole (1 GB of memory, which its searches
            # touched most of anyway).
            try:
                index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
            except RuntimeError:
                index = None  # an index type FAISS cannot map: read it whole
        if index is None:
            index = faiss.read_index(str(path))
        if index.d != dimension:
            raise ValueError(f"{path.name} holds {index.d}-d vectors, not {dimension}-d")
        if keys is not None and keys.shape != (3, index.ntotal):
            raise ValueError(f"{table.name} does not match {path.name}")
        if stored is not None and stored.shape != (index.ntotal, dimension):
            raise ValueError(f"{beside.name} does not match {path.name}")
        if keys is not None and stored is None and not hasattr(index, "hnsw"):
            raise OSError(f"{beside.name} missing")
        encoding = _encoding_of(index) if stored is None else _dtype_encoding(stored.dtype)
        store = cls(dimension, encoding, index=index, read_only=not writable, keys=keys,
                    stored=stored)  # fmt: skip
        if stored is not None and not writable:
            # the inverted lists, and the vectors they are re-scored with
            store.warming = warm([path, beside])
        if keys is None or not writable:
            return store
        # To be changed: read back into an exact index; saving makes it an ANN index again.
        exact = cls(dimension, store.encoding)
        for block_keys, vectors in store.blocks():
            exact.add(block_keys, vectors)
        return exact


# Vectors handed to an ANN index at a time while it is built.
ADD_BLOCK = 100_000


def _pq_parts(dimension: int) -> int:
    """Parts of a product-quantized code: one byte per 8 dimensions (48 for 384-d)."""
    for parts in range(max(1, dimension // 8), 0, -1):
        if dimension % parts == 0:
            return parts
    return 1


def _key_table(keys: np.ndarray) -> np.ndarray:
    """(3, n): each row's key, the keys sorted, and the row of each sorted key."""
    order = np.argsort(keys, kind="stable")
    return np.stack([keys, keys[order], order.astype(np.int64)])


def _key_table_path(path: Path) -> Path:
    return path.with_name(path.name + ".keys.npy")


def _stored_path(path: Path) -> Path:
    return path.with_name(path.name + ".vectors.npy")


class VectorFile:
    """A .npy file of vectors read by row with `pread`, not memory-mapped: a mapping counts
    each page a question touched (and the kernel's neighbours of it) in the process's
    resident memory for good; 200 questions' 2,000 candidates each over 5M sentence vectors
    made 3.4 GB of a mapped file resident. Read this way, the pages stay in the page cache,
    shared and reclaimable, and the process holds only what it asked for."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)  # fmt: skip
            shape, fortran, dtype = read_header(handle)
            self.offset = handle.tell()
        if fortran or len(shape) != 2:
            raise ValueError(f"{path.name} is not a matrix of vectors")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        self.fd = os.open(path, os.O_RDONLY)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            os.close(self.fd)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        """These rows (ascending order reads best), in order."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 1 or (len(rows) and (rows.min() < 0 or rows.max() >= self.shape[0])):
            raise IndexError("row out of range")
        size = self.row_bytes
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and (np.diff(rows) == 1).all():
            data = os.pread(self.fd, size * len(rows), self.offset + int(rows[0]) * size)
        else:
            data = b"".join(os.pread(self.fd, size, self.offset + row * size)
                            for row in rows.tolist())  # fmt: skip
        return np.frombuffer(data, dtype=self.dtype).reshape(len(rows), self.shape[1])


def warm(paths: Sequence[Path]) -> threading.Thread:
    """Read these files once, in the background, so that they sit in the page cache: an ANN
    store's questions read its files at random, and each read that misses the cache waits on
    the disk (a search over a million passages took 94 ms with the cache cold, against about
    20 warm). The page cache is the kernel's to reclaim; the process's memory does not grow."""

    def read() -> None:
        buffer = bytearray(WARM_BLOCK)
        for path in paths:
            with contextlib.suppress(OSError), open(path, "rb", buffering=0) as handle:
                while handle.readinto(buffer):
                    pass

    thread = threading.Thread(target=read, name="article-qa-warm", daemon=True)
    thread.start()
    return thread


WARM_BLOCK = 8 * 2**20


def wait_warm(store: VectorStore) -> None:
    """Return once the store's files are read into the page cache (at once for a store that
    reads none in the background): what a benchmark of warm searches waits for."""
    for part in (getattr(store, "base", None), getattr(store, "delta", None), store):
        thread = getattr(part, "warming", None)
        if thread is not None:
            thread.join()


def _dtype_encoding(dtype: np.dtype) -> Encoding:
    return "fp16" if dtype == np.float16 else "fp32"


def _encoding_of(index) -> Encoding:
    """fp16 stores are FAISS's scalar-quantized kinds; the rest hold fp32."""
    import faiss

    if hasattr(index, "id_map"):
        inner = faiss.downcast_index(index.index)
    elif hasattr(index, "hnsw"):
        inner = faiss.downcast_index(index.storage)
    else:
        inner = index
    return "fp16" if "ScalarQuantizer" in type(inner).__name__ else "fp32"


def _best(keys: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `k` best (keys, scores), best first."""
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(keys, best, axis=1), np.take_along_axis(scores, best, axis=1)


class LayeredVectorStore:
    """A version in layers: the base's store less its hidden keys (articles changed or
    removed since), and the delta's store of what was added since. Read-only."""

    def __init__(self, base: VectorStore, delta: FaissVectorStore, hidden: Sequence[int]) -> None:
        self.dimension = base.dimension
        self.base = base
        self.delta = delta
        self.hidden = np.unique(_as_keys(hidden))
        self.delta_keys = np.unique(delta.stored_keys())
        self.kind = getattr(base, "kind", "exact")
        self.is_exact = self.kind == "exact"

    def __len__(self) -> int:
        return len(self.base) - len(self.hidden) + len(self.delta)

    def add(self, keys: Sequence[int], vectors: np.ndarray) -> None:
        raise ValueError("this vector store is read-only (a version in layers)")

    def delete(self, keys: Sequence[int]) -> int:
        raise ValueError("this vector store is read-only (a version in layers)")

    def save(self, path: Path) -> None:
        raise ValueError("a version in layers is saved by its layers")

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        base_keys, base_scores = self._base_search(queries, k)
        delta_keys, delta_scores = self.delta.search(queries, k)
        return _best(np.hstack([base_keys, delta_keys]), np.hstack([base_scores, delta_scores]), k)

    def _base_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The base's best `k` that are not hidden: asked deeper until each query has them."""
        depth = k + min(len(self.hidden), k)
        while True:
            keys, scores = self.base.search(queries, depth)
            gone = np.isin(keys, self.hidden)
            keys = np.where(gone, -1, keys)
            scores = np.where(gone, -np.inf, scores).astype(np.float32)
            enough = ((keys >= 0).sum(axis=1) >= k).all()
            if enough or depth >= len(self.base) or depth >= k + len(self.hidden):
                return _best(keys, scores, k)
            depth = min(len(self.base), k + len(self.hidden), depth * 2)

    def get(self, keys: Sequence[int]) -> np.ndarray:
        wanted = _as_keys(keys)
        out = np.empty((len(wanted), self.dimension), dtype=np.float32)
        in_delta = np.isin(wanted, self.delta_keys)
        hidden = np.isin(wanted, self.hidden) & ~in_delta
        if hidden.any():
            raise KeyError(int(wanted[np.argmax(hidden)]))
        if in_delta.any():
            out[in_delta] = self.delta.get(wanted[in_delta].tolist())
        if (~in_delta).any():
            out[~in_delta] = self.base.get(wanted[~in_delta].tolist())
        return out

    def blocks(self, size: int = 200_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for keys, vectors in self.base.blocks(size):
            alive = ~np.isin(keys, self.hidden)
            yield keys[alive], vectors[alive]
        yield from self.delta.blocks(size)

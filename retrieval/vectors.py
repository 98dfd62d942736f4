"""Vector stores: vectors kept under integer ids, searched by inner product.

`VectorStore` is the seam retrieval talks to; `FaissVectorStore` is the local
backend. It is exact (a flat index) up to `exact_limit` vectors and an inverted
file (IVF) index above it, whose candidates are scored with the stored vectors
themselves; either can hold its vectors as fp32 or, to halve the memory, fp16.
Ids are the document store's record keys, so no caller ever sees a row number.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

Encoding = Literal["fp32", "fp16"]
# Up to this many vectors a search reads them all (a few ms at 100k x 384 on two cores).
EXACT_LIMIT = 100_000
# Lists searched per query by an IVF index; see `FaissVectorStore.nprobe`.
DEFAULT_NPROBE = 32


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
    ) -> None:
        import faiss

        if encoding not in ("fp32", "fp16"):
            raise ValueError(f"encoding must be fp32 or fp16, got {encoding!r}")
        self.dimension = dimension
        self.encoding = encoding
        self.exact_limit = exact_limit
        self.index = index if index is not None else faiss.IndexIDMap2(self._flat())
        self.nprobe = DEFAULT_NPROBE
        self.read_only = read_only

    def _writable(self) -> None:
        if self.read_only:
            raise ValueError("this vector store was opened read-only (memory-mapped)")

    def _flat(self):
        import faiss

        if self.encoding == "fp16":
            return faiss.IndexScalarQuantizer(
                self.dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
        return faiss.IndexFlatIP(self.dimension)

    @property
    def is_exact(self) -> bool:
        return not hasattr(self.index, "nprobe")

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
        import faiss

        self._writable()
        ids = _as_keys(keys)
        if not len(ids) or not len(self):
            return 0
        # An array selector: the only kind an IVF index's id hashtable can remove by.
        return int(self.index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids))))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        matrix = _as_matrix(queries, self.dimension)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not len(self):
            return (
                np.full((len(matrix), k), -1, dtype=np.int64),
                np.full((len(matrix), k), -np.inf, dtype=np.float32),
            )
        if not self.is_exact:
            self.index.nprobe = self.nprobe
        if len(matrix) >= BATCH_THREADS_FROM:
            scores, ids = self.index.search(matrix, k)
            return ids, scores
        # A question or two: one thread. Two OpenMP threads took 3x as long for one query
        # over 100k vectors (33 against 9 ms), fighting ONNX Runtime's threads for the cores.
        import faiss

        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self.index.search(matrix, k)
        finally:
            faiss.omp_set_num_threads(_default_threads())
        return ids, scores

    def get(self, keys: Sequence[int]) -> np.ndarray:
        out = np.empty((len(keys), self.dimension), dtype=np.float32)
        for at, key in enumerate(keys):
            try:
                out[at] = self.index.reconstruct(int(key))
            except RuntimeError:
                raise KeyError(int(key)) from None
        return out

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys, vectors) of everything stored, in no particular order."""
        import faiss

        if self.is_exact:
            keys = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            vectors = self.index.index.reconstruct_n(0, len(self))
            return keys, np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        invlists = self.index.invlists
        keys = np.concatenate(
            [
                faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                for i in range(self.index.nlist)
            ]
            or [np.zeros(0, dtype=np.int64)]
        )
        return keys, self.get(keys)

    @classmethod
    def create(
        cls,
        dimension: int,
        keys: Sequence[int],
        vectors: np.ndarray,
        encoding: Encoding = "fp32",
        exact_limit: int = EXACT_LIMIT,
    ) -> FaissVectorStore:
        """A store holding these vectors, exact or IVF by their number (one copy made)."""
        store = cls(dimension, encoding, exact_limit)
        if len(keys) > exact_limit:
            ids = _as_keys(keys)
            if len(np.unique(ids)) != len(ids):
                raise ValueError("a key is added twice; delete it first to replace its vector")
            store.index = store._ivf(ids, _as_matrix(vectors, dimension))
        else:
            store.add(keys, vectors)
        return store

    def _ivf(self, keys: np.ndarray, vectors: np.ndarray):
        """An IVF index of these vectors with about √n lists, trained on a sample of them."""
        import faiss

        nlist = max(1, int(math.sqrt(len(keys))))
        quantizer = faiss.IndexFlatIP(self.dimension)
        if self.encoding == "fp16":
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, self.dimension, nlist, faiss.ScalarQuantizer.QT_fp16,
                faiss.METRIC_INNER_PRODUCT,
            )  # fmt: skip
        else:
            index = faiss.IndexIVFFlat(quantizer, self.dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.min_points_per_centroid = 1  # small stores: no warning about the sample
        index.own_fields = True
        quantizer.this.disown()
        sample = np.random.default_rng(0).permutation(len(vectors))[: 40 * nlist]
        index.train(vectors[np.sort(sample)])
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        for at in range(0, len(keys), 100_000):
            index.add_with_ids(vectors[at : at + 100_000], keys[at : at + 100_000])
        return index

    def save(self, path: Path) -> None:
        import faiss

        if self.is_exact and len(self) > self.exact_limit:
            self.index = self._ivf(*self.items())
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, dimension: int, writable: bool = False) -> FaissVectorStore:
        """The store saved at `path`: memory-mapped and read-only, or read whole to change it."""
        import faiss

        if not Path(path).is_file():
            raise OSError(f"{Path(path).name} missing")
        index = None
        if not writable:
            try:
                index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
            except RuntimeError:
                index = None  # an index type FAISS cannot map: read it whole
        if index is None:
            index = faiss.read_index(str(path))
        if index.d != dimension:
            raise ValueError(f"{Path(path).name} holds {index.d}-d vectors, not {dimension}-d")
        # fp16 stores are FAISS's scalar-quantized kinds (flat or IVF); the rest hold fp32.
        inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
        encoding: Encoding = "fp16" if "ScalarQuantizer" in type(inner).__name__ else "fp32"
        return cls(dimension, encoding, index=index, read_only=not writable)

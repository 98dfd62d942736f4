"""The Milvus backend of the vector-store seam (`retrieval.vectors.VectorStore`).

One Milvus collection per store: an INT64 primary key (the document store's
record key) and a FLOAT_VECTOR searched by inner product with an exact (FLAT)
index. The same code talks to Milvus Lite (``uri`` is a local ``.db`` file,
embedded, one process at a time) and to a Milvus server or cluster (``uri`` is
``http://host:19530``, with a token from ``MILVUS_TOKEN`` in the environment).

What a store saves into an index version is not vectors but where they are: a
small JSON file naming the URI and the collection (`save` / `load`).

An index keeps one collection per kind (passages, sentences) from build to build: each row
also carries its article and the generations it was *born* and *died* in (0: alive), and
a version searches only the rows alive in its generation. An incremental build inserts the
rows of new or changed articles and marks the rows of removed ones dead, so its work is
proportional to the change, while the live version, which never sees a newer generation,
keeps answering until the switch. A build that fails takes its generation back; one that
was killed is taken back by the next build before it starts. Dead rows are deleted for good
one generation later, when no reader can still be on a version that sees them.

Milvus itself does not refuse a primary key inserted twice (Lite replaces the
row), nor say how many of the keys given to ``delete`` existed, so `add` and
`delete` look the keys up first, as the seam's contract asks.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.errors import UserError
from retrieval.vectors import _as_keys, _as_matrix

KEY, VECTOR = "key", "vector"
ARTICLE, BORN, DIED = "article", "born", "died"
# The passages' collection also holds each passage's text (with its article's title) and the
# sparse BM25 vector Milvus makes of it, for the lexical side of hybrid search.
TEXT, SPARSE = "text", "sparse"
# Lower case, English stop words dropped, Snowball stems: what bm25s does locally.
ANALYZER = {
    "tokenizer": "standard",
    "filter": ["lowercase", {"type": "stop", "stop_words": ["_english_"]},
               {"type": "stemmer", "language": "english"}],
}  # fmt: skip
MAX_TEXT = 65535
TOKEN_VARIABLE = "MILVUS_TOKEN"
# Rows per insert call and keys per lookup: well under Milvus's message size limits.
BATCH = 1000
CONNECT_SECONDS = 10


def connect(uri: str) -> Any:
    """A client for `uri`: a Milvus Lite file, or a server with the token from the environment."""
    from pymilvus import MilvusClient

    # Milvus Lite logs a whole traceback when another process holds its file; `unreachable`
    # says what happened, and what to do, in one line.
    logging.getLogger("milvus_lite.server_manager").setLevel(logging.CRITICAL)
    return MilvusClient(uri=uri, token=os.environ.get(TOKEN_VARIABLE, ""), timeout=CONNECT_SECONDS)


def release(uri: str) -> None:
    """Let go of a Milvus Lite file this process opened, so another process may open it."""
    if uri.endswith(".db"):
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


@contextlib.contextmanager
def unreachable(uri: str) -> Iterator[None]:
    """Milvus's connection and server errors as one line that names the store."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as error:
        message = getattr(error, "message", "") or str(error)
        if uri.endswith(".db") and "open local milvus failed" in message.lower():
            raise UserError(
                f"the Milvus Lite file {uri} is open in another process (the page, or a "
                "build): Lite lets one process at a time use it. Stop that process, or serve "
                f"the file to all of them with `milvus-lite server --data-dir {uri} --port "
                "19530` and use --store http://127.0.0.1:19530"
            ) from None
        raise UserError(f"the Milvus store at {uri} failed: {message.splitlines()[0]}") from None


def _one_line_errors(method: Callable) -> Callable:
    """A store method whose Milvus errors become one `UserError` line naming the store."""

    @functools.wraps(method)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        with unreachable(self.uri):
            return method(self, *args, **kwargs)

    return wrapped


def collection_name(name: str) -> str:
    """A collection name Milvus accepts (letters, digits, underscores) for `name`."""
    return "aqa_" + re.sub(r"\W", "_", name)


def write_collection(
    uri: str, name: str, keys: Sequence[int], vectors: np.ndarray, pointer: Path
) -> MilvusVectorStore:
    """A new collection holding `vectors` under `keys`; `pointer` says where it is.

    The pointer is written before the vectors, so a build killed half-way leaves a
    collection its cleanup can find and drop.
    """
    with unreachable(uri):
        store = MilvusVectorStore.create(uri, collection_name(name), vectors.shape[1])
        store.save(pointer)
        store.add(keys, vectors)
        store.save(pointer)
    return store


def drop_collection(pointer: Path) -> None:
    """Drop the collection `pointer` names (nothing if it is gone already)."""
    place = json.loads(Path(pointer).read_text(encoding="utf-8"))
    client = connect(place["uri"])
    if client.has_collection(place["collection"]):
        client.drop_collection(place["collection"])


def alive(generation: int) -> str:
    """The filter of the rows a version of `generation` sees."""
    return f"{BORN} <= {generation} and ({DIED} == 0 or {DIED} > {generation})"


def read_pointer(pointer: Path) -> dict[str, Any]:
    return json.loads(Path(pointer).read_text(encoding="utf-8"))


def write_generation(
    uri: str,
    name: str,
    previous: Path | None,
    keys: Sequence[int],
    vectors: np.ndarray,
    articles: Sequence[str],
    pointer: Path,
    texts: Sequence[str] | None = None,
) -> None:
    """The vectors of a new version: `previous`'s collection brought up to date, or a new one.

    With `texts` (the passages'), each row also holds its text, and Milvus keeps BM25 over
    them (`MilvusLexicalStore`).

    `keys[i]` (of article `articles[i]`) is embedded by `vectors[i]`. With a previous
    version on the same Milvus in the generation format, only the keys it lacks are
    inserted and the keys it has that are gone are marked dead; otherwise a collection
    named after `name` is made with every row. `pointer` is written first, so a build that
    fails can take back what it did (`discard`).
    """
    from retrieval.store import atomic_write_text

    before = read_pointer(previous) if previous is not None and previous.is_file() else None
    lexical = texts is not None
    incremental = (
        before is not None
        and before.get("uri") == uri
        and "generation" in before
        and bool(before.get("lexical")) == lexical
    )
    fields = _fields(lexical)
    with unreachable(uri):
        client = connect(uri)
        if incremental and client.has_collection(before["collection"]):
            collection, generation = before["collection"], int(before["generation"]) + 1
            created = False
        else:
            collection, generation, created = collection_name(name), 1, True
            _create_generations(client, collection, vectors.shape[1], lexical)
        place = {"uri": uri, "collection": collection, "dimension": int(vectors.shape[1]),
                 "generation": generation, "created": created, "lexical": lexical}  # fmt: skip
        atomic_write_text(Path(pointer), json.dumps(place) + "\n")
        if not created:
            _take_back(client, collection, generation - 1, fields)
            # Rows dead before the live generation: no reader sees them any more.
            client.delete(collection, filter=f"{DIED} != 0 and {DIED} < {generation - 1}")
        ids = _as_keys(keys)
        existing = set() if created else _alive_keys(client, collection, generation - 1)
        fresh = [i for i, key in enumerate(ids.tolist()) if key not in existing]
        for start in range(0, len(fresh), BATCH):
            rows = [
                {KEY: int(ids[i]), VECTOR: vectors[i].tolist(), ARTICLE: articles[i],
                 BORN: generation, DIED: 0,
                 **({TEXT: texts[i][:MAX_TEXT]} if texts is not None else {})}
                for i in fresh[start : start + BATCH]
            ]  # fmt: skip
            client.insert(collection, rows)
        gone = sorted(existing - set(ids.tolist()))
        _set_died(client, collection, gone, generation, fields)
        client.flush(collection)


def discard(pointer: Path) -> None:
    """Take back what `write_generation` did for `pointer` (a build that failed)."""
    place = read_pointer(pointer)
    client = connect(place["uri"])
    if not client.has_collection(place["collection"]):
        return
    if place.get("created", True):
        client.drop_collection(place["collection"])
    else:
        fields = _fields(bool(place.get("lexical")))
        _take_back(client, place["collection"], int(place["generation"]) - 1, fields)
        client.flush(place["collection"])


def _fields(lexical: bool) -> tuple[str, ...]:
    """The fields a row is written with (Milvus makes the BM25 vector itself)."""
    return (KEY, VECTOR, ARTICLE, BORN, DIED) + ((TEXT,) if lexical else ())


def _create_generations(client: Any, collection: str, dimension: int, lexical: bool) -> None:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    if client.has_collection(collection):
        client.drop_collection(collection)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(KEY, DataType.INT64, is_primary=True)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field(ARTICLE, DataType.VARCHAR, max_length=64)
    schema.add_field(BORN, DataType.INT64)
    schema.add_field(DIED, DataType.INT64)
    index = client.prepare_index_params()
    index.add_index(field_name=VECTOR, index_type="FLAT", metric_type="IP")
    if lexical:
        schema.add_field(TEXT, DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                         analyzer_params=ANALYZER)  # fmt: skip
        schema.add_field(SPARSE, DataType.SPARSE_FLOAT_VECTOR)
        bm25 = Function(
            name="bm25", function_type=FunctionType.BM25,
            input_field_names=[TEXT], output_field_names=[SPARSE],
        )  # fmt: skip
        schema.add_function(bm25)
        index.add_index(field_name=SPARSE, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    _create(client, collection, schema, index)


def _create(client: Any, collection: str, schema: Any, index: Any) -> None:
    """A new collection with its indexes, loaded. The indexes are made without waiting for
    them (`sync=False`): the collection is empty, and the wait asks for a timestamp that
    Milvus Lite does not serve (it logs a traceback per index)."""
    client.create_collection(collection, schema=schema)
    client.create_index(collection, index, sync=False)
    client.load_collection(collection)


def _take_back(client: Any, collection: str, live: int, fields: Sequence[str]) -> None:
    """Undo any generation after `live`: its rows deleted, its deaths revived."""
    client.delete(collection, filter=f"{BORN} > {live}")
    revived = _rows(client, collection, f"{DIED} > {live}", fields)
    for row in revived:
        row[DIED] = 0
    for start in range(0, len(revived), BATCH):
        client.upsert(collection, revived[start : start + BATCH])


def _set_died(
    client: Any, collection: str, keys: Sequence[int], generation: int, fields: Sequence[str]
) -> None:
    for start in range(0, len(keys), BATCH):
        chunk = [int(k) for k in keys[start : start + BATCH]]
        rows = client.get(collection, ids=chunk, output_fields=list(fields))
        rows = [{field: row[field] for field in fields} for row in rows]
        for row in rows:
            row[DIED] = generation
        if rows:
            client.upsert(collection, rows)


def _rows(client: Any, collection: str, where: str, fields: Sequence[str] | None = None) -> list:
    # Milvus Lite has no server timestamp to give the iterator, which says so each time.
    logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
    iterator = client.query_iterator(
        collection, batch_size=BATCH, filter=where,
        output_fields=list(fields or (KEY, VECTOR, ARTICLE, BORN, DIED)),
    )  # fmt: skip
    rows: list[dict] = []
    while batch := iterator.next():
        rows += [dict(row) for row in batch]
    iterator.close()
    return rows


def _alive_keys(client: Any, collection: str, generation: int) -> set[int]:
    return {int(row[KEY]) for row in _rows(client, collection, alive(generation), [KEY])}


class _VersionRows:
    """What the vector and lexical stores count alike: the rows of their collection that
    their version sees (`filter`), and every row whatever its generation."""

    client: Any
    uri: str
    collection: str
    filter: str

    @_one_line_errors
    def __len__(self) -> int:
        rows = self.client.query(self.collection, filter=self.filter, output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    @_one_line_errors
    def stored_rows(self) -> int:
        """Rows in the collection, whatever their generation: at least `len(self)`, and
        cheap (Milvus keeps the count), where counting one generation's rows reads every
        row in Milvus Lite."""
        return int(self.client.get_collection_stats(self.collection)["row_count"])


class MilvusVectorStore(_VersionRows):
    """Vectors in a Milvus collection, under the document store's record keys."""

    is_exact = True  # a FLAT index: every search reads every vector

    def __init__(
        self,
        client: Any,
        uri: str,
        collection: str,
        dimension: int,
        read_only: bool = False,
        generation: int | None = None,
    ) -> None:
        self.client = client
        self.uri = uri
        self.collection = collection
        self.dimension = dimension
        self.read_only = read_only
        # A version's view of a collection shared by generations (see the module's notes).
        self.generation = generation
        self.filter = alive(generation) if generation is not None else ""

    @classmethod
    def create(cls, uri: str, collection: str, dimension: int) -> MilvusVectorStore:
        """A new, empty collection (one of that name is dropped first)."""
        from pymilvus import DataType, MilvusClient

        client = connect(uri)
        if client.has_collection(collection):
            client.drop_collection(collection)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(KEY, DataType.INT64, is_primary=True)
        schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dimension)
        index = client.prepare_index_params()
        index.add_index(field_name=VECTOR, index_type="FLAT", metric_type="IP")
        _create(client, collection, schema, index)
        return cls(client, uri, collection, dimension)

    def _writable(self) -> None:
        if self.read_only:
            raise ValueError("this vector store is read-only (opened for reading)")

    def _present(self, ids: np.ndarray) -> list[int]:
        found: list[int] = []
        for start in range(0, len(ids), BATCH):
            chunk = [int(k) for k in ids[start : start + BATCH]]
            found += [row[KEY] for row in self.client.get(self.collection, ids=chunk,
                                                          output_fields=[KEY])]  # fmt: skip
        return found

    @_one_line_errors
    def add(self, keys: Sequence[int], vectors: np.ndarray) -> None:
        self._writable()
        matrix = _as_matrix(vectors, self.dimension)
        ids = _as_keys(keys)
        if len(ids) != len(matrix):
            raise ValueError(f"{len(ids)} keys for {len(matrix)} vectors")
        if len(np.unique(ids)) != len(ids) or self._present(ids):
            raise ValueError("a key was added twice")
        for start in range(0, len(ids), BATCH):
            rows = [
                {KEY: int(key), VECTOR: vector.tolist()}
                for key, vector in zip(ids[start : start + BATCH],
                                       matrix[start : start + BATCH], strict=True)
            ]  # fmt: skip
            self.client.insert(self.collection, rows)

    @_one_line_errors
    def delete(self, keys: Sequence[int]) -> int:
        self._writable()
        present = self._present(_as_keys(keys))
        if present:
            self.client.delete(self.collection, ids=present)
        return len(present)

    @_one_line_errors
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        matrix = _as_matrix(queries, self.dimension)
        keys = np.full((len(matrix), k), -1, dtype=np.int64)
        scores = np.full((len(matrix), k), -np.inf, dtype=np.float32)
        if len(matrix) == 0 or k < 1:
            return keys, scores
        results = self.client.search(
            self.collection,
            data=matrix.tolist(),
            limit=k,
            anns_field=VECTOR,
            filter=self.filter,
            output_fields=[KEY],
            search_params={"metric_type": "IP"},
        )
        for row, hits in enumerate(results):
            for place, hit in enumerate(list(hits)[:k]):
                keys[row, place] = hit[KEY]
                scores[row, place] = hit["distance"]
        return keys, scores

    @_one_line_errors
    def get(self, keys: Sequence[int]) -> np.ndarray:
        ids = _as_keys(keys)
        found: dict[int, list[float]] = {}
        for start in range(0, len(ids), BATCH):
            chunk = [int(k) for k in ids[start : start + BATCH]]
            for row in self.client.get(self.collection, ids=chunk, output_fields=[VECTOR]):
                found[row[KEY]] = row[VECTOR]
        missing = [int(k) for k in ids if int(k) not in found]
        if missing:
            raise KeyError(f"no vector under key {missing[0]}")
        return np.array([found[int(k)] for k in ids], dtype=np.float32).reshape(-1, self.dimension)

    @_one_line_errors
    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (key, vector), in key order."""
        rows = _rows(self.client, self.collection, self.filter, [KEY, VECTOR])
        rows.sort(key=lambda row: row[KEY])
        keys = np.array([row[KEY] for row in rows], dtype=np.int64)
        vectors = np.array([row[VECTOR] for row in rows], dtype=np.float32)
        return keys, vectors.reshape(-1, self.dimension)

    def blocks(self, size: int = 200_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every (key, vector), in one block (a query returns them all)."""
        yield self.items()

    @_one_line_errors
    def save(self, path: Path) -> None:
        """Flush the collection and write where it is to `path` (JSON)."""
        self.client.flush(self.collection)
        place: dict[str, Any] = {
            "uri": self.uri,
            "collection": self.collection,
            "dimension": self.dimension,
        }
        if self.generation is not None:
            place["generation"] = self.generation
        from retrieval.store import atomic_write_text

        atomic_write_text(Path(path), json.dumps(place) + "\n")

    @classmethod
    def load(cls, path: Path, dimension: int, writable: bool = False) -> MilvusVectorStore:
        """The store a `save` wrote `path` for, its collection loaded for search."""
        try:
            place = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OSError(f"{Path(path).name} missing") from None
        if place["dimension"] != dimension:
            raise ValueError(
                f"{Path(path).name} holds {place['dimension']}-d vectors, not {dimension}-d"
            )
        client = connect(place["uri"])
        if not client.has_collection(place["collection"]):
            raise OSError(f"Milvus at {place['uri']} has no collection {place['collection']!r}")
        client.load_collection(place["collection"])
        generation = place.get("generation")
        return cls(
            client, place["uri"], place["collection"], dimension,
            read_only=not writable or generation is not None, generation=generation,
        )  # fmt: skip


class MilvusLexicalStore(_VersionRows):
    """BM25 over the passages' texts in their Milvus collection (the lexical-store seam).

    Milvus returns the best first; its BM25 distances are positive on a server and negative
    in Milvus Lite, so the score kept is their magnitude, which orders the same either way.
    """

    def __init__(self, client: Any, uri: str, collection: str, generation: int) -> None:
        self.client = client
        self.uri = uri
        self.collection = collection
        self.filter = alive(generation)

    @classmethod
    def load(cls, pointer: Path) -> MilvusLexicalStore:
        place = read_pointer(pointer)
        if not place.get("lexical"):
            raise OSError(f"{Path(pointer).name} names a collection without passage texts")
        client = connect(place["uri"])
        client.load_collection(place["collection"])
        return cls(client, place["uri"], place["collection"], int(place["generation"]))

    @_one_line_errors
    def search(self, queries: Sequence[str], k: int) -> list[dict[int, float]]:
        wanted = [q for q in queries if q.strip()]
        found = iter(
            self.client.search(
                self.collection, data=wanted, anns_field=SPARSE, limit=k, filter=self.filter,
                search_params={"metric_type": "BM25"}, output_fields=[KEY],
            ) if wanted and k > 0 else []
        )  # fmt: skip
        results: list[dict[int, float]] = []
        for query in queries:
            hits = next(found) if query.strip() and k > 0 else []
            scores = {int(hit[KEY]): abs(float(hit["distance"])) for hit in list(hits)[:k]}
            results.append({key: score for key, score in scores.items() if score > 0})
        return results

    def save(self, path: Path) -> None:
        """Nothing to write: the passages' pointer file says where the texts are."""

"""The index on disk: versions, manifest, atomic switch, build lock.

Layout of an index folder::

    index/
      CURRENT           name of the live version (replaced atomically)
      versions/<name>/  manifest.json; corpus.json (what the version was built from, file
                        by file: read by builds and status only); documents.sqlite
                        (articles, passages, sentences: `retrieval.documents`);
                        passages.faiss and sentences.faiss (`retrieval.vectors`), or with
                        a Milvus store (`--store`) the *.milvus.json files naming its
                        collections (`retrieval.milvus`);
                        bm25/ (`retrieval.lexical`)
      build.lock        held while a build runs (also by the page's rebuild button)
      feedback.jsonl    ratings from the page; outside versions/, so rebuilds keep it

Each part is reached through its store's small interface, by id: nothing at
open reads the whole corpus into Python objects, and the vector and BM25 files
are memory-mapped.

A build writes a complete new version beside the live one, then switches
CURRENT with a rename: a build killed at any moment leaves the previous
version answering, and a half-written version is never read.

A large index changes in layers instead (`save_layered_version`): the new
version hard-links the live one's base files (never changed once written, so
sharing them is safe and removing an old version unlinks only its names), and
writes beside them a small `delta/` with the stores of the articles added or
changed since the base, and `hidden.json`, the base's articles to leave out.
Readers see one index (`LayeredVectorStore`, `LayeredLexicalStore`, and the
document store's views). When the delta grows past a share of the base, the
next build writes a whole version again. Loading checks
the manifest against the running configuration and refuses a mismatch with a
message that says how to rebuild.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TypeVar

import numpy as np

from retrieval.articles import Article
from retrieval.chunking import Chunk, ChunkingConfig, Sentence
from retrieval.documents import DocumentStore, passage_key, sentence_key, write_documents
from retrieval.errors import UserError
from retrieval.lexical import Bm25Store, LayeredLexicalStore, LexicalStore
from retrieval.vectors import (
    EXACT_LIMIT,
    Encoding,
    FaissVectorStore,
    LayeredVectorStore,
    VectorStore,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# 2: sentence vectors beside chunk vectors; 3: stores reached by id; 4: ANN indexes with a
# key table beside them, versions in layers
FORMAT_VERSION = 4
CURRENT_FILE = "CURRENT"
VERSIONS_DIR = "versions"
LOCK_FILE = "build.lock"
FEEDBACK_FILE = "feedback.jsonl"
MANIFEST_FILE = "manifest.json"
# What a version was built from, file by file: read by builds and status, not at open.
CORPUS_FILE = "corpus.json"
DOCUMENTS_FILE = "documents.sqlite"
VECTORS_FILE = "passages.faiss"
SENTENCE_VECTORS_FILE = "sentences.faiss"
LEXICAL_DIR = "bm25"
DELTA_DIR = "delta"
HIDDEN_FILE = "hidden.json"
# Where vectors live: "local" (FAISS files in the version) or Milvus, whose collections a
# version names in small JSON files instead (`retrieval.milvus`).
LOCAL_STORE = "local"
MILVUS_VECTORS_FILE = "passages.milvus.json"
MILVUS_SENTENCES_FILE = "sentences.milvus.json"
# How vectors are kept above the exact-search limit: fp16 halves the memory of an ANN
# index. For sentences (about five per passage) at 100,000 passages (498,245 sentences) it
# found the same answers' passages as fp32 (gold recall@5 0.930 both, 200 questions) on
# 756 MB of disk against 1,120 (`article-qa eval-scale --sentence-encoding fp32
# --sentence-encoding fp16`); a graph over a million fp16 passage vectors finds 0.962 of
# the exact top ten. Below the limit a store is small and stays fp32, exact.
LARGE_ENCODING: Encoding = "fp16"


def sentence_encoding(count: int) -> Encoding:
    """How a store of `count` vectors (a version's passages or its sentences) keeps them."""
    return LARGE_ENCODING if count > EXACT_LIMIT else "fp32"


def rebuild_hint(index_dir: Path) -> str:
    return f"run `article-qa build --rebuild --index {index_dir}`"


@dataclass(frozen=True)
class IndexConfig:
    """What an index must have been built with to be read by this code."""

    model: str
    dimension: int
    chunking: ChunkingConfig
    cleaner_version: str


@dataclass(frozen=True)
class Manifest:
    format_version: int
    model: str
    dimension: int
    chunk_size: int
    chunk_overlap: int
    cleaner_version: str
    built_at: str
    build_seconds: float
    passages: int = 0
    sentences: int = 0
    store: str = LOCAL_STORE  # "local", or the Milvus URI the vectors live at
    article_count: int = 0

    @property
    def config(self) -> IndexConfig:
        return IndexConfig(
            model=self.model,
            dimension=self.dimension,
            chunking=ChunkingConfig(size=self.chunk_size, overlap=self.chunk_overlap),
            cleaner_version=self.cleaner_version,
        )


@dataclass(frozen=True)
class CorpusRecord:
    """What a version was built from, kept beside its manifest (``corpus.json``): at a
    million passages its maps are tens of MB, and opening an index to answer needs none of
    them (parsing them took 0.4 s of each open and each status read)."""

    articles: dict[str, str] = field(default_factory=dict)  # source -> clean-text hash
    files: dict[str, str] = field(default_factory=dict)  # corpus file -> raw-bytes hash
    file_stats: dict[str, list[int]] = field(default_factory=dict)  # file -> [size, mtime_ns]
    stats_taken_ns: int = 0
    # file -> {article source: article id}, for the files all records of which were indexed
    file_articles: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredIndex:
    """One opened version: its stores, each reached by id."""

    path: Path
    manifest: Manifest
    documents: DocumentStore
    passages: VectorStore  # passage key -> the passage's vector
    sentences: VectorStore  # sentence key -> the sentence's vector
    lexical: LexicalStore  # BM25 over the passages (with their titles)


def check_format(manifest: Manifest, index_dir: Path) -> None:
    if manifest.format_version > FORMAT_VERSION:
        raise UserError(
            f"index at {index_dir} was written by a newer article-qa (format "
            f"{manifest.format_version}, this one reads {FORMAT_VERSION}): "
            f"{rebuild_hint(index_dir)}"
        )
    if manifest.format_version != FORMAT_VERSION:
        raise UserError(
            f"index at {index_dir} has an older format ({manifest.format_version}, this version "
            f"reads {FORMAT_VERSION}): {rebuild_hint(index_dir)}"
        )


def check_compatible(manifest: Manifest, expected: IndexConfig, index_dir: Path) -> None:
    check_format(manifest, index_dir)
    found = manifest.config
    differences = []
    if found.model != expected.model or found.dimension != expected.dimension:
        differences.append(
            f"model {found.model} ({found.dimension}d) != {expected.model} ({expected.dimension}d)"
        )
    if found.chunking != expected.chunking:
        differences.append(
            f"chunking {found.chunking.size}/{found.chunking.overlap} != "
            f"{expected.chunking.size}/{expected.chunking.overlap}"
        )
    if found.cleaner_version != expected.cleaner_version:
        differences.append(f"cleaner {found.cleaner_version} != {expected.cleaner_version}")
    if differences:
        raise UserError(
            f"index at {index_dir} does not match this version ({'; '.join(differences)}): "
            f"{rebuild_hint(index_dir)}"
        )


def current_version(index_dir: Path) -> Path:
    pointer = index_dir / CURRENT_FILE
    if not index_dir.is_dir() or not pointer.is_file():
        raise UserError(
            f"no index at {index_dir}: run `article-qa build --index {index_dir}` to build one"
        )
    name = pointer.read_text(encoding="utf-8").strip()
    version = index_dir / VERSIONS_DIR / name
    if not name or not version.is_dir():
        raise UserError(
            f"index at {index_dir} is damaged (its current version is missing): "
            f"{rebuild_hint(index_dir)}"
        )
    return version


def read_manifest(index_dir: Path, version: Path | None = None) -> Manifest:
    """The manifest of the live version (or of the version in folder `version`)."""
    version = current_version(index_dir) if version is None else version
    data = _read_json(index_dir, version / MANIFEST_FILE)
    if _holds_record(data):
        data.setdefault("article_count", len(data["articles"]))
    try:
        return _from_json(Manifest, data)
    except TypeError as error:
        raise _damaged(index_dir, MANIFEST_FILE, error) from None


def read_corpus_record(version: Path) -> CorpusRecord:
    """What the version in folder `version` was built from (one written before the record
    moved out keeps it in its manifest); `current_version(index_dir)` is the live one."""
    index_dir = version.parent.parent
    path = version / CORPUS_FILE
    if not path.is_file():
        manifest = _read_json(index_dir, version / MANIFEST_FILE)
        if not _holds_record(manifest):  # the record is missing
            raise _damaged(index_dir, CORPUS_FILE, FileNotFoundError())
        path, data = version / MANIFEST_FILE, manifest
    else:
        data = _read_json(index_dir, path)
    try:
        record = _from_json(CorpusRecord, data)
    except TypeError as error:
        raise _damaged(index_dir, path.name, error) from None
    maps = (record.articles, record.files, record.file_stats, record.file_articles)
    if not all(isinstance(m, dict) for m in maps) or not isinstance(record.stats_taken_ns, int):
        raise _damaged(index_dir, path.name, TypeError())
    return record


def _holds_record(manifest: dict) -> bool:
    """Whether a manifest was written before the corpus record moved out of it."""
    return isinstance(manifest.get("articles"), dict)


def _from_json(kind: type[T], data: dict) -> T:
    """A `kind` dataclass from its JSON object; a field a later article-qa added within this
    format is optional: left out here. TypeError when a field it needs is missing."""
    known = {f.name for f in fields(kind)}
    return kind(**{key: value for key, value in data.items() if key in known})


def _read_json(index_dir: Path, path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise _damaged(index_dir, path.name, error) from None
    if not isinstance(data, dict):
        raise _damaged(index_dir, path.name, TypeError())
    return data


def _damaged(index_dir: Path, name: str, error: Exception) -> UserError:
    return UserError(
        f"index at {index_dir} is damaged ({name} unreadable: "
        f"{type(error).__name__}): {rebuild_hint(index_dir)}"
    )


def load_index(index_dir: Path, expected: IndexConfig | None = None) -> StoredIndex:
    """The live version of `index_dir`, checked against `expected` when given."""
    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    check_format(manifest, index_dir)
    if expected is not None:
        check_compatible(manifest, expected, index_dir)
    version = current_version(index_dir)
    try:
        documents = _open_documents(version)
        if (version / DELTA_DIR).is_dir():
            passages, sentences, lexical = _open_layers(version, manifest, documents)
        else:
            passages, sentences = _open_vectors(version, manifest)
            lexical = _open_lexical(version, manifest)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, sqlite3.Error) as error:
        raise UserError(
            f"index at {index_dir} is damaged ({type(error).__name__} while reading "
            f"{version.name}): {rebuild_hint(index_dir)}"
        ) from None
    for store, count, name in (
        (passages, manifest.passages, "passages"),
        (lexical, manifest.passages, "passages"),
        (sentences, manifest.sentences, "sentences"),
    ):
        stored = _stored(store, count)
        if stored is not None:
            raise UserError(
                f"index at {index_dir} is damaged ({stored} stored for {count} "
                f"{name}): {rebuild_hint(index_dir)}"
            )
    return StoredIndex(version, manifest, documents, passages, sentences, lexical)


def _stored(store: VectorStore | LexicalStore, count: int) -> int | None:
    """How many `store` holds when that cannot be the version's `count`, else None. A Milvus
    collection holds the rows of other generations too, and counting one generation's rows
    reads each row in Milvus Lite (8 s per 100,000 at open), so only too few is caught there."""
    stored_rows = getattr(store, "stored_rows", None)
    if stored_rows is not None:
        rows = stored_rows()
        return rows if rows < count else None
    return None if len(store) == count else len(store)


def _hidden(version: Path) -> list[str]:
    """The base's articles a version in layers leaves out ([] for a version written whole)."""
    if not (version / DELTA_DIR).is_dir():
        return []
    hidden = json.loads((version / HIDDEN_FILE).read_text(encoding="utf-8"))
    if not isinstance(hidden, list):
        raise ValueError(f"{HIDDEN_FILE} is not a list")
    return [str(article_id) for article_id in hidden]


def _open_documents(version: Path) -> DocumentStore:
    if not (version / DELTA_DIR).is_dir():
        return DocumentStore.open(version / DOCUMENTS_FILE)
    return DocumentStore.open(
        version / DOCUMENTS_FILE, version / DELTA_DIR / DOCUMENTS_FILE, _hidden(version)
    )


def _open_layers(
    version: Path, manifest: Manifest, documents: DocumentStore
) -> tuple[VectorStore, VectorStore, LexicalStore]:
    """A version in layers' stores: the base's, less the hidden articles, with the delta's."""
    delta, dimension = version / DELTA_DIR, manifest.dimension
    vectors = [
        LayeredVectorStore(
            FaissVectorStore.load(version / name, dimension),
            FaissVectorStore.load(delta / name, dimension),
            documents.hidden_keys[table],
        )
        for name, table in ((VECTORS_FILE, "passages"), (SENTENCE_VECTORS_FILE, "sentences"))
    ]
    lexical = LayeredLexicalStore(
        Bm25Store.load(version / LEXICAL_DIR),
        Bm25Store.load(delta / LEXICAL_DIR, mmap=False),  # reweighed in memory
        documents.hidden_keys["passages"],
    )
    return vectors[0], vectors[1], lexical


def _open_vectors(version: Path, manifest: Manifest) -> tuple[VectorStore, VectorStore]:
    if manifest.store == LOCAL_STORE:
        return (
            FaissVectorStore.load(version / VECTORS_FILE, manifest.dimension),
            FaissVectorStore.load(version / SENTENCE_VECTORS_FILE, manifest.dimension),
        )
    from retrieval.milvus import MilvusVectorStore, unreachable

    with unreachable(manifest.store):
        return (
            MilvusVectorStore.load(version / MILVUS_VECTORS_FILE, manifest.dimension),
            MilvusVectorStore.load(version / MILVUS_SENTENCES_FILE, manifest.dimension),
        )


def _open_lexical(version: Path, manifest: Manifest) -> LexicalStore:
    """BM25 saved in the version, or, for a Milvus store that has them, the passages' texts."""
    if manifest.store == LOCAL_STORE or (version / LEXICAL_DIR).is_dir():
        return Bm25Store.load(version / LEXICAL_DIR)
    from retrieval.milvus import MilvusLexicalStore, unreachable

    with unreachable(manifest.store):
        return MilvusLexicalStore.load(version / MILVUS_VECTORS_FILE)


def store_spec(spec: str) -> str:
    """`--store` as the manifest records it: "local", a Milvus Lite file's absolute path
    (from ``milvus:///path/file.db`` or ``milvus://relative/file.db``), or a server's URI."""
    if spec == LOCAL_STORE:
        return spec
    if spec.startswith("milvus://"):
        path = spec.removeprefix("milvus://")
        if not path.endswith(".db"):
            raise UserError(f"--store {spec}: a Milvus Lite store is a file ending in .db")
        return str(Path(path).resolve())
    if spec.startswith(("http://", "https://", "tcp://")):
        return spec
    raise UserError(
        f"--store must be local, milvus:///path/file.db (Milvus Lite) or http://host:19530 "
        f"(a Milvus server), got {spec!r}"
    )


def open_documents(index_dir: Path) -> DocumentStore:
    """The live version's document store alone (listing articles needs no vector)."""
    index_dir = Path(index_dir)
    check_format(read_manifest(index_dir), index_dir)
    version = current_version(index_dir)
    try:
        return _open_documents(version)
    except (OSError, sqlite3.Error) as error:
        raise UserError(
            f"index at {index_dir} is damaged ({type(error).__name__} while reading "
            f"{version.name}): {rebuild_hint(index_dir)}"
        ) from None


def write_vectors(
    path: Path,
    keys: list[int],
    vectors: np.ndarray,
    dimension: int,
    encoding: Encoding = "fp32",
) -> None:
    FaissVectorStore.create(dimension, keys, vectors, encoding).save(path)
    for written in path.parent.glob(path.name + "*"):  # the index, and an ANN index's keys
        _fsync(written)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write beside `path`, fsync, then rename over it: readers see old or new, never half."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """`atomic_write_text` for bytes. The file gets the usual mode for new files (0644 under
    the common umask), not the owner-only mode of a temporary file."""
    # The temporary name starts with a dot and ends in .tmp, so a corpus scan skips it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class Contents:
    """What a version (or a layer of one) holds: articles, their passages and sentences,
    and the vectors of each, in the same order."""

    articles: list[Article]
    chunks: list[Chunk]
    vectors: np.ndarray
    sentences: list[Sentence]
    sentence_vectors: np.ndarray


def save_version(
    index_dir: Path,
    manifest: Manifest,
    record: CorpusRecord,
    contents: Contents,
    encoding: Encoding | None = None,
) -> Path:
    """Write a complete new version, then make it the live one; returns its folder.

    `encoding` overrides how sentence vectors are stored (for measuring the choice). With
    a Milvus store (`manifest.store`) the vectors go into two new collections named after
    the version; a build that fails drops them."""
    staging, name = _staging(index_dir)
    articles, chunks, sentences = contents.articles, contents.chunks, contents.sentences
    try:
        if manifest.store == LOCAL_STORE:
            _write_local(staging, manifest.dimension, contents, encoding)
        else:
            write_documents(staging / DOCUMENTS_FILE, articles, chunks, sentences)
            _fsync(staging / DOCUMENTS_FILE)
            passage_keys = [passage_key(c) for c in chunks]
            sentence_keys = [sentence_key(s) for s in sentences]
            from retrieval.milvus import write_generation

            # The live version's collections, brought up to date: only what changed is
            # written (or new collections, for a first build on this Milvus).
            live = _live_version(index_dir)
            titles = {article.id: article.title for article in articles}
            for kind, keys, matrix, owners, pointer, texts in (
                ("passages", passage_keys, contents.vectors, [c.article_id for c in chunks],
                 MILVUS_VECTORS_FILE, [f"{titles[c.article_id]}\n{c.text}" for c in chunks]),
                ("sentences", sentence_keys, contents.sentence_vectors,
                 [s.article_id for s in sentences], MILVUS_SENTENCES_FILE, None),
            ):  # fmt: skip
                write_generation(
                    manifest.store, f"{name}_{kind}", live / pointer if live else None,
                    keys, matrix, owners, staging / pointer, texts,
                )  # fmt: skip
        return _publish(index_dir, staging, name, manifest, record)
    except BaseException:
        discard_collections(staging)
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _staging(index_dir: Path) -> tuple[Path, str]:
    """A new version's name, and the hidden folder it is written in."""
    versions = index_dir / VERSIONS_DIR
    versions.mkdir(parents=True, exist_ok=True)
    name = time.strftime("v%Y%m%d-%H%M%S-") + os.urandom(3).hex()
    return Path(tempfile.mkdtemp(dir=versions, prefix=".partial-")), name


def _write_local(
    folder: Path, dimension: int, contents: Contents, encoding: Encoding | None = None
) -> None:
    """The local stores of these contents into `folder`: documents, vectors, BM25."""
    articles, chunks, sentences = contents.articles, contents.chunks, contents.sentences
    vectors, sentence_vectors = contents.vectors, contents.sentence_vectors
    folder.mkdir(exist_ok=True)
    write_documents(folder / DOCUMENTS_FILE, articles, chunks, sentences)
    _fsync(folder / DOCUMENTS_FILE)
    passage_keys = [passage_key(c) for c in chunks]
    write_vectors(folder / VECTORS_FILE, passage_keys, vectors, dimension,
                  sentence_encoding(len(chunks)))  # fmt: skip
    write_vectors(
        folder / SENTENCE_VECTORS_FILE, [sentence_key(s) for s in sentences], sentence_vectors,
        dimension, encoding or sentence_encoding(len(sentences)),
    )  # fmt: skip
    titles = {article.id: article.title for article in articles}
    Bm25Store.build(passage_keys, [f"{titles[c.article_id]}\n{c.text}" for c in chunks]).save(
        folder / LEXICAL_DIR
    )


def _publish(
    index_dir: Path, staging: Path, name: str, manifest: Manifest, record: CorpusRecord
) -> Path:
    """Finish a written version and make it the live one."""
    atomic_write_text(staging / CORPUS_FILE, json.dumps(asdict(record)))
    # The manifest goes last: a version with a manifest is a complete one.
    atomic_write_text(staging / MANIFEST_FILE, json.dumps(asdict(manifest), indent=2))
    _fsync_dir(staging)
    versions = index_dir / VERSIONS_DIR
    final = versions / name
    os.rename(staging, final)
    _fsync_dir(versions)
    atomic_write_text(index_dir / CURRENT_FILE, name + "\n")
    _remove_old_versions(index_dir, keep={name})
    return final


def save_layered_version(
    index_dir: Path,
    manifest: Manifest,
    record: CorpusRecord,
    base: Path,
    hidden: Sequence[str],
    contents: Contents,
) -> Path:
    """A new version made of `base`'s base files (linked, not copied), a delta holding these
    articles, and the base's articles to leave out; made the live one. Local stores only."""
    staging, name = _staging(index_dir)
    try:
        for source in sorted(base.rglob("*")):
            relative = source.relative_to(base)
            if relative.parts[0] in (DELTA_DIR, HIDDEN_FILE, MANIFEST_FILE, CORPUS_FILE):
                continue
            if source.is_dir():
                (staging / relative).mkdir(parents=True, exist_ok=True)
            else:
                os.link(source, staging / relative)
        _write_local(staging / DELTA_DIR, manifest.dimension, contents)
        atomic_write_text(staging / HIDDEN_FILE, json.dumps(sorted(hidden)))
        return _publish(index_dir, staging, name, manifest, record)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _remove_old_versions(index_dir: Path, keep: set[str], spare: int = 1) -> None:
    """Drop versions no longer live, leaving `spare` recent ones for readers still on them."""
    versions = index_dir / VERSIONS_DIR
    old = sorted(
        (p for p in versions.iterdir() if p.name not in keep and not p.name.startswith(".")),
        key=lambda p: p.name,
        reverse=True,
    )
    kept = old[:spare] + [versions / name for name in keep]
    in_use = {place for version in kept for place in _collections(version)}
    for stale in old[spare:]:
        drop_collections(stale, in_use)
        shutil.rmtree(stale, ignore_errors=True)
    # Leftovers of builds that were killed before their switch (the next build on the same
    # collections has already taken back what they wrote: `milvus.write_generation`).
    for partial in versions.glob(".partial-*"):
        drop_collections(partial, in_use)
        shutil.rmtree(partial, ignore_errors=True)


def _live_version(index_dir: Path) -> Path | None:
    try:
        return current_version(index_dir)
    except UserError:
        return None


def _pointers(version: Path) -> list[Path]:
    return [p for p in (version / MILVUS_VECTORS_FILE, version / MILVUS_SENTENCES_FILE)
            if p.is_file()]  # fmt: skip


def _collections(version: Path) -> set[tuple[str, str]]:
    """(uri, collection) of the Milvus collections a version names."""
    return {place for place in map(_collections_of, _pointers(version)) if place is not None}


def drop_collections(version: Path, in_use: set[tuple[str, str]] = frozenset()) -> None:
    """Drop the Milvus collections a version names that no version in `in_use` still names."""
    pointers = _pointers(version)
    if pointers:
        from retrieval.milvus import drop_collection

        for pointer, place in zip(pointers, map(_collections_of, pointers), strict=True):
            if place in in_use:
                continue
            with contextlib.suppress(Exception):  # best effort: a leftover costs only space
                drop_collection(pointer)


def _collections_of(pointer: Path) -> tuple[str, str] | None:
    try:
        place = json.loads(pointer.read_text(encoding="utf-8"))
        return (place["uri"], place["collection"])
    except (OSError, ValueError, KeyError):
        return None


def discard_collections(staging: Path) -> None:
    """Take back what a failed build wrote to Milvus (see `milvus.discard`)."""
    pointers = _pointers(staging)
    if pointers:
        from retrieval.milvus import discard

        for pointer in pointers:
            with contextlib.suppress(Exception):  # best effort: the next build takes it back
                discard(pointer)


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index's build lock, or fail at once naming the build that holds it."""
    from filelock import FileLock, Timeout

    index_dir.mkdir(parents=True, exist_ok=True)
    lock_path = index_dir / LOCK_FILE
    info_path = index_dir / (LOCK_FILE + ".owner")
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        owner = "unknown process"
        with contextlib.suppress(OSError):
            owner = info_path.read_text(encoding="utf-8").strip() or owner
        raise UserError(
            f"another build is already running on {index_dir} ({owner}); "
            "wait for it to finish, then try again"
        ) from None
    try:
        info_path.write_text(
            f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}", encoding="utf-8"
        )
        yield
    finally:
        with contextlib.suppress(OSError):
            info_path.unlink()
        lock.release()


def feedback_path(index_dir: Path) -> Path:
    return Path(index_dir) / FEEDBACK_FILE

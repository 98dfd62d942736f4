"""The index on disk: versions, manifest, atomic switch, build lock.

Layout of an index folder::

    index/
      CURRENT           name of the live version (replaced atomically)
      versions/<name>/  manifest.json, articles.jsonl, chunks.jsonl, vectors.faiss,
                        sentences.jsonl, sentences.faiss
      build.lock        held while a build runs (also by the page's rebuild button)
      feedback.jsonl    ratings from the page; outside versions/, so rebuilds keep it

A build writes a complete new version beside the live one, then switches
CURRENT with a rename: a build killed at any moment leaves the previous
version answering, and a half-written version is never read. Loading checks
the manifest against the running configuration and refuses a mismatch with a
message that says how to rebuild.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from retrieval.articles import Article
from retrieval.chunking import Chunk, ChunkingConfig, Sentence
from retrieval.errors import UserError

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: sentence vectors stored beside chunk vectors
CURRENT_FILE = "CURRENT"
VERSIONS_DIR = "versions"
LOCK_FILE = "build.lock"
FEEDBACK_FILE = "feedback.jsonl"
MANIFEST_FILE = "manifest.json"
ARTICLES_FILE = "articles.jsonl"
CHUNKS_FILE = "chunks.jsonl"
VECTORS_FILE = "vectors.faiss"
SENTENCES_FILE = "sentences.jsonl"
SENTENCE_VECTORS_FILE = "sentences.faiss"


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
    articles: dict[str, str] = field(default_factory=dict)  # source -> clean-text hash
    files: dict[str, str] = field(default_factory=dict)  # corpus file -> raw-bytes hash

    @property
    def config(self) -> IndexConfig:
        return IndexConfig(
            model=self.model,
            dimension=self.dimension,
            chunking=ChunkingConfig(size=self.chunk_size, overlap=self.chunk_overlap),
            cleaner_version=self.cleaner_version,
        )


@dataclass(frozen=True)
class StoredIndex:
    """One loaded version: articles, chunks and sentences, each with their vectors in order."""

    path: Path
    manifest: Manifest
    articles: dict[str, Article]
    chunks: tuple[Chunk, ...]
    vectors: np.ndarray
    sentences: tuple[Sentence, ...]
    sentence_vectors: np.ndarray

    def article_of(self, chunk: Chunk) -> Article:
        return self.articles[chunk.article_id]


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


def read_manifest(index_dir: Path) -> Manifest:
    version = current_version(index_dir)
    try:
        data = json.loads((version / MANIFEST_FILE).read_text(encoding="utf-8"))
        return Manifest(**data)
    except (OSError, ValueError, TypeError) as error:
        raise UserError(
            f"index at {index_dir} is damaged (manifest.json unreadable: "
            f"{type(error).__name__}): {rebuild_hint(index_dir)}"
        ) from None


def _read_jsonl(path: Path) -> list:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def load_index(index_dir: Path, expected: IndexConfig | None = None) -> StoredIndex:
    """The live version of `index_dir`, checked against `expected` when given."""
    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    check_format(manifest, index_dir)
    if expected is not None:
        check_compatible(manifest, expected, index_dir)
    version = current_version(index_dir)
    try:
        articles = {row["id"]: Article(**row) for row in _read_jsonl(version / ARTICLES_FILE)}
        chunks = []
        for row in _read_jsonl(version / CHUNKS_FILE):
            text = articles[row["article_id"]].text[row["start"] : row["end"]]
            chunks.append(Chunk(text=text, **row))
        vectors = read_vectors(version / VECTORS_FILE)
        sentences = [
            Sentence(article_id, start, end)
            for article_id, start, end in _read_jsonl(version / SENTENCES_FILE)
        ]
        sentence_vectors = read_vectors(version / SENTENCE_VECTORS_FILE)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise UserError(
            f"index at {index_dir} is damaged ({type(error).__name__} while reading "
            f"{version.name}): {rebuild_hint(index_dir)}"
        ) from None
    for rows, table, name in (
        (vectors, chunks, "chunks"),
        (sentence_vectors, sentences, "sentences"),
    ):
        if rows.shape != (len(table), manifest.dimension):
            raise UserError(
                f"index at {index_dir} is damaged ({rows.shape[0]} vectors for {len(table)} "
                f"{name}): {rebuild_hint(index_dir)}"
            )
    return StoredIndex(
        version, manifest, articles, tuple(chunks), vectors, tuple(sentences), sentence_vectors
    )


def read_vectors(path: Path) -> np.ndarray:
    import faiss

    if not path.is_file():
        raise OSError(f"{path.name} missing")
    index = faiss.read_index(str(path))
    return index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d))


def write_vectors(path: Path, vectors: np.ndarray, dimension: int) -> None:
    import faiss

    index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(index, str(path))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_jsonl(path: Path, rows: list) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())


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


def save_version(
    index_dir: Path,
    manifest: Manifest,
    articles: list[Article],
    chunks: list[Chunk],
    vectors: np.ndarray,
    sentences: list[Sentence],
    sentence_vectors: np.ndarray,
) -> Path:
    """Write a complete new version, then make it the live one; returns its folder."""
    versions = index_dir / VERSIONS_DIR
    versions.mkdir(parents=True, exist_ok=True)
    name = time.strftime("v%Y%m%d-%H%M%S-") + os.urandom(3).hex()
    staging = Path(tempfile.mkdtemp(dir=versions, prefix=".partial-"))
    try:
        _write_jsonl(staging / ARTICLES_FILE, [asdict(article) for article in articles])
        _write_jsonl(
            staging / CHUNKS_FILE,
            [
                {"id": c.id, "article_id": c.article_id, "start": c.start, "end": c.end}
                for c in chunks
            ],
        )
        write_vectors(staging / VECTORS_FILE, vectors, manifest.dimension)
        _write_jsonl(staging / SENTENCES_FILE, [[s.article_id, s.start, s.end] for s in sentences])
        write_vectors(staging / SENTENCE_VECTORS_FILE, sentence_vectors, manifest.dimension)
        # The manifest goes last: a version with a manifest is a complete one.
        atomic_write_text(staging / MANIFEST_FILE, json.dumps(asdict(manifest), indent=2))
        _fsync_dir(staging)
        final = versions / name
        os.rename(staging, final)
        _fsync_dir(versions)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    atomic_write_text(index_dir / CURRENT_FILE, name + "\n")
    _remove_old_versions(index_dir, keep={name})
    return final


def _remove_old_versions(index_dir: Path, keep: set[str], spare: int = 1) -> None:
    """Drop versions no longer live, leaving `spare` recent ones for readers still on them."""
    versions = index_dir / VERSIONS_DIR
    old = sorted(
        (p for p in versions.iterdir() if p.name not in keep and not p.name.startswith(".")),
        key=lambda p: p.name,
        reverse=True,
    )
    for stale in old[spare:]:
        shutil.rmtree(stale, ignore_errors=True)
    # Leftovers of builds that were killed before their switch.
    for partial in versions.glob(".partial-*"):
        shutil.rmtree(partial, ignore_errors=True)


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

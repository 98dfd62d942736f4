"""What state an index is in: its size and settings, and which corpus files changed since."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.indexing import file_hashes
from retrieval.store import current_version, read_corpus_record, read_manifest


@dataclass(frozen=True)
class IndexStatus:
    index_dir: str
    articles: int
    chunks: int
    model: str
    built_at: str
    size_bytes: int
    new: tuple[str, ...]
    changed: tuple[str, ...]
    deleted: tuple[str, ...]

    @property
    def stale(self) -> bool:
        return bool(self.new or self.changed or self.deleted)


def index_status(index_dir: str | Path, corpus: Sequence[str | Path]) -> IndexStatus:
    """The live index's figures, and the corpus files that differ from what it was built from."""
    index_dir = Path(index_dir)
    version = current_version(index_dir)  # once: a build may switch versions meanwhile
    manifest = read_manifest(index_dir, version)  # and its corpus record: no store opened
    record = read_corpus_record(version)
    built = record.files
    # Files whose size and mtime are unchanged since the build are not read again.
    now = file_hashes([path for path in corpus if Path(path).exists()], record).hashes
    size = sum(f.stat().st_size for f in index_dir.rglob("*") if f.is_file())
    return IndexStatus(
        index_dir=str(index_dir),
        articles=manifest.article_count,
        chunks=manifest.passages,
        model=manifest.model,
        built_at=manifest.built_at,
        size_bytes=size,
        new=tuple(sorted(set(now) - set(built))),
        changed=tuple(sorted(p for p in set(now) & set(built) if now[p] != built[p])),
        deleted=tuple(sorted(set(built) - set(now))),
    )

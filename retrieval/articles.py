"""Articles: the unit the user drops into the corpus folder.

Owns the `Article` record, its content-hash id, and turning files and folders
into articles (format sniffing, decoding, cleaning) while reporting every file
that had to be skipped and why.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from retrieval.cleaning import (
    CleanedPage,
    EmptyArticle,
    clean_article_text,
    clean_html_page,
    clean_markdown_page,
    clean_text_page,
)
from retrieval.errors import UserError


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    source: str
    text: str
    published: str | None = None

    @property
    def content_hash(self) -> str:
        return text_hash(self.text)


class Listed(Protocol):
    """What a label needs of an article (an `Article`, or a store's list entry)."""

    id: str
    title: str
    source: str


def article_labels(articles: Sequence[Listed]) -> dict[str, str]:
    """A label per article id: its title, with its file name where titles repeat."""
    titles = Counter(article.title for article in articles)
    names = Counter((article.title, Path(article.source).name) for article in articles)
    labels = {}
    for a in articles:
        name = Path(a.source).name
        where = name if names[(a.title, name)] == 1 else a.source
        labels[a.id] = a.title if titles[a.title] == 1 else f"{a.title} ({where})"
    return labels


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def article_id(source: str, text: str) -> str:
    """Content-hash id: the same file with the same clean text always gets the same id."""
    return hashlib.sha256(f"{source}\0{text}".encode()).hexdigest()[:16]


SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".json", ".jsonl")
MAX_FILE_BYTES = 10 * 1024 * 1024

# Bytes looked at to decide whether a file is text at all.
_SNIFF_BYTES = 8192
# Text has almost no control characters; a binary file has many.
_MAX_CONTROL_SHARE = 0.10
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v\b\x1b")
_JSON_TEXT_FIELDS = ("text", "content", "body")
_JSON_PUBLISHED_FIELDS = ("published", "date")
_HTML_START = re.compile(r"^\s*<(?:!doctype html|html)\b", re.IGNORECASE)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class KeptArticle:
    """An article of a file unchanged since the live index was built, taken from that index
    instead of being read, cleaned and hashed again: what a build needs of it, no text."""

    id: str
    source: str
    content_hash: str


# What a load yields for each article: read from its file, or kept from the live index.
Loaded = Article | KeptArticle


@dataclass(frozen=True)
class LoadResult:
    articles: tuple[Loaded, ...]
    skipped: tuple[SkippedFile, ...]
    duplicates: tuple[SkippedFile, ...]
    # File -> {article source: article id}, for each file every record of which became an
    # article of the load (none skipped, none a duplicate): while its bytes stay the same,
    # a later build may keep its articles unread (`load_articles(kept=...)`).
    whole_files: dict[str, dict[str, str]] = field(default_factory=dict)


class _Skip(Exception):
    """A file (or one record of it) that cannot become an article; the message says why."""


def iter_corpus_files(paths: Sequence[str | Path]) -> list[Path]:
    """The supported files under the given folders and files, in a stable order."""
    return [path for path in _walk(paths) if path.suffix.lower() in SUPPORTED_SUFFIXES]


def list_files(paths: Sequence[str | Path]) -> list[Path]:
    """Every file a load reads, supported or not (an unsupported one is reported as skipped)."""
    return _walk(paths)


def load_articles(
    paths: Sequence[str | Path], kept: Mapping[str, Sequence[KeptArticle]] | None = None
) -> LoadResult:
    """Load every article under the given folders and files.

    A bad file never stops the load: it is reported in `skipped` (and logged),
    and a file whose clean text repeats an earlier article's is reported in
    `duplicates`. A file named in `kept` (by its posix path) is not read: its
    articles are the ones given. Raises UserError only for a path that does not exist.
    """
    kept = kept or {}

    def load(path: Path) -> tuple[str, Sequence[Loaded], list[SkippedFile]]:
        key = path.as_posix()
        if key in kept:
            return key, kept[key], []
        return (key, *load_file(path))

    return gather(load(path) for path in _walk(paths))


def load_file(path: Path) -> tuple[list[Article], list[SkippedFile]]:
    """One file's articles and the records of it skipped (the whole file, when unreadable)."""
    try:
        return _load_file(path)
    except _Skip as skip:
        return [], [SkippedFile(path.as_posix(), str(skip))]


def gather(loaded: Iterable[tuple[str, Sequence[Loaded], Sequence[SkippedFile]]]) -> LoadResult:
    """The files' articles in order, each text once: a later copy is reported as a duplicate.

    `loaded`: each file's path, its articles and the records of it skipped."""
    articles: list[Loaded] = []
    skipped: list[SkippedFile] = []
    duplicates: list[SkippedFile] = []
    whole_files: dict[str, dict[str, str]] = {}
    source_of_text: dict[str, str] = {}
    for path, found, bad_records in loaded:
        whole = not bad_records
        for record in bad_records:
            logger.warning("skipped %s: %s", record.path, record.reason)
            skipped.append(record)
        for article in found:
            first_source = source_of_text.setdefault(article.content_hash, article.source)
            if first_source != article.source:
                duplicate = SkippedFile(article.source, f"same text as {first_source}")
                logger.warning("skipped %s: %s", duplicate.path, duplicate.reason)
                duplicates.append(duplicate)
                whole = False
            else:
                articles.append(article)
        if whole and found:
            whole_files[path] = {article.source: article.id for article in found}
    return LoadResult(tuple(articles), tuple(skipped), tuple(duplicates), whole_files)


def _walk(paths: Sequence[str | Path]) -> list[Path]:
    """List the files under each path; hidden entries are skipped and symlink loops cut."""
    files: list[Path] = []
    for given in map(Path, paths):
        if not given.exists():
            raise UserError(f"corpus path not found: {given}")
        if not given.is_dir():
            files.append(given)
            continue
        found: list[Path] = []
        visited_dirs: set[str] = set()
        for root, dirnames, filenames in os.walk(given, followlinks=True):
            real_root = os.path.realpath(root)
            if real_root in visited_dirs:
                # A symlink back to a folder already walked: descending again never ends.
                dirnames.clear()
                continue
            visited_dirs.add(real_root)
            dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
            found.extend(Path(root, name) for name in filenames if not name.startswith("."))
        files.extend(sorted(found, key=lambda path: path.as_posix()))
    return files


def _load_file(path: Path) -> tuple[list[Article], list[SkippedFile]]:
    """Turn one file into its articles and the records of it that had to be skipped."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = suffix or "(no extension)"
        raise _Skip(f"unsupported file type '{shown}' (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    text = _decode(_read_bytes(path))
    source = path.as_posix()
    fallback_title = re.sub(r"[-_]+", " ", path.stem).strip() or path.name
    if suffix == ".jsonl":
        return _load_json_records(_jsonl_records(text), source, fallback_title)
    if suffix == ".json":
        return _load_json_records(_json_records(text), source, fallback_title)
    if suffix in (".html", ".htm") or _HTML_START.match(text):
        try:
            page = clean_html_page(text, fallback_title)
        except EmptyArticle as empty:
            raise _Skip(str(empty)) from empty
    elif suffix == ".md":
        page = clean_markdown_page(text, fallback_title)
    else:
        page = clean_text_page(text, fallback_title)
    return [_article(source, page)], []


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _Skip(
                f"larger than the {MAX_FILE_BYTES // 2**20} MB limit ({size / 2**20:.1f} MB)"
            )
        data = path.read_bytes()
    except PermissionError as error:
        raise _Skip("cannot read: permission denied") from error
    except OSError as error:
        raise _Skip(f"cannot read: {(error.strerror or str(error)).lower()}") from error
    if not data.strip():
        raise _Skip("empty file")
    return data


def _decode(data: bytes) -> str:
    """Decode text of unknown encoding: BOM first, then UTF-8, cp1252, and latin-1."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            text = data.decode(encoding, errors="replace")
            if not text.strip():
                raise _Skip("empty file")
            return text
    sample = data[:_SNIFF_BYTES]
    controls = sum((byte < 0x20 and byte not in _TEXT_CONTROLS) or byte == 0x7F for byte in sample)
    if b"\0" in sample or controls > _MAX_CONTROL_SHARE * len(sample):
        raise _Skip("binary content, not text")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    # latin-1 maps every byte, so this last step always succeeds.
    return data.decode("latin-1")


def _json_records(text: str) -> Iterator[tuple[str | None, object]]:
    """Yield (record label, record) of a .json file: one object, or a list of objects."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _Skip(f"invalid JSON: {error.msg} (line {error.lineno})") from error
    if isinstance(data, dict):
        yield None, data
    elif isinstance(data, list) and data:
        for number, record in enumerate(data, start=1):
            yield str(number), record
    else:
        raise _Skip("JSON is neither an object nor a non-empty list of objects")


def _jsonl_records(text: str) -> Iterator[tuple[str | None, object]]:
    """Yield (line number, record) of a .jsonl file; a broken line is yielded as a _Skip."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield str(number), json.loads(line)
        except json.JSONDecodeError as error:
            yield str(number), _Skip(f"invalid JSON: {error.msg}")


def _load_json_records(
    records: Iterable[tuple[str | None, object]], source: str, fallback_title: str
) -> tuple[list[Article], list[SkippedFile]]:
    articles: list[Article] = []
    skipped: list[SkippedFile] = []
    for label, record in records:
        record_source = source if label is None else f"{source}#{label}"
        try:
            page = _json_page(record, f"{fallback_title} {label}" if label else fallback_title)
        except _Skip as skip:
            skipped.append(SkippedFile(record_source, str(skip)))
            continue
        articles.append(_article(record_source, page))
    return articles, skipped


def _json_page(record: object, fallback_title: str) -> CleanedPage:
    if isinstance(record, _Skip):
        raise record
    if not isinstance(record, dict):
        raise _Skip("JSON record is not an object")
    body = next((record[key] for key in _JSON_TEXT_FIELDS if key in record), None)
    if not isinstance(body, str):
        raise _Skip('JSON record has no "text", "content" or "body" string')
    title = record.get("title")
    date = next((record[key] for key in _JSON_PUBLISHED_FIELDS if key in record), None)
    published = (date.strip() or None) if isinstance(date, str) else None
    if isinstance(title, str) and title.strip():
        return CleanedPage(" ".join(title.split()), clean_article_text(body), published)
    page = clean_text_page(body, fallback_title)
    return CleanedPage(page.title, page.text, published)


def _article(source: str, page: CleanedPage) -> Article:
    if not page.text:
        raise _Skip("no article text after cleaning")
    return Article(
        id=article_id(source, page.text),
        title=page.title,
        source=source,
        text=page.text,
        published=page.published,
    )

"""The document store: articles, passages and sentences, fetched by id (SQLite).

Retrieval finds ids (a passage's, a sentence's); this store turns them back into
records with their offsets into the article text. It also keeps what answering
needs that was worked out at build time, so that opening an index walks
nothing: which passages each sentence sits in, and how many passages hold each
content word (the idf of the sentence scorer).

Ids are 63-bit integers made from content-hash strings (`record_key`): a
passage's from its chunk id (article hash + offsets), a sentence's likewise.
Every record also carries the hash of its text, so a build can find a vector
for a text it has embedded before, under whatever article it sat.

A version's database is written once by a build and never changed afterwards,
so readers open it immutable (no locks, no journal) and may share one
connection across threads.

A version in layers (`store.py`) has a base database, shared with earlier
versions, and a small delta one for the articles added since; `open` with
`delta` attaches it and shadows each table with a view of both, less the base
articles `hidden` (changed or removed since), so every query below reads the
two as one.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.articles import Article, text_hash
from retrieval.chunking import Chunk, Sentence
from retrieval.text import content_stems

SCHEMA = """
CREATE TABLE articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, source TEXT NOT NULL,
    text TEXT NOT NULL, published TEXT
);
CREATE TABLE passages (
    key INTEGER PRIMARY KEY, id TEXT NOT NULL, article_id TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text_hash TEXT NOT NULL
);
CREATE TABLE sentences (
    key INTEGER PRIMARY KEY, article_id TEXT NOT NULL, seq INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text_hash TEXT NOT NULL
);
CREATE TABLE sentence_passages (
    sentence INTEGER NOT NULL, passage INTEGER NOT NULL, PRIMARY KEY (sentence, passage)
) WITHOUT ROWID;
CREATE TABLE terms (stem TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""
# Built after the rows are in: one sort instead of a B-tree kept in order per insert.
INDEXES = """
CREATE INDEX passages_by_article ON passages (article_id, start);
CREATE INDEX passages_by_text ON passages (text_hash);
CREATE INDEX sentences_by_article ON sentences (article_id, seq);
CREATE INDEX sentences_by_text ON sentences (text_hash);
CREATE INDEX articles_by_source ON articles (source);
"""
# Articles kept in memory once read (their text is what passages are cut from).
ARTICLE_CACHE = 2_000
# SQLite's default limit on bound parameters is 32,766 since 3.32; stay far below.
BATCH = 900


def inverse_document_frequency(df: int, count: int) -> float:
    """idf of a word found in `df` of `count` passages; a word never seen counts as rare."""
    return math.log((count + 1) / 0.5) if df == 0 else math.log((count + 1) / (df + 0.5))


def record_key(text_id: str) -> int:
    """A 63-bit integer id for a content-hash string id (what vector indexes take)."""
    return int.from_bytes(hashlib.sha256(text_id.encode("utf-8")).digest()[:8], "big") >> 1


def passage_key(chunk: Chunk) -> int:
    return record_key(chunk.id)


def sentence_key(sentence: Sentence) -> int:
    return record_key(f"sentence:{sentence.article_id}:{sentence.start}-{sentence.end}")


@dataclass(frozen=True)
class StoredSentence:
    """A sentence with its id and its place in the article (0 = the first sentence)."""

    key: int
    seq: int
    sentence: Sentence


@dataclass(frozen=True)
class ArticleEntry:
    """What a list of articles shows: no text."""

    id: str
    title: str
    source: str
    published: str | None
    passages: int


def _batches(items: Sequence, size: int = BATCH) -> Iterator[Sequence]:
    for at in range(0, len(items), size):
        yield items[at : at + size]


def _marks(count: int) -> str:
    return ",".join("?" * count)


class DocumentStore:
    """Read access to a version's documents. Thread-safe; open with `DocumentStore.open`."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.path = path
        self._db = connection
        self._lock = threading.RLock()  # held by a method around its own queries too
        self._articles: dict[str, Article] = {}
        self._df_cache: dict[str, int] = {}
        self._df_sql = "SELECT df FROM terms WHERE stem = ?1"
        self.passage_count = int(self._meta("passages", "0"))
        self.base_passage_count = self.passage_count  # of the base alone, in layers
        # In layers: the keys of the base's passages and sentences of the hidden articles.
        self.hidden_keys: dict[str, list[int]] = {"passages": [], "sentences": []}

    @classmethod
    def open(
        cls, path: str | Path, delta: Path | None = None, hidden: Sequence[str] = ()
    ) -> DocumentStore:
        path = Path(path)
        for needed in (path, delta):
            if needed is not None and not needed.is_file():
                raise OSError(f"{needed.name} missing")
        connection = sqlite3.connect(_read_only(path), uri=True, check_same_thread=False)
        store = cls(connection, path)
        store._query("SELECT count(*) FROM passages")  # fails here on a damaged file
        if delta is not None:
            store._layer(delta, hidden)
        return store

    def _layer(self, delta: Path, hidden: Sequence[str]) -> None:
        """Read the base and the delta as one: temporary views named after the tables
        (SQLite looks names up in `temp` first), the base's hidden articles left out."""
        db = self._db
        db.execute("ATTACH DATABASE ? AS delta", (_read_only(delta),))
        db.execute("CREATE TEMP TABLE hidden (id TEXT PRIMARY KEY) WITHOUT ROWID")
        db.executemany("INSERT INTO hidden VALUES (?)", [(i,) for i in hidden])
        for table, owner in (("articles", "id"), ("passages", "article_id"),
                             ("sentences", "article_id")):  # fmt: skip
            db.execute(
                f"CREATE TEMP VIEW {table} AS SELECT * FROM main.{table} WHERE {owner} NOT IN "
                f"(SELECT id FROM hidden) UNION ALL SELECT * FROM delta.{table}"
            )
        # A hidden sentence is never looked up (searches drop hidden keys first).
        db.execute(
            "CREATE TEMP VIEW sentence_passages AS SELECT * FROM main.sentence_passages "
            "UNION ALL SELECT * FROM delta.sentence_passages"
        )
        # A word's passage count is the sum of the layers' (keeping the hidden passages: a
        # few, against the base's many), each looked up by its key: a view summing the two
        # with GROUP BY took 3.0 ms a word at a million passages, this 0.1 (175 question words).
        self._df_sql = (
            "SELECT coalesce((SELECT df FROM main.terms WHERE stem = ?1), 0) "
            "+ coalesce((SELECT df FROM delta.terms WHERE stem = ?1), 0)"
        )
        self.hidden_keys = {table: self.base_keys(table, hidden)
                            for table in ("passages", "sentences")}  # fmt: skip
        added = int(self._query("SELECT value FROM delta.meta WHERE name = 'passages'")[0][0])
        self.passage_count += added - len(self.hidden_keys["passages"])

    def base_keys(self, table: str, article_ids: Sequence[str]) -> list[int]:
        """The keys of the base's `table` ("passages"/"sentences") of these articles."""
        if table not in ("passages", "sentences"):
            raise ValueError(f"no table {table!r}")
        keys: list[int] = []
        for batch in _batches(list(article_ids)):
            keys += [
                row[0]
                for row in self._query(
                    f"SELECT key FROM main.{table} WHERE article_id IN ({_marks(len(batch))})",
                    batch,
                )
            ]
        return keys

    def article_ids(self) -> list[str]:
        """Every article's id (of the base alone, in a version in layers)."""
        return [row[0] for row in self._query("SELECT id FROM main.articles")]

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _meta(self, name: str, default: str) -> str:
        rows = self._query("SELECT value FROM meta WHERE name = ?", (name,))
        return rows[0][0] if rows else default

    # Articles

    def article_count(self) -> int:
        return self._query("SELECT count(*) FROM articles")[0][0]

    def article(self, article_id: str) -> Article | None:
        found = self.articles_by_id([article_id])
        return found.get(article_id)

    def articles_by_id(self, ids: Iterable[str]) -> dict[str, Article]:
        """The articles with these ids (those that exist), kept a while once read."""
        ids = list(ids)
        with self._lock:  # page sessions share the store: the cache changes under the lock
            if len(self._articles) > ARTICLE_CACHE:
                self._articles.clear()
            wanted = [i for i in dict.fromkeys(ids) if i not in self._articles]
            for batch in _batches(wanted):
                rows = self._query(
                    "SELECT id, title, source, text, published FROM articles "
                    f"WHERE id IN ({_marks(len(batch))})",
                    batch,
                )
                for row in rows:
                    self._articles[row[0]] = Article(*row)
            return {i: self._articles[i] for i in ids if i in self._articles}

    def articles(self, limit: int | None = None) -> list[Article]:
        """Every article (or the first `limit`), by source."""
        rows = self._query(
            "SELECT id, title, source, text, published FROM articles ORDER BY source LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [Article(*row) for row in rows]

    def articles_by_prefix(self, prefix: str, limit: int = 2) -> list[Article]:
        rows = self._query(
            "SELECT id FROM articles WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
            (prefix, prefix + "\uffff", limit),
        )
        found = self.articles_by_id([row[0] for row in rows])
        return list(found.values())

    def find_articles(
        self, query: str = "", limit: int | None = None
    ) -> tuple[list[ArticleEntry], int]:
        """The articles whose title or text holds every word of `query` (any case), by title,
        at most `limit` of them; and how many match in all."""
        words = query.lower().split()
        where = " AND ".join(
            ["(instr(lower(title), ?) > 0 OR instr(lower(text), ?) > 0)"] * len(words)
        )
        where = f"WHERE {where}" if words else ""
        params: list = [w for w in words for _ in (0, 1)]
        total = self._query(f"SELECT count(*) FROM articles {where}", params)[0][0]
        rows = self._query(
            "SELECT id, title, source, published, "
            "(SELECT count(*) FROM passages WHERE passages.article_id = articles.id) "
            f"FROM articles {where} ORDER BY lower(title), source LIMIT ?",
            [*params, -1 if limit is None else limit],
        )
        return [ArticleEntry(*row) for row in rows], total

    def passage_counts(self, ids: Sequence[str]) -> dict[str, int]:
        """Article id -> how many passages it was cut into, for these articles."""
        counts: dict[str, int] = {}
        for batch in _batches(list(ids)):
            rows = self._query(
                "SELECT article_id, count(*) FROM passages "
                f"WHERE article_id IN ({_marks(len(batch))}) GROUP BY article_id",
                batch,
            )
            counts.update(rows)
        return counts

    # Passages and sentences

    def passages(self, keys: Sequence[int]) -> dict[int, Chunk]:
        """The passages with these keys, their text cut from their article's."""
        rows: list[tuple] = []
        for batch in _batches([int(k) for k in keys]):
            rows += self._query(
                'SELECT key, id, article_id, start, "end" FROM passages '
                f"WHERE key IN ({_marks(len(batch))})",
                batch,
            )
        articles = self.articles_by_id(row[2] for row in rows)
        return {
            key: Chunk(id=id_, article_id=a, start=s, end=e, text=articles[a].text[s:e])
            for key, id_, a, s, e in rows
        }

    def parts_of(
        self, articles: Sequence[Article]
    ) -> dict[str, tuple[list[Chunk], list[Sentence]]]:
        """Each article's passages and sentences as this version holds them, in order (a
        build keeps them for an article it did not read again, instead of cutting it anew)."""
        texts = {article.id: article.text for article in articles}
        found: dict[str, tuple[list[Chunk], list[Sentence]]] = {a: ([], []) for a in texts}
        for batch in _batches(list(texts)):
            marks = _marks(len(batch))
            for id_, a, s, e in self._query(
                f'SELECT id, article_id, start, "end" FROM passages WHERE article_id IN ({marks}) '
                'ORDER BY article_id, start, "end"',
                batch,
            ):
                found[a][0].append(Chunk(id=id_, article_id=a, start=s, end=e, text=texts[a][s:e]))
            for a, s, e in self._query(
                f'SELECT article_id, start, "end" FROM sentences WHERE article_id IN ({marks}) '
                "ORDER BY article_id, seq",
                batch,
            ):
                found[a][1].append(Sentence(a, s, e))
        return found

    def all_passages(self) -> list[tuple[int, Chunk]]:
        """(key, passage) of every passage, by article and offset (for checks and exports)."""
        keys = [row[0] for row in self._query("SELECT key FROM passages")]
        found = self.passages(keys)
        return sorted(found.items(), key=lambda item: (item[1].article_id, item[1].start))

    def all_sentences(self) -> list[StoredSentence]:
        """Every sentence, by article and place (for checks and exports)."""
        rows = self._query(
            'SELECT key, seq, article_id, start, "end" FROM sentences ORDER BY article_id, seq'
        )
        return [StoredSentence(k, q, Sentence(a, s, e)) for k, q, a, s, e in rows]

    def passages_of_sentences(self, keys: Sequence[int]) -> dict[int, tuple[int, ...]]:
        """Sentence key -> the keys of the passages it overlaps (one, or two at a seam)."""
        found: dict[int, list[int]] = {}
        for batch in _batches([int(k) for k in keys]):
            rows = self._query(
                "SELECT sentence, passage FROM sentence_passages "
                f"WHERE sentence IN ({_marks(len(batch))}) ORDER BY sentence, passage",
                batch,
            )
            for sentence, passage in rows:
                found.setdefault(sentence, []).append(passage)
        return {key: tuple(passages) for key, passages in found.items()}

    def sentences_in(self, chunk: Chunk) -> list[StoredSentence]:
        """The sentences that overlap `chunk`, whole even where it cuts them, in order."""
        rows = self._query(
            'SELECT key, seq, start, "end" FROM sentences '
            'WHERE article_id = ? AND start < ? AND "end" > ? ORDER BY seq',
            (chunk.article_id, chunk.end, chunk.start),
        )
        return [StoredSentence(k, q, Sentence(chunk.article_id, s, e)) for k, q, s, e in rows]

    def sentence_at(self, article_id: str, seq: int) -> StoredSentence | None:
        rows = self._query(
            'SELECT key, seq, start, "end" FROM sentences WHERE article_id = ? AND seq = ?',
            (article_id, seq),
        )
        if not rows:
            return None
        key, seq, start, end = rows[0]
        return StoredSentence(key, seq, Sentence(article_id, start, end))

    def keys_by_text(self, table: str, hashes: Sequence[str]) -> dict[str, int]:
        """Text hash -> the key of one record of `table` ("passages"/"sentences") with that text."""
        if table not in ("passages", "sentences"):
            raise ValueError(f"no table {table!r}")
        found: dict[str, int] = {}
        for batch in _batches(list(dict.fromkeys(hashes))):
            rows = self._query(
                f"SELECT text_hash, min(key) FROM {table} "
                f"WHERE text_hash IN ({_marks(len(batch))}) GROUP BY text_hash",
                batch,
            )
            found.update(rows)
        return found

    # Word statistics

    def idf(self, stem: str) -> float:
        """Inverse document frequency of a content stem over the passages."""
        df = self._df_cache.get(stem)
        if df is None:
            rows = self._query(self._df_sql, (stem,))
            df = self._df_cache[stem] = rows[0][0] if rows else 0
        return inverse_document_frequency(df, self.passage_count)


def _read_only(path: Path) -> str:
    return f"file:{path.resolve().as_posix()}?mode=ro&immutable=1"


def write_documents(
    path: Path,
    articles: Sequence[Article],
    chunks: Sequence[Chunk],
    sentences: Sequence[Sentence],
) -> None:
    """Write a new document database at `path` (which must not exist yet)."""
    db = sqlite3.connect(path)
    try:
        db.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;" + SCHEMA)
        db.executemany(
            "INSERT INTO articles VALUES (?, ?, ?, ?, ?)",
            ((a.id, a.title, a.source, a.text, a.published) for a in articles),
        )
        db.executemany(
            "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?)",
            (
                (passage_key(c), c.id, c.article_id, c.start, c.end, text_hash(c.text))
                for c in chunks
            ),
        )
        texts = {a.id: a.text for a in articles}
        seqs: dict[str, int] = {}
        rows = []
        for s in sentences:
            seq = seqs.get(s.article_id, 0)
            seqs[s.article_id] = seq + 1
            text = texts[s.article_id][s.start : s.end]
            rows.append((sentence_key(s), s.article_id, seq, s.start, s.end, text_hash(text)))
        db.executemany("INSERT INTO sentences VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.executemany(
            "INSERT OR IGNORE INTO sentence_passages VALUES (?, ?)",
            _sentence_passages(chunks, sentences),
        )
        frequencies: dict[str, int] = {}
        for chunk in chunks:
            for stem in set(content_stems(chunk.text)):
                frequencies[stem] = frequencies.get(stem, 0) + 1
        db.executemany("INSERT INTO terms VALUES (?, ?)", frequencies.items())
        db.execute("INSERT INTO meta VALUES ('passages', ?)", (str(len(chunks)),))
        db.executescript(INDEXES)
        db.commit()
    finally:
        db.close()


def _sentence_passages(
    chunks: Sequence[Chunk], sentences: Sequence[Sentence]
) -> Iterator[tuple[int, int]]:
    """(sentence key, passage key) for every sentence and passage that overlap."""
    import bisect

    by_article: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_article.setdefault(chunk.article_id, []).append(chunk)
    starts = {}
    for article_id, own in by_article.items():
        own.sort(key=lambda c: c.start)
        starts[article_id] = [c.start for c in own]
    for sentence in sentences:
        own = by_article.get(sentence.article_id, [])
        # Chunks of an article start and end in order: walk back from the last one
        # starting before the sentence ends, while they still reach into it.
        at = bisect.bisect_left(starts.get(sentence.article_id, []), sentence.end) - 1
        while at >= 0 and own[at].end > sentence.start:
            yield sentence_key(sentence), passage_key(own[at])
            at -= 1

"""Building the index: corpus folders in, a new live index version out.

Incremental by content hash: a chunk whose text was embedded before (in any
article, under any file name) reuses its vector, so unchanged, renamed and
duplicated articles cost nothing; changed articles are re-chunked and their
old chunks disappear with the old version; deleted files leave the index.
A build that changes nothing writes nothing. Sentences are embedded inside the
passage that holds them (`embedding_items`); a sentence whose text was embedded
before, in any passage, reuses that vector too.

A build writes a whole new version, except on a large index (a base of at least
`LAYER_FROM` passages), where a change within `LAYER_SHARE` of the base is
written as a layer over it (`store.save_layered_version`): only the articles
added or changed since the base are chunked, embedded and written, so adding
one article costs about the same at a million passages as at a thousand.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.articles import (
    Article,
    KeptArticle,
    Loaded,
    LoadResult,
    SkippedFile,
    iter_corpus_files,
    load_articles,
    text_hash,
)
from retrieval.chunking import Chunk, ChunkingConfig, Sentence, chunk_article, split_sentences
from retrieval.cleaning import CLEANER_VERSION
from retrieval.embedding import MINILM_NAME, Embedder, load_embedder, model_dimension
from retrieval.errors import UserError
from retrieval.resume import BLOCK, EmbeddingCache
from retrieval.store import (
    FORMAT_VERSION,
    LOCAL_STORE,
    Contents,
    CorpusRecord,
    IndexConfig,
    Manifest,
    StoredIndex,
    build_lock,
    load_index,
    read_corpus_record,
    read_manifest,
    rebuild_hint,
    save_layered_version,
    save_version,
    store_spec,
)

log = logging.getLogger(__name__)

# progress(stage, done, total): stage is "load", "embed" or "save".
Progress = Callable[[str, int, int], None]
# What to embed: (text hash, text, spans), each span (its text's hash, start, end) a sentence
# inside the text whose vector is pooled from the text's tokens (`Embedder.embed_spans`).
EmbedItem = tuple[str, str, tuple[tuple[str, int, int], ...]]
# embed(items, done, tick): embed each item, handing every finished batch to done(hashes,
# vectors) (the texts' and their spans') and counting vectors with tick(n). Local by default;
# `retrieval.distributed` does it on a Ray cluster.
Embed = Callable[
    [list[EmbedItem], Callable[[list[str], np.ndarray], None], Callable[[int], None]], None
]
# A load that has already chunked: each article's passages and sentences, by article id.
Parts = dict[str, tuple[list[Chunk], list[Sentence]]]


def index_config(model: str = MINILM_NAME, chunking: ChunkingConfig | None = None) -> IndexConfig:
    return IndexConfig(
        model=model,
        dimension=model_dimension(model),
        chunking=chunking or ChunkingConfig(),
        cleaner_version=CLEANER_VERSION,
    )


@dataclass(frozen=True)
class BuildReport:
    index_dir: Path
    articles: int
    chunks: int
    embedded: int
    seconds: float
    written: bool
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    duplicates: tuple[SkippedFile, ...] = ()

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class CorpusFiles:
    """The corpus files as a build saw them: each one's hash, and its size and mtime."""

    hashes: dict[str, str]
    stats: dict[str, list[int]]  # path -> [size, mtime_ns]
    taken_ns: int  # when the stats were taken


# A build adds a layer to the live version, instead of writing a whole new one, when its
# base holds at least LAYER_FROM passages and the passages added or hidden since the base
# stay within LAYER_SHARE of it (smaller indexes are rewritten whole: a few seconds).
LAYER_FROM = 20_000
LAYER_SHARE = 0.1
# A file changed this close to when its stats were taken may change again within the same
# mtime tick unnoticed (git's "racy" case): its bytes are hashed again next time.
RACY_NS = 2_000_000_000


def file_hashes(corpus: Sequence[str | Path], since: CorpusRecord | None = None) -> CorpusFiles:
    """Each corpus file's hash, to tell later which files changed since the build.

    A file whose size and mtime are those `since` recorded keeps the hash recorded
    then, unread: checking an unchanged corpus costs a `stat` a file.
    """
    taken_ns = time.time_ns()
    hashes: dict[str, str] = {}
    stats: dict[str, list[int]] = {}
    known_stats = since.file_stats if since is not None else {}
    known_hashes = since.files if since is not None else {}
    trusted_before = (since.stats_taken_ns if since is not None else 0) - RACY_NS
    for path in iter_corpus_files(corpus):
        key = path.as_posix()
        try:
            info = path.stat()
            stat = [info.st_size, info.st_mtime_ns]
            if (
                known_stats.get(key) == stat
                and key in known_hashes
                and info.st_mtime_ns < trusted_before
            ):
                hashes[key] = known_hashes[key]
            else:
                hashes[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            stats[key] = stat
        except OSError:
            continue
    return CorpusFiles(hashes, stats, taken_ns)


def known_manifest(index_dir: Path) -> Manifest | None:
    """The live version's manifest, or None where there is none yet (or it is unreadable)."""
    try:
        return read_manifest(index_dir)
    except UserError:
        return None


def open_previous(
    index_dir: Path, config: IndexConfig, rebuild: bool = False
) -> StoredIndex | None:
    """The live version a build starts from; None to start over (`rebuild`, no index yet,
    or one this code cannot read or that was built with another model, chunking or cleaner)."""
    if rebuild:
        return None
    try:
        return load_index(index_dir, config)
    except UserError as error:
        if (index_dir / "CURRENT").exists():
            log.warning("starting the index over: %s", error)
        return None


def previous_record(previous: StoredIndex | None) -> CorpusRecord | None:
    """What the live version a build starts from was built from; None when there is none or
    it cannot be read: the build then reads and hashes every file again (reusing the
    version's vectors) and writes a good record, as `open_previous` starts over."""
    if previous is None:
        return None
    try:
        return read_corpus_record(previous.path)
    except UserError as error:
        log.warning("reading every file again: %s", error)
        return None


def unchanged_files(
    record: CorpusRecord | None, files: CorpusFiles
) -> dict[str, list[KeptArticle]]:
    """The articles of each file whose bytes are those the live version was built from
    (`record`; and all of which it indexed), by file: a build takes them from the index
    instead of reading them."""
    if record is None:
        return {}
    return {
        path: [KeptArticle(key, source, record.articles[source]) for source, key in found.items()]
        for path, found in record.file_articles.items()
        if path in files.hashes
        and files.hashes[path] == record.files.get(path)
        and all(source in record.articles for source in found)
    }


def build_index(
    corpus: Sequence[str | Path],
    index_dir: str | Path,
    *,
    config: IndexConfig | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
    store: str | None = None,
) -> BuildReport:
    """Bring `index_dir` up to date with the files under `corpus`.

    Only new and changed files are read: a file whose size and mtime (else whose bytes)
    are those of the last build keeps its articles, taken from the live index.

    `store`: where the vectors go ("local", or a Milvus URI: `store.store_spec`); by
    default where the live version keeps them, else local."""
    index_dir = Path(index_dir)
    config = config or index_config()
    with build_lock(index_dir):
        started = time.perf_counter()
        previous = open_previous(index_dir, config, rebuild)
        record = previous_record(previous)
        files = file_hashes(corpus, record)
        loaded = load_articles(corpus, kept=unchanged_files(record, files))
        return build_loaded(
            index_dir, loaded, files, previous, config=config, progress=progress,
            started=started, store=store, record=record,
        )  # fmt: skip


def build_index_from_articles(
    articles: Sequence[Article],
    index_dir: str | Path,
    *,
    config: IndexConfig | None = None,
    progress: Progress | None = None,
    store: str | None = None,
) -> BuildReport:
    """Index articles made in memory (the benchmark's), with the same code as a corpus build."""
    index_dir = Path(index_dir)
    config = config or index_config()
    with build_lock(index_dir):
        loaded = LoadResult(articles=tuple(articles), skipped=(), duplicates=())
        return build_loaded(
            index_dir, loaded, CorpusFiles({}, {}, 0), open_previous(index_dir, config),
            config=config, progress=progress, store=store,
        )  # fmt: skip


def build_loaded(
    index_dir: Path,
    loaded: LoadResult,
    files: CorpusFiles,
    previous: StoredIndex | None,
    *,
    config: IndexConfig | None = None,
    progress: Progress | None = None,
    started: float | None = None,
    store: str | None = None,
    parts: Parts | None = None,
    embed: Embed | None = None,
    record: CorpusRecord | None = None,
) -> BuildReport:
    """The build from articles already loaded, under the caller's `build_lock`: what every
    build shares, whoever read the files (`distributed` reads and chunks them on Ray and
    passes `parts` and its own `embed`).

    `previous`: the live version (`open_previous`), which the articles kept unread come from;
    `record`: what it was built from (`previous_record`), read here when not given.
    `store`: where the vectors go ("local", or a Milvus URI: `store.store_spec`); by
    default where the live version keeps them, else local."""
    known = previous.manifest if previous is not None else known_manifest(index_dir)
    if store is not None:
        store = store_spec(store)
    else:
        store = known.store if known is not None else LOCAL_STORE
    if record is None:
        record = previous_record(previous)
    return _build(
        loaded, files, index_dir, config or index_config(), previous, progress or _no_progress,
        time.perf_counter() if started is None else started, store, parts=parts, embed=embed,
        record=record,
    )  # fmt: skip


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def _build(
    loaded: LoadResult,
    files: CorpusFiles,
    index_dir: Path,
    config: IndexConfig,
    previous: StoredIndex | None,
    report: Progress,
    started: float,
    store: str = LOCAL_STORE,
    parts: Parts | None = None,
    embed: Embed | None = None,
    record: CorpusRecord | None = None,
) -> BuildReport:
    """The build proper, from loaded articles (`parts`: already chunked, else chunked here)."""
    report("load", len(loaded.articles), len(loaded.articles))
    before = record.articles if record is not None else {}
    now = {article.source: article.content_hash for article in loaded.articles}
    added = tuple(sorted(set(now) - set(before)))
    removed = tuple(sorted(set(before) - set(now)))
    changed = tuple(sorted(s for s in set(now) & set(before) if now[s] != before[s]))
    if (
        previous is not None
        and not (added or removed or changed)
        and record is not None
        and record.files == files.hashes
        and record.file_articles == loaded.whole_files
        and previous.manifest.store == store
    ):
        return BuildReport(
            index_dir, len(before), previous.manifest.passages, 0,
            time.perf_counter() - started, False,
            skipped=loaded.skipped, duplicates=loaded.duplicates,
        )  # fmt: skip
    parts = dict(parts or {})

    def cut(chosen: Sequence[Article]) -> None:
        for article in chosen:
            if article.id not in parts:
                parts[article.id] = (
                    chunk_article(article, config.chunking),
                    split_sentences(article),
                )

    layers = _layers(previous, loaded.articles, store, cut, parts)
    written = layers.articles if layers is not None else _with_texts(previous, loaded.articles)
    kept = {a.id for a in loaded.articles if isinstance(a, KeptArticle)} - set(parts)
    if layers is None and previous is not None and kept:
        # An article not read again is cut as the live version holds it (a version cut
        # with other settings is never the one a build starts from: `open_previous`).
        parts.update(previous.documents.parts_of([a for a in written if a.id in kept]))
    cut(written)
    articles = {article.id: article for article in written}
    chunks = [c for article in written for c in parts[article.id][0]]
    sentences = [s for article in written for s in parts[article.id][1]]
    chunk_texts = [chunk.text for chunk in chunks]
    sentence_texts = [articles[s.article_id].text[s.start : s.end] for s in sentences]
    # Vectors are keyed by the hash of the text they embed: whatever article or file
    # a passage or sentence sits in now, if its text was embedded before, it is reused.
    known = _reusable(previous, chunk_texts, sentence_texts) if previous is not None else {}
    embedded = {text_hash(t) for t in chunk_texts + sentence_texts} - set(known)
    cache = EmbeddingCache(index_dir, config.model, config.dimension)
    items = embedding_items(chunks, sentences, sentence_texts, set(known))
    known = _embed_new(items, known, report, cache, embed or local_embed(config.model))
    vectors = _stack(chunk_texts, known, config.dimension)
    sentence_vectors = _stack(sentence_texts, known, config.dimension)
    report("save", 0, 1)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        model=config.model,
        dimension=config.dimension,
        chunk_size=config.chunking.size,
        chunk_overlap=config.chunking.overlap,
        cleaner_version=config.cleaner_version,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        build_seconds=round(time.perf_counter() - started, 3),
        article_count=len(now),
        passages=len(chunks) + (layers.base_passages if layers else 0),
        sentences=len(sentences) + (layers.base_sentences if layers else 0),
        store=store,
    )
    built_from = CorpusRecord(
        articles=now,
        files=files.hashes,
        file_stats=files.stats,
        stats_taken_ns=files.taken_ns,
        file_articles=loaded.whole_files,
    )
    contents = Contents(written, chunks, vectors, sentences, sentence_vectors)
    if layers is not None:
        save_layered_version(
            index_dir, manifest, built_from, previous.path, layers.hidden, contents
        )
    else:
        save_version(index_dir, manifest, built_from, contents)
    cache.clear()
    report("save", 1, 1)
    return BuildReport(
        index_dir=index_dir,
        articles=len(loaded.articles),
        chunks=len(chunks),
        embedded=len(embedded),
        seconds=time.perf_counter() - started,
        written=True,
        added=added,
        changed=changed,
        removed=removed,
        skipped=loaded.skipped,
        duplicates=loaded.duplicates,
    )


@dataclass(frozen=True)
class Layers:
    """A build that adds a layer to the live version: the articles its delta holds (every
    article not in the base), the base's articles it hides, and what of the base stays."""

    articles: list[Article]
    hidden: list[str]
    base_passages: int
    base_sentences: int


def _layers(
    previous: StoredIndex | None,
    articles: Sequence[Loaded],
    store: str,
    cut: Callable[[Sequence[Article]], None],
    parts: Parts,
) -> Layers | None:
    """How to write this build as a layer over the live version's base; None to write a
    whole version (a small index, another store, or a delta grown past `LAYER_SHARE`)."""
    if previous is None or store != LOCAL_STORE or previous.manifest.store != LOCAL_STORE:
        return None
    documents = previous.documents
    if documents.base_passage_count < LAYER_FROM:
        return None
    in_base = set(documents.article_ids())
    hidden = sorted(in_base - {article.id for article in articles})
    fresh = _with_texts(previous, [article for article in articles if article.id not in in_base])
    cut(fresh)
    hidden_passages = len(documents.base_keys("passages", hidden))
    changed = hidden_passages + sum(len(parts[article.id][0]) for article in fresh)
    if changed > LAYER_SHARE * documents.base_passage_count:
        return None
    base_sentences = getattr(previous.sentences, "base", previous.sentences)
    return Layers(
        articles=fresh,
        hidden=hidden,
        base_passages=documents.base_passage_count - hidden_passages,
        base_sentences=len(base_sentences) - len(documents.base_keys("sentences", hidden)),
    )


def _with_texts(previous: StoredIndex | None, articles: Sequence[Loaded]) -> list[Article]:
    """The articles with their texts: those kept unread are fetched from `previous`."""
    wanted = [article.id for article in articles if isinstance(article, KeptArticle)]
    if not wanted:
        return list(articles)  # type: ignore[arg-type]  # no KeptArticle among them
    assert previous is not None, "articles are kept only from a live version"
    found = previous.documents.articles_by_id(wanted)
    if len(found) < len(set(wanted)):
        index_dir = previous.path.parents[1]  # <index>/versions/<version>
        raise UserError(
            f"index at {index_dir} is damaged (articles it was built from are missing from "
            f"its documents): {rebuild_hint(index_dir)}"
        )
    return [found[a.id] if isinstance(a, KeptArticle) else a for a in articles]


def _reusable(
    previous: StoredIndex, chunk_texts: list[str], sentence_texts: list[str]
) -> dict[str, np.ndarray]:
    """Text hash -> vector, for the texts the previous version holds a vector of.

    A passage's vector is only ever a passage's (a sentence's was pooled in some passage's
    context); a sentence may take an earlier sentence's or a passage's of the same text,
    unless its text is one of this build's passages, whose vector it then shares.
    """
    passages = list(dict.fromkeys(text_hash(text) for text in chunk_texts))
    known: dict[str, np.ndarray] = {}
    own = set(passages)
    sentences = [h for h in dict.fromkeys(map(text_hash, sentence_texts)) if h not in own]
    for table, vectors, wanted in (
        ("passages", previous.passages, passages),
        ("sentences", previous.sentences, sentences),
        ("passages", previous.passages, sentences),
    ):
        found = previous.documents.keys_by_text(table, [h for h in wanted if h not in known])
        if found:
            known.update(zip(found, vectors.get(list(found.values())), strict=True))
    return known


def embedding_items(
    chunks: Sequence[Chunk],
    sentences: Sequence[Sentence],
    sentence_texts: Sequence[str],
    known: set[str],
) -> list[EmbedItem]:
    """What to embed for the texts not in `known`: each new passage, with the new sentences
    that lie whole inside it as spans (the first such passage of their article's, in order);
    a sentence no passage holds whole is embedded alone.

    A sentence's vector pooled from its passage's tokens, rather than embedded alone,
    matched questions to their answer's sentence as well or better (README, Benchmarks) and
    costs no model run of its own: the build embeds about a fifth as many texts.
    """
    items: dict[str, tuple[str, list[tuple[str, int, int]]]] = {}
    by_article: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_article.setdefault(chunk.article_id, []).append(chunk)
        key = text_hash(chunk.text)
        if key not in known:
            items.setdefault(key, (chunk.text, []))
    # A sentence whose text is a whole passage's has that passage's vector.
    placed = known | {text_hash(chunk.text) for chunk in chunks}
    # An article's passages and sentences come in order: a passage ending before a sentence
    # starts holds no later one either, so each article's passages are walked once.
    first: dict[str, int] = {}
    for sentence, text in zip(sentences, sentence_texts, strict=True):
        key = text_hash(text)
        if key in placed:
            continue
        placed.add(key)
        own = by_article.get(sentence.article_id, [])
        at = first.get(sentence.article_id, 0)
        while at < len(own) and own[at].end < sentence.start:
            at += 1
        first[sentence.article_id] = at
        home = next(
            (c for c in own[at:] if c.start <= sentence.start and sentence.end <= c.end), None
        )
        if home is None:
            items[key] = (text, [])
            continue
        spans = items.setdefault(text_hash(home.text), (home.text, []))[1]
        spans.append((key, sentence.start - home.start, sentence.end - home.start))
    return [(key, text, tuple(spans)) for key, (text, spans) in items.items()]


def _embed_new(
    items: list[EmbedItem],
    known: dict[str, np.ndarray],
    report: Progress,
    cache: EmbeddingCache,
    embed: Embed,
) -> dict[str, np.ndarray]:
    """`known` plus vectors for the items' texts and spans never embedded before (the model
    loads only then).

    What an unfinished build embedded (`cache`) is taken as it is; what is embedded now
    goes to `cache` block by block, so a build killed half-way loses at most a block.
    """
    if not items:
        return known
    saved = cache.load()
    wanted = {key for key, _, spans in items for key in (key, *(s[0] for s in spans))}
    resumed = {key: saved[key] for key in wanted - set(known) if key in saved}
    known = {**known, **resumed}
    todo = []
    for key, text, spans in items:
        spans = tuple(span for span in spans if span[0] not in known)
        if key not in known or spans:
            todo.append((key, text, spans))
    done = len(resumed)
    total = done + sum(1 + len(spans) for _, _, spans in todo)
    report("embed", done, total)
    if not todo:
        return known
    fresh: dict[str, np.ndarray] = {}
    pending: list[tuple[str, np.ndarray]] = []

    def keep(keys: list[str], vectors: np.ndarray) -> None:
        fresh.update(zip(keys, vectors, strict=True))
        pending.extend(zip(keys, vectors, strict=True))
        if len(pending) >= BLOCK:
            flush()

    def flush() -> None:
        if pending:
            cache.add([k for k, _ in pending], np.stack([v for _, v in pending]))
            pending.clear()

    def tick(count: int) -> None:
        nonlocal done
        done += count
        report("embed", done, total)

    embed(todo, keep, tick)
    flush()
    # A passage read again for its new sentences keeps the vector it had.
    return {**fresh, **known}


def local_embed(model: str) -> Embed:
    """Embedding in this process, in blocks, with the model `model` names."""

    def embed(
        items: list[EmbedItem],
        done: Callable[[list[str], np.ndarray], None],
        tick: Callable[[int], None],
    ) -> None:
        embedder = load_embedder(model)
        for start in range(0, len(items), BLOCK):
            block = items[start : start + BLOCK]
            keys, vectors = embed_items(embedder, block, tick)
            done(keys, vectors)

    return embed


def embed_items(
    embedder: Embedder, items: Sequence[EmbedItem], progress: Callable[[int], None] | None = None
) -> tuple[list[str], np.ndarray]:
    """The keys and vectors of `items`' texts, then of their spans."""
    vectors, pooled = embedder.embed_spans(
        [text for _, text, _ in items],
        [[(start, end) for _, start, end in spans] for _, _, spans in items],
        progress=progress,
    )
    keys = [key for key, _, _ in items] + [s[0] for _, _, spans in items for s in spans]
    return keys, np.vstack([vectors, *pooled]).astype(np.float32)


def _stack(texts: list[str], known: dict[str, np.ndarray], dimension: int) -> np.ndarray:
    if not texts:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.vstack([known[text_hash(text)] for text in texts]).astype(np.float32)

"""`article-qa eval-scale` (`make bench-scale`): the evaluation articles hidden among N passages.

The 48 evaluation articles are embedded for real, with the product's embedder.
Around them go synthetic distractor passages, so that the index reaches N
passages without embedding N texts (a million would take most of a day):

- text: each distractor passage is up to `SENTENCES_PER_PASSAGE` sentences drawn at
  random from the articles whose questions are *not* asked (the tune half, when the test
  half's questions are asked), so no distractor holds the answer to a question
  asked, cut after the last sentence that keeps it within the chunk size (1,000
  characters), as the chunker keeps real passages; ten passages make one synthetic
  article;
- vectors: a distractor sentence's vector is its source sentence's real vector
  plus Gaussian noise of norm `NOISE`, normalised (cosine about 0.89 to the
  source, as a paraphrase would be); a passage's vector is the mean of its
  sentences' source vectors, normalised, plus the same noise, normalised again.

The whole lot is written by the normal store code (`store.save_version`), then a
fresh process opens it with `QAEngine.open` and asks the questions through the
whole `ask` path, so its memory is that of an answering process, not of the
build. ANN recall@10 compares the passage store's search with exact search over
every passage vector, for the questions' vectors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Literal

import numpy as np

from retrieval.articles import Article, article_id
from retrieval.bench import (
    Question,
    cpu_name,
    first_relevant_rank,
    read_squad,
    sample,
    squad_articles,
    squad_questions,
    squad_title,
)
from retrieval.chunking import Chunk, ChunkingConfig, Sentence, chunk_id
from retrieval.cleaning import clean_article_text
from retrieval.documents import StoredSentence
from retrieval.search import SENTENCE_CANDIDATES
from retrieval.store import IndexConfig, sentence_encoding

SENTENCES_PER_PASSAGE = 5
PASSAGES_PER_ARTICLE = 10
NOISE = 0.5
Noise = Literal["isotropic", "shaped"]
MIN_SENTENCE_CHARS = 30
# Distractor files read back and compared with their articles, spread over the corpus.
CHECKED_FILES = 500


def _percentile(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def scale_benchmark(
    articles_files: Sequence[Path],
    questions_file: Path,
    sizes: Sequence[int],
    n_questions: int,
    seed: int = 0,
    log: Callable[[str], None] = lambda line: None,
    workdir: Path | None = None,
    sentence_encodings: Sequence[str] = (),
    keep: Path | None = None,
    noise: Noise = "isotropic",
    store: str | None = None,
) -> list[dict]:
    """For each size (and sentence encoding), build the index, measure it in a fresh process.

    With `keep`, the indexes stay in that folder (to open or measure again); `store` puts the
    vectors in Milvus (`store.store_spec`'s form) instead of the index folder.
    """
    import shutil

    from retrieval.indexing import build_index_from_articles
    from retrieval.store import load_index

    articles, where = squad_articles(articles_files)
    answerable, _ = squad_questions(questions_file, articles, where)
    questions = sample([q for q in answerable if q.golds], n_questions, seed)
    asked_titles = {entry["title"] for entry in read_squad(questions_file)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="article-qa-scale-", dir=workdir) as scratch:
        log(f"embedding the {len(articles)} evaluation articles")
        build_index_from_articles(articles, Path(scratch) / "real")
        real = load_index(Path(scratch) / "real")
        texts = {a.id: a.text for a in articles}

        def said(stored: StoredSentence) -> str:
            sentence = stored.sentence
            return texts[sentence.article_id][sentence.start : sentence.end]

        # Not one the cleaner would change (a double space, say): its file would read back
        # as another text.
        pool = [
            s for s in real.documents.all_sentences()
            if squad_title(real.documents.article(s.sentence.article_id)) not in asked_titles
            and len(said(s)) >= MIN_SENTENCE_CHARS and clean_article_text(said(s)) == said(s)
        ]  # fmt: skip
        pool_texts = [said(s) for s in pool]
        pool_vectors = real.sentences.get([s.key for s in pool])
        questions_path = Path(scratch) / "questions.json"
        questions_path.write_text(json.dumps([asdict(q) for q in questions]), encoding="utf-8")
        for size in sizes:
            for encoding in sentence_encodings or (None,):
                name = f"index-{size}-{encoding or 'default'}-{noise}"
                index_dir = (keep or Path(scratch)) / name
                row, corpus = _one_size(
                    real, articles, pool_texts, pool_vectors, size, encoding, seed, index_dir,
                    log, noise, store,
                )  # fmt: skip
                if store is not None:
                    from retrieval.milvus import release

                    release(store)  # a Milvus Lite file opens in one process at a time
                log("asking the questions in a fresh process")
                measured = _measure_in_subprocess(index_dir, questions_path)
                row["add_one_article_s"] = None
                if store is None:  # (Milvus versions are written whole: not measured)
                    log("adding one article")
                    row.update(add_one_article(index_dir, corpus, pool_texts))
                if keep is None:
                    shutil.rmtree(index_dir, ignore_errors=True)
                    shutil.rmtree(corpus, ignore_errors=True)
                rows.append({**row, **measured, "questions": len(questions)})
                log(format_scale_table(rows[-1:]))
    return rows


def folder_bytes(folder: Path) -> int:
    """The size of every file under `folder`."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _one_size(
    real, articles, pool_texts, pool_vectors, size, encoding, seed, index_dir, log,
    noise: Noise = "isotropic", store: str | None = None,
) -> tuple[dict, Path]:  # fmt: skip
    """Write the index of `size` passages, the real ones and distractors, and (for a local
    store) its corpus folder beside it, `<index>-corpus`; its build figures and that folder."""
    from retrieval.indexing import file_hashes
    from retrieval.store import CorpusRecord

    real_passages = real.documents.all_passages()
    real_sentences = real.documents.all_sentences()
    count = max(0, size - len(real_passages))
    log(f"making {count:,} distractor passages from {len(pool_texts):,} sentences")
    started = time.perf_counter()
    corpus = index_dir.with_name(f"{index_dir.name}-corpus")
    extra = distractors(pool_texts, count, seed, folder=corpus)
    all_articles = list(articles) + extra.articles
    chunks = [chunk for _, chunk in real_passages] + extra.chunks
    sentences = [s.sentence for s in real_sentences] + extra.sentences
    dimension = real.manifest.dimension
    vectors = np.empty((len(chunks), dimension), dtype=np.float32)
    vectors[: len(real_passages)] = real.passages.get([k for k, _ in real_passages])
    fill_noisy(vectors[len(real_passages) :], pool_vectors, extra.drawn, seed + 1, noise=noise)
    sentence_vectors = np.empty((len(sentences), dimension), dtype=np.float32)
    sentence_vectors[: len(real_sentences)] = real.sentences.get([s.key for s in real_sentences])
    fill_noisy(
        sentence_vectors[len(real_sentences) :], pool_vectors, extra.sentence_sources, seed + 2,
        noise=noise,
    )  # fmt: skip
    made_s = time.perf_counter() - started
    sizes = [chunk.end - chunk.start for chunk in extra.chunks] or [0]
    real_sizes = [chunk.end - chunk.start for _, chunk in real_passages] or [0]
    manifest = real.manifest if store is None else replace(real.manifest, store=store)
    corpus_s, record = None, CorpusRecord()
    if store is None:  # (only an incremental build reads it: measured on a local store)
        log(f"writing the corpus folder: {len(all_articles):,} files")
        started = time.perf_counter()
        file_articles = write_corpus(corpus, articles, extra.articles)
        files = file_hashes([corpus])
        record = CorpusRecord(
            files=files.hashes, file_stats=files.stats, stats_taken_ns=files.taken_ns,
            file_articles=file_articles,
        )  # fmt: skip
        corpus_s = round(time.perf_counter() - started, 1)
    del extra
    encoding = encoding or sentence_encoding(len(sentences))  # as a build would choose
    log(f"writing {len(chunks):,} passages and {len(sentences):,} sentences ({encoding})")
    started = time.perf_counter()
    write_scale_index(index_dir, manifest, record, all_articles, chunks, vectors, sentences,
                      sentence_vectors, encoding)  # fmt: skip
    write_s = time.perf_counter() - started
    disk = folder_bytes(index_dir)
    if store is not None and Path(store).is_absolute():
        disk += folder_bytes(Path(store))  # a Milvus Lite file: its data folder
    return {
        "sentence_encoding": encoding,
        "noise": noise,
        "distractors_s": round(made_s, 1),
        "corpus_s": corpus_s,
        # Passage lengths in characters: what the reader reads costs with them.
        "distractor_chars_mean": round(float(np.mean(sizes)), 1),
        "real_chars_mean": round(float(np.mean(real_sizes)), 1),
        "write_s": round(write_s, 1),
        "disk_mb": round(disk / 2**20, 1),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
    }, corpus


def add_one_article(
    index_dir: Path, corpus: Path, pool_texts: Sequence[str], config: IndexConfig | None = None
) -> dict:
    """Time `article-qa build`'s work when one new file (ten passages of pool sentences) joins
    the corpus folder of the index: the scan of every file, the new one read, chunked and
    embedded, the version written."""
    from retrieval.indexing import build_index
    from retrieval.store import DELTA_DIR, current_version

    made = distractors(pool_texts, PASSAGES_PER_ARTICLE, seed=12345).articles[0]
    path = _write_page(corpus / "added" / "item-added.txt", replace(made, title="Added item"))
    started = time.perf_counter()
    report = build_index([corpus], index_dir, config=config)
    seconds = time.perf_counter() - started
    if report.added != (path.as_posix(),) or report.changed or report.removed:
        raise RuntimeError(
            f"adding one file changed more: added {report.added[:3]}, changed "
            f"{report.changed[:3]}, removed {report.removed[:3]}"
        )
    return {
        "add_one_article_s": round(seconds, 2),
        "add_one_article_embedded": report.embedded,
        "add_one_article_layered": (current_version(index_dir) / DELTA_DIR).is_dir(),
    }


def archive_file(folder: Path, number: int) -> Path:
    """Where distractor article `number` is written: a thousand files to a subfolder."""
    return folder / "archive" / f"{number // 1000:04d}" / f"item-{number:07d}.txt"


def _write_page(path: Path, article: Article) -> Path:
    """Write `path` as a plain-text file that reads back as `article`: its title line, then
    its text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{article.title}\n\n{article.text}\n", encoding="utf-8")
    return path


def write_corpus(
    folder: Path, real: Sequence[Article], made: Sequence[Article]
) -> dict[str, dict[str, str]]:
    """The corpus folder an incremental build of the scale index scans: a file per article.

    A distractor's file is its source, and reads back as it (checked on `CHECKED_FILES`). The
    evaluation articles keep their "squad:" sources, which the questions are mapped by, so
    their files (`evaluation/`) are attributed to them in the corpus record: unchanged, a build
    keeps them unread like any other file. Returns the record's `file_articles`."""
    from retrieval.articles import load_file

    attributed: dict[str, dict[str, str]] = {}
    for number, article in enumerate(real):
        path = _write_page(folder / "evaluation" / f"{number:04d}.txt", article)
        attributed[path.as_posix()] = {article.source: article.id}
    for article in made:
        _write_page(Path(article.source), article)
        attributed[article.source] = {article.source: article.id}
    for article in made[:: max(1, len(made) // CHECKED_FILES)]:
        if load_file(Path(article.source)) != ([article], []):
            raise RuntimeError(f"{article.source} does not read back as the article written")
    return attributed


class Distractors:
    def __init__(self, drawn: np.ndarray) -> None:
        self.articles: list[Article] = []
        self.chunks: list[Chunk] = []
        self.sentences: list[Sentence] = []
        # (passages, SENTENCES_PER_PASSAGE): the pool sentence of each, -1 past a passage's end
        self.drawn = drawn

    @property
    def sentence_sources(self) -> np.ndarray:
        """The pool sentence of each distractor sentence, in `sentences` order."""
        return self.drawn[self.drawn >= 0]


def distractors(
    texts: Sequence[str],
    count: int,
    seed: int,
    folder: Path | None = None,
    max_chars: int = ChunkingConfig().size,
) -> Distractors:
    """`count` passages of sentences drawn from `texts`, ten to an article, with offsets;
    a passage ends before the sentence that would take it past `max_chars` (it keeps one).

    `folder`: the corpus folder the articles' files go to (`write_corpus`), which their
    sources name; else their sources are "scale:<number>"."""
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(texts), size=(count, SENTENCES_PER_PASSAGE))
    lengths = np.array([len(text) for text in texts])
    ends = np.cumsum(lengths[drawn] + 1, axis=1) - 1  # each sentence's end, spaces between
    drawn[:, 1:][ends[:, 1:] > max_chars] = -1
    made = Distractors(drawn)
    for first in range(0, count, PASSAGES_PER_ARTICLE):
        rows = made.drawn[first : first + PASSAGES_PER_ARTICLE]
        spans: list[tuple[int, int]] = []
        sentence_spans: list[tuple[int, int]] = []
        parts: list[str] = []
        at = 0
        for row in rows:
            start = at
            for position, source in enumerate(row[row >= 0]):
                if position:
                    parts.append(" ")
                    at += 1
                sentence_spans.append((at, at + len(texts[source])))
                parts.append(texts[source])
                at += len(texts[source])
            spans.append((start, at))
            parts.append("\n\n")
            at += 2
        text = "".join(parts).rstrip("\n")
        number = first // PASSAGES_PER_ARTICLE
        source = f"scale:{number}" if folder is None else archive_file(folder, number).as_posix()
        article = Article(article_id(source, text), f"Archive item {number}", source, text)
        made.articles.append(article)
        made.chunks += [
            Chunk(chunk_id(article.id, s, e), article.id, s, e, text[s:e]) for s, e in spans
        ]
        made.sentences += [Sentence(article.id, s, e) for s, e in sentence_spans]
    return made


def fill_noisy(
    out: np.ndarray,
    pool: np.ndarray,
    drawn: np.ndarray,
    seed: int,
    block: int = 100_000,
    noise: Noise = "isotropic",
) -> None:
    """out[i] = the normalised mean of pool[drawn[i]] (one row, or several where drawn[i] is a
    row of them, -1 for none) plus noise of norm `NOISE`, normalised again. The noise is
    isotropic Gaussian, or "shaped": along the difference of two random pool vectors, so it
    stays within the directions real embeddings vary in.

    Written a block at a time into `out`, so a million rows never need a second copy.
    """
    rng = np.random.default_rng(seed)
    for at in range(0, len(drawn), block):
        rows = drawn[at : at + block]
        if rows.ndim == 2:
            base = np.zeros((len(rows), pool.shape[1]), dtype=np.float32)
            for column in rows.T:
                base[column >= 0] += pool[column[column >= 0]]
        else:
            base = pool[rows]
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        if noise == "shaped":
            first = rng.integers(0, len(pool), size=len(base))
            second = (first + rng.integers(1, len(pool), size=len(base))) % len(pool)
            direction = pool[first] - pool[second]
        else:
            direction = rng.standard_normal(base.shape, dtype=np.float32)
        norms = np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-6)
        noisy = base + direction / norms * NOISE
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        out[at : at + block] = noisy


def write_scale_index(
    index_dir, manifest, record, articles, chunks, vectors, sentences, sentence_vectors, encoding
):
    """The combined version, through the store code a build uses."""
    from dataclasses import replace

    from retrieval.store import Contents, save_version

    combined = replace(
        manifest, article_count=len(articles), passages=len(chunks), sentences=len(sentences)
    )
    built_from = replace(record, articles={a.source: a.content_hash for a in articles})
    contents = Contents(list(articles), list(chunks), vectors, list(sentences), sentence_vectors)
    save_version(index_dir, combined, built_from, contents, encoding)


def _measure_in_subprocess(index_dir: Path, questions_path: Path) -> dict:
    out = questions_path.with_suffix(".out.json")
    command = [sys.executable, "-m", "retrieval.bench.scale", str(index_dir), str(questions_path),
               str(out)]  # fmt: skip
    subprocess.run(command, check=True)
    return json.loads(out.read_text(encoding="utf-8"))


def measure(index_dir: Path, questions: Sequence[Question]) -> dict:
    """Open the index as the page does and ask every question; the figures."""
    from retrieval.qa import QAEngine
    from retrieval.store import load_index
    from retrieval.vectors import wait_warm

    started = time.perf_counter()
    load_index(index_dir)  # the index alone, timed, then let go: one copy in memory at a time
    open_s = time.perf_counter() - started
    started = time.perf_counter()
    engine = QAEngine.open(index_dir)  # the index again, with the models
    index = engine.index
    engine_open_s = time.perf_counter() - started
    started = time.perf_counter()
    for store in (index.passages, index.sentences):
        wait_warm(store)  # the files an ANN store reads in the background at open
    warm_s = time.perf_counter() - started
    for question in questions[:3]:
        engine.ask(question.text)  # warm-up
    search_ms, ask_ms, found = [], [], 0
    for question in questions:
        started = time.perf_counter()
        engine.searcher.search(question.text)
        search_ms.append((time.perf_counter() - started) * 1000)
        result = engine.ask(question.text)
        ask_ms.append(result.timing_ms["total"])
        rank = first_relevant_rank(result.passages, question.golds)
        found += rank is not None and rank <= 5
    rss_mb = peak_rss_mb()
    vectors = engine.embedder.embed([q.text for q in questions])
    return {
        "passages": len(index.passages),
        "sentences": len(index.sentences),
        "articles": index.manifest.article_count,
        "open_s": round(open_s, 3),
        "engine_open_s": round(engine_open_s, 2),
        "warm_s": round(warm_s, 2),  # till the files read in the background were in
        "search_p50_ms": _percentile(search_ms, 50),
        "ask_p50_ms": _percentile(ask_ms, 50),
        "ask_p95_ms": _percentile(ask_ms, 95),
        "gold_recall_at_5": round(found / len(questions), 4) if questions else 0.0,
        "rss_mb": round(rss_mb, 1),
        "ann_recall_at_10": ann_recall(index.passages, vectors, 10),
        # The sentence store is asked for its top `SENTENCE_CANDIDATES` (100).
        "sentence_ann_recall_at_100": ann_recall(index.sentences, vectors, SENTENCE_CANDIDATES),
        "passage_index": getattr(index.passages, "kind", "exact"),
        "sentence_index": getattr(index.sentences, "kind", "exact"),
        "effort": getattr(index.passages, "effort", None),
        "effort_sweep": effort_sweep(index.passages, vectors),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not getrusage's ru_maxrss: Linux carries
    that over from the parent at fork and exec, so a child started by a big build reports
    the build's memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def effort_sweep(store, queries: np.ndarray, k: int = 10) -> list[dict]:
    """ANN recall@k and one-query search time at other search efforts: efSearch of a graph,
    lists probed of IVF-PQ (exact stores: none)."""
    if getattr(store, "effort", None) is None:
        return []
    keep = store.effort
    exact = exact_top(store, queries, k)
    rows = []
    try:
        for effort in (8, 16, 32, 64, 128, 256):
            store.effort = effort
            times = []
            for query in queries:
                started = time.perf_counter()
                store.search(query[None], k)
                times.append((time.perf_counter() - started) * 1000)
            rows.append({"effort": effort, "recall": ann_recall(store, queries, k, exact),
                         "search_p50_ms": _percentile(times, 50)})  # fmt: skip
    finally:
        store.effort = keep
    return rows


def exact_top(store, queries: np.ndarray, k: int) -> np.ndarray:
    """The keys of the exact top `k` for each query: brute force over every stored vector,
    a block at a time."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_keys = np.full((len(queries), k), -1, dtype=np.int64)
    for keys, vectors in store.blocks():
        scores = np.hstack([best_scores, queries @ vectors.T])
        merged = np.hstack([best_keys, np.broadcast_to(keys, (len(queries), len(keys)))])
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_keys = np.take_along_axis(merged, top, axis=1)
    return best_keys


def ann_recall(store, queries: np.ndarray, k: int, exact: np.ndarray | None = None) -> float:
    """Share of the exact top `k` that the store's own search finds."""
    if not len(queries):
        return 0.0
    k = min(k, len(store))
    exact = exact_top(store, queries, k) if exact is None else exact
    found, _ = store.search(queries, k)
    hits = [len(set(f) & set(e)) for f, e in zip(found, exact, strict=True)]
    return round(sum(hits) / (k * len(queries)), 4)


SCALE_COLUMNS = [
    ("passages", "passages", "{:,}"),
    ("sentence_encoding", "sentence vectors", "{}"),
    ("open_s", "open s", "{:.2f}"),
    ("search_p50_ms", "search p50 ms", "{:.1f}"),
    ("ask_p50_ms", "ask p50 ms", "{:.1f}"),
    ("ask_p95_ms", "ask p95 ms", "{:.1f}"),
    ("ann_recall_at_10", "ANN recall@10", "{:.3f}"),
    ("gold_recall_at_5", "gold recall@5", "{:.3f}"),
    ("rss_mb", "RSS MB", "{:,.0f}"),
    ("disk_mb", "disk MB", "{:,.0f}"),
    ("add_one_article_s", "+1 article s", "{:.1f}"),
]


def format_scale_table(rows: Sequence[dict]) -> str:
    header = "| " + " | ".join(title for _, title, _ in SCALE_COLUMNS) + " |"
    lines = [header, "|" + "---|" * len(SCALE_COLUMNS)]
    for row in rows:
        cells = [
            "n/a" if row.get(key) is None else form.format(row[key])
            for key, _, form in SCALE_COLUMNS
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _main(argv: Sequence[str]) -> None:
    from retrieval.bench import Gold

    index_dir, questions_path, out = (Path(a) for a in argv)
    raw = json.loads(questions_path.read_text(encoding="utf-8"))
    questions = [Question(q["id"], q["text"], tuple(Gold(**g) for g in q["golds"])) for q in raw]
    out.write_text(json.dumps(measure(index_dir, questions)), encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _main(sys.argv[1:])

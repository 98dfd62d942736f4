"""Tests of retrieval.indexing: incremental builds by content hash, reported changes."""

from __future__ import annotations

import shutil

import pytest

from retrieval import indexing
from retrieval.store import load_index
from tests.helpers import ARTICLES, FAKE, build_fake, write_corpus


@pytest.fixture(autouse=True, params=["whole", "layers"])
def layering(request, monkeypatch):
    """Every test twice: small indexes rewritten whole (as shipped), and every change after
    the first build written as a layer over the base (as a large index does)."""
    if request.param == "layers":
        monkeypatch.setattr(indexing, "LAYER_FROM", 0)
        monkeypatch.setattr(indexing, "LAYER_SHARE", 100.0)
    return request.param


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "corpus")


def test_first_build_indexes_every_article(corpus, tmp_path):
    report = build_fake(corpus, tmp_path / "index")
    index = load_index(tmp_path / "index", FAKE)
    assert report.written
    documents = index.documents
    assert report.articles == len(ARTICLES) == documents.article_count()
    passages = documents.all_passages()
    assert report.chunks == len(passages) == len(index.passages) == len(index.lexical)
    sentences = documents.all_sentences()
    texts = {c.text for _, c in passages} | {
        documents.article(s.sentence.article_id).text[s.sentence.start : s.sentence.end]
        for s in sentences
    }
    assert report.embedded == len(texts)
    assert len(index.sentences) == len(sentences) > len(passages)
    assert sorted(report.added) == sorted(f"{corpus.as_posix()}/{n}" for n in ARTICLES)


def test_unchanged_corpus_writes_nothing_and_embeds_nothing(corpus, tmp_path):
    build_fake(corpus, tmp_path / "index")
    version = load_index(tmp_path / "index").path
    report = build_fake(corpus, tmp_path / "index")
    assert not report.written
    assert report.embedded == 0
    assert load_index(tmp_path / "index").path == version


def test_changed_article_replaces_its_chunks(corpus, tmp_path):
    build_fake(corpus, tmp_path / "index")
    (corpus / "orchard.txt").write_text(
        "Orchard festival cancelled\n\nRain cancelled the festival in Kettlebrook.\n"
    )
    report = build_fake(corpus, tmp_path / "index")
    index = load_index(tmp_path / "index")
    assert report.changed == (f"{corpus.as_posix()}/orchard.txt",)
    assert report.embedded == 1
    texts = " ".join(chunk.text for _, chunk in index.documents.all_passages())
    assert "Rain cancelled" in texts and "12,000 visitors" not in texts


def test_deleted_file_leaves_the_index(corpus, tmp_path):
    build_fake(corpus, tmp_path / "index")
    (corpus / "orchard.txt").unlink()
    report = build_fake(corpus, tmp_path / "index")
    index = load_index(tmp_path / "index")
    assert report.removed == (f"{corpus.as_posix()}/orchard.txt",)
    assert all("Orchard" not in a.title for a in index.documents.articles())


def test_renamed_file_is_not_embedded_again(corpus, tmp_path):
    build_fake(corpus, tmp_path / "index")
    shutil.move(corpus / "orchard.txt", corpus / "orchard-2024.txt")
    report = build_fake(corpus, tmp_path / "index")
    assert report.written
    assert report.embedded == 0


def test_same_text_twice_is_indexed_once_and_reported(corpus, tmp_path):
    (corpus / "copy-of-orchard.txt").write_text(ARTICLES["orchard.txt"])
    report = build_fake(corpus, tmp_path / "index")
    assert report.articles == len(ARTICLES)
    assert [d.path for d in report.duplicates] == [f"{corpus.as_posix()}/orchard.txt"]


def test_rebuild_embeds_everything_again(corpus, tmp_path):
    build_fake(corpus, tmp_path / "index")
    report = build_fake(corpus, tmp_path / "index", rebuild=True)
    assert report.written and report.embedded >= report.chunks


def test_only_new_chunks_reach_the_embedder(corpus, tmp_path, monkeypatch):
    build_fake(corpus, tmp_path / "index")
    (corpus / "new.txt").write_text("Bridge repainted\n\nThe old bridge was painted blue.\n")
    seen: list[str] = []
    real = indexing.load_embedder

    def spying_loader(name):
        embedder = real(name)
        original = embedder.embed

        def embed(texts, progress=None):
            seen.extend(texts)
            return original(texts, progress)

        embedder.embed = embed
        return embedder

    monkeypatch.setattr(indexing, "load_embedder", spying_loader)
    build_fake(corpus, tmp_path / "index")
    assert seen == ["The old bridge was painted blue."]


def test_sentences_are_embedded_within_the_first_passage_that_holds_them_whole():
    from retrieval.articles import text_hash
    from retrieval.chunking import Chunk, Sentence

    text = "Ann sailed. Bob rowed home. Cy swam. Dee ran."
    first = Chunk("c1", "a", 0, 27, text[0:27])  # "Ann sailed. Bob rowed home."
    second = Chunk("c2", "a", 12, 45, text[12:45])  # "Bob rowed home. Cy swam. Dee ran."
    alone = Chunk("c3", "b", 0, 9, "Eve flew.")
    sentences = [Sentence("a", 0, 11), Sentence("a", 12, 27), Sentence("a", 28, 36),
                 Sentence("a", 37, 45), Sentence("b", 0, 9), Sentence("a", 5, 40)]  # fmt: skip
    texts = [text[s.start : s.end] for s in sentences[:4]] + ["Eve flew.", text[5:40]]
    known = {text_hash("Cy swam.")}
    items = indexing.embedding_items([first, second, alone], sentences, texts, known)
    assert items == [
        (text_hash(first.text), first.text,
         ((text_hash("Ann sailed."), 0, 11), (text_hash("Bob rowed home."), 12, 27))),
        # "Cy swam." was embedded before; "Eve flew." is its passage's whole text.
        (text_hash(second.text), second.text, ((text_hash("Dee ran."), 25, 33),)),
        (text_hash("Eve flew."), "Eve flew.", ()),
        # No passage holds this one whole: it is embedded alone.
        (text_hash(text[5:40]), text[5:40], ()),
    ]  # fmt: skip
    assert (
        indexing.embedding_items(
            [first],
            sentences[:2],
            texts[:2],
            {text_hash(first.text), text_hash("Ann sailed."), text_hash("Bob rowed home.")},
        )
        == []
    )


def test_articles_not_read_again_are_not_cut_again_and_index_as_a_fresh_build(
    corpus, tmp_path, monkeypatch, layering
):
    from tests.helpers import index_vectors

    build_fake(corpus, tmp_path / "index")
    (corpus / "new.txt").write_text("Bridge repainted\n\nThe old bridge was painted blue.\n")
    cut: list[str] = []
    real = indexing.chunk_article
    monkeypatch.setattr(indexing, "chunk_article", lambda a, c: cut.append(a.title) or real(a, c))
    build_fake(corpus, tmp_path / "index")
    assert cut == ["Bridge repainted"]
    monkeypatch.setattr(indexing, "chunk_article", real)
    build_fake(corpus, tmp_path / "fresh")
    mine = index_vectors(load_index(tmp_path / "index", FAKE))
    theirs = index_vectors(load_index(tmp_path / "fresh", FAKE))
    mine_docs = load_index(tmp_path / "index", FAKE).documents
    theirs_docs = load_index(tmp_path / "fresh", FAKE).documents
    assert [c for _, c in mine_docs.all_passages()] == [c for _, c in theirs_docs.all_passages()]
    assert [s.sentence for s in mine_docs.all_sentences()] == [
        s.sentence for s in theirs_docs.all_sentences()
    ]
    for kind in ("passages", "sentences"):
        assert (mine[kind][1] == theirs[kind][1]).all()


def test_a_new_passage_never_takes_a_sentence_vector_pooled_in_another_passage(
    corpus, tmp_path, monkeypatch
):
    build_fake(corpus, tmp_path / "index")
    # This text is a sentence of the harbour article, inside a longer passage there.
    sentence = "The repair cost the town council 2.3 million pounds."
    (corpus / "new.txt").write_text(f"Council bill\n\n{sentence}\n")
    seen: list[str] = []
    real = indexing.load_embedder

    def spying_loader(name):
        embedder = real(name)
        original = embedder.embed
        embedder.embed = lambda texts, progress=None: (
            seen.extend(texts) or original(texts, progress)
        )
        return embedder

    monkeypatch.setattr(indexing, "load_embedder", spying_loader)
    build_fake(corpus, tmp_path / "index")
    assert seen == [sentence]


def test_progress_reports_embedding(corpus, tmp_path):
    events = []
    build_fake(corpus, tmp_path / "index", progress=lambda *e: events.append(e))
    embeds = [e for e in events if e[0] == "embed"]
    assert embeds[-1][1] == embeds[-1][2] > 0


def _age(folder, seconds=60):
    """Set every file's mtime back, out of the window in which stats are not trusted."""
    import os
    import time

    old = time.time_ns() - seconds * 1_000_000_000
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(old, old))


def test_unchanged_files_are_not_read_again_to_check_them(corpus, tmp_path, monkeypatch):
    from pathlib import Path

    from retrieval.indexing import file_hashes
    from retrieval.store import current_version, read_corpus_record

    _age(corpus)
    build_fake(corpus, tmp_path / "index")
    manifest = read_corpus_record(current_version(tmp_path / "index"))
    assert set(manifest.file_stats) == set(manifest.files) and manifest.stats_taken_ns > 0
    read = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self.name) or real(self))
    assert file_hashes([corpus], manifest).hashes == manifest.files
    assert read == []
    (corpus / "orchard.txt").write_text("Orchard\n\nA longer text than before, now.\n")
    changed = file_hashes([corpus], manifest)
    assert read == ["orchard.txt"]
    assert (
        changed.hashes[f"{corpus.as_posix()}/orchard.txt"]
        != manifest.files[f"{corpus.as_posix()}/orchard.txt"]
    )


def _spy_reads(monkeypatch) -> list[str]:
    """The names of the files a load reads, cleans and parses from now on."""
    from retrieval import articles

    read: list[str] = []
    real = articles._load_file
    monkeypatch.setattr(articles, "_load_file", lambda path: read.append(path.name) or real(path))
    return read


def test_a_build_reads_only_new_and_changed_files(corpus, tmp_path, monkeypatch):
    from retrieval.articles import load_articles
    from tests.helpers import index_vectors

    build_fake(corpus, tmp_path / "index")
    (corpus / "bridge.txt").write_text("Bridge repainted\n\nThe old bridge was painted blue.\n")
    (corpus / "orchard.txt").write_text("Orchard\n\nA longer text than before, now.\n")
    read = _spy_reads(monkeypatch)

    report = build_fake(corpus, tmp_path / "index")

    assert sorted(read) == ["bridge.txt", "orchard.txt"]
    assert report.articles == len(ARTICLES) + 1
    index = load_index(tmp_path / "index")
    fresh = load_articles([corpus]).articles
    assert {a.id: a for a in index.documents.articles()} == {a.id: a for a in fresh}
    build_fake(corpus, tmp_path / "whole", rebuild=True)
    whole = index_vectors(load_index(tmp_path / "whole"))
    mine = index_vectors(index)
    for name in ("passages", "sentences"):
        assert sorted(mine[name][0]) == sorted(whole[name][0])
    # Again: in layers, the article added last time is kept from the delta, text and all.
    (corpus / "mill.txt").write_text("Mill reopens\n\nThe old mill grinds flour again.\n")
    read.clear()
    build_fake(corpus, tmp_path / "index")
    assert read == ["mill.txt"]
    fresh = load_articles([corpus]).articles
    kept = load_index(tmp_path / "index").documents.articles()
    assert {a.id: a for a in kept} == {a.id: a for a in fresh}


def test_an_index_without_the_files_articles_records_them_once_then_reads_nothing(
    corpus, tmp_path, monkeypatch
):
    import json

    from retrieval.store import current_version, read_manifest

    build_fake(corpus, tmp_path / "index")
    version = current_version(tmp_path / "index")
    manifest, record = version / "manifest.json", version / "corpus.json"
    # As an index built before builds kept files unread: what it was built from is in its
    # manifest, without the articles of each file.
    data = {**json.loads(manifest.read_text()), **json.loads(record.read_text())}
    del data["file_articles"], data["article_count"]
    record.unlink()
    manifest.chmod(0o644)
    manifest.write_text(json.dumps(data))
    assert read_manifest(tmp_path / "index").article_count == len(data["articles"]) > 0
    assert build_fake(corpus, tmp_path / "index").written
    read = _spy_reads(monkeypatch)
    assert not build_fake(corpus, tmp_path / "index").written
    assert read == []


def test_files_with_duplicates_or_skipped_records_are_read_and_reported_each_time(
    corpus, tmp_path, monkeypatch
):
    (corpus / "copy-of-orchard.txt").write_text(ARTICLES["orchard.txt"])
    (corpus / "feed.jsonl").write_text('{"title": "Fair", "text": "The fair opens."}\nnot json\n')
    build_fake(corpus, tmp_path / "index")
    (corpus / "bridge.txt").write_text("Bridge repainted\n\nThe old bridge was painted blue.\n")
    read = _spy_reads(monkeypatch)

    report = build_fake(corpus, tmp_path / "index")

    assert sorted(read) == ["bridge.txt", "feed.jsonl", "orchard.txt"]
    assert [d.path for d in report.duplicates] == [f"{corpus.as_posix()}/orchard.txt"]
    assert [s.path for s in report.skipped] == [f"{corpus.as_posix()}/feed.jsonl#2"]
    (corpus / "copy-of-orchard.txt").unlink()
    build_fake(corpus, tmp_path / "index")
    sources = [a.source for a in load_index(tmp_path / "index").documents.articles()]
    assert f"{corpus.as_posix()}/orchard.txt" in sources


def test_an_index_missing_articles_its_manifest_lists_asks_for_a_rebuild(corpus, tmp_path):
    import sqlite3

    from retrieval.errors import UserError
    from retrieval.store import current_version

    build_fake(corpus, tmp_path / "index")
    documents = current_version(tmp_path / "index") / "documents.sqlite"
    documents.chmod(0o644)
    with sqlite3.connect(documents) as db:
        db.execute("DELETE FROM articles WHERE source LIKE '%orchard.txt'")
    (corpus / "bridge.txt").write_text("Bridge repainted\n\nThe old bridge was painted blue.\n")

    with pytest.raises(UserError) as error:
        build_fake(corpus, tmp_path / "index")
    assert str(error.value) == (
        f"index at {tmp_path / 'index'} is damaged (articles it was built from are missing "
        f"from its documents): run `article-qa build --rebuild --index {tmp_path / 'index'}`"
    )


def test_files_changed_just_before_the_build_are_hashed_again(corpus, tmp_path, monkeypatch):
    """Same size and mtime, new bytes: caught when the mtime was too close to the build."""
    import os

    from retrieval.indexing import file_hashes
    from retrieval.store import current_version, read_corpus_record

    build_fake(corpus, tmp_path / "index")  # files written just now: inside the racy window
    manifest = read_corpus_record(current_version(tmp_path / "index"))
    path = corpus / "orchard.txt"
    info = path.stat()
    path.write_bytes(path.read_bytes().replace(b"a", b"e", 1))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert (
        file_hashes([corpus], manifest).hashes[path.as_posix()] != manifest.files[path.as_posix()]
    )


def _search_texts(index, query, k=10):
    from retrieval.embedding import load_embedder
    from retrieval.search import Searcher

    hits = Searcher(index, load_embedder(FAKE.model)).search(query, top_k=k)
    return [hit.chunk.text for hit in hits]


def test_a_change_to_a_large_index_is_a_layer_that_shares_the_base(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(indexing, "LAYER_FROM", 0)  # as if the index were large
    monkeypatch.setattr(indexing, "LAYER_SHARE", 100.0)
    build_fake(corpus, tmp_path / "index")
    first = load_index(tmp_path / "index")
    base_inode = (first.path / "documents.sqlite").stat().st_ino
    (corpus / "orchard.txt").write_text(
        "Orchard festival cancelled\n\nRain cancelled the festival in Kettlebrook.\n"
    )
    (corpus / "bridge.txt").write_text("Bridge repainted\n\nThe old bridge was painted blue.\n")
    build_fake(corpus, tmp_path / "index")
    index = load_index(tmp_path / "index", FAKE)
    version = index.path
    assert (version / "delta").is_dir()
    # The base is the first version's files, linked: no byte of it written again.
    assert (version / "documents.sqlite").stat().st_ino == base_inode
    old_orchard = [k for k, c in first.documents.all_passages() if "12,000" in c.text]
    assert old_orchard
    assert len(index.passages) == len(index.lexical) == index.manifest.passages
    assert len(index.sentences) == index.manifest.sentences == len(index.documents.all_sentences())
    assert index.documents.passage_count == index.manifest.passages
    with pytest.raises(KeyError):
        index.passages.get(old_orchard)
    texts = _search_texts(index, "festival visitors Kettlebrook")
    assert any("Rain cancelled" in t for t in texts) and not any("12,000" in t for t in texts)
    assert any("bridge was painted" in t for t in _search_texts(index, "bridge painted blue"))
    # Word statistics over both layers: as a version written whole has them, for words of
    # articles that did not change.
    from retrieval.text import content_stems

    shutil.copytree(corpus, tmp_path / "same")
    build_fake(tmp_path / "same", tmp_path / "whole")
    whole = load_index(tmp_path / "whole")
    for word in ("harbour", "bridge", "asteroid"):
        (stem,) = content_stems(word)
        assert index.documents.idf(stem) == pytest.approx(whole.documents.idf(stem))
    titles = sorted(a.title for a in index.documents.articles())
    assert titles == sorted(
        ["Bridge repainted", "Harbour ferry returns to Port Wren", "Orchard festival cancelled",
         "Students name a new asteroid"]
    )  # fmt: skip
    # A second change layers over the same base: the delta is written again, small.
    (corpus / "bridge.txt").unlink()
    build_fake(corpus, tmp_path / "index")
    index = load_index(tmp_path / "index", FAKE)
    assert (index.path / "documents.sqlite").stat().st_ino == base_inode
    assert not any("bridge" in t for t in _search_texts(index, "bridge painted blue"))
    assert index.documents.article_count() == 3


def test_a_delta_past_its_share_of_the_base_is_written_whole(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(indexing, "LAYER_FROM", 0)
    monkeypatch.setattr(indexing, "LAYER_SHARE", 0.01)
    build_fake(corpus, tmp_path / "index")
    (corpus / "bridge.txt").write_text("Bridge repainted\n\nThe old bridge was painted blue.\n")
    build_fake(corpus, tmp_path / "index")
    index = load_index(tmp_path / "index", FAKE)
    assert not (index.path / "delta").exists()
    assert index.manifest.passages == len(index.passages) == len(index.documents.all_passages())

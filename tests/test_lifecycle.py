"""The index's life as real processes see it: killed builds, concurrent builds, damaged files,
and a corpus full of bad input. Everything here runs `python -m retrieval` in a subprocess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval.store import CURRENT_FILE, current_version, load_index
from tests.helpers import FAKE, build_fake, write_corpus

CLI = [sys.executable, "-m", "retrieval"]
FAKE_MODEL = ["--model", "fake-hashed-words"]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip


def big_corpus(folder: Path, count: int) -> Path:
    """Enough articles that a build takes a few seconds, so it can be killed part-way."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        body = " ".join(
            f"Report {n} line {i} says the river barge number {n * 7 + i} moved grain."
            for i in range(40)
        )
        (folder / f"report-{n:04d}.txt").write_text(f"River report {n}\n\n{body}\n")
    return folder


def start_build(corpus: Path, index: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "build", "--corpus", str(corpus), "--index", str(index), *FAKE_MODEL],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


# A build run in a subprocess that stops at a chosen point, says so, and waits to be killed.
PAUSING_BUILD = """
import sys, time
from retrieval import indexing, store
from tests.helpers import FAKE

point = sys.argv[3]

def pause(tag):
    if tag == point:
        print("PAUSED", flush=True)
        time.sleep(60)

def wrap(module, name, before=None, after=None, only=lambda *args: True):
    real = getattr(module, name)
    def wrapped(*args, **kwargs):
        if before and only(*args):
            pause(before)
        result = real(*args, **kwargs)
        if after and only(*args):
            pause(after)
        return result
    setattr(module, name, wrapped)

wrap(indexing, "load_articles", after="loaded")
wrap(indexing, "_embed_new", before="embedding")
wrap(store, "write_documents", after="wrote-a-table")
wrap(store, "write_vectors", after="wrote-vectors")
wrap(store.os, "rename", after="version-renamed")
wrap(store, "atomic_write_text", before="manifest", only=lambda path, text: path.name != "CURRENT")
wrap(store, "atomic_write_text", before="switching", only=lambda path, text: path.name == "CURRENT")
indexing.build_index([sys.argv[1]], sys.argv[2], config=FAKE, rebuild=True)
print("FINISHED", flush=True)
"""
KILL_POINTS = ["loaded", "embedding", "wrote-a-table", "wrote-vectors", "manifest",
               "version-renamed", "switching"]  # fmt: skip


@pytest.mark.parametrize("point", KILL_POINTS)
def test_build_killed_at_each_point_leaves_the_previous_index_answering(tmp_path, point):
    corpus = write_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    build_fake(corpus, index)
    before = load_index(index, FAKE)
    (corpus / "late.txt").write_text("Late news\n\nThe night ferry was cancelled.\n")
    process = subprocess.Popen(
        [sys.executable, "-c", PAUSING_BUILD, str(corpus), str(index), point],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    try:
        assert process.stdout.readline().strip() == "PAUSED"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    after = load_index(index, FAKE)  # the previous version, whole
    assert after.path == before.path
    titles = {a.title for a in before.documents.articles()}
    assert {a.title for a in after.documents.articles()} == titles
    # Nothing the killed build left behind blocks the next build, which completes.
    finished = run_cli("build", "--corpus", str(corpus), "--index", str(index), *FAKE_MODEL)
    assert finished.returncode == 0, finished.stderr
    assert "Late news" in {a.title for a in load_index(index, FAKE).documents.articles()}
    assert not list((index / "versions").glob(".partial-*"))


def test_second_build_exits_with_a_message_naming_the_running_one(tmp_path):
    corpus = big_corpus(tmp_path / "corpus", 150)
    index = tmp_path / "index"
    first = start_build(corpus, index)
    try:
        deadline = time.time() + 30
        while not (index / "build.lock.owner").exists() and time.time() < deadline:
            time.sleep(0.05)
        second = run_cli("build", "--corpus", str(corpus), "--index", str(index), *FAKE_MODEL)
    finally:
        first.wait(timeout=120)
    assert second.returncode == 1
    assert f"another build is already running on {index} (pid {first.pid}" in second.stderr
    assert first.returncode == 0


BAD_FILES: dict[str, bytes] = {
    "empty.txt": b"",
    "junk.txt": bytes(range(256)) * 20,
    "latin1.txt": "Caf\xe9 opens\n\nThe caf\xe9 in Brenmoor opened on Monday.\n".encode("latin-1"),
    "cp1252.txt": "Quotes\n\n\u201cWe are open,\u201d the owner said.\n".encode("cp1252"),
    "bom.txt": b"\xef\xbb\xbfBOM title\n\nA file that starts with a byte order mark.\n",
    "utf16.txt": "Wide text\n\nThis file is stored as UTF-16.\n".encode("utf-16"),
    "fake.pdf": b"%PDF-1.4 not really",
    "truncated.html": b"<html><body><article><p>The council met on Monday to discuss the bri",
    "nav.html": b"<html><body><nav><a href='/'>Home</a><a href='/x'>News</a></nav></body></html>",
    "café notes 2024.txt": b"Spaces\n\nA file with spaces in its name.\n",
    "deep/er/nested.txt": b"Nested\n\nAn article two folders down.\n",
}


def test_build_over_bad_input_indexes_good_files_and_lists_the_rest(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    for name, data in BAD_FILES.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_bytes(data)
    with (corpus / "huge.txt").open("wb") as huge:  # 30 MB, over the size limit
        huge.write(b"The big file. " * (30 * 1024 * 1024 // 14))
    (corpus / "loop").mkdir()
    (corpus / "loop" / "again").symlink_to(corpus / "loop")
    result = run_cli("build", "--corpus", str(corpus), "--index", str(tmp_path / "i"), *FAKE_MODEL)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Traceback" not in result.stderr
    root = corpus.as_posix()
    for name, reason in [
        ("empty.txt", "empty file"),
        ("junk.txt", "binary content, not text"),
        ("fake.pdf", "unsupported file type '.pdf'"),
        ("nav.html", "no article text found"),
        ("huge.txt", "larger than the 10 MB limit"),
    ]:
        assert f"skipped {root}/{name}: {reason}" in out
    index = load_index(tmp_path / "i")
    titles = {a.title for a in index.documents.articles()}
    assert {"Café opens", "Quotes", "BOM title", "Wide text", "Spaces", "Nested"} <= titles
    assert "Harbour ferry returns to Port Wren" in titles


def _truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda v: (v / "passages.faiss").write_bytes(b"junk"), "is damaged (RuntimeError"),
        (lambda v: _truncate(v / "documents.sqlite"), "is damaged (DatabaseError"),
        (lambda v: (v / "bm25" / "keys.npy").unlink(), "is damaged (OSError"),
        (lambda v: (v / "sentences.faiss").unlink(), "is damaged (OSError"),
        (lambda v: (v / "manifest.json").write_text("not json"), "manifest.json unreadable"),
    ],
    ids=["corrupt-faiss", "truncated-documents", "no-bm25", "no-sentences", "manifest-not-json"],
)
def test_damaged_index_gives_one_line_with_the_fix(tmp_path, damage, message):
    index = tmp_path / "index"
    build_fake(write_corpus(tmp_path / "corpus"), index)
    damage(current_version(index))
    result = run_cli("ask", "--index", str(index), "Who steered the ferry?")
    assert result.returncode == 1
    assert result.stderr.startswith("error: index at ")
    assert message in result.stderr and "article-qa build --rebuild" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_index_folder_gives_one_line_with_the_fix(tmp_path):
    result = run_cli("ask", "--index", str(tmp_path / "none"), "Who?")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: no index at {tmp_path / 'none'}: run `article-qa build --index "
        f"{tmp_path / 'none'}` to build one"
    )


def test_current_pointer_is_replaced_never_edited(tmp_path):
    index = tmp_path / "index"
    build_fake(write_corpus(tmp_path / "corpus"), index)
    inode = (index / CURRENT_FILE).stat().st_ino
    (tmp_path / "corpus" / "new.txt").write_text("New\n\nA new article about owls.\n")
    build_fake(tmp_path / "corpus", index)
    assert (index / CURRENT_FILE).stat().st_ino != inode

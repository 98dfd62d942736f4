"""Tests of retrieval.store: versions, manifest checks, damage reports, the build lock."""

from __future__ import annotations

import json
import os

import pytest

from retrieval.chunking import ChunkingConfig
from retrieval.errors import UserError
from retrieval.indexing import index_config
from retrieval.store import (
    CURRENT_FILE,
    FORMAT_VERSION,
    build_lock,
    current_version,
    feedback_path,
    load_index,
)
from tests.helpers import FAKE, build_fake, write_corpus


@pytest.fixture
def index(tmp_path):
    build_fake(write_corpus(tmp_path / "corpus"), tmp_path / "index")
    return tmp_path / "index"


def _edit_manifest(index, **changes):
    path = current_version(index) / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_missing_index_says_how_to_build(tmp_path):
    with pytest.raises(UserError, match=r"no index at .*: run `article-qa build --index"):
        load_index(tmp_path / "nowhere")


def test_other_chunking_is_refused_with_rebuild_hint(index):
    other = index_config("fake-hashed-words", ChunkingConfig(size=300, overlap=50))
    with pytest.raises(UserError, match=r"chunking 1000/200 != 300/50.*build --rebuild"):
        load_index(index, other)


def test_other_model_is_refused(index):
    with pytest.raises(UserError, match=r"does not match this version \(model fake"):
        load_index(index, index_config())


def test_other_cleaner_version_is_refused(index):
    _edit_manifest(index, cleaner_version="0")
    with pytest.raises(UserError, match=r"cleaner 0 != .*build --rebuild"):
        load_index(index, FAKE)


def test_index_from_newer_format_is_refused(index):
    _edit_manifest(index, format_version=FORMAT_VERSION + 1)
    with pytest.raises(UserError, match=r"written by a newer article-qa.*build --rebuild"):
        load_index(index, FAKE)


def test_index_from_older_format_is_refused(index):
    _edit_manifest(index, format_version=FORMAT_VERSION - 1)
    with pytest.raises(UserError, match=r"has an older format.*build --rebuild"):
        load_index(index)


def test_manifest_that_is_not_json_is_reported_as_damage(index):
    (current_version(index) / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match=r"damaged \(manifest.json unreadable.*build --rebuild"):
        load_index(index, FAKE)


def test_a_manifest_field_this_version_does_not_know_is_left_out(index):
    _edit_manifest(index, added_by_a_later_version={"x": 1})
    assert load_index(index, FAKE).manifest.passages > 0


def test_manifest_that_is_not_an_object_is_reported_as_damage(index):
    (current_version(index) / "manifest.json").write_text("[1, 2]")
    with pytest.raises(UserError, match=r"damaged \(manifest.json unreadable.*build --rebuild"):
        load_index(index, FAKE)


def test_opening_an_index_reads_the_manifest_but_not_what_it_was_built_from(index):
    """The corpus record (tens of MB at a million passages) is for builds and status."""
    from retrieval.store import read_corpus_record

    version = current_version(index)
    record = read_corpus_record(version)
    assert record.files and record.file_articles
    assert load_index(index, FAKE).manifest.article_count == len(record.articles) > 0
    (version / "corpus.json").write_text("{not json")
    assert load_index(index, FAKE).manifest.article_count == len(record.articles)


@pytest.mark.parametrize("broken", ["{not json", "[1, 2]", '{"files": 3}', None])
def test_an_unreadable_corpus_record_is_damage_to_status_and_a_build_starts_it_over(
    index, tmp_path, broken
):
    from retrieval.status import index_status
    from retrieval.store import read_corpus_record

    record = current_version(index) / "corpus.json"
    if broken is None:
        record.unlink()  # a version of this layout without it
    else:
        record.write_text(broken)
    damaged = r"damaged \(corpus.json unreadable.*build --rebuild"
    with pytest.raises(UserError, match=damaged):
        index_status(index, [tmp_path / "corpus"])
    # A build reads every file again instead (the page has no --rebuild button).
    report = build_fake(tmp_path / "corpus", index)
    assert report.written and report.embedded == 0  # the version's vectors are reused
    assert read_corpus_record(current_version(index)).files
    assert not index_status(index, [tmp_path / "corpus"]).stale


def test_a_record_in_an_old_manifest_that_is_unreadable_is_named_as_the_manifest(index):
    from retrieval.store import read_corpus_record

    version = current_version(index)
    (version / "corpus.json").unlink()
    _edit_manifest(index, articles={}, files=3)  # the old layout, with a broken map
    with pytest.raises(UserError, match=r"damaged \(manifest.json unreadable: TypeError"):
        read_corpus_record(version)


def test_corrupt_vectors_are_reported_as_damage(index):
    (current_version(index) / "passages.faiss").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(UserError, match=r"damaged \(RuntimeError.*build --rebuild"):
        load_index(index, FAKE)


def test_truncated_document_store_is_reported_as_damage(index):
    path = current_version(index) / "documents.sqlite"
    path.write_bytes(path.read_bytes()[:2048])
    with pytest.raises(UserError, match=r"damaged \(DatabaseError.*build --rebuild"):
        load_index(index, FAKE)


def test_stores_out_of_step_with_the_manifest_are_reported_as_damage(index):
    passages = json.loads((current_version(index) / "manifest.json").read_text())["passages"]
    _edit_manifest(index, passages=passages + 1)
    wrong = rf"damaged \({passages} stored for {passages + 1} passages"
    with pytest.raises(UserError, match=wrong):
        load_index(index, FAKE)


def test_missing_current_version_is_reported_as_damage(index):
    (index / CURRENT_FILE).write_text("v-gone\n")
    with pytest.raises(UserError, match=r"damaged \(its current version is missing\)"):
        load_index(index, FAKE)


def test_a_new_version_replaces_the_old_and_leftovers_are_cleared(index, tmp_path):
    first = current_version(index)
    partial = index / "versions" / ".partial-killed"
    partial.mkdir()
    (tmp_path / "corpus" / "extra.txt").write_text("Extra\n\nA new article about kites.\n")
    build_fake(tmp_path / "corpus", index)
    assert current_version(index) != first
    assert not partial.exists()


def test_second_build_is_refused_naming_the_running_one(index):
    with (
        build_lock(index),
        pytest.raises(UserError, match=rf"another build is already running .*pid {os.getpid()}"),
        build_lock(index),
    ):
        pass


def test_feedback_file_lives_outside_versions(index):
    assert feedback_path(index).parent == index

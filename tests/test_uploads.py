"""Uploads: type and size checks, safe names, and no silent overwrites."""

from __future__ import annotations

import pytest

from retrieval.errors import UserError
from retrieval.uploads import MAX_UPLOAD_BYTES, safe_filename, save_upload

ARTICLE = b"Harbour reopens\n\nThe old harbour in Kestrel Bay reopened on Monday.\n"


def test_save_writes_the_file_into_the_corpus_folder(tmp_path):
    saved = save_upload(tmp_path / "corpus", "harbour.txt", ARTICLE)
    assert saved.path == tmp_path / "corpus" / "harbour.txt"
    assert saved.path.read_bytes() == ARTICLE
    assert saved.replaced is False


@pytest.mark.parametrize(
    ("sent", "saved"),
    [
        ("../../etc/evil.txt", "evil.txt"),
        ("/absolute/path/notes.md", "notes.md"),
        ("C:\\Users\\ana\\Desktop\\story.html", "story.html"),
        ("..hidden.txt", "hidden.txt"),
        ("bad\x00na\x1bme.txt", "badname.txt"),
        ("Café – São Paulo.TXT", "Café-São-Paulo.txt"),
        ("<script>alert(1)</script>.htm", "script.htm"),
        ("x<b>|y?.md", "x-b-y.md"),
        ("résumé 2024 (final).md", "résumé-2024-final.md"),
    ],
)
def test_names_are_reduced_to_a_safe_base_name(sent, saved):
    assert safe_filename(sent) == saved


def test_a_name_with_nothing_usable_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"the file name '\.\./\.\.\.txt' has no usable characters"):
        save_upload(tmp_path, "../...txt", ARTICLE)


def test_very_long_names_are_cut_to_255_bytes():
    name = safe_filename("é" * 300 + ".txt")
    assert len(name.encode("utf-8")) <= 255
    assert name.endswith(".txt")


def test_unsupported_type_is_refused_naming_the_allowed_ones(tmp_path):
    with pytest.raises(
        UserError, match=r"report\.pdf is not a supported file type: upload \.txt, \.md, \.html"
    ):
        save_upload(tmp_path, "report.pdf", b"%PDF-1.7")
    assert not (tmp_path / "report.pdf").exists()


def test_too_large_file_is_refused_naming_the_limit(tmp_path):
    with pytest.raises(UserError, match=r"big\.txt is 5\.0 MB; the limit is 5 MB per file"):
        save_upload(tmp_path, "big.txt", b"x" * (MAX_UPLOAD_BYTES + 1))
    assert not (tmp_path / "big.txt").exists()


def test_file_at_the_limit_is_accepted(tmp_path):
    assert save_upload(tmp_path, "edge.txt", b"x" * MAX_UPLOAD_BYTES).path.is_file()


def test_empty_file_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"empty\.txt is empty: there is no article in it"):
        save_upload(tmp_path, "empty.txt", b"  \n")


def test_same_content_again_is_fine_and_says_it_was_already_there(tmp_path):
    first = save_upload(tmp_path, "harbour.txt", ARTICLE)
    again = save_upload(tmp_path, "harbour.txt", ARTICLE)
    assert first.unchanged is False
    assert again.replaced is False and again.unchanged is True
    assert again.path.read_bytes() == ARTICLE


def test_saved_files_get_the_usual_mode_not_a_temporary_files(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        saved = save_upload(tmp_path, "harbour.txt", ARTICLE)
    finally:
        os.umask(umask)
    assert saved.path.stat().st_mode & 0o777 == 0o644


def test_different_content_under_an_existing_name_is_refused(tmp_path):
    save_upload(tmp_path, "harbour.txt", ARTICLE)
    with pytest.raises(
        UserError, match=r"harbour\.txt already exists in .* with different content: rename"
    ):
        save_upload(tmp_path, "harbour.txt", b"Another story entirely.")
    assert (tmp_path / "harbour.txt").read_bytes() == ARTICLE


def test_overwrite_replaces_and_says_so(tmp_path):
    save_upload(tmp_path, "harbour.txt", ARTICLE)
    saved = save_upload(tmp_path, "harbour.txt", b"Updated story.", overwrite=True)
    assert saved.replaced is True
    assert saved.path.read_bytes() == b"Updated story."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["harbour.txt"]

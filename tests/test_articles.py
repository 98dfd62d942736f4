"""Tests of retrieval.articles: turning folders and files into articles, and reporting skips.

Each test builds its own small corpus under tmp_path and loads it by a relative
path, the way the CLI passes "corpus".
"""

from __future__ import annotations

import codecs
import json
import logging
import os
from pathlib import Path

import pytest

from retrieval import articles as articles_module
from retrieval.articles import (
    MAX_FILE_BYTES,
    SUPPORTED_SUFFIXES,
    Article,
    KeptArticle,
    LoadResult,
    SkippedFile,
    article_id,
    iter_corpus_files,
    load_articles,
)
from retrieval.errors import UserError

FERRY = "Ferry returns to Port Wren\n\nThe harbour ferry sailed again on Thursday.\n"
MARKET = "Market reopens\n\nThe island market opened its doors after the storm.\n"

ARTICLE_HTML = """\
<!doctype html>
<html><head><title>Ferry returns | Harbour Courier</title>
<meta property="article:published_time" content="2023-03-09"></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/local">Local</a></li></ul></nav>
<article><h1>Ferry returns to Port Wren</h1>
<p>The old harbour ferry in Port Wren carried its first passengers on Thursday after a repair
that took two years and cost the town council about 2.3 million pounds.</p>
<p>Engineers replaced the hull plates and fitted a quieter electric engine.</p>
</article>
<footer>Copyright 2023 Harbour Courier</footer>
</body></html>
"""
NAV_ONLY_HTML = """\
<html><head><title>Harbour Courier</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/local">Local</a></li></ul></nav>
</body></html>
"""


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty corpus folder, loaded by the relative path "corpus" as the CLI would."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "corpus"
    folder.mkdir()
    return folder


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def only_skip(result: LoadResult) -> SkippedFile:
    assert result.articles == ()
    assert len(result.skipped) == 1
    return result.skipped[0]


def test_text_file_becomes_article_with_relative_source_and_content_id(corpus: Path) -> None:
    write(corpus, "ferry.txt", FERRY)

    result = load_articles(["corpus"])

    text = "The harbour ferry sailed again on Thursday."
    assert result == LoadResult(
        articles=(
            Article(
                id=article_id("corpus/ferry.txt", text),
                title="Ferry returns to Port Wren",
                source="corpus/ferry.txt",
                text=text,
            ),
        ),
        skipped=(),
        duplicates=(),
        whole_files={
            "corpus/ferry.txt": {"corpus/ferry.txt": article_id("corpus/ferry.txt", text)}
        },
    )


def test_nested_folders_are_walked_in_sorted_order(corpus: Path) -> None:
    write(corpus, "b/market.txt", MARKET)
    write(corpus, "a/deep/er/ferry.txt", FERRY)
    write(corpus, "c.md", "# Weather\n\nRain is expected on Sunday.\n")

    sources = [article.source for article in load_articles(["corpus"]).articles]

    assert sources == ["corpus/a/deep/er/ferry.txt", "corpus/b/market.txt", "corpus/c.md"]


def test_single_file_path_is_loaded(corpus: Path) -> None:
    write(corpus, "ferry.txt", FERRY)

    result = load_articles([Path("corpus/ferry.txt")])

    assert [article.source for article in result.articles] == ["corpus/ferry.txt"]


def test_unicode_and_spaces_in_file_names(corpus: Path) -> None:
    write(corpus, "Überfahrt nach Zürich – Bericht.txt", FERRY)

    result = load_articles(["corpus"])

    assert [article.source for article in result.articles] == [
        "corpus/Überfahrt nach Zürich – Bericht.txt"
    ]


def test_hidden_files_and_folders_are_ignored(corpus: Path) -> None:
    write(corpus, "ferry.txt", FERRY)
    write(corpus, ".git/notes.txt", MARKET)
    write(corpus, ".DS_Store", b"\x00\x00\x00\x01Bud1")
    write(corpus, ".draft.txt", MARKET)

    result = load_articles(["corpus"])

    assert [article.source for article in result.articles] == ["corpus/ferry.txt"]
    assert result.skipped == ()


def test_symlink_loop_does_not_hang_and_loads_each_file_once(corpus: Path) -> None:
    write(corpus, "sub/ferry.txt", FERRY)
    os.symlink("..", corpus / "sub" / "loop")

    result = load_articles(["corpus"])

    assert [article.source for article in result.articles] == ["corpus/sub/ferry.txt"]


def test_symlinked_folder_outside_the_corpus_is_followed(corpus: Path, tmp_path: Path) -> None:
    write(tmp_path / "elsewhere", "market.txt", MARKET)
    os.symlink(tmp_path / "elsewhere", corpus / "linked")

    sources = [article.source for article in load_articles(["corpus"]).articles]

    assert sources == ["corpus/linked/market.txt"]


def test_missing_path_raises_user_error(corpus: Path) -> None:
    with pytest.raises(UserError, match="corpus path not found: no-such-folder"):
        load_articles(["no-such-folder"])


def test_unsupported_suffix_is_skipped_with_the_supported_list(corpus: Path) -> None:
    write(corpus, "report.pdf", b"%PDF-1.7 something")

    skip = only_skip(load_articles(["corpus"]))

    assert skip == SkippedFile(
        "corpus/report.pdf",
        "unsupported file type '.pdf' (supported: .txt, .md, .html, .htm, .json, .jsonl)",
    )


@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n  "])
def test_empty_or_whitespace_file_is_skipped(corpus: Path, content: bytes) -> None:
    write(corpus, "blank.txt", content)

    assert only_skip(load_articles(["corpus"])).reason == "empty file"


@pytest.mark.parametrize(
    "content",
    [b"GIF89a\x00\x01\x02\x03text", bytes(range(1, 9)) * 40 + b"mostly control bytes"],
)
def test_binary_file_is_skipped(corpus: Path, content: bytes) -> None:
    write(corpus, "image.txt", content)

    assert only_skip(load_articles(["corpus"])).reason == "binary content, not text"


def test_file_over_size_limit_is_skipped(corpus: Path) -> None:
    with (corpus / "huge.txt").open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 2 * 2**20)

    skip = only_skip(load_articles(["corpus"]))

    assert skip.reason == "larger than the 10 MB limit (12.0 MB)"


def test_unreadable_file_is_skipped(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(corpus, "locked.txt", FERRY)
    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)

    assert only_skip(load_articles(["corpus"])).reason == "cannot read: permission denied"


def test_dangling_symlink_is_skipped_as_unreadable(corpus: Path) -> None:
    os.symlink(corpus / "gone.txt", corpus / "dangling.txt")

    skip = only_skip(load_articles(["corpus"]))

    assert skip.reason == "cannot read: no such file or directory"


def test_boilerplate_only_file_is_skipped(corpus: Path) -> None:
    write(corpus, "furniture.txt", "Share\nComments\nSign up for our newsletter\n")

    assert only_skip(load_articles(["corpus"])).reason == "no article text after cleaning"


def test_navigation_only_html_is_skipped(corpus: Path) -> None:
    write(corpus, "menu.html", NAV_ONLY_HTML)

    skip = only_skip(load_articles(["corpus"]))

    assert skip.reason == "no article text found (page is only navigation or boilerplate)"


def test_skipped_files_are_logged_as_warnings(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(corpus, "blank.txt", b"")

    with caplog.at_level(logging.WARNING, logger="retrieval.articles"):
        load_articles(["corpus"])

    assert [record.getMessage() for record in caplog.records] == [
        "skipped corpus/blank.txt: empty file"
    ]


def test_duplicate_text_is_reported_and_first_file_kept(corpus: Path) -> None:
    write(corpus, "a.txt", FERRY)
    write(corpus, "b.txt", FERRY.replace("\n\n", "\n\n\n  "))

    result = load_articles(["corpus"])

    assert [article.source for article in result.articles] == ["corpus/a.txt"]
    assert result.duplicates == (SkippedFile("corpus/b.txt", "same text as corpus/a.txt"),)


def test_latin1_file_is_decoded(corpus: Path) -> None:
    # 0x81 is undefined in cp1252, so only the latin-1 fallback can read this file.
    write(corpus, "cafe.txt", "Café news\n\nThe café opened.\x81\n".encode("latin-1"))

    article = load_articles(["corpus"]).articles[0]

    assert article.title == "Café news"
    assert article.text.startswith("The café opened.")


def test_cp1252_curly_quotes_are_decoded(corpus: Path) -> None:
    write(corpus, "quote.txt", "Café talk\n\n“It is open,” she said.\n".encode("cp1252"))

    article = load_articles(["corpus"]).articles[0]

    assert (article.title, article.text) == ("Café talk", "“It is open,” she said.")


def test_utf8_bom_is_removed(corpus: Path) -> None:
    write(corpus, "bom.txt", codecs.BOM_UTF8 + FERRY.encode("utf-8"))

    assert load_articles(["corpus"]).articles[0].title == "Ferry returns to Port Wren"


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")],
)
def test_utf16_file_with_bom_is_decoded(corpus: Path, bom: bytes, encoding: str) -> None:
    write(corpus, "wide.txt", bom + "Zürich ferry\n\nThe ferry sailed.\n".encode(encoding))

    article = load_articles(["corpus"]).articles[0]

    assert (article.title, article.text) == ("Zürich ferry", "The ferry sailed.")


def test_html_file_gets_title_date_and_article_text(corpus: Path) -> None:
    write(corpus, "ferry.html", ARTICLE_HTML)

    article = load_articles(["corpus"]).articles[0]

    assert article.title == "Ferry returns to Port Wren"
    assert article.published == "2023-03-09"
    assert article.text.startswith("The old harbour ferry")
    assert "Home" not in article.text


def test_html_saved_as_txt_is_sniffed(corpus: Path) -> None:
    write(corpus, "ferry.txt", ARTICLE_HTML)

    article = load_articles(["corpus"]).articles[0]

    assert "<p>" not in article.text
    assert article.title == "Ferry returns to Port Wren"


def test_truncated_html_file_does_not_stop_the_load(corpus: Path) -> None:
    write(corpus, "cut.html", ARTICLE_HTML[: len(ARTICLE_HTML) // 2])
    write(corpus, "market.txt", MARKET)

    result = load_articles(["corpus"])

    assert "corpus/market.txt" in [article.source for article in result.articles]


def test_json_object_becomes_one_article(corpus: Path) -> None:
    record = {
        "title": "Ferry returns",
        "content": "The ferry sailed again.",
        "url": "https://example.org/ferry",
        "date": "2023-03-09",
    }
    write(corpus, "ferry.json", json.dumps(record))

    article = load_articles(["corpus"]).articles[0]

    assert (article.source, article.title, article.text, article.published) == (
        "corpus/ferry.json",
        "Ferry returns",
        "The ferry sailed again.",
        "2023-03-09",
    )


def test_json_list_gives_one_article_per_record(corpus: Path) -> None:
    records = [
        {"title": "Ferry returns", "text": "The ferry sailed again."},
        {"body": "Market reopens\nThe market opened after the storm."},
    ]
    write(corpus, "news.json", json.dumps(records))

    articles = load_articles(["corpus"]).articles

    assert [(a.source, a.title, a.text) for a in articles] == [
        ("corpus/news.json#1", "Ferry returns", "The ferry sailed again."),
        ("corpus/news.json#2", "Market reopens", "The market opened after the storm."),
    ]


def test_jsonl_gives_one_article_per_line_and_skips_bad_lines(corpus: Path) -> None:
    lines = [
        json.dumps({"title": "Ferry returns", "text": "The ferry sailed again."}),
        "",
        "{not json",
        json.dumps({"title": "No text here"}),
    ]
    write(corpus, "news.jsonl", "\n".join(lines))

    result = load_articles(["corpus"])

    assert [article.source for article in result.articles] == ["corpus/news.jsonl#1"]
    assert [skip.path for skip in result.skipped] == ["corpus/news.jsonl#3", "corpus/news.jsonl#4"]
    assert result.skipped[0].reason.startswith("invalid JSON: ")
    assert result.skipped[1].reason == 'JSON record has no "text", "content" or "body" string'


def test_invalid_json_file_is_skipped(corpus: Path) -> None:
    write(corpus, "broken.json", '{"title": "x", "text": ')

    skip = only_skip(load_articles(["corpus"]))

    assert skip.reason == "invalid JSON: Expecting value (line 1)"


@pytest.mark.parametrize("content", ["42", "[]"])
def test_json_that_is_not_an_object_or_list_is_skipped(corpus: Path, content: str) -> None:
    write(corpus, "number.json", content)

    assert only_skip(load_articles(["corpus"])).reason == (
        "JSON is neither an object nor a non-empty list of objects"
    )


def test_iter_corpus_files_lists_supported_files_only(corpus: Path) -> None:
    for name in ("a.txt", "b.pdf", "c/d.md", ".hidden.txt", "e.JSONL"):
        write(corpus, name, FERRY)

    files = iter_corpus_files(["corpus"])

    assert [path.as_posix() for path in files] == [
        "corpus/a.txt",
        "corpus/c/d.md",
        "corpus/e.JSONL",
    ]
    assert all(path.suffix.lower() in SUPPORTED_SUFFIXES for path in files)


def test_labels_tell_repeated_titles_apart_by_file():
    from retrieval.articles import Article, article_labels

    def art(id_, title, text, source):
        return Article(id=id_, title=title, source=source, text=text)

    a = art("a", "Harbour reopens", "Boats returned on Monday.", "news/harbour.txt")
    b = art("b", "Harbour reopens", "The wall was inspected.", "news/harbour-2.txt")
    c = art("c", "Apple harvest", "A record harvest of apples.", "farm/orchard.txt")
    d = art("d", "Apple harvest", "Cider makers were pleased.", "other/orchard.txt")
    labels = article_labels([a, b, c, d])
    assert labels["a"] == "Harbour reopens (harbour.txt)"
    assert labels["b"] == "Harbour reopens (harbour-2.txt)"
    assert labels["c"] == "Apple harvest (farm/orchard.txt)"  # same file name: the path
    assert article_labels([a])["a"] == "Harbour reopens"


def test_only_files_whose_every_record_was_taken_are_whole(corpus: Path) -> None:
    write(corpus, "a.txt", FERRY)
    write(corpus, "b.txt", FERRY)  # a duplicate of a.txt
    write(corpus, "c.md", "# Weather\n\nRain is expected on Sunday.\n")
    write(corpus, "news.jsonl", '{"title": "Fair", "text": "The fair opens."}\nnot json\n')

    result = load_articles(["corpus"])

    assert sorted(result.whole_files) == ["corpus/a.txt", "corpus/c.md"]
    (weather,) = [a for a in result.articles if a.source == "corpus/c.md"]
    assert result.whole_files["corpus/c.md"] == {"corpus/c.md": weather.id}


def test_kept_files_are_not_read_and_still_count_for_duplicates(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(corpus, "a.txt", FERRY)
    write(corpus, "b.txt", MARKET)
    first = load_articles(["corpus"])
    ferry = first.articles[0]
    write(corpus, "c.txt", FERRY)  # a copy of the kept file's text
    read: list[str] = []
    real = articles_module._load_file
    monkeypatch.setattr(
        articles_module, "_load_file", lambda path: read.append(path.name) or real(path)
    )
    kept = KeptArticle(ferry.id, ferry.source, ferry.content_hash)

    result = load_articles(["corpus"], kept={"corpus/a.txt": [kept]})

    assert read == ["b.txt", "c.txt"]
    assert result.articles[0] == kept
    assert result.duplicates == (SkippedFile("corpus/c.txt", "same text as corpus/a.txt"),)
    assert "corpus/a.txt" in result.whole_files and "corpus/c.txt" not in result.whole_files

"""The Streamlit page, driven headless with AppTest over a tiny index built with the fake embedder.

The articles are written for these tests. Each test builds its own index in
tmp_path (instant with the fake embedder) and points the page at it through
ARTICLE_QA_INDEX / ARTICLE_QA_CORPUS.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from retrieval.feedback import latest_ratings, read_feedback
from retrieval.indexing import build_index, index_config

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")

ARTICLES = {
    "harbour.txt": (
        "Kestrel Bay harbour reopens after two years of repairs\n\n"
        "The old harbour in Kestrel Bay reopened to fishing boats on Monday after two years of "
        "repairs to its stone walls.\n\n"
        "The reopening ceremony was held in Marlow Hall, where the mayor, Ines Carvalho, "
        "thanked the builders. About 40 fishing boats are expected to return to the harbour "
        "this summer.\n\n"
        "The repairs cost 12 million pounds, paid by the regional council.\n"
    ),
    "orchard.txt": (
        "Orchard cooperative reports record apple harvest\n\n"
        "The Valmora fruit cooperative picked 8,200 tonnes of apples this autumn, the largest "
        "harvest in its history.\n\n"
        "The cooperative's chair, Tomasz Wrobel, said a mild spring and late rain helped the "
        "trees. Most of the fruit will be sold to juice makers in the north.\n"
    ),
    "security.txt": (
        "Web column: why <script>alert(1)</script> still matters\n\n"
        "A reader sent the string <img src=x onerror=alert(1)> to our feedback form last week.\n\n"
        "Security trainer Nadia Okafor explained that such payloads only run when a page pastes "
        "raw text into its HTML.\n"
    ),
}
HARBOUR_TITLE = "Kestrel Bay harbour reopens after two years of repairs"


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    for name, text in ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    build_index([corpus], index, config=index_config("fake-hashed-words"))
    monkeypatch.setenv("ARTICLE_QA_CORPUS", str(corpus))
    monkeypatch.setenv("ARTICLE_QA_INDEX", str(index))
    return corpus, index


@pytest.fixture
def app(folders: tuple[Path, Path]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    return at


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    return at


def html_of(at: AppTest) -> str:
    return "\n".join(element.value for element in at.get("html"))


def markdown_of(at: AppTest) -> str:
    texts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    texts += [e.value for e in (*at.title, *at.subheader, *at.error, *at.warning, *at.info)]
    texts += [e.value for e in at.success]
    return "\n".join(texts)


def test_question_gets_short_answer_highlighted_sentence_and_sources(app):
    ask(app, "Where was the reopening ceremony held?")
    page = html_of(app)
    assert '<p class="qa-short"><strong>Marlow Hall</strong> <sup class="qa-cite">[1]' in page
    assert "The reopening ceremony was held in <mark>Marlow Hall</mark>, where" in page
    assert re.search(r"Confidence: (high|medium|low) · 0\.\d\d", page)
    assert f'Sources:</p><p class="qa-meta">[1] <cite>{HARBOUR_TITLE}</cite> · harbour.txt' in page
    assert app.expander[0].label == "3 passages"
    # The first passage marks the answer inside it, by offsets.
    assert "[1] · score" in page and page.count("<mark>Marlow Hall</mark>") == 2


def test_answers_and_sources_survive_a_rerun(app):
    ask(app, "Where was the reopening ceremony held?")
    app.run()
    assert "<strong>Marlow Hall</strong>" in html_of(app)
    assert app.expander[0].label == "3 passages"


def test_follow_up_is_understood_in_context(app):
    ask(app, "Where was the reopening ceremony held?")
    ask(app, "Who thanked the builders there?")
    assert "understood as: Who thanked the builders in Marlow Hall? (a follow-up)" in [
        caption.value for caption in app.caption
    ]
    page = html_of(app)
    assert "<strong>Ines Carvalho</strong>" in page
    assert "<strong>Marlow Hall</strong>" in page  # the first turn is still shown
    assert len(app.chat_message) == 4


def test_question_the_articles_cannot_answer_says_so_and_shows_closest_passages(app):
    ask(app, "What is the capital of Peru?")
    assert "**Not in these articles.**" in markdown_of(app)
    assert "<strong>" not in html_of(app)
    assert app.expander[0].label == "3 closest passages"
    # closed, so the refusal stays in view above them
    assert not app.expander[0].proto.expanded
    assert "[1] · score" in html_of(app)


def test_a_question_is_shown_as_typed_and_a_url_in_it_is_no_link(app):
    ask(app, "Where is [link](http://x) from?")
    assert "Where is [link](http://x) from?" in [text.value for text in app.text]
    assert "http://x" not in markdown_of(app)


def test_raising_the_threshold_turns_an_answer_into_no_answer(app):
    ask(app, "How much did the repairs cost?")
    assert "<strong>12 million pounds</strong>" in html_of(app)
    app.slider(key="threshold").set_value(0.95).run()
    ask(app, "How much did the repairs cost?")
    assert "**Not in these articles.**" in markdown_of(app)
    assert html_of(app).count("<strong>12 million pounds</strong>") == 1


def test_uploaded_article_is_saved_indexed_and_answerable(app, folders):
    corpus, _ = folders
    lighthouse = (
        b"Gull Rock lighthouse gets a new lamp\n\n"
        b"The lighthouse on Gull Rock was fitted with a brighter lamp on Thursday. "
        b"Its keeper, Rafael Dunmore, said ships can now see the light from far out at sea.\n"
    )
    app.file_uploader[0].set_value(("../Gull Rock lighthouse.txt", lighthouse, "text/plain"))
    app.run()
    assert not app.exception
    assert (corpus / "Gull-Rock-lighthouse.txt").read_bytes() == lighthouse
    notices = markdown_of(app)
    assert "Saved Gull\\-Rock\\-lighthouse\\.txt" in notices
    assert re.search(r"4 articles, 4 chunks \(\d+ embedded\)", notices)
    ask(app, "Who is the keeper of the Gull Rock lighthouse?")
    page = html_of(app)
    assert "<strong>Rafael Dunmore</strong>" in page
    assert "Gull-Rock-lighthouse.txt" in page


def test_upload_of_an_unsupported_file_is_refused_with_a_message(app, folders):
    corpus, _ = folders
    app.file_uploader[0].set_value(("notes.txt", b"   ", "text/plain")).run()
    assert "notes\\.txt is empty" in markdown_of(app)
    assert not (corpus / "notes.txt").exists()


def test_thumbs_write_feedback_beside_the_index(app, folders):
    _, index = folders
    ask(app, "Where was the reopening ceremony held?")
    app.feedback[0].set_value(1).run()
    app.feedback[0].set_value(0).run()
    records = read_feedback(index)
    assert [r["rating"] for r in records] == ["up", "down"]
    assert records[0]["question"] == "Where was the reopening ceremony held?"
    assert records[0]["answer"]["text"] == "Marlow Hall"
    assert records[0]["sources"][0]["title"] == HARBOUR_TITLE
    assert records[0]["time"]
    # Both records name the same turn of the same browser session...
    assert records[0]["turn"] == records[1]["turn"] and records[0]["turn"]
    assert records[0]["session"] == records[1]["session"] and records[0]["session"]
    assert [r["rating"] for r in latest_ratings(records)] == ["down"]  # ...so the last counts
    # Un-clicking is recorded too, and leaves the answer unrated.
    app.feedback[0].set_value(None).run()
    records = read_feedback(index)
    assert records[-1]["rating"] == "withdrawn"
    assert latest_ratings(records) == []


def test_citation_opens_the_article_with_its_cited_passage_marked(app):
    ask(app, "Where was the reopening ceremony held?")
    passage_buttons = [b for b in app.button if b.key and re.fullmatch(r"open-\w+-1", b.key)]
    passage_buttons[0].click().run()
    assert not app.exception
    assert [t.value for t in app.title] == ["Articles"]
    assert HARBOUR_TITLE in [s.value for s in app.subheader]
    assert '<div class="qa-article"><mark id="qa-cited">The old harbour in Kestrel Bay' in html_of(
        app
    )
    assert any(c.value.startswith("Marked: passage [1] for") for c in app.caption)


def test_the_answer_cites_its_passage_by_number_and_opens_only_its_sentence(app):
    ask(app, "Where was the reopening ceremony held?")
    page = html_of(app)
    assert re.search(r"<strong>Marlow Hall</strong> <sup class=\"qa-cite\">\[\d\]</sup>", page)
    assert f"<cite>{HARBOUR_TITLE}</cite> · harbour.txt" in page
    [button] = [b for b in app.button if b.key and b.key.startswith("open-cited-")]
    number = re.search(r"\[(\d)\]", button.label).group(1)
    assert f"[{number}] · score" in page  # the same number on the passage it cites
    button.click().run()
    assert not app.exception
    article = html_of(app)
    # Only the answer's sentence is marked, not the passage or the whole short article.
    assert article.count("<mark") == 1
    assert '<mark id="qa-cited">The reopening ceremony was held in Marlow Hall, where' in article
    assert "builders.</mark>" in article
    assert any(c.value.startswith(f"Marked: the sentence cited as [{number}]") for c in app.caption)


def test_article_browser_searches_titles_and_text(app):
    ask(app, "Where was the reopening ceremony held?")
    [button] = [b for b in app.button if b.key and b.key.startswith("open-cited-")]
    button.click().run()
    app.text_input(key="article_search").set_value("orchard").run()
    assert app.selectbox[0].options == ["Orchard cooperative reports record apple harvest"]
    assert "Orchard cooperative reports record apple harvest" in [s.value for s in app.subheader]
    assert app.expander[0].label == "1 article found"
    # The text is searched too, not only the titles.
    app.text_input(key="article_search").set_value("TONNES juice").run()
    assert app.selectbox[0].options == ["Orchard cooperative reports record apple harvest"]
    app.text_input(key="article_search").set_value("").run()
    assert app.expander[0].label == "All 3 articles"


def test_sidebar_status_is_the_new_indexs_right_after_a_rebuild(folders):
    corpus, _ = folders
    (corpus / "ferry.txt").write_text(
        "Night ferry returns\n\nThe night ferry to Orkney sails again from Friday.\n",
        encoding="utf-8",
    )
    app = AppTest.from_file(APP, default_timeout=30)
    app.run()
    assert "Out of date: 1 new" in markdown_of(app)
    app.button(key="rebuild").click().run()
    assert not app.exception
    page = markdown_of(app)
    assert "**4** articles" in page and "Out of date" not in page
    assert "Up to date with" in page
    assert any("4 articles" in s.value for s in app.success)


def test_articles_with_the_same_title_are_told_apart_by_file(folders, monkeypatch):
    corpus, index = folders
    (corpus / "harbour-update.txt").write_text(
        f"{HARBOUR_TITLE}\n\nA second report: the harbour wall was inspected again in May.\n",
        encoding="utf-8",
    )
    build_index([corpus], index, config=index_config("fake-hashed-words"))
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    ask(at, "Where was the reopening ceremony held?")
    [button] = [b for b in at.button if b.key and b.key.startswith("open-cited-")]
    button.click().run()
    labels = at.selectbox[0].options
    assert f"{HARBOUR_TITLE} (harbour.txt)" in labels
    assert f"{HARBOUR_TITLE} (harbour-update.txt)" in labels


def test_article_html_and_scripts_are_shown_as_text(app):
    ask(app, "Who explained the payloads?")
    answer_page = html_of(app) + markdown_of(app)
    [button] = [b for b in app.button if b.key and b.key.startswith("open-cited-")]
    button.click().run()
    browser_page = html_of(app) + markdown_of(app)
    # The page's own script (it scrolls to the cited sentence) is the only one.
    own_script = re.compile(r"<script>[^<]*\"qa-cited\"[^<]*</script>")
    assert len(own_script.findall(browser_page)) == 1
    for page in (answer_page, own_script.sub("", browser_page)):
        assert "<script" not in page and "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in browser_page
    assert "why &lt;script&gt;alert(1)&lt;/script&gt; still matters" in answer_page


def test_missing_index_says_how_to_build_one(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTICLE_QA_INDEX", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("ARTICLE_QA_CORPUS", str(tmp_path / "corpus"))
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    [error] = at.error
    assert "no index at" in error.value
    assert "Click **Rebuild index** in the sidebar" in error.value


@pytest.mark.slow
def test_real_model_answers_where_the_meeting_is_held(tmp_path, monkeypatch):
    corpus, index = ROOT / "corpus", tmp_path / "index"
    build_index([corpus], index)
    monkeypatch.setenv("ARTICLE_QA_CORPUS", str(corpus))
    monkeypatch.setenv("ARTICLE_QA_INDEX", str(index))
    at = AppTest.from_file(APP, default_timeout=180).run()
    ask(at, "Where is the meeting held?")
    page = html_of(at)
    assert "<mark>Sochi</mark>" in page
    assert "Kerry heads to Russia for talks as relations stay strained" in page


def test_the_conversation_survives_a_reload_until_a_new_one_is_started(app):
    ask(app, "Where was the reopening ceremony held?")
    ask(app, "Who thanked the builders?")
    named = app.query_params["c"]
    assert named and len(named) == 16
    # A reload is a new browser session on the same URL.
    reloaded = AppTest.from_file(APP, default_timeout=30)
    reloaded.query_params["c"] = named
    reloaded.run()
    assert not reloaded.exception
    assert [m.value for m in reloaded.get("text")] == [
        "Where was the reopening ceremony held?",
        "Who thanked the builders?",
    ]
    assert "<strong>Marlow Hall</strong>" in html_of(reloaded)
    [new] = [b for b in reloaded.button if b.label == "New conversation"]
    new.click().run()
    assert reloaded.query_params["c"] != named
    assert not list(reloaded.get("text"))
    fresh = AppTest.from_file(APP, default_timeout=30)
    fresh.query_params["c"] = reloaded.query_params["c"]
    fresh.run()
    assert not list(fresh.get("text"))  # the new conversation is empty

"""Tests of retrieval.cleaning: boilerplate removal from scraped text, Markdown and HTML pages.

Every page here is written for these tests; the real scraped page is only read
from ../shared/seed when it is present.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.cleaning import (
    CLEANER_VERSION,
    CleanedPage,
    EmptyArticle,
    clean_article_text,
    clean_html_page,
    clean_markdown_page,
    clean_text_page,
)

SEED_PAGE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "kerry-russia-independent.txt"
BOILERPLATE_KEYWORDS = ("Your support", "Follow @", "Subscribe", "bookmark", "commenting forum")

# A scraped page in the shape of the seed, for another (invented) outlet in other words:
# headline, standfirst, an appeal block whose last sentence is glued to the article's
# first one, the article, then social, subscription and comment furniture.
COURIER_PAGE = "\n".join(
    [
        "Harbour ferry returns to Port Wren after two-year repair",
        "Traders on the island market expect busier weekends as crossings resume",
        "Keep the Courier reporting",
        "From flooded quays to council budgets, the Harbour Courier is there when the news"
        " breaks. We know readers rely on us for facts they can check.",
        "Local news costs money to make. Your contribution keeps our journalists on the coast.",
        "We have never put our stories behind paywalls, and we never will.",
        "Thank you for reading. Your donation makes the next story possible.The old harbour"
        " ferry in Port Wren carried its first passengers on Thursday after a repair that took"
        " two years.",
        "Engineers replaced the hull plates and fitted a quieter electric engine, the town"
        " council said.",
        "“Half of our customers came across on that ferry,” said Ana Brook, who sells fish at"
        " the market.",
        "Follow @CourierAna on X.",
        "Subscribe to Courier Plus to save this article for later",
        "Want to bookmark stories and come back to them? Start your Courier Plus subscription now.",
        "Join the discussion with other Courier readers",
        "Share",
        "Comments (12)",
        "© 2024 Harbour Courier Ltd. All rights reserved.",
    ]
)
COURIER_ARTICLE = (
    "The old harbour ferry in Port Wren carried its first passengers on Thursday after a repair"
    " that took two years.\n\n"
    "Engineers replaced the hull plates and fitted a quieter electric engine, the town council"
    " said.\n\n"
    "“Half of our customers came across on that ferry,” said Ana Brook, who sells fish at the"
    " market."
)

ARTICLE_HTML = """\
<!doctype html>
<html><head><title>Ferry returns | Harbour Courier</title>
<meta property="article:published_time" content="2023-03-09T08:00:00Z"></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/local">Local</a></li>
<li><a href="/weather">Weather</a></li></ul></nav>
<header><h1>Harbour ferry returns after two-year repair</h1></header>
<article>
<p>The old harbour ferry in Port Wren carried its first passengers on Thursday after a repair
that took two years and cost the town council about 2.3 million pounds.</p>
<p>Engineers replaced the hull plates and fitted a quieter electric engine. The council said
the boat would run every thirty minutes between the north quay and the island market.</p>
<p>Local traders welcomed the news at a meeting on the quay on Friday evening.</p>
</article>
<footer><p>Copyright 2023 Harbour Courier. All rights reserved.</p>
<a href="/privacy">Privacy policy</a></footer>
</body></html>
"""

NAV_ONLY_HTML = """\
<html><head><title>Harbour Courier</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/local">Local</a></li>
<li><a href="/sport">Sport</a></li></ul></nav>
<footer><p>Sign up for our newsletter</p><p>Copyright 2023 Harbour Courier</p></footer>
</body></html>
"""


def test_cleaner_version_is_a_non_empty_string() -> None:
    assert isinstance(CLEANER_VERSION, str) and CLEANER_VERSION


@pytest.mark.skipif(not SEED_PAGE.exists(), reason="../shared/seed is not available")
def test_seed_page_keeps_title_and_article_and_drops_boilerplate() -> None:
    raw = SEED_PAGE.read_text(encoding="utf-8")

    page = clean_text_page(raw, fallback_title="seed")

    assert page.title == raw.splitlines()[0].strip()
    assert page.text.startswith("US Secretary of State John Kerry")
    assert "Sochi" in page.text
    for keyword in BOILERPLATE_KEYWORDS:
        assert keyword not in page.text
    assert not page.text.rstrip().endswith("Comments")


def test_page_in_other_words_cleans_to_the_article_only() -> None:
    page = clean_text_page(COURIER_PAGE, fallback_title="fallback")

    assert page == CleanedPage(
        title="Harbour ferry returns to Port Wren after two-year repair", text=COURIER_ARTICLE
    )


def test_standfirst_without_final_period_is_dropped() -> None:
    raw = "Headline here\nA one-line summary with no period\nFirst sentence of the story.\n"

    assert clean_text_page(raw, "x").text == "First sentence of the story."


def test_second_line_ending_with_a_period_is_kept() -> None:
    raw = "Headline here\nThe story starts here.\nIt goes on here.\n"

    assert clean_text_page(raw, "x").text == "The story starts here.\n\nIt goes on here."


def test_single_line_file_uses_fallback_title_and_keeps_the_line() -> None:
    page = clean_text_page("  Only one line of text here.  \n", fallback_title="my file")

    assert page == CleanedPage(title="my file", text="Only one line of text here.")


def test_first_line_that_is_a_paragraph_is_not_the_title() -> None:
    raw = "The council met on Monday. It approved the budget.\nA second paragraph follows.\n"

    page = clean_text_page(raw, fallback_title="budget")

    assert page.title == "budget"
    assert page.text.startswith("The council met on Monday.")


def test_first_line_longer_than_a_headline_is_not_the_title() -> None:
    long_line = "word " * 60
    page = clean_text_page(f"{long_line}\nNext line.\n", fallback_title="long")

    assert page.title == "long"
    assert page.text.startswith("word word")


def test_leading_boilerplate_line_is_not_taken_as_title() -> None:
    page = clean_text_page("Advertisement\nReal headline\nThe story.\n", fallback_title="x")

    assert page == CleanedPage(title="Real headline", text="The story.")


def test_glued_sentences_are_split_into_paragraphs() -> None:
    assert (
        clean_article_text("It ended.Then it began again.") == "It ended.\n\nThen it began again."
    )


def test_glued_boilerplate_sentence_is_dropped_and_article_kept() -> None:
    text = clean_article_text("Your gift keeps us independent.Rain fell across the valley.")

    assert text == "Rain fell across the valley."


@pytest.mark.parametrize(
    "sentence",
    [
        "Prices rose 3.5 percent in May.",
        "Officials, e.g.Smith and Jones, disagreed.",
        "The U.S.Navy sent two ships.",
    ],
)
def test_abbreviations_and_decimals_are_not_split(sentence: str) -> None:
    assert clean_article_text(sentence) == sentence


def test_appeal_sentence_at_end_of_article_paragraph_drops_only_that_sentence() -> None:
    paragraph = (
        "The bridge reopened on Monday. Drivers had waited six months. Dr. Ana Brook led the"
        " repairs. Please consider making a donation today."
    )

    assert clean_article_text(paragraph) == (
        "The bridge reopened on Monday. Drivers had waited six months. Dr. Ana Brook led the"
        " repairs."
    )


def test_quoted_speech_mentioning_support_is_kept() -> None:
    paragraph = "“Your support made this possible,” the mayor told the volunteers."

    assert clean_article_text(paragraph) == paragraph


def test_first_person_paragraph_far_from_an_appeal_is_kept() -> None:
    text = "Markets opened higher.\n\nWe asked three traders what changed, and all said rates."

    assert clean_article_text(text) == text


def test_us_as_country_next_to_appeal_is_kept() -> None:
    text = clean_article_text(
        "Support our journalism today.\nUS officials said the talks would resume in June.\n"
    )

    assert text == "US officials said the talks would resume in June."


@pytest.mark.parametrize(
    "line",
    [
        "Follow @somebody on Twitter",
        "Follow Jane Roe on Instagram.",
        "Subscribe to The Daily Lamp",
        "Start your free trial membership today",
        "Sign up for our morning newsletter",
        "Get the Lamp Briefing newsletter in your inbox",
        "Bookmark this story",
        "Join our commenting forum",
        "Join thought-provoking conversations with other readers",
        "Comments",
        "12 comments",
        "Share",
        "Advertisement",
        "Read more",
        "Read more: Storm closes the coast road",
        "Copyright 2022 The Daily Lamp",
        "© The Daily Lamp",
        "All rights reserved.",
        "Your support keeps the lights on",
        "Become a supporter",
        "Donate now to keep the Lamp lit",
    ],
)
def test_boilerplate_line_is_removed(line: str) -> None:
    assert clean_article_text(f"The river rose overnight.\n{line}\n") == "The river rose overnight."


def test_whitespace_is_normalized_and_curly_quotes_kept() -> None:
    raw = "Title\n  “Quoted”\t words   here’s  more.  \n\n\n  Second\u00a0paragraph.\n"

    page = clean_text_page(raw, "x")

    assert page.text == "“Quoted” words here’s more.\n\nSecond paragraph."


def test_hard_wrapped_paragraphs_are_joined() -> None:
    raw = (
        "Title\n\nThe council voted on Monday to build a new library near\n"
        "the station, which will open in two years.\n\nA second paragraph.\n"
    )

    assert clean_text_page(raw, "x").text == (
        "The council voted on Monday to build a new library near the station, which will open in"
        " two years.\n\nA second paragraph."
    )


def test_only_boilerplate_gives_empty_text() -> None:
    assert clean_text_page("Share\nSign up for our newsletter\nComments\n", "x").text == ""


def test_markdown_title_from_heading_and_markers_stripped() -> None:
    raw = (
        "# Harbour ferry returns\n\nThe ferry sailed on [Thursday](https://example.org).\n\n"
        "## Reactions\nTraders were pleased.\n"
    )

    page = clean_markdown_page(raw, fallback_title="x")

    assert page == CleanedPage(
        title="Harbour ferry returns",
        text="The ferry sailed on Thursday.\n\nReactions\n\nTraders were pleased.",
    )


def test_markdown_without_heading_uses_first_line_rules() -> None:
    page = clean_markdown_page("Plain headline\n\nBody text.\n", fallback_title="x")

    assert page == CleanedPage(title="Plain headline", text="Body text.")


def test_html_article_keeps_text_title_and_date_and_drops_navigation() -> None:
    page = clean_html_page(ARTICLE_HTML, fallback_title="x")

    assert page.title == "Harbour ferry returns after two-year repair"
    assert page.published == "2023-03-09"
    assert page.text.startswith("The old harbour ferry in Port Wren")
    assert "Local traders welcomed the news" in page.text
    for navigation in ("Home", "Weather", "Copyright", "Privacy"):
        assert navigation not in page.text


def test_html_title_falls_back_when_page_has_none() -> None:
    html = "<html><body><article><p>" + "The ferry sailed again on Thursday. " * 5
    html += "</p></article></body></html>"

    assert clean_html_page(html, fallback_title="ferry").title == "ferry"


def test_html_scripts_leave_no_words_in_title_or_text() -> None:
    lead = ("The town council of Eastwick voted on Monday to ban private fireworks for the "
            "whole year, citing the distress they cause to pets and older residents.")  # fmt: skip
    html = (
        "<html><head><title>Town bans fireworks<script>alert(1)</script></title>"
        "<style>p { color: red }</style></head><body><article>"
        f"<h1>Town bans fireworks<script>alert(1)</script></h1><p>{lead}</p>"
        "<p>Shops may no longer sell rockets.<script>track('x')</script></p>"
        "</article></body></html>"
    )
    page = clean_html_page(html, fallback_title="x")

    assert page.title == "Town bans fireworks"
    assert page.text.startswith("The town council of Eastwick")  # the headline is not text
    assert "alert" not in page.text and "track" not in page.text and "color" not in page.text


def test_html_heading_never_runs_into_the_paragraph_under_it() -> None:
    from retrieval.cleaning import _clean_body

    lines = ["The vote passed on Monday.", "", "What changes", "From January, shops stop."]
    assert _clean_body(lines, drop_standfirst=False, wrapped=False).split("\n\n") == [
        "The vote passed on Monday.", "What changes", "From January, shops stop."
    ]  # fmt: skip
    # Hard-wrapped plain text still joins a line that stops mid-sentence.
    assert "What changes From January" in _clean_body(lines, drop_standfirst=False)


def test_navigation_only_html_raises_empty_article() -> None:
    with pytest.raises(EmptyArticle, match=r"no article text found \(page is only navigation"):
        clean_html_page(NAV_ONLY_HTML, fallback_title="x")


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_truncated_html_does_not_crash(cut: float) -> None:
    truncated = ARTICLE_HTML[: int(len(ARTICLE_HTML) * cut)]

    try:
        page = clean_html_page(truncated, fallback_title="x")
    except EmptyArticle:
        return
    assert page.text


def _tokens(text: str) -> list[str]:
    return text.split()


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_cleans_without_crashing_to_stripped_text_made_of_input_words(raw: str) -> None:
    page = clean_text_page(raw, fallback_title="fallback")

    assert page.text == page.text.strip()
    assert "\n\n\n" not in page.text
    assert all(line == line.strip() and line for line in page.text.split("\n\n") if page.text)
    normalized_input = re.sub(r"\s+", " ", raw)
    assert all(token in normalized_input for token in _tokens(page.text))
    assert page.title == "fallback" or page.title in normalized_input


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["Share", "The river rose.", "Your support matters.", ""])))
def test_cleaning_is_idempotent_on_article_text(lines: list[str]) -> None:
    once = clean_article_text("\n".join(lines))

    assert clean_article_text(once) == once

"""Tests of retrieval.highlight: escaping first, marks by offsets, nothing lost."""

from __future__ import annotations

import html
import re

from hypothesis import given
from hypothesis import strategies as st

from retrieval.highlight import highlight_html, merge_spans


def test_marks_the_span_by_offsets():
    assert highlight_html("Talks in Sochi.", [(9, 14)]) == "Talks in <mark>Sochi</mark>."


def test_article_markup_is_escaped_not_run():
    text = "Hi <script>alert(1)</script> and <img src=x onerror=alert(1)>"
    out = highlight_html(text, [(0, 2)])
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;" in out


def test_overlapping_spans_are_merged():
    assert merge_spans([(5, 9), (0, 3), (2, 6), (20, 30)], 25) == [(0, 9), (20, 25)]


def test_newlines_become_breaks():
    assert highlight_html("a\nb", []) == "a<br>b"


def _unmark(markup: str) -> str:
    return html.unescape(re.sub(r"</?mark>", "", markup).replace("<br>", "\n"))


@given(
    text=st.text(max_size=200),
    spans=st.lists(st.tuples(st.integers(-5, 210), st.integers(-5, 210)), max_size=5),
)
def test_highlighting_loses_no_characters_and_keeps_html_balanced(text, spans):
    out = highlight_html(text, spans)
    assert _unmark(out) == text
    assert out.count("<mark>") == out.count("</mark>")
    # The only tags in the output are ours.
    assert set(re.findall(r"<(/?\w+)", out)) <= {"mark", "/mark", "br"}


def test_an_anchor_names_only_the_first_mark():
    marked = highlight_html("one two three", [(8, 13), (0, 3)], anchor="qa-cited")
    assert marked == '<mark id="qa-cited">one</mark> two <mark>three</mark>'
    assert highlight_html("one", [], anchor="qa-cited") == "one"

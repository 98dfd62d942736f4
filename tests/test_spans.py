"""Span rules: a number keeps its unit, a name its title, a span stays in its sentence."""

from __future__ import annotations

import pytest

from retrieval.spans import ALL_RULES, refine_span


def refined(text: str, span: str, rules=ALL_RULES, sentence_end: int | None = None) -> str:
    start = text.index(span)
    end = start + len(span)
    stop = len(text) if sentence_end is None else sentence_end
    a, b = refine_span(text, start, end, stop, rules)
    return text[a:b]


@pytest.mark.parametrize(
    ("text", "span", "expected"),
    [
        ("The comet was about 640 million kilometers from the Sun.", "about 640 million",
         "about 640 million kilometers"),
        ("It covers 12 square kilometers of land.", "12", "12 square kilometers"),
        ("Bleaching hit 57 percent of the coral.", "57", "57 percent"),
        ("The deal was worth $4 million in cash.", "4 million", "$4 million"),
        ("The deal was worth €420 million.", "420 million", "€420 million"),
        ("The square is 40 metres wide.", "40", "40 metres"),
        # No unit after the number, or something between: nothing added.
        ("About 40 fishing boats came back.", "About 40", "About 40"),
        ("It cost 12, kilometers aside.", "12", "12"),
        ("The 12 square tables.", "12", "12"),
        # Not a number: untouched.
        ("The robot sorts books.", "The robot", "The robot"),
    ],
)  # fmt: skip
def test_a_number_keeps_its_unit_and_currency(text, span, expected):
    assert refined(text, span, {"unit"}) == expected


@pytest.mark.parametrize(
    ("text", "span", "expected"),
    [
        ("Kerry will meet President Vladimir Putin in Sochi.", "Vladimir Putin",
         "President Vladimir Putin"),
        ("He met Prime Minister Ana Silva.", "Ana Silva", "Prime Minister Ana Silva"),
        ("The talk was given by Dr. Lena Ortiz.", "Lena Ortiz", "Dr. Lena Ortiz"),
        ("The president Vladimir Putin spoke.", "Vladimir Putin", "Vladimir Putin"),
        ("It was Vladimir Putin who spoke.", "Vladimir Putin", "Vladimir Putin"),
    ],
)  # fmt: skip
def test_a_name_keeps_its_title(text, span, expected):
    assert refined(text, span, {"title"}) == expected


def test_a_span_stops_at_its_sentence_end():
    text = "The comet was 640 million kilometers from the Sun. That is more than four"
    end = text.index(" That")
    long = "640 million kilometers from the Sun. That is more than four"
    assert refined(text, long, {"sentence"}, end) == "640 million kilometers from the Sun"
    # A span inside its sentence is left alone.
    assert refined(text, "640 million", {"sentence"}, sentence_end=end) == "640 million"


def test_no_rule_changes_nothing():
    text = "The comet was about 640 million kilometers away."
    assert refined(text, "640 million", set()) == "640 million"

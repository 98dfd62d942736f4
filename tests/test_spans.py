"""Span rules: a number keeps its unit, a name its title, a span stays in its sentence."""

from __future__ import annotations

import pytest

from retrieval.spans import ALL_RULES, asked_measure, refine_span, wrong_measure


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


@pytest.mark.parametrize(
    ("text", "span", "expected"),
    [
        ("Trains use the Monte Sella Base Tunnel daily.", "Monte Sella",
         "Monte Sella Base Tunnel"),
        ("The Monte Sella Base Tunnel opened.", "Monte Sella Base", "Monte Sella Base Tunnel"),
        # The run stops at punctuation, a lower-case word, or the sentence's end.
        ("They met in Sochi, Russia.", "Sochi", "Sochi"),
        ("They met in Sochi on Tuesday.", "Sochi", "Sochi"),
        ("The span ends at Sochi. Then Putin spoke.", "Sochi", "Sochi"),
        # A span that does not end in a capitalized word is left alone.
        ("A tunnel Monte Sella Base Tunnel.", "A tunnel", "A tunnel"),
    ],
)  # fmt: skip
def test_a_name_keeps_the_rest_of_its_capitalized_words(text, span, expected):
    assert refined(text, span, {"name"}) == expected


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


@pytest.mark.parametrize(
    ("question", "span", "wrong"),
    [
        # A cost answered by a distance, a length by a share, a share by money: wrong kind.
        ("How much did the comet cost?", "about 640 million kilometers", True),
        ("How far is the asteroid from the Sun?", "57 percent", True),
        ("What percentage of the coral was bleached?", "4 million euros", True),
        ("How long did it take the crew to cross the bay?", "five kilometers", True),
        ("How many years did the repair take?", "2.3 million pounds", True),
        # The asked kind, or no unit at all: never wrong here.
        ("How much did the repair cost?", "2.3 million pounds", False),
        ("How much did the repair cost?", "2.3 million", False),
        ("How far did the ferry sail?", "12 kilometers", False),
        # Questions that name no kind of quantity, or ask for a change, are left alone.
        ("How many visitors came?", "12,000 kilometers", False),
        ("How much did the price of oil increase?", "two percent per year", False),
        ("How long did the crossing take?", "forty minutes", False),
        ("How long did the crossing take?", "2:05:41", False),
        ("How long is the tunnel?", "41.6 kilometers", False),
    ],
)  # fmt: skip
def test_a_quantity_of_another_kind_than_asked_is_wrong(question, span, wrong):
    assert wrong_measure(question, span) is wrong


def test_asked_measure_names_the_kind():
    assert asked_measure("How much money did the town spend?") == "money"
    assert asked_measure("What is the price of a ticket?") == "money"
    assert asked_measure("How tall is the tower?") == "length"
    assert asked_measure("What share of voters stayed home?") == "share"
    assert asked_measure("Who paid for the repair?") is None

"""Tests of retrieval.answering: question types, candidate spans and span choice."""

from __future__ import annotations

import pytest

from retrieval.answering import candidate_spans, choose_span, expected_type
from retrieval.text import content_stems


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Where is the festival held?", "place"),
        ("In which city did the ferry sail?", "place"),
        ("Who steered the ferry?", "person"),
        ("When did the festival begin?", "date"),
        ("What year did the festival begin?", "date"),
        ("How many visitors came?", "number"),
        ("How much did the repair cost?", "number"),
        ("What did growers sell?", "entity"),
        ("Explain the repair", "other"),
    ],
)
def test_expected_type(question, kind):
    assert expected_type(question) == kind


def _best(sentence: str, question: str) -> str | None:
    candidate, _ = choose_span(sentence, question, set(content_stems(question)))
    return None if candidate is None else sentence[candidate.start : candidate.end]


def test_where_picks_the_place_after_in():
    sentence = "The festival is held in Kettlebrook, a village near the river."
    assert _best(sentence, "Where is the festival held?") == "Kettlebrook"


def test_who_picks_a_person_not_an_organisation():
    sentence = "The Hollow Peak Observatory said Captain Alma Reyes steered the ferry."
    assert _best(sentence, "Who steered the ferry?") == "Captain Alma Reyes"


def test_when_picks_the_date():
    sentence = "The festival began in 1987, when three farmers set up stalls."
    assert _best(sentence, "When did the festival begin?") == "1987"


def test_how_many_picks_the_number_with_its_unit():
    sentence = "The festival drew 12,000 visitors on Saturday."
    assert _best(sentence, "How many visitors did the festival draw?") == "12,000 visitors"


def test_words_of_the_question_are_not_the_answer():
    sentence = "Kettlebrook hosted the festival."
    assert _best(sentence, "Where did Kettlebrook host the festival?") is None


def test_candidates_carry_offsets_into_the_sentence():
    sentence = "On 3 May 2021 the Larkfield School paid 2.3 million pounds."
    spans = {sentence[c.start : c.end]: c.kind for c in candidate_spans(sentence)}
    assert spans["3 May 2021"] == "date"
    assert spans["2.3 million pounds"] == "number"
    assert spans["Larkfield School"] == "proper"

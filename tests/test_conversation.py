"""Tests of retrieval.conversation: when a question leans on the turn before it."""

from __future__ import annotations

from retrieval.conversation import Turn, resolve_followup

FIRST = Turn(
    question="Where is the festival held?",
    answer="Kettlebrook",
    sentence="The festival is held in Kettlebrook every autumn.",
    article_id="a1",
)


def test_standalone_question_has_no_context():
    resolved = resolve_followup("How many visitors came to the fair?", [FIRST])
    assert not resolved.is_followup
    assert resolved.query == "How many visitors came to the fair?"


def test_first_question_is_standalone():
    assert not resolve_followup("Who will attend it?", []).is_followup


def test_pronoun_is_replaced_by_the_earlier_topic():
    resolved = resolve_followup("Who will attend it?", [FIRST])
    assert resolved.is_followup
    assert resolved.asked == "Who will attend the festival?"
    assert "Kettlebrook" in resolved.query
    assert resolved.article_id == "a1"


def test_there_points_at_the_earlier_place():
    resolved = resolve_followup("When did the mayor last go there?", [FIRST])
    assert resolved.asked == "When did the mayor last go in Kettlebrook?"


def test_he_points_at_the_earlier_person():
    turn = Turn(
        question="Who steered the ferry?",
        answer="Alma Reyes",
        sentence="Captain Alma Reyes steered the ferry.",
    )
    assert resolve_followup("How long did he take?", [turn]).asked.startswith(
        "How long did Alma Reyes take"
    )


def test_what_about_repeats_the_last_question_on_a_new_subject():
    resolved = resolve_followup("What about the orchard?", [FIRST])
    assert resolved.asked == "Where is the orchard held?"


def test_what_about_without_a_topic_adds_the_subject():
    turn = Turn(question="Which rivers flood most often?", answer="Tamar")
    assert resolve_followup("What about Syria?", [turn]).asked == (
        "Which rivers flood most often Syria?"
    )

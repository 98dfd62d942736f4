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
    assert resolved.asked == "When did the mayor last go to Kettlebrook?"
    stay = resolve_followup("What else happens there?", [FIRST])
    assert stay.asked == "What else happens in Kettlebrook?"


def test_there_without_a_place_answer_is_the_place_its_sentence_or_title_names():
    # A person answered, no place: "there" is the place the answer's article is about.
    turn = Turn(
        question="Who led the dive team?",
        answer="Ines Varga",
        sentence="The dive team was led on Monday by Ines Varga.",
        title="Divers count fish at Korlat Bay",
    )
    resolved = resolve_followup("When is she going back there?", [turn])
    assert resolved.asked == "When is Ines Varga going back to Korlat Bay?"
    # A day after "on" is no place, and neither is the person just named.
    untitled = Turn(
        question="Who led the dive team?",
        answer="Ines Varga",
        sentence="The dive team was led on Monday by Ines Varga.",
    )
    assert resolve_followup("Who else went there?", [untitled]).asked == "Who else went there?"


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


def test_question_naming_its_own_subject_starts_afresh_despite_an_empty_it():
    resolved = resolve_followup("How long did it take the runner to finish the marathon?", [FIRST])
    assert not resolved.is_followup
    assert resolved.asked == "How long did it take the runner to finish the marathon?"


def test_bare_it_without_a_subject_of_its_own_is_a_follow_up():
    assert resolve_followup("How much did it cost?", [FIRST]).is_followup


def test_person_pronoun_leans_on_the_earlier_turn_even_beside_a_subject():
    turn = Turn(question="Who won the race?", answer="Alma Reyes")
    assert resolve_followup("How much prize money did he get for the win?", [turn]).is_followup


def test_existential_there_is_not_a_place():
    resolved = resolve_followup("Were there any protests against the festival plan?", [FIRST])
    assert not resolved.is_followup


def test_references_resolve_by_kind_of_the_earlier_question():
    history = [
        Turn(question="Who runs the merged bakery company?", answer="Annelies de Wit"),
        Turn(question="Where will the bakery group be based?", answer="Utrecht"),
        Turn(question="Who won the Rotterdam race?", answer="Daniel Kiprotich"),
        Turn(question="How long did the winner take?", answer="2:05:41"),
    ]
    assert resolve_followup("How much prize money did he get?", history).asked == (
        "How much prize money did Daniel Kiprotich get?"
    )
    assert resolve_followup("What else happened there?", history).asked == (
        "What else happened in Utrecht?"
    )


def test_a_who_answer_is_a_person_even_after_a_place_word():
    turn = Turn(
        question="Who led the coral reef survey?",
        answer="Sarah Whitfield",
        sentence="The divers worked in Sarah Whitfield's team at Ningaloo.",
    )
    assert resolve_followup("When is she going back?", [turn]).asked == (
        "When is Sarah Whitfield going back?"
    )

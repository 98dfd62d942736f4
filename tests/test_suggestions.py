"""Example questions: made from sentence shapes in any article, deterministic, spread out."""

from __future__ import annotations

from retrieval.articles import Article
from retrieval.suggestions import article_questions, example_questions


def article(name: str, text: str) -> Article:
    return Article(id=name, title=name, source=f"{name}.txt", text=text)


FESTIVAL = article(
    "festival",
    "The harvest festival is held in Tarnowo every autumn. "
    "Olga Brenner, the festival's director, opened the event with a short speech. "
    "Volunteers planted 300 trees around the market square.",
)
BRIDGE = article(
    "bridge",
    "The Varna Footbridge is 212 meters long and crosses the river twice. "
    "The bridge was opened to walkers on Friday, May 9, after two years of work.",
)
SHIPYARD = article(
    "shipyard",
    "Norrhamn Yards signed a contract worth 90 million crowns. "
    "Its oldest welder, Tomas Lind, who is 58 years old, has worked there since school.",
)
EMPTY = article("empty", "Nothing much happened today. People went home early.")


def test_where_question_from_a_held_in_sentence():
    assert article_questions(FESTIVAL)[0] == "Where is the harvest festival held?"


def test_who_question_from_a_name_with_its_role():
    assert "Who is Olga Brenner?" in article_questions(FESTIVAL)


def test_how_many_question_from_a_counted_object():
    assert "How many trees were planted?" in article_questions(FESTIVAL)


def test_how_long_question_keeps_the_name_capitalized():
    assert "How long is the Varna Footbridge?" in article_questions(BRIDGE)


def test_when_question_from_a_dated_passive_sentence():
    assert "When was the bridge opened?" in article_questions(BRIDGE)


def test_how_much_and_how_old_questions():
    questions = article_questions(SHIPYARD)
    assert "How much is the contract worth?" in questions
    assert "How old is Tomas Lind?" in questions


def test_units_after_a_number_do_not_make_a_how_many_question():
    text = article("storm", "The storm lasted 9 hours. Prices rose 5 percent.")
    assert article_questions(text) == []


def test_article_without_a_known_shape_gives_nothing():
    assert article_questions(EMPTY) == []
    assert example_questions([EMPTY]) == []


def test_examples_take_each_articles_best_question_first():
    examples = example_questions([FESTIVAL, BRIDGE, SHIPYARD, EMPTY], limit=3)
    assert examples == [
        "Where is the harvest festival held?",
        "How long is the Varna Footbridge?",
        "How old is Tomas Lind?",
    ]


def test_examples_are_deterministic_and_limited():
    articles = [FESTIVAL, BRIDGE, SHIPYARD]
    assert example_questions(articles, limit=5) == example_questions(articles, limit=5)
    assert len(example_questions(articles, limit=5)) == 5
    assert example_questions(articles, limit=0) == []

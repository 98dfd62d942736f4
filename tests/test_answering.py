"""Tests of retrieval.answering: question types, candidate spans and span choice."""

from __future__ import annotations

import pytest

from retrieval.answering import (
    Answerer,
    Calibration,
    candidate_spans,
    choose_span,
    expected_type,
    idf_table,
)
from retrieval.embedding import FakeEmbedder
from retrieval.reader import ReadSpan
from retrieval.search import Searcher
from retrieval.store import load_index
from retrieval.text import content_stems
from tests.helpers import build_fake, write_corpus


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


# --- the reader path, with a stand-in reader ----------------------------------------------------


class WordReader:
    """Points at a fixed word wherever it occurs, with a score that grows down the list."""

    def __init__(self, word: str) -> None:
        self.word = word

    def read(self, question, passages):
        spans = []
        for i, passage in enumerate(passages):
            at = passage.find(self.word)
            if at < 0:
                spans.append(ReadSpan(i, 0, 0, "", float("-inf"), 0.0))
            else:
                end = at + len(self.word)
                spans.append(ReadSpan(i, at, end, passage[at:end], 5.0 + i, 1.0))
        return spans


@pytest.fixture(scope="module")
def small_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader")
    build_fake(write_corpus(root / "corpus"), root / "index")
    return load_index(root / "index")


def _retrieve(index, question: str):
    """The question's vector and its top three passages, as `QAEngine.ask` gets them."""
    return FakeEmbedder().embed([question])[0], Searcher(index, FakeEmbedder()).search(
        question, top_k=3
    )


def _answerer(index, reader):
    calibration = Calibration(
        selection={"margin": 1.0}, answerability={"bias": 0.0, "margin": 1.0}, threshold=0.5
    )
    return Answerer(index, idf_table([]), reader, calibration)


def test_reader_span_becomes_the_answer_with_article_offsets(small_index):
    answerer = _answerer(small_index, WordReader("Tobias Grant"))
    vector, hits = _retrieve(small_index, "Who is the mayor?")
    answer = answerer.answer("Who is the mayor?", vector, hits)
    article = small_index.documents.article(answer.article_id)
    assert answer.text == "Tobias Grant" == article.text[answer.start : answer.end]
    assert answer.sentence_start <= answer.start < answer.end <= answer.sentence_end
    assert "mayor" in answer.sentence
    assert 0.0 < answer.score < 1.0


def test_without_a_readable_span_the_heuristics_answer(small_index):
    answerer = _answerer(small_index, WordReader("no such words"))
    vector, hits = _retrieve(small_index, "Who steered the ferry?")
    assert answerer.answer("Who steered the ferry?", vector, hits).text == "Captain Alma Reyes"


def test_question_names_are_capitalized_words_after_the_first_and_numbers():
    from retrieval.answering import names_found, question_names

    names = question_names("When did Kerry visit Sochi in 2013?")
    assert names == {"kerry", "sochi", "2013"}
    assert names_found(names, "Kerry went to Moscow in 2013.") == pytest.approx(2 / 3)
    assert names_found(set(), "anything") == 1.0


def test_a_span_of_another_kind_of_quantity_is_never_the_answer(small_index):
    # "How far…?" read as the repair's cost: money, no length. It is kept only as the
    # closest guess, with no confidence, so the line refuses it.
    answerer = _answerer(small_index, WordReader("2.3 million"))
    question = "How far did the ferry sail across the bay?"
    vector, hits = _retrieve(small_index, question)
    answer = answerer.answer(question, vector, hits)
    assert answer.text == "2.3 million"
    assert answer.score == 0.0
    # The same span for a question about money keeps its confidence.
    cost = "How much did the repair of the ferry cost?"
    answer = answerer.answer(cost, *_retrieve(small_index, cost))
    assert answer.text == "2.3 million"
    assert answer.score > 0.0


def test_a_name_of_the_question_counts_when_the_article_title_holds_it(small_index):
    # "Students" is only in the title ("Students name a new asteroid"); the passage says
    # "Pupils". The title is part of the article: the name is found.
    answerer = _answerer(small_index, WordReader("3 kilometers"))
    question = "How wide is the asteroid the Students named?"
    vector, hits = _retrieve(small_index, question)
    sentences = answerer.score_sentences(question, vector, hits)
    (candidate,) = answerer.read_candidates(question, hits, sentences)
    assert "Students" not in candidate.hit.chunk.text
    assert candidate.features["names"] == 1.0

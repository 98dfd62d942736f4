"""Tests of retrieval.qa: the whole ask path, with the fake embedder and with the real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.errors import UserError
from retrieval.indexing import build_index
from retrieval.qa import QAEngine
from tests.helpers import build_fake, write_corpus

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "corpus"


@pytest.fixture(scope="module")
def fake_engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("qa")
    build_fake(write_corpus(root / "corpus"), root / "index")
    return QAEngine.open(root / "index")


def test_answer_offsets_slice_the_article(fake_engine):
    result = fake_engine.ask("Who steered the ferry?", threshold=0.0)
    answer = result.answer
    article = fake_engine.index.documents.article(answer.article_id)
    assert article.text[answer.start : answer.end] == answer.text == "Captain Alma Reyes"
    assert article.text[answer.sentence_start : answer.sentence_end] == answer.sentence
    assert answer.sentence_start <= answer.start < answer.end <= answer.sentence_end


def _hit(article, start: int, end: int):
    from retrieval.chunking import Chunk
    from retrieval.search import Hit

    chunk = Chunk(f"{article.id}:{start}", article.id, start, end, article.text[start:end])
    return Hit(chunk, article, 0.5, 0.5, 0.0)


def test_citations_number_the_passages_that_hold_the_answer_with_their_sentence():
    from retrieval.answering import Answer
    from retrieval.articles import Article
    from retrieval.qa import cite

    one = Article(
        "a1", "Talks", "one.txt", "The talks open today. They are held in Oslo.\nOslo is cold."
    )
    two = Article("a2", "Weather", "two.txt", "Snow fell overnight. Oslo is colder than Bergen.")
    other = Article("a3", "Sport", "three.txt", "A match was played in Bergen.")
    at = one.text.index("Oslo")
    sentence = (one.text.index("They"), one.text.index("\n"))
    answer = Answer("Oslo", one.text[slice(*sentence)], "a1", "Talks", "one.txt", at, at + 4,
                    *sentence, "a1:0", 0.8)  # fmt: skip
    passages = [_hit(other, 0, len(other.text)), _hit(two, 0, len(two.text)),
                _hit(one, 0, len(one.text))]  # fmt: skip
    cited = cite(answer, passages)
    # The passage read first, then the others that hold "Oslo", one citation per sentence.
    assert [(c.number, c.article_id) for c in cited] == [(3, "a1"), (2, "a2"), (3, "a1")]
    assert [(c.start, c.end) for c in cited] == [
        sentence,
        (two.text.index("Oslo"), len(two.text)),
        (one.text.index("Oslo is"), len(one.text)),
    ]
    for c, article in zip(cited, (one, two, one), strict=True):
        assert article.text[c.answer_start : c.answer_end] == "Oslo"
        assert c.start <= c.answer_start < c.answer_end <= c.end


def test_an_answer_is_cited_in_the_result_and_its_json(fake_engine):
    result = fake_engine.ask("Who steered the ferry?", threshold=0.0)
    first = result.citations[0]
    assert (first.article_id, first.start, first.end) == (
        result.answer.article_id,
        result.answer.sentence_start,
        result.answer.sentence_end,
    )
    assert result.passages[first.number - 1].article.id == first.article_id
    assert result.to_dict()["answer"]["citations"][0]["number"] == first.number
    assert fake_engine.ask("Who steered the ferry?", threshold=1.0).citations == ()


@pytest.mark.parametrize(
    ("bands", "word"), [((0.0, 0.0), "high"), ((1.01, 0.0), "medium"), ((1.01, 1.01), "low")]
)
def test_the_answer_carries_the_word_of_its_calibrated_band(fake_engine, monkeypatch, bands, word):
    from dataclasses import replace

    calibration = replace(fake_engine.answerer.calibration, bands=bands)
    monkeypatch.setattr(fake_engine.answerer, "calibration", calibration)
    result = fake_engine.ask("Who steered the ferry?", threshold=0.0)
    assert result.band == word == result.to_dict()["answer"]["band"]
    assert fake_engine.ask("Who steered the ferry?", threshold=1.0).band is None


def test_below_threshold_is_no_answer_but_keeps_the_best_guess(fake_engine):
    result = fake_engine.ask("Who steered the ferry?", threshold=1.0)
    assert result.answer is None
    assert result.best_guess is not None
    assert result.to_dict()["answer"] is None
    assert result.passages


def test_the_engine_runs_numpy_blas_on_one_thread(fake_engine):
    from threadpoolctl import threadpool_limits

    from tests.test_runtime import numpy_blas_threads

    with threadpool_limits(2, user_api="blas"):
        QAEngine(fake_engine.index, fake_engine.embedder)
        assert numpy_blas_threads() == [1] * len(numpy_blas_threads())


def test_timings_are_reported(fake_engine):
    timing = fake_engine.ask("Who steered the ferry?").timing_ms
    assert set(timing) == {"retrieve", "answer", "total"}


@pytest.mark.parametrize(
    "question",
    ["?!?...", "Где проходит встреча?", "会议在哪里举行？", "<script>alert(1)</script> ferry?"],
)
def test_odd_questions_get_an_answer_or_no_answer_never_a_crash(fake_engine, question):
    result = fake_engine.ask(question)
    assert result.question
    json.dumps(result.to_dict())


@pytest.mark.parametrize(
    ("question", "message"),
    [("", "the question is empty"), (" \n\t ", "the question is empty"),
     ("y" * 100_000, "the question is too long")],
)  # fmt: skip
def test_bad_questions_are_user_errors(fake_engine, question, message):
    with pytest.raises(UserError, match=message):
        fake_engine.ask(question)


def test_top_k_below_one_is_a_user_error(fake_engine):
    with pytest.raises(UserError, match="--top-k must be at least 1"):
        fake_engine.ask("ferry?", top_k=0)


def _answer_from(engine: QAEngine, question: str):
    answer = engine.ask(question, threshold=0.0).best_guess
    assert answer is not None
    return answer


def test_follow_up_gains_the_confidence_of_the_turn_it_leans_on(fake_engine):
    from dataclasses import replace

    from retrieval.conversation import Turn
    from retrieval.qa import carry_confidence

    answer = replace(_answer_from(fake_engine, "Who steered the ferry?"), score=0.4)
    same = Turn("Where did the ferry sail?", "Marwood", article_id=answer.article_id)
    assert carry_confidence(answer, replace(same, confidence=0.9)).score == pytest.approx(0.65)
    # Never lowered; nothing carried from another article or from a turn with no answer.
    assert carry_confidence(answer, replace(same, confidence=0.2)).score == 0.4
    other = replace(same, article_id="another", confidence=0.9)
    assert carry_confidence(answer, other).score == 0.4
    assert carry_confidence(answer, same).score == 0.4


def test_only_a_follow_up_carries_confidence(fake_engine):
    from dataclasses import replace

    first = fake_engine.ask("Who steered the ferry?", threshold=0.0)
    turn = first.to_turn()
    assert turn.confidence == first.answer.score
    sure, unsure = replace(turn, confidence=1.0), replace(turn, confidence=None)
    # A standalone question keeps its own confidence, even about the same article.
    again = fake_engine.ask("Who steered the ferry?", [sure], threshold=0.0)
    assert not again.resolved.is_followup
    assert again.best_guess.score == first.best_guess.score
    # A follow-up answered from that article: the mean of its own and the earlier one.
    own = fake_engine.ask("When did it sail?", [unsure], threshold=0.0).best_guess
    carried = fake_engine.ask("When did it sail?", [sure], threshold=0.0)
    assert carried.resolved.is_followup
    assert own.article_id == turn.article_id == carried.best_guess.article_id
    assert carried.best_guess.score == pytest.approx((own.score + 1.0) / 2, abs=1e-4)


# --- the real model on the sample corpus ----------------------------------------------------------


@pytest.fixture(scope="module")
def sample_engine(tmp_path_factory):
    index = tmp_path_factory.mktemp("sample") / "index"
    build_index([SAMPLE], index)
    return QAEngine.open(index)


@pytest.mark.slow
def test_meeting_question_answers_sochi_with_source_and_offsets(sample_engine):
    result = sample_engine.ask("Where is the meeting held?")
    answer = result.answer
    assert answer is not None
    assert answer.text == "Sochi"
    assert answer.source.endswith("corpus/kerry-visits-sochi.txt")
    article = sample_engine.index.documents.article(answer.article_id)
    assert article.text[answer.start : answer.end] == "Sochi"
    assert "Sochi" in answer.sentence and answer.sentence.endswith(".")


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    ["What is the capital of Peru?", "Who won the football World Cup in 1998?"],
)
def test_questions_outside_the_articles_get_no_answer(sample_engine, question):
    assert sample_engine.ask(question).answer is None


# Dialogues written for the sample corpus: each later question leans on the earlier turns.
DIALOGUES = [
    [
        ("Where is the meeting held?", {"Sochi"}),
        ("Who will attend it?", {"Putin", "Lavrov", "Kerry"}),
    ],
    [
        ("How long is the new rail tunnel?", {"41.6 kilometers"}),
        ("How much did it cost?", {"9.2 billion Swiss francs"}),
    ],
    [
        ("Who led the team that found the comet?", {"Valentina Ortega"}),
        ("Where does she work?", {"University of Santiago"}),
    ],
]


@pytest.mark.slow
@pytest.mark.parametrize("dialogue", DIALOGUES, ids=lambda d: d[0][0])
def test_follow_up_dialogues(sample_engine, dialogue):
    history = []
    for question, expected in dialogue:
        result = sample_engine.ask(question, history)
        assert result.answer is not None, question
        assert any(word in result.answer.text for word in expected), (question, result.answer)
        history.append(result.to_turn())


@pytest.mark.slow
def test_cli_build_ask_and_chat_with_a_follow_up(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = [sys.executable, "-m", "retrieval"]
    index = str(tmp_path / "index")
    build = subprocess.run(
        [*cli, "build", "--corpus", str(SAMPLE), "--index", index],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert "8 articles" in build.stdout
    ask = subprocess.run(
        [*cli, "ask", "--index", index, "--json", "Where is the meeting held?"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert json.loads(ask.stdout)["answer"]["text"] == "Sochi"
    chat = subprocess.run(
        [*cli, "chat", "--index", index, "--json"],
        input="Where is the meeting held?\nWho will attend it?\n",
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    first, second = (json.loads(line) for line in chat.stdout.splitlines())
    assert first["answer"]["text"] == "Sochi"
    assert any(name in second["answer"]["text"] for name in ("Putin", "Lavrov", "Kerry"))


# --- the real scraped page the product was described from (read from ../shared/seed) -----------

SEED = ROOT.parent / "shared" / "seed" / "kerry-russia-independent.txt"


@pytest.mark.slow
@pytest.mark.skipif(not SEED.is_file(), reason="../shared/seed is not beside this checkout")
@pytest.mark.parametrize("with_sample", [False, True], ids=["seed alone", "seed and sample"])
def test_seed_page_answers_the_meeting_question_above_the_line(tmp_path, with_sample):
    folder = tmp_path / "seed"
    folder.mkdir()
    (folder / SEED.name).write_bytes(SEED.read_bytes())
    build_index([folder, SAMPLE] if with_sample else [folder], tmp_path / "index")
    engine = QAEngine.open(tmp_path / "index")
    result = engine.ask("Where is the meeting held?")
    assert result.answer is not None, result.best_guess
    assert result.answer.text == "Sochi"
    if not with_sample:
        assert result.answer.source.endswith(SEED.name)

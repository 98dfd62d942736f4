"""Tests of retrieval.bench.natural: the natural-question set, its rules, and the overlap split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.articles import Article
from retrieval.bench import evaluate, format_table, squad_articles
from retrieval.bench.natural import (
    NATURAL_FILE,
    gold_spans,
    is_natural_file,
    load_natural,
    sentence_of,
    shared_run,
    word_overlap,
)
from retrieval.errors import UserError
from retrieval.text import sentence_spans
from tests.helpers import FAKE

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
TUNE = DATA / "squad-dev-tune.json"


def test_shared_run_counts_consecutive_content_words_by_hand():
    # content stems: [meet, held] vs [meet, held, sochi]: "meeting held" -> 2
    assert shared_run("Where is the meeting held?", "The meeting is held in Sochi.") == 2
    # "talks" and "Putin" both occur, but not next to each other in both
    assert shared_run("Talks with Putin?", "Putin opened the talks.") == 1
    assert shared_run("Who won?", "The ferry sailed.") == 0


def test_word_overlap_is_the_share_of_question_words_in_the_sentence():
    # question content stems: meet, held -> only "meet" in the sentence
    assert word_overlap("Where is the meeting held?", "The meeting starts soon.") == 0.5
    assert word_overlap("Where?", "Anything.") == 0.0


def test_every_occurrence_of_an_answer_is_a_gold_span():
    article = Article("a1", "t", "s", "Sochi hosts it. Then Sochi again, in Sochi.")
    spans = gold_spans(article, ["Sochi", "again"])
    assert [article.text[a:b] for a, b, _ in spans] == ["Sochi", "Sochi", "again", "Sochi"]


def test_sentence_of_finds_the_sentence_holding_a_position():
    text = "One two. Three four. Five."
    assert sentence_of(text, text.index("four")) == (9, 20)


def _natural_file(path: Path) -> Path:
    questions = [
        {"id": "n1", "collection": "squad-tune", "article": "Port_Wren",
         "question": "At what hour does the boat leave the harbour?", "answers": ["at dawn"],
         "held_out": True},
        {"id": "n2", "collection": "squad-tune", "article": "Port_Wren",
         "question": "Who is in charge of the boat?", "answers": ["Alma Reyes"],
         "held_out": False},
        {"id": "n3", "collection": "squad-tune", "article": "Port_Wren",
         "question": "How much does a ticket for the boat cost?", "answers": [],
         "held_out": True},
    ]  # fmt: skip
    path.write_text(json.dumps({"questions": questions}))
    return path


SQUAD = {
    "data": [
        {
            "title": "Port_Wren",
            "paragraphs": [
                {"context": "The ferry to Port Wren sails at dawn.", "qas": []},
                {"context": "Captain Alma Reyes steers the ferry.", "qas": []},
            ],
        }
    ]
}


def test_load_natural_picks_a_split(tmp_path):
    path = _natural_file(tmp_path / "natural.json")
    assert is_natural_file(path)
    assert [q.id for q in load_natural(path, "held-out")] == ["n1", "n3"]
    assert [q.id for q in load_natural(path, "fit")] == ["n2"]
    assert len(load_natural(path)) == 3


def test_bad_split_and_bad_files_are_user_errors(tmp_path):
    path = _natural_file(tmp_path / "natural.json")
    with pytest.raises(UserError, match="--split must be one of held-out, fit, all"):
        load_natural(path, "test")
    with pytest.raises(UserError, match="questions file not found"):
        load_natural(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text('{"questions": [{"id": "x"}]}')
    with pytest.raises(UserError, match="is not a natural-question file"):
        load_natural(tmp_path / "bad.json")


def test_eval_takes_a_natural_file_and_splits_by_word_overlap(tmp_path):
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps(SQUAD))
    natural = _natural_file(tmp_path / "natural.json")
    report = evaluate([squad], natural, config=FAKE, threshold=0.0, split="held-out")
    assert report["system"]["questions"] == 1
    assert report["abstention_same_topic"]["questions_unanswerable"] == 1
    # "At what hour does the boat leave the harbour?" shares nothing with its sentence
    assert set(report["system"]["by_overlap"]) == {"low"}
    assert report["config"]["split"] == "held-out"
    assert "| hybrid, low word overlap | 1 |" in format_table(report)


# --- the shipped set keeps its own rules ----------------------------------------------------


def test_shipped_set_holds_out_exactly_the_articles_the_reader_never_trained_on():
    from retrieval.reader import read_meta

    questions = load_natural()
    tune = [q for q in questions if q.collection == "squad-tune"]
    held = {q.article for q in tune if q.held_out}
    assert held == set(read_meta()["validation_articles"])
    assert all(not q.held_out for q in questions if q.collection != "squad-tune")
    for part in (True, False):
        kind = [q for q in tune if q.held_out == part]
        assert any(q.answers for q in kind) and any(not q.answers for q in kind)
    assert len({q.id for q in questions}) == len(questions)
    assert all(1 <= len(q.answers) <= 3 for q in questions if q.answers)
    assert {"corpus", "seed"} <= {q.collection for q in questions}


def test_corpus_answers_occur_verbatim_in_their_articles():
    for q in load_natural():
        if q.collection == "corpus":
            text = (ROOT / "corpus" / q.article).read_text(encoding="utf-8")
            assert all(answer in text for answer in q.answers), q


@pytest.mark.skipif(not TUNE.is_file(), reason="../shared/data is not beside this checkout")
def test_tune_answers_are_verbatim_and_questions_do_not_copy_their_sentence():
    articles = {a.source.removeprefix("squad:"): a for a in squad_articles([TUNE])[0]}
    for q in load_natural(NATURAL_FILE):
        if q.collection != "squad-tune":
            continue
        text = articles[q.article].text
        for answer in q.answers:
            assert answer in text, q
            for start, end in sentence_spans(text):
                if answer in text[start:end]:
                    assert shared_run(q.text, text[start:end]) <= 3, (q, text[start:end])

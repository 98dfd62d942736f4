"""Tests of retrieval.bench: SQuAD metrics by hand, offsets mapping, and a tiny whole run."""

from __future__ import annotations

import json

import pytest

from retrieval.articles import Article
from retrieval.bench import (
    Gold,
    evaluate,
    exact_match,
    f1_score,
    first_relevant_rank,
    format_table,
    normalize_answer,
    roc_auc,
    squad_articles,
    squad_questions,
)
from retrieval.chunking import Chunk
from retrieval.errors import UserError
from retrieval.search import Hit
from tests.helpers import FAKE


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  an   apple, a pear ", "apple pear"),
        ("Theatre", "theatre"),
        ("U.S.A.", "usa"),
    ],
)
def test_normalization_follows_squad(text, normalized):
    assert normalize_answer(text) == normalized


def test_exact_match_takes_the_best_gold():
    assert exact_match("the Denver Broncos", ["Broncos", "Denver Broncos"]) == 1.0
    assert exact_match("Broncos team", ["Denver Broncos"]) == 0.0


def test_f1_by_hand():
    # prediction "denver broncos team", gold "denver broncos": 2 shared tokens,
    # precision 2/3, recall 1, F1 = 2 * (2/3) / (2/3 + 1) = 0.8
    assert f1_score("Denver Broncos team", ["the Denver Broncos"]) == pytest.approx(0.8)
    assert f1_score("Carolina", ["Denver Broncos", "Carolina Panthers"]) == pytest.approx(2 / 3)
    assert f1_score("", ["x"]) == 0.0


def _hit(article_id: str, start: int, end: int) -> Hit:
    article = Article(article_id, "t", "s", "x" * 100)
    chunk = Chunk(f"{article_id}:{start}-{end}", article_id, start, end, "x" * (end - start))
    return Hit(chunk, article, 1.0, 0.0, 0.0)


def test_a_passage_counts_only_when_its_offsets_hold_the_whole_gold_span():
    golds = [Gold("a", 40, 50, "x")]
    hits = [_hit("a", 0, 45), _hit("b", 30, 60), _hit("a", 30, 60)]
    assert first_relevant_rank(hits, golds) == 3
    assert first_relevant_rank(hits[:2], golds) is None


def test_auc_by_hand():
    assert roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert roc_auc([0.1], [0.9]) == 0.0
    # 0.5 ties with 0.5: counts half; 0.5 beats 0.2 -> (0.5 + 1) / 2
    assert roc_auc([0.5], [0.5, 0.2]) == pytest.approx(0.75)


SQUAD = {
    "data": [
        {
            "title": "Port_Wren",
            "paragraphs": [
                {
                    "context": "The ferry to Port Wren sails at dawn.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "When does the ferry sail?",
                            "answers": [{"text": "at dawn", "answer_start": 29}],
                        }
                    ],
                },
                {
                    "context": "Captain Alma Reyes steers the ferry.",
                    "qas": [
                        {
                            "id": "q2",
                            "question": "Who steers the ferry?",
                            "answers": [{"text": "Alma Reyes", "answer_start": 8}],
                        },
                        {"id": "q3", "question": "Who owns it?", "answers": [],
                         "is_impossible": True},
                    ],
                },
            ],
        }
    ]
}  # fmt: skip
OTHER = {
    "data": [
        {
            "title": "Kettlebrook",
            "paragraphs": [
                {
                    "context": "The apple festival began in 1987.",
                    "qas": [
                        {
                            "id": "q9",
                            "question": "When did the apple festival begin?",
                            "answers": [{"text": "1987", "answer_start": 28}],
                        }
                    ],
                }
            ],
        }
    ]
}


@pytest.fixture
def files(tmp_path):
    squad, other = tmp_path / "squad.json", tmp_path / "other.json"
    squad.write_text(json.dumps(SQUAD))
    other.write_text(json.dumps(OTHER))
    return squad, other


def test_gold_offsets_map_through_the_joined_paragraphs(files):
    articles, where = squad_articles([files[0]])
    (article,) = articles
    assert article.text.split("\n\n")[1] == "Captain Alma Reyes steers the ferry."
    answerable, impossible = squad_questions(files[0], articles, where)
    gold = answerable[1].golds[0]
    assert article.text[gold.start : gold.end] == "Alma Reyes"
    assert [q.id for q in impossible] == ["q3"]


def test_unanswerable_questions_only_count_for_indexed_articles(files):
    articles, where = squad_articles([files[0]])
    answerable, impossible = squad_questions(files[0], [], where)
    # About an article outside the index: not "same topic", and no gold spans to find.
    assert impossible == []
    assert [q.id for q in answerable] == ["q1", "q2"]
    assert all(not q.golds for q in answerable)


def test_a_whole_run_reports_every_metric(files):
    squad, other = files
    report = evaluate([squad], squad, other, config=FAKE, threshold=0.0)
    for metrics in (report["system"], *report["baselines"].values()):
        assert metrics["questions"] == 2
        assert metrics["recall@10"] == 1.0  # one short article: its passage is always found
        assert 0.0 <= metrics["f1"] <= 1.0
    assert set(report["abstention"]) >= {
        "auc", "abstain_rate_unanswerable", "answer_rate_answerable", "threshold"
    }  # fmt: skip
    assert report["abstention_same_topic"]["questions_unanswerable"] == 1
    assert report["build"]["articles"] == 1
    assert "| hybrid (system) |" in format_table(report)
    # Every question asked is counted under the word its answer was shown with: 2 answerable,
    # 1 out-of-corpus and 1 same-topic, all answered at threshold 0.
    assert sum(b["answers"] for b in report["bands"].values()) == 4
    assert "answers right, by the confidence word shown:" in format_table(report)
    # Each set of span rules is measured on the same answers; with none, they are the answers.
    rules = report["system"]["span_rules"]
    assert set(rules) == {"none", "sentence", "unit", "title", "name", "all"}
    assert rules["none"]["f1"] == report["system"]["f1"]
    assert "EM / F1 of the system's answers by span rules: none" in format_table(report)


def test_band_precision_counts_answers_to_unanswerable_questions_as_wrong():
    from retrieval.bench import Outcome, band_precision

    outcomes = [
        Outcome(answered=True, band="high", f1=1.0),
        Outcome(answered=True, band="high", f1=0.0),  # e.g. an answer where there is none
        Outcome(answered=True, band="medium", f1=0.6),
        Outcome(answered=False, band=None, f1=0.0),  # refused: shown with no word
    ]
    assert band_precision(outcomes) == {
        "high": {"answers": 2, "right": 0.5},
        "medium": {"answers": 1, "right": 1.0},
        "low": {"answers": 0, "right": None},
    }


def test_unanswerable_file_about_indexed_articles_is_refused(files):
    with pytest.raises(UserError, match="--unanswerable must be about articles that are not"):
        evaluate([files[0]], files[0], files[0], config=FAKE)


def test_missing_squad_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="SQuAD file not found"):
        evaluate([tmp_path / "nope.json"], tmp_path / "nope.json", config=FAKE)

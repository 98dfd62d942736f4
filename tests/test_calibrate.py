"""Tests of retrieval.calibrate: the logistic fit and the threshold choice."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retrieval.calibrate import best_threshold, calibration_questions, fit_logistic


def test_logistic_fit_separates_and_applies_to_raw_features():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(5.0, 1.0, (200, 1)), rng.normal(1.0, 1.0, (200, 1))])
    y = np.array([1.0] * 200 + [0.0] * 200)
    w = fit_logistic(x, y, l2=0.01)
    logits = x[:, 0] * w[0] + w[1]
    assert w[0] > 0
    # The boundary sits half-way between the two means, on the raw scale.
    assert -w[1] / w[0] == pytest.approx(3.0, abs=0.3)
    assert ((logits > 0) == (y == 1)).mean() > 0.95


def test_threshold_balances_answering_and_refusing():
    answerable = [0.9, 0.8, 0.7, 0.6, 0.2]
    unanswerable = [0.1, 0.3, 0.4, 0.65, 0.05]
    t = best_threshold(answerable, unanswerable)
    answered = np.mean([s >= t for s in answerable])
    refused = np.mean([s < t for s in unanswerable])
    assert min(answered, refused) == 0.8


def _squad_file(path, titles, impossible_per_paragraph=0):
    data = []
    for title in titles:
        paragraphs = []
        for p in range(2):
            context = f"{title} paragraph {p} says the count was {p + 3}."
            qas = [
                {
                    "id": f"{title}/{p}/a",
                    "question": f"What was the count in {title} paragraph {p}?",
                    "answers": [{"text": str(p + 3), "answer_start": context.index(str(p + 3))}],
                }
            ]
            qas += [
                {
                    "id": f"{title}/{p}/x{k}",
                    "question": f"What was the colour in {title} paragraph {p}?",
                    "answers": [],
                    "is_impossible": True,
                }
                for k in range(impossible_per_paragraph)
            ]
            paragraphs.append({"context": context, "qas": qas})
        data.append({"title": title, "paragraphs": paragraphs})
    path.write_text(json.dumps({"version": "test", "data": data}))
    return path


@pytest.mark.parametrize("trained", [[], ["Topic_1", "Topic_2"]])
def test_calibration_asks_same_topic_questions_the_reader_never_trained_on(tmp_path, trained):
    titles = [f"Topic_{i}" for i in range(14)]  # underscores: titles differ from sources
    tune = _squad_file(tmp_path / "v1.json", titles)
    tune2 = _squad_file(tmp_path / "v2.json", titles[:4], impossible_per_paragraph=2)
    chosen = calibration_questions(tune, tune2, limit=100, seed=0, trained=trained)

    indexed = {a.source.removeprefix("squad:") for a in chosen.indexed}
    # the 4 SQuAD 2.0 articles and 10 // 2 - 4 of the 10 others
    assert set(titles[:4]) <= indexed and len(indexed) == 4 + 1
    unseen = set(titles[:4]) - set(trained)
    assert set(chosen.same_topic_articles) == unseen
    asked = {q.id.split("/")[0] for q in chosen.same_topic}
    assert asked == unseen and len(chosen.same_topic) == 4 * len(unseen)
    assert all(not q.golds for q in chosen.same_topic)
    assert {q.id.split("/")[0] for q in chosen.answerable} == indexed
    assert {q.id.split("/")[0] for q in chosen.outside} == set(titles) - indexed
    assert all(q.golds for q in chosen.answerable + chosen.outside)


def _question(rng, right: bool, strength: float) -> list[tuple[dict, float]]:
    from retrieval.calibrate import SELECTION_FEATURES

    features = {name: float(rng.normal(0.0, 1.0)) for name in SELECTION_FEATURES}
    features["margin"] = strength + float(rng.normal(0.0, 1.0))
    return [(features, 1.0 if right else 0.0)]


def test_fit_keeps_refusing_the_promised_share_of_out_of_corpus_questions():
    from retrieval.calibrate import OUTSIDE_REFUSED, QUESTION_KINDS, confidences, fit

    rng = np.random.default_rng(0)
    kinds = {name: [] for name in QUESTION_KINDS}
    # Each answerable question: a right span the reader is sure of and a wrong one.
    kinds["answerable"] = [
        _question(rng, True, 3.0) + _question(rng, False, 0.0) for _ in range(200)
    ]
    kinds["outside"] = [_question(rng, False, 0.0) for _ in range(200)]
    # Held-out questions that look like out-of-corpus ones pull the balanced line down...
    kinds["held_out"] = [_question(rng, True, 0.5) for _ in range(50)]
    kinds["held_out_unanswerable"] = [_question(rng, False, 0.0) for _ in range(20)]
    calibration = fit(kinds, natural_weight=4.0)
    refused = np.mean(
        [c < calibration.threshold for c in confidences(calibration, kinds["outside"])]
    )
    # ...but never below the share of out-of-corpus questions the line must refuse.
    assert refused >= OUTSIDE_REFUSED - 0.01
    assert calibration.selection["margin"] > 0 and calibration.answerability["margin"] > 0


def test_bands_are_the_lowest_floors_that_keep_each_set_right_often_enough():
    from retrieval.answering import Calibration
    from retrieval.calibrate import BAND_MARGIN, band_precision, choose_bands

    calibration = Calibration({}, {}, 0.1)
    # SQuAD-like answers are right from 0.40 up. Natural ones: always from 0.80 up,
    # four in five from 0.40 to 0.80, never below.
    squad = [(c / 100, c >= 40) for c in range(10, 100)]
    natural = [(c / 100, c >= 80 or (c >= 40 and c % 5 != 0)) for c in range(10, 100)]
    sets = (squad, natural)
    high, medium = choose_bands(calibration, sets)
    assert 0.40 <= medium < high < 0.80
    edges = {"high": (high, 1.01), "medium": (medium, high)}
    for band, target in (("high", 0.90), ("medium", 0.70)):
        low, top = edges[band]
        assert all(band_precision(rows, low, top) >= target + BAND_MARGIN for rows in sets)
        # The lowest such floor: one step lower, some set falls short.
        lower = round(low - 0.01, 2)
        assert min(band_precision(rows, lower, top) for rows in sets) < target + BAND_MARGIN
    shown = Calibration({}, {}, 0.1, (high, medium))
    assert [shown.band(c) for c in (0.95, (medium + high) / 2, medium - 0.01)] == [
        "high",
        "medium",
        "low",
    ]


def test_a_band_no_floor_achieves_is_never_shown():
    from retrieval.answering import Calibration
    from retrieval.calibrate import choose_bands

    coin = [(c / 100, c % 2 == 0) for c in range(10, 100)]  # right half the time anywhere
    high, medium = choose_bands(Calibration({}, {}, 0.1), [coin])
    assert high > 1.0 and medium > 1.0
    assert Calibration({}, {}, 0.1, (high, medium)).band(0.99) == "low"


def test_natural_questions_the_reader_trained_on_are_never_fitted_as_indexed(tmp_path):
    from retrieval.bench.natural import NaturalQuestion

    titles = [f"Topic_{i}" for i in range(14)]
    tune = _squad_file(tmp_path / "v1.json", titles)
    tune2 = _squad_file(tmp_path / "v2.json", titles[:4], impossible_per_paragraph=2)
    natural = [NaturalQuestion(f"n{i}", "squad-tune", t, f"How big was {t}?", ("3",), False)
               for i, t in enumerate(titles)]  # fmt: skip
    plain = calibration_questions(tune, tune2, limit=100, seed=0, natural=natural)
    assert {q.id for q in plain.natural} == {"n0", "n1", "n2", "n3", plain.natural[-1].id}
    guarded = calibration_questions(tune, tune2, limit=100, seed=0, natural=natural,
                                    natural_trained=["Topic_1"])  # fmt: skip
    assert "n1" not in {q.id for q in guarded.natural}
    assert len(guarded.natural) == len(plain.natural) - 1


def test_evidence_is_reused_only_for_the_same_reader_and_questions(tmp_path, monkeypatch):
    from retrieval import calibrate
    from retrieval.bench import Question
    from retrieval.calibrate import QUESTION_KINDS, CalibrationSet, gathered

    asked = []

    def gather(plan):
        asked.append(plan)
        return {name: [[({"span": 1.0}, 1.0)]] for name in QUESTION_KINDS}

    monkeypatch.setattr(calibrate, "gather", gather)
    plan = CalibrationSet([], [Question("q1", "Who?", ())], [], [], [])
    evidence = tmp_path / "evidence.json"
    first = gathered(plan, evidence, {"date": "one"})
    assert gathered(plan, evidence, {"date": "one"}) == json.loads(json.dumps(first))
    assert len(asked) == 1  # the second fit read the file
    gathered(plan, evidence, {"date": "two"})  # another reader: asked again
    other = CalibrationSet([], [Question("q2", "Who?", ())], [], [], [])
    gathered(other, evidence, {"date": "two"})  # other questions: asked again
    assert len(asked) == 3


def test_the_reader_s_validation_articles_give_the_unseen_squad_questions(tmp_path):
    titles = [f"Topic_{i}" for i in range(14)]
    tune = _squad_file(tmp_path / "v1.json", titles)
    tune2 = _squad_file(tmp_path / "v2.json", titles[:4], impossible_per_paragraph=2)
    chosen = calibration_questions(tune, tune2, limit=100, seed=0, validation=["Topic_2"])
    assert {q.id.split("/")[0] for q in chosen.unseen} == {"Topic_2"}
    assert len(chosen.unseen) == 2 and all(q.golds for q in chosen.unseen)
    assert calibration_questions(tune, tune2, limit=100, seed=0).unseen == []

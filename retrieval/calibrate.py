"""`make calibrate`: fit how answers are chosen and how sure to be, on the tune half only.

The tune half's articles are split in two: part A is indexed, part B is not.
Part A's questions give answerable examples; part B's questions are about
articles outside the index (they should get no answer), and the SQuAD 2.0 tune
questions marked impossible are about part A's own articles (the hard case); never
those of articles whose impossible questions the reader was trained on.
Two logistic regressions are fitted on the evidence of every read span:
`selection` (is this span the answer?) and `answerability` (does the index
answer this question at all?, the confidence the answerer shows), and the
shipped threshold is the answerability that best balances answering part A's
questions against refusing part B's. The
result goes to `retrieval/reader/calibration.json`, which the answerer loads.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import tempfile
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.answering import CALIBRATION_FILE, Calibration, evidence_confidence
from retrieval.articles import Article
from retrieval.bench import (
    Question,
    f1_score,
    sample,
    squad_articles,
    squad_questions,
    squad_title,
)
from retrieval.reader import read_meta
from retrieval.store import atomic_write_text

log = logging.getLogger(__name__)

SELECTION_FEATURES = ("margin", "span", "sentence", "dense", "lexical", "passage", "rank")
ANSWERABILITY_FEATURES = SELECTION_FEATURES + (
    "top_passage", "top_sentence", "top_lexical", "missing", "covered"
)  # fmt: skip


def fit_logistic(rows: np.ndarray, labels: np.ndarray, l2: float = 1.0) -> np.ndarray:
    """Weights (bias last) of an L2-regularized logistic regression, by Newton's method.

    Features are standardized for the fit and the weights mapped back, so they
    apply to raw features.
    """
    mean, scale = rows.mean(axis=0), rows.std(axis=0) + 1e-9
    x = np.hstack([(rows - mean) / scale, np.ones((len(rows), 1))])
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - labels) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    raw = w[:-1] / scale
    return np.append(raw, w[-1] - (w[:-1] * mean / scale).sum())


def as_weights(names: Sequence[str], w: np.ndarray) -> dict[str, float]:
    return {**{n: round(float(v), 6) for n, v in zip(names, w[:-1], strict=True)},
            "bias": round(float(w[-1]), 6)}  # fmt: skip


def best_threshold(positive: Sequence[float], negative: Sequence[float]) -> float:
    """The confidence that maximizes the smaller of answer rate and refusal rate."""
    candidates = sorted(set(positive) | set(negative))
    pos, neg = np.asarray(positive), np.asarray(negative)
    best, best_value = 0.5, -1.0
    for t in candidates:
        value = min((pos >= t).mean(), (neg < t).mean())
        if value > best_value:
            best, best_value = t, value
    return round(float(best), 4)


def collect(engine, questions: Sequence[Question], top_k: int) -> list[list[tuple[dict, float]]]:
    """For each question, the read spans' features with their F1 against the gold answers."""
    gathered = []
    for question in questions:
        vector = engine.embedder.embed([question.text])
        hits = engine.searcher.search_batch([question.text], top_k, "hybrid", vector)[0]
        sentences = engine.answerer.score_sentences(question.text, vector[0], hits)
        candidates = engine.answerer.read_candidates(question.text, hits, sentences)
        evidence = engine.answerer.question_evidence(question.text, hits, sentences)
        golds = [g.text for g in question.golds]
        rows = []
        for c in candidates:
            text = c.hit.article.text[c.start : c.end]
            rows.append(({**c.features, **evidence}, f1_score(text, golds) if golds else 0.0))
        gathered.append(rows)
    return gathered


@dataclass(frozen=True)
class CalibrationSet:
    """What `make calibrate` indexes and asks."""

    indexed: list[Article]  # part A
    answerable: list[Question]  # about part A
    outside: list[Question]  # about part B, which is not indexed
    same_topic: list[Question]  # SQuAD 2.0 unanswerable, about part A articles
    same_topic_articles: list[str]


def calibration_questions(
    tune: Path, tune2: Path, limit: int, seed: int, trained: Collection[str] = ()
) -> CalibrationSet:
    """Part A: the SQuAD 2.0 articles and a few others; part B: the rest of the tune half.

    The same-topic questions come from part A's SQuAD 2.0 articles, except those in
    `trained`: the articles whose unanswerable questions the reader was trained on
    (``reader.json``'s ``same_topic_articles``, when trained with ``--same-topic``).
    """
    articles, where = squad_articles([tune])
    hard_topics = {a.title for a in squad_articles([tune2])[0]}
    rest = [a for a in articles if a.title not in hard_topics]
    random.Random(seed).shuffle(rest)
    part_a = [a for a in articles if a.title in hard_topics] + rest[: max(0, len(rest) // 2 - 4)]
    part_b = [a for a in articles if a not in part_a]
    answerable, _ = squad_questions(tune, part_a, where)
    answerable = sample([q for q in answerable if q.golds], limit, seed)
    outside_all, _ = squad_questions(tune, part_b, where)
    # Questions with gold spans in part B: part A's come back without any.
    outside = sample([q for q in outside_all if q.golds], limit, seed)
    trained = set(trained)
    unseen = [a for a in part_a if a.title in hard_topics and squad_title(a) not in trained]
    _, same_topic = squad_questions(tune2, unseen, where)
    return CalibrationSet(
        part_a,
        answerable,
        outside,
        sample(same_topic, limit, seed),
        sorted(squad_title(a) for a in unseen),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m retrieval.calibrate", description=__doc__)
    parser.add_argument("--data", default="../shared/data", help="folder of the SQuAD files")
    parser.add_argument("--out", default=str(CALIBRATION_FILE))
    parser.add_argument("--limit", type=int, default=800, help="questions of each kind")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = Path(args.data)
    tune, tune2 = data / "squad-dev-tune.json", data / "squad2-dev-tune.json"

    from tqdm import tqdm

    from retrieval.indexing import build_index_from_articles
    from retrieval.qa import QAEngine

    started = time.perf_counter()
    trained = read_meta().get("same_topic_articles", [])
    plan = calibration_questions(tune, tune2, args.limit, args.seed, trained)
    log.info("index %d tune articles; %d answerable, %d outside, %d same-topic questions",
             len(plan.indexed), len(plan.answerable), len(plan.outside),
             len(plan.same_topic))  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="article-qa-calibrate-") as scratch:
        build_index_from_articles(plan.indexed, Path(scratch) / "index")
        engine = QAEngine.open(Path(scratch) / "index")
        kinds = {}
        for name, questions in (("answerable", plan.answerable), ("outside", plan.outside),
                                ("same_topic", plan.same_topic)):  # fmt: skip
            kinds[name] = collect(engine, tqdm(questions, desc=name, leave=False), top_k=5)

    # Selection: which of a question's read spans is right (F1 >= 0.5 with a gold answer).
    rows = [(f, f1 >= 0.5) for question in kinds["answerable"] for f, f1 in question]
    x = np.array([[f[n] for n in SELECTION_FEATURES] for f, _ in rows])
    selection = as_weights(SELECTION_FEATURES, fit_logistic(x, np.array([y for _, y in rows])))
    calibration = Calibration(selection, {}, 0.5)

    def chosen(question: list[tuple[dict, float]]) -> dict | None:
        return max((f for f, _ in question), key=calibration.select, default=None)

    # Answerability: the chosen span's evidence, answerable (1) against both kinds of no (0).
    examples = [(chosen(q), 1.0) for q in kinds["answerable"]] + [
        (chosen(q), 0.0) for name in ("outside", "same_topic") for q in kinds[name]
    ]
    examples = [(f, y) for f, y in examples if f is not None]
    x = np.array([[f[n] for n in ANSWERABILITY_FEATURES] for f, _ in examples])
    weights = as_weights(
        ANSWERABILITY_FEATURES, fit_logistic(x, np.array([y for _, y in examples]))
    )
    calibration = Calibration(selection, weights, 0.5)

    def confidences(name: str) -> list[float]:
        return [
            0.0 if (features := chosen(q)) is None else calibration.confidence(features)
            for q in kinds[name]
        ]

    def evidence(name: str) -> list[float]:
        """The hand-set sentence-evidence confidence, reported for comparison."""
        return [
            0.0
            if (f := chosen(q)) is None
            else evidence_confidence(f["dense"], f["passage"], f["lexical"], 1.0)
            for q in kinds[name]
        ]

    threshold = best_threshold(confidences("answerable"), confidences("outside"))
    from retrieval.bench import roc_auc

    report = {
        "selection": selection,
        "answerability": weights,
        "threshold": threshold,
        "fitted_on": {
            "data": "squad-dev-tune.json and squad2-dev-tune.json (tune half only)",
            "indexed_articles": len(plan.indexed),
            "same_topic_articles": plan.same_topic_articles,
            "questions": {name: len(q) for name, q in kinds.items()},
            "evidence_auc_outside": round(roc_auc(evidence("answerable"), evidence("outside")), 4),
            "evidence_auc_same_topic": round(
                roc_auc(evidence("answerable"), evidence("same_topic")), 4
            ),
            "auc_outside": round(roc_auc(confidences("answerable"), confidences("outside")), 4),
            "auc_same_topic": round(
                roc_auc(confidences("answerable"), confidences("same_topic")), 4
            ),
            "minutes": round((time.perf_counter() - started) / 60, 1),
        },
    }
    atomic_write_text(Path(args.out), json.dumps(report, indent=2) + "\n")
    log.info("%s", json.dumps(report["fitted_on"]))
    log.info("wrote %s (threshold %.4f)", args.out, threshold)


if __name__ == "__main__":
    main()

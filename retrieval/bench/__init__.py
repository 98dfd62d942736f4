"""The SQuAD benchmark behind `article-qa eval`.

SQuAD articles become the corpus (an article is its paragraphs joined by a
blank line, so a gold answer's position is its paragraph's offset plus its
`answer_start`), indexed with the normal build code into a temporary index.
A seeded sample of questions is asked through the whole `ask` path, and the
hybrid system is compared with dense-only and BM25-only retrieval on the same
index. Retrieval counts a passage as found when its offsets contain a gold
answer span; answers are scored with the official SQuAD normalization.
"""

from __future__ import annotations

import json
import random
import re
import string
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.articles import Article, article_id
from retrieval.bench.natural import (
    LOW_OVERLAP,
    NaturalQuestion,
    gold_spans,
    is_natural_file,
    load_natural,
    sentence_of,
    word_overlap,
)
from retrieval.errors import UserError
from retrieval.search import Hit, Mode
from retrieval.spans import ALL_RULES, refine_span
from retrieval.store import IndexConfig, current_version, drop_collections, read_manifest

if TYPE_CHECKING:
    from retrieval.indexing import BuildReport

SYSTEMS: tuple[Mode, ...] = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class Gold:
    article_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    golds: tuple[Gold, ...]  # empty: the articles do not answer it


@dataclass
class Outcome:
    """What one system did with one question."""

    ranks: list[int | None] = field(default_factory=list)
    sentence_hit: bool = False
    exact: float = 0.0
    f1: float = 0.0
    score: float = 0.0
    answered: bool = False
    ms: float = 0.0
    band: str | None = None  # the confidence word shown with the answer
    # (exact, f1) of the answer after each set of span rules (`SPAN_VARIANTS`)
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)


# --- SQuAD files --------------------------------------------------------------------------------


def read_squad(path: str | Path) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return list(data["data"])
    except FileNotFoundError:
        raise UserError(f"SQuAD file not found: {path}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path} is not a SQuAD json file ({type(error).__name__})") from None


def squad_articles(files: Sequence[str | Path]) -> tuple[list[Article], dict[tuple[str, str], int]]:
    """Articles of the files, and where each (title, paragraph) starts in its article's text."""
    articles: list[Article] = []
    where: dict[tuple[str, str], int] = {}
    seen: set[str] = set()
    for path in files:
        for entry in read_squad(path):
            title = entry["title"]
            if title in seen:
                continue
            seen.add(title)
            offset = 0
            parts = []
            for paragraph in entry["paragraphs"]:
                where[(title, paragraph["context"])] = offset
                parts.append(paragraph["context"])
                offset += len(paragraph["context"]) + 2
            text = "\n\n".join(parts)
            source = f"squad:{title}"
            articles.append(
                Article(article_id(source, text), title.replace("_", " "), source, text)
            )
    return articles, where


def squad_title(article: Article) -> str:
    """The SQuAD title an article was made from (its display title has spaces for "_")."""
    return article.source.removeprefix("squad:")


def squad_questions(
    path: str | Path, articles: Sequence[Article], where: dict[tuple[str, str], int]
) -> tuple[list[Question], list[Question]]:
    """(answerable, unanswerable) questions of a SQuAD 1.1 or 2.0 file, gold spans mapped.

    Answerable questions come back for every article, with gold spans only where the
    article is among `articles`; unanswerable ones only for `articles`, since they are
    the "same topic" kind: about an indexed article that does not hold the answer.
    """
    by_title = {squad_title(a): a for a in articles}
    answerable: list[Question] = []
    impossible: list[Question] = []
    for entry in read_squad(path):
        article = by_title.get(entry["title"])
        for paragraph in entry["paragraphs"]:
            offset = where.get((entry["title"], paragraph["context"])) if article else None
            for qa in paragraph["qas"]:
                if qa.get("is_impossible"):
                    if article is not None:
                        impossible.append(Question(qa["id"], qa["question"], ()))
                    continue
                golds = ()
                if article is not None and offset is not None:
                    golds = tuple(
                        Gold(
                            article.id,
                            offset + a["answer_start"],
                            offset + a["answer_start"] + len(a["text"]),
                            a["text"],
                        )
                        for a in qa["answers"]
                    )
                answerable.append(Question(qa["id"], qa["question"], golds))
    return answerable, impossible


def natural_squad_questions(
    questions: Sequence[NaturalQuestion], articles: Sequence[Article]
) -> tuple[list[Question], list[Question]]:
    """(answerable, same-topic unanswerable) natural questions about the indexed SQuAD articles.

    A gold span is every occurrence of an answer string in its article.
    """
    by_title = {squad_title(a): a for a in articles}
    answerable: list[Question] = []
    impossible: list[Question] = []
    for q in questions:
        article = by_title.get(q.article) if q.collection == "squad-tune" else None
        if article is None:
            continue
        if not q.answers:
            impossible.append(Question(q.id, q.text, ()))
            continue
        golds = tuple(Gold(article.id, a, b, t) for a, b, t in gold_spans(article, q.answers))
        answerable.append(Question(q.id, q.text, golds))
    return answerable, impossible


def question_overlap(question: Question, articles: dict[str, Article]) -> float:
    """How much of the question its answer's sentence holds: the most of any gold's sentence."""
    best = 0.0
    for gold in question.golds:
        text = articles[gold.article_id].text
        start, end = sentence_of(text, gold.start)
        best = max(best, word_overlap(question.text, text[start:end]))
    return best


# --- metrics ------------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """SQuAD's official normalization: lower case, no punctuation, articles or extra spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    return max(
        (float(normalize_answer(prediction) == normalize_answer(g)) for g in golds), default=0.0
    )


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    def one(gold: str) -> float:
        predicted = normalize_answer(prediction).split()
        truth = normalize_answer(gold).split()
        common = Counter(predicted) & Counter(truth)
        same = sum(common.values())
        if same == 0:
            return 0.0
        precision, recall = same / len(predicted), same / len(truth)
        return 2 * precision * recall / (precision + recall)

    return max((one(g) for g in golds), default=0.0)


def contains_gold(article: str, start: int, end: int, golds: Sequence[Gold]) -> bool:
    """Whether [start, end) of `article` holds a whole gold answer span."""
    return any(g.article_id == article and start <= g.start and g.end <= end for g in golds)


def first_relevant_rank(hits: Sequence[Hit], golds: Sequence[Gold]) -> int | None:
    for rank, hit in enumerate(hits, 1):
        if contains_gold(hit.article.id, hit.chunk.start, hit.chunk.end, golds):
            return rank
    return None


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    scores = np.concatenate([positives, negatives])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    positive_ranks = ranks[: len(positives)].sum()
    n_pos, n_neg = len(positives), len(negatives)
    return float((positive_ranks - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def summarize(outcomes: Sequence[Outcome]) -> dict[str, float]:
    def recall(k: int) -> float:
        return float(np.mean([o.ranks[0] is not None and o.ranks[0] <= k for o in outcomes]))

    def reciprocal(o: Outcome) -> float:
        rank = o.ranks[0]
        return 1.0 / rank if rank is not None and rank <= 10 else 0.0

    times = [o.ms for o in outcomes]
    spans = {
        name: {
            "exact_match": float(np.mean([o.spans.get(name, (0.0, 0.0))[0] for o in outcomes])),
            "f1": float(np.mean([o.spans.get(name, (0.0, 0.0))[1] for o in outcomes])),
        }
        for name in SPAN_VARIANTS
    }
    return {
        "span_rules": spans,
        "questions": len(outcomes),
        "recall@1": recall(1),
        "recall@5": recall(5),
        "recall@10": recall(10),
        "mrr@10": float(np.mean([reciprocal(o) for o in outcomes])),
        "sentence_accuracy": float(np.mean([o.sentence_hit for o in outcomes])),
        "exact_match": float(np.mean([o.exact for o in outcomes])),
        "f1": float(np.mean([o.f1 for o in outcomes])),
        "answer_rate": float(np.mean([o.answered for o in outcomes])),
        # Answered at the line with a right short span (SQuAD F1 >= 0.5 with a gold answer).
        "right": float(np.mean([o.answered and o.f1 >= 0.5 for o in outcomes])),
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
    }


BANDS = ("high", "medium", "low")
# The span rules measured side by side in every run (README, "Spans").
SPAN_VARIANTS = {
    "none": frozenset(),
    **{rule: frozenset({rule}) for rule in sorted(ALL_RULES)},
    "all": ALL_RULES,
}


def band_precision(outcomes: Sequence[Outcome]) -> dict[str, dict]:
    """For each confidence word, how many answers were shown with it and the share right
    (F1 >= 0.5 with a gold answer; an answer to an unanswerable question is never right)."""
    report = {}
    for band in BANDS:
        shown = [o for o in outcomes if o.answered and o.band == band]
        right = float(np.mean([o.f1 >= 0.5 for o in shown])) if shown else None
        report[band] = {"answers": len(shown), "right": right}
    return report


def abstention(answerable: Sequence[Outcome], refused: Sequence[Outcome], threshold: float) -> dict:
    return {
        "auc": roc_auc([o.score for o in answerable], [o.score for o in refused]),
        "abstain_rate_unanswerable": float(np.mean([not o.answered for o in refused])),
        "answer_rate_answerable": float(np.mean([o.answered for o in answerable])),
        "threshold": threshold,
        "questions_unanswerable": len(refused),
    }


# --- running ------------------------------------------------------------------------------------


def run_question(engine, question: Question, mode: Mode, top_k: int, threshold: float) -> Outcome:
    started = time.perf_counter()
    result = engine.ask(question.text, top_k=top_k, threshold=threshold, mode=mode)
    elapsed = (time.perf_counter() - started) * 1000
    hits = engine.searcher.search(result.resolved.query, top_k=10, mode=mode)
    outcome = Outcome(ranks=[first_relevant_rank(hits, question.golds)], ms=elapsed)
    best = result.best_guess
    outcome.score = best.score if best else 0.0
    outcome.answered = result.answer is not None
    outcome.band = result.band
    if best is not None:
        outcome.sentence_hit = contains_gold(
            best.article_id, best.sentence_start, best.sentence_end, question.golds
        )
    if result.answer is not None:
        texts = [g.text for g in question.golds]
        outcome.exact = exact_match(result.answer.text, texts)
        outcome.f1 = f1_score(result.answer.text, texts)
        a = result.answer
        article = next(h.article for h in result.passages if h.article.id == a.article_id)
        for name, rules in SPAN_VARIANTS.items():
            start, end = refine_span(article.text, a.start, a.end, a.sentence_end, rules)
            span = article.text[start:end]
            outcome.spans[name] = (exact_match(span, texts), f1_score(span, texts))
    return outcome


def sample(questions: Sequence[Question], limit: int | None, seed: int) -> list[Question]:
    chosen = list(questions)
    if limit is not None and limit < len(chosen):
        chosen = random.Random(seed).sample(chosen, limit)
    return chosen


Log = Callable[[str], None]


def evaluate(
    articles_files: Sequence[str | Path],
    questions_file: str | Path,
    unanswerable_file: str | Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    top_k: int = 5,
    threshold: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    config: IndexConfig | None = None,
    split: str = "all",
    store: str | None = None,
) -> dict:
    """Run the benchmark; returns the JSON-ready report.

    `questions_file` is a SQuAD file or a natural-question file (`split` picks its
    held-out or fitted part); the system's answers are also split by how many of
    the question's words its answer's sentence holds (`question_overlap`).
    """
    from retrieval.indexing import build_index_from_articles

    report = progress or (lambda stage, done, total: None)
    articles, where = squad_articles(articles_files)
    if not articles:
        raise UserError("the --articles files hold no articles")
    natural_file = is_natural_file(questions_file)
    if natural_file:
        natural = load_natural(questions_file, split)
        answerable, impossible = natural_squad_questions(natural, articles)
    else:
        answerable, impossible = squad_questions(questions_file, articles, where)
    asked = sample([q for q in answerable if q.golds], limit, seed)
    if not asked:
        raise UserError(f"no question of {questions_file} is about the --articles articles")
    same_topic = sample(impossible, limit, seed)
    outside: list[Question] = []
    if unanswerable_file is not None:
        indexed = {squad_title(a) for a in articles}
        if any(e["title"] in indexed for e in read_squad(unanswerable_file)):
            raise UserError("--unanswerable must be about articles that are not in --articles")
        unanswerable, _ = squad_questions(unanswerable_file, [], {})
        outside = sample(unanswerable, limit, seed)

    with tempfile.TemporaryDirectory(prefix="article-qa-eval-") as scratch:
        build = build_index_from_articles(
            articles, Path(scratch) / "index", config=config, progress=progress, store=store
        )
        try:
            payload = _ask_all(build, asked, outside, same_topic, articles, top_k, threshold,
                               report)  # fmt: skip
        finally:
            drop_collections(current_version(build.index_dir))
        engine_manifest = read_manifest(build.index_dir)
    payload["config"] = {
        "articles": [str(f) for f in articles_files],
        "questions": str(questions_file),
        "split": split if natural_file else None,
        "unanswerable": str(unanswerable_file) if unanswerable_file else None,
        "limit": limit,
        "seed": seed,
        "top_k": top_k,
        "threshold": payload.pop("threshold"),
        "model": engine_manifest.model,
        "chunk_size": engine_manifest.chunk_size,
        "chunk_overlap": engine_manifest.chunk_overlap,
        "store": engine_manifest.store,
    }
    return payload


def _ask_all(
    build: BuildReport,
    asked: Sequence[Question],
    outside: Sequence[Question],
    same_topic: Sequence[Question],
    articles: Sequence[Article],
    top_k: int,
    threshold: float | None,
    report: Callable[[str, int, int], None],
) -> dict:
    """Ask every question of a run of the built index; the report without its config."""
    from retrieval.qa import QAEngine

    engine = QAEngine.open(build.index_dir)
    threshold = engine.default_threshold if threshold is None else threshold
    engine.ask(asked[0].text)  # warm up: first-call costs are not answer latency
    results: dict[str, dict] = {}
    all_outcomes: dict[str, list[Outcome]] = {}
    for mode in SYSTEMS:
        outcomes = []
        for done, question in enumerate(asked, 1):
            outcomes.append(run_question(engine, question, mode, top_k, threshold))
            report(f"ask ({mode})", done, len(asked))
        all_outcomes[mode] = outcomes
        results[mode] = summarize(outcomes)
    by_id = {a.id: a for a in articles}
    overlaps = [question_overlap(q, by_id) for q in asked]
    results["hybrid"]["by_overlap"] = {
        band: summarize(outcomes)
        for band, low in (("low", True), ("high", False))
        if (outcomes := [o for o, x in zip(all_outcomes["hybrid"], overlaps, strict=True)
                         if (x <= LOW_OVERLAP) == low])
    }  # fmt: skip
    payload: dict = {
        "system": results["hybrid"],
        "baselines": {"dense": results["dense"], "bm25": results["bm25"]},
        "build": {
            "articles": build.articles,
            "chunks": build.chunks,
            "seconds": round(build.seconds, 2),
            "chunks_per_s": round(build.chunks_per_s, 1),
        },
    }
    asked_all = list(all_outcomes["hybrid"])
    for key, label, unanswerable in (
        ("abstention", "ask (unanswerable)", outside),
        ("abstention_same_topic", "ask (same-topic unanswerable)", same_topic),
    ):
        if not unanswerable:
            continue
        refused = []
        for done, question in enumerate(unanswerable, 1):
            refused.append(run_question(engine, question, "hybrid", top_k, threshold))
            report(label, done, len(unanswerable))
        payload[key] = abstention(all_outcomes["hybrid"], refused, threshold)
        asked_all += refused
    # Every question asked of the system, answerable or not: is each word right?
    payload["bands"] = band_precision(asked_all)
    payload["threshold"] = threshold
    return payload


COLUMNS = ("questions", "recall@1", "recall@5", "recall@10", "mrr@10", "sentence_accuracy",
           "exact_match", "f1", "right", "p50_ms", "p95_ms")  # fmt: skip


def _cell(column: str, value: float) -> str:
    if column == "questions":
        return str(value)
    return f"{value:.1f}" if column.endswith("_ms") else f"{value:.3f}"


def format_table(payload: dict) -> str:
    """The report as a Markdown table, systems as rows, then abstention lines."""
    overlap = payload["system"].get("by_overlap", {})
    rows = (
        [("hybrid (system)", payload["system"])]
        + [(f"hybrid, {band} word overlap", metrics) for band, metrics in overlap.items()]
        + [(name, metrics) for name, metrics in payload["baselines"].items()]
    )
    lines = [
        "| system | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for name, metrics in rows:
        cells = [_cell(c, metrics[c]) for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for key, label in (("abstention", "out-of-corpus"), ("abstention_same_topic", "same-topic")):
        if key in payload:
            a = payload[key]
            lines.append(
                f"\n{label} unanswerable ({a['questions_unanswerable']} questions): "
                f"AUC {a['auc']:.3f}, refused {a['abstain_rate_unanswerable']:.1%}, "
                f"answerable answered {a['answer_rate_answerable']:.1%} "
                f"at threshold {a['threshold']}"
            )
    spans = payload["system"].get("span_rules", {})
    if spans:
        shown = ", ".join(f"{name} {v['exact_match']:.3f} / {v['f1']:.3f}"
                          for name, v in spans.items())  # fmt: skip
        lines.append(f"\nEM / F1 of the system's answers by span rules: {shown}")
    if "bands" in payload:
        shown = ", ".join(
            f"{band} {b['right']:.1%} of {b['answers']}" if b["right"] is not None
            else f"{band} none"
            for band, b in payload["bands"].items()
        )  # fmt: skip
        lines.append(f"\nanswers right, by the confidence word shown: {shown}")
    build = payload["build"]
    lines.append(
        f"\nbuild: {build['articles']} articles, {build['chunks']} chunks, "
        f"{build['seconds']} s ({build['chunks_per_s']} chunks/s)"
    )
    return "\n".join(lines)


# --- incremental builds -------------------------------------------------------------------------


def cpu_name() -> str:
    """The CPU's model name, for a benchmark report."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def write_corpus_files(articles: Sequence[Article], folder: Path) -> list[Path]:
    """Articles as plain-text files (title line, blank line, text), the way users add them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for article in articles:
        path = folder / (re.sub(r"\W+", "-", article.title).strip("-") + ".txt")
        path.write_text(f"{article.title}\n\n{article.text}\n", encoding="utf-8")
        paths.append(path)
    return paths


def incremental_benchmark(
    articles_file: str | Path,
    extra_file: str | Path,
    repeats: int = 3,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Full build of one file's articles, then the cost of adding one and of changing nothing.

    Every build goes through `build_index` as `article-qa build` does, model
    loading included; the ratios compare with the full build of the same run.
    """
    from retrieval.indexing import build_index

    base, _ = squad_articles([articles_file])
    extra, _ = squad_articles([extra_file])
    with tempfile.TemporaryDirectory(prefix="article-qa-build-bench-") as scratch:
        corpus, index = Path(scratch) / "corpus", Path(scratch) / "index"
        write_corpus_files(base, corpus)
        full = build_index([corpus], index, progress=progress)
        added, unchanged = [], []
        for _ in range(repeats):
            (new_file,) = write_corpus_files(extra[:1], corpus)
            added.append(build_index([corpus], index).seconds)
            unchanged.append(build_index([corpus], index).seconds)
            new_file.unlink()
            build_index([corpus], index)
    add_s, none_s = float(np.median(added)), float(np.median(unchanged))
    return {
        "articles": full.articles,
        "chunks": full.chunks,
        "full_build_s": round(full.seconds, 2),
        "add_one_s": round(add_s, 2),
        "no_change_s": round(none_s, 2),
        "add_one_ratio": round(add_s / full.seconds, 4),
        "no_change_ratio": round(none_s / full.seconds, 4),
        "repeats": repeats,
        "add_one_runs_s": [round(s, 2) for s in added],
        "no_change_runs_s": [round(s, 2) for s in unchanged],
    }

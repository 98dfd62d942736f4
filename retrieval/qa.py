"""The question-answering service that the CLI and the page both stand on.

`QAEngine.open(index_dir)` loads the index (checked against its manifest), the
embedder the index was built with, the searcher and the answerer, once.
`ask(question, history)` resolves a follow-up against earlier turns, retrieves
passages, picks an extractive answer, and returns a `QAResult` whose
`to_dict()` is the JSON contract of `article-qa ask --json`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from retrieval.answering import (
    DEFAULT_THRESHOLD,
    Answer,
    Answerer,
    Calibration,
    Reader,
)
from retrieval.conversation import ResolvedQuestion, Turn, resolve_followup
from retrieval.embedding import MINILM_NAME, Embedder, load_embedder
from retrieval.errors import UserError
from retrieval.indexing import index_config
from retrieval.search import Hit, Mode, Searcher
from retrieval.store import StoredIndex, load_index, read_manifest

MAX_QUESTION_CHARS = 1000


@dataclass(frozen=True)
class Citation:
    """A numbered source of the answer: the sentence of passage `number` that holds it.

    Numbers are the passages' ranks (from 1), as listed under the answer; offsets are
    into the article, so a citation opens the article at its sentence.
    """

    number: int
    article_id: str
    title: str
    source: str
    start: int  # the cited sentence
    end: int
    answer_start: int  # the answer inside it
    answer_end: int


def cite(answer: Answer, passages: Sequence[Hit]) -> tuple[Citation, ...]:
    """The passages that hold the answer, each with the sentence it is in.

    First the passage the answer was read from, then every other listed passage whose
    text holds the same words (another article, or another sentence of the same one):
    the answer's support, each cited once per sentence.
    """
    from retrieval.text import sentence_spans

    found: list[Citation] = []
    seen: set[tuple[str, int]] = set()

    def add(number: int, hit: Hit, start: int, end: int, at: int) -> None:
        if (hit.article.id, start) not in seen:
            seen.add((hit.article.id, start))
            found.append(Citation(number, hit.article.id, hit.article.title, hit.article.source,
                                  start, end, at, at + len(answer.text)))  # fmt: skip

    for number, hit in enumerate(passages, 1):
        if hit.article.id == answer.article_id and hit.chunk.start <= answer.start < hit.chunk.end:
            add(number, hit, answer.sentence_start, answer.sentence_end, answer.start)
            break
    for number, hit in enumerate(passages, 1):
        text = hit.article.text
        at = text.find(answer.text, hit.chunk.start, hit.chunk.end)
        while at >= 0:
            # Sentences never cross a line break: split only the answer's paragraph.
            para_end = text.find("\n", at)
            spans = sentence_spans(text, text.rfind("\n", 0, at) + 1,
                                   len(text) if para_end < 0 else para_end)  # fmt: skip
            sentence = next(((a, b) for a, b in spans if a <= at < b), None)
            if sentence is not None:
                add(number, hit, *sentence, at)
            at = text.find(answer.text, at + 1, hit.chunk.end)
    return tuple(found)


@dataclass(frozen=True)
class QAResult:
    question: str
    resolved: ResolvedQuestion
    answer: Answer | None  # None: the articles do not contain the answer
    best_guess: Answer | None  # the best candidate even when below the threshold
    passages: tuple[Hit, ...]
    threshold: float
    timing_ms: dict[str, float] = field(default_factory=dict)
    # The answer's confidence in words ("high", "medium", "low"): bands chosen by measurement.
    band: str | None = None

    def to_turn(self) -> Turn:
        best = self.answer
        return Turn(
            question=self.resolved.asked,
            answer=best.text if best else None,
            sentence=best.sentence if best else None,
            article_id=best.article_id if best else None,
            confidence=best.score if best else None,
            title=best.title if best else None,
        )

    @property
    def citations(self) -> tuple[Citation, ...]:
        """The numbered sources of the answer (none without an answer)."""
        return cite(self.answer, self.passages) if self.answer is not None else ()

    def to_dict(self) -> dict:
        answer = None
        if self.answer is not None:
            a = self.answer
            answer = {
                "text": a.text,
                "sentence": a.sentence,
                "article_id": a.article_id,
                "title": a.title,
                "source": a.source,
                "start": a.start,
                "end": a.end,
                "sentence_start": a.sentence_start,
                "sentence_end": a.sentence_end,
                "score": a.score,
                "band": self.band,
                "citations": [
                    {
                        "number": c.number,
                        "article_id": c.article_id,
                        "start": c.start,
                        "end": c.end,
                        "answer_start": c.answer_start,
                        "answer_end": c.answer_end,
                    }
                    for c in self.citations
                ],
            }
        return {
            "question": self.question,
            "understood_as": self.resolved.asked,
            "followup": self.resolved.is_followup,
            "answer": answer,
            "passages": [
                {
                    "chunk_id": hit.chunk.id,
                    "article_id": hit.article.id,
                    "title": hit.article.title,
                    "source": hit.article.source,
                    "start": hit.chunk.start,
                    "end": hit.chunk.end,
                    "text": hit.chunk.text,
                    "score": round(hit.score, 6),
                }
                for hit in self.passages
            ],
            "timing_ms": self.timing_ms,
        }


def shipped_threshold(model: str, calibration: Calibration | None = None) -> float:
    """The "no answer" line for an index of `model`.

    With the real model it is the line `make calibrate` fitted on the tune half
    (the confidence that best balances answering questions about indexed articles
    against refusing questions about others); a follow-up reaches it with the
    confidence carried over from the turn it leans on (`carry_confidence`). The
    fake embedder of the fast tests keeps the hand-set line. `calibration`: one
    already loaded, to save reading it again.
    """
    if model == MINILM_NAME:
        return (calibration or Calibration.load()).threshold
    return DEFAULT_THRESHOLD


def load_reader() -> Reader:
    from retrieval.reader import SpanReader

    try:
        return SpanReader.load()
    except FileNotFoundError as error:
        raise UserError(f"{error} (the reader weights ship with the package)") from None


def carry_confidence(answer: Answer, earlier: Turn) -> Answer:
    """A follow-up's answer from the article of the answer it leans on gains confidence.

    A follow-up's own words are few ("Who will attend it?"), so its evidence alone
    reads weak even when it is right; but the turn it leans on already showed, with
    its own confidence, that the index covers the subject. When the answer comes
    from that turn's article, the confidence is the mean of the two, if higher.
    """
    if earlier.confidence is None or earlier.article_id != answer.article_id:
        return answer
    carried = round((answer.score + earlier.confidence) / 2, 4)
    return replace(answer, score=carried) if carried > answer.score else answer


def validate_question(question: str) -> str:
    text = " ".join(question.split())
    if not text:
        raise UserError("the question is empty: type a question, e.g. 'Where is the meeting held?'")
    if len(text) > MAX_QUESTION_CHARS:
        raise UserError(
            f"the question is too long ({len(text):,} characters; the limit is "
            f"{MAX_QUESTION_CHARS:,}): ask something shorter"
        )
    return text


class QAEngine:
    def __init__(
        self, index: StoredIndex, embedder: Embedder, reader: Reader | None = None
    ) -> None:
        from retrieval.runtime import one_numpy_blas_thread

        one_numpy_blas_thread()  # one question's products are small; spinning threads are not
        self.index = index
        self.embedder = embedder
        self.searcher = Searcher(index, embedder)
        self.answerer = Answerer(index, index.documents.idf, reader)
        self.default_threshold = shipped_threshold(index.manifest.model, self.answerer.calibration)

    @classmethod
    def open(cls, index_dir: str | Path, embedder: Embedder | None = None) -> QAEngine:
        """The engine over an index, with the embedder it was built with.

        An index built with the real model is answered with the trained span
        reader; one built with the fake embedder (fast tests) uses no model at
        all, and picks spans by the answer-type heuristics.
        """
        index_dir = Path(index_dir)
        manifest = read_manifest(index_dir)
        expected = index_config(
            manifest.model if embedder is None else embedder.name, manifest.config.chunking
        )
        index = load_index(index_dir, expected)
        reader = load_reader() if manifest.model == MINILM_NAME else None
        return cls(index, embedder or load_embedder(manifest.model), reader)

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        top_k: int = 5,
        threshold: float | None = None,
        mode: Mode = "hybrid",
    ) -> QAResult:
        """Answer `question`, read after the earlier `history`; below `threshold`, no answer."""
        threshold = self.default_threshold if threshold is None else threshold
        if top_k < 1:
            raise UserError(f"--top-k must be at least 1, got {top_k}")
        started = time.perf_counter()
        text = validate_question(question)
        resolved = resolve_followup(text, history)
        # One model call, beside BM25, for both: the query retrieval uses (with the earlier
        # turn's words) and, for a follow-up, the question alone, which sentences are matched
        # against.
        also = () if resolved.query == resolved.asked else (resolved.asked,)
        hits, vectors = self.searcher.search_embedding(resolved.query, also, top_k, mode)
        retrieved = time.perf_counter()
        best = (
            self.answerer.answer(
                resolved.asked, vectors[-1], hits, resolved.context, resolved.article_id
            )
            if hits
            else None
        )
        if best is not None and resolved.is_followup:  # so there is an earlier turn
            best = carry_confidence(best, history[-1])
        answered = time.perf_counter()
        answer = best if best is not None and best.score >= threshold else None
        return QAResult(
            question=text,
            resolved=resolved,
            answer=answer,
            best_guess=best,
            passages=tuple(hits),
            threshold=threshold,
            timing_ms={
                "retrieve": round((retrieved - started) * 1000, 2),
                "answer": round((answered - retrieved) * 1000, 2),
                "total": round((answered - started) * 1000, 2),
            },
            band=self.answerer.calibration.band(answer.score) if answer is not None else None,
        )


__all__ = ["QAEngine", "QAResult", "Turn", "validate_question"]

"""Extractive answers: the best sentence among the retrieved passages, and a short span in it.

Owns the `Answer` record. Sentences are scored by how much of the question's
meaning they carry (embedding similarity) and how many of its rarer words they
contain (idf-weighted overlap); inside the best sentence, a span of the type
the question asks for (a name for "who", a place for "where", a date for
"when", a quantity for "how many") is chosen near the question's words. Every
offset is into the article's clean text. The score is a confidence in [0, 1];
below the threshold the caller says "not in these articles".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from retrieval.documents import StoredSentence, inverse_document_frequency
from retrieval.search import Hit
from retrieval.spans import refine_span, wrong_measure
from retrieval.store import StoredIndex
from retrieval.text import STOPWORDS, content_stems, stem, word_spans, words

if TYPE_CHECKING:
    from retrieval.reader import ReadSpan

DEFAULT_THRESHOLD = 0.4
# Before `make calibrate` has chosen them: the floors of "high" and "medium".
DEFAULT_BANDS = (0.5, 0.25)


@dataclass(frozen=True)
class Answer:
    text: str
    sentence: str
    article_id: str
    title: str
    source: str
    start: int
    end: int
    sentence_start: int
    sentence_end: int
    chunk_id: str
    score: float


@dataclass(frozen=True)
class ScoredSentence:
    hit: Hit
    start: int
    end: int
    dense: float
    lexical: float
    score: float


@dataclass(frozen=True)
class ReadCandidate:
    hit: Hit
    sentence: ScoredSentence
    start: int  # offsets of the span in the article
    end: int
    features: dict[str, float]


class Reader(Protocol):
    def read(self, question: str, passages: Sequence[str]) -> list[ReadSpan]: ...


CALIBRATION_FILE = Path(__file__).resolve().parent / "reader" / "calibration.json"


@dataclass(frozen=True)
class Calibration:
    """Two logistic models fitted on the tune half (`make calibrate`).

    `selection` scores each read span (is it the right answer?) and picks the
    answer. `answerability`, over the chosen span's evidence (what the reader says
    of it, compared across the passages read, and how its sentence matches), is the
    answer's confidence: the probability that it is right. `threshold` is the line
    the product ships (`qa.shipped_threshold`), chosen by `make calibrate`.
    """

    selection: dict[str, float]
    answerability: dict[str, float]
    threshold: float
    # The floors of the "high" and "medium" confidence words, chosen by `make calibrate` so
    # that answers shown as high are right >= 90 % of the time and medium ones >= 70 %.
    bands: tuple[float, float] = DEFAULT_BANDS

    def band(self, confidence: float) -> str:
        """The word shown beside a confidence: "high", "medium" or "low"."""
        high, medium = self.bands
        return "high" if confidence >= high else "medium" if confidence >= medium else "low"

    @staticmethod
    def _logit(weights: dict[str, float], features: dict[str, float]) -> float:
        return weights.get("bias", 0.0) + sum(
            w * features.get(name, 0.0) for name, w in weights.items() if name != "bias"
        )

    def select(self, features: dict[str, float]) -> float:
        return self._logit(self.selection, features)

    def confidence(self, evidence: dict[str, float]) -> float:
        logit = self._logit(self.answerability, evidence)
        return round(1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit)))), 4)

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            bands = data.get("bands", {})
            return cls(
                data["selection"],
                data["answerability"],
                float(data["threshold"]),
                (float(bands.get("high", DEFAULT_BANDS[0])),
                 float(bands.get("medium", DEFAULT_BANDS[1]))),
            )  # fmt: skip
        # Before `make calibrate` has run: trust the reader's margin, lean on the sentence.
        return cls(
            selection={"margin": 1.0, "sentence": 4.0},
            answerability={"bias": -4.0, "margin": 0.3, "sentence": 6.0},
            threshold=DEFAULT_THRESHOLD,
        )


# --- what the question asks for -------------------------------------------------------------

_NUMBER_Q = re.compile(
    r"\bhow (many|much|long|far|old|big|large|tall|high|fast|often|wide|deep|heavy)\b"
    r"|\bwhat (percentage|percent|number|amount|proportion|price|cost|size)\b"
    r"|^what\b.*\btime\b"
)
_DATE_Q = re.compile(
    r"^when\b|\bwhen (did|was|were|is|will|does|do)\b"
    r"|\b(what|which|in what|what) (year|date|day|month|time|century|decade|season)\b"
)
_PERSON_Q = re.compile(r"^(who|whom|whose)\b|\b(who|whom|whose)\b")
_PLACE_Q = re.compile(
    r"^where\b|\bwhere\b|\b(what|which) (city|country|town|place|region|state|continent|"
    r"location|venue|island|province|county|nation)\b"
)
_ENTITY_Q = re.compile(r"^(what|which)\b")


def expected_type(question: str) -> str:
    """One of: number, date, person, place, entity, other."""
    q = question.lower().strip()
    for kind, pattern in (
        ("number", _NUMBER_Q),
        ("date", _DATE_Q),
        ("place", _PLACE_Q),
        ("person", _PERSON_Q),
        ("entity", _ENTITY_Q),
    ):
        if pattern.search(q):
            return kind
    return "other"


# --- candidate spans inside a sentence ---------------------------------------------------------

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
)
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_DATE = re.compile(
    rf"\b(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}"
    rf"(?:,?\s+\d{{4}})?|{_MONTH}\s+\d{{4}}|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?|"
    rf"(?:early|mid|late)[- ]\d{{4}}s?|\d{{4}}s?|\d{{1,2}}(?:st|nd|rd|th)\s+century|"
    rf"{_WEEKDAY}|{_MONTH}(?=\W))"
)
_UNIT_WORDS = r"percent|per cent|million|billion|trillion|thousand|hundred|dozen"
_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    r"hundred|thousand|half|dozen"
)
_NUMBER = re.compile(
    rf"(?:(?:about|around|nearly|almost|more than|over|up to|some|roughly)\s+)?"
    rf"(?:[$€£¥]\s?)?(?:\d{{1,2}}:\d\d(?::\d\d)?|\d+(?:[,.]\d+)*|\b(?:{_NUMBER_WORDS})\b)"
    rf"(?:\s?%|\s+(?:{_UNIT_WORDS}))*"
    rf"(?:\s+(?!(?:and|or|of|in|on|at|to|the|a|an|for|by|with|from|was|were|is|are)\b)"
    rf"[a-zA-Z][a-zA-Z-]*){{0,2}}",
    re.IGNORECASE,
)
# Capitalized words, joined across a few lower-case connectors ("Bank of England").
_PROPER = re.compile(
    r"(?:[A-Z][\w'’.-]*)(?:\s+(?:(?:of|de|da|du|van|von|der|del|la|le|the|for|"
    r"al|bin|el)\s+)*(?:[A-Z][\w'’.-]*))*"
)
_LEADING_DROP = {"the", "a", "an", "this", "that", "these", "those", "his", "her", "its", "their"}
_PLACE_CUES = {"in", "at", "to", "from", "near", "outside", "inside", "across", "into", "toward"}
# Last words of names that are organisations, places or events rather than people.
_NOT_PERSON_HEADS = {
    "sea", "ocean", "river", "lake", "mountains", "island", "islands", "city", "state", "states",
    "department", "ministry", "office", "agency", "council", "committee", "commission", "union",
    "organization", "organisation", "university", "college", "school", "institute", "observatory",
    "museum", "library", "bank", "company", "group", "corporation", "association", "party",
    "army", "court", "parliament", "congress", "senate", "house", "church", "olympics", "games",
    "cup", "championship", "war", "street", "square", "park", "airport", "station", "tunnel",
    "bridge", "hospital", "center", "centre", "republic", "kingdom", "press", "times", "news",
}  # fmt: skip
_NOT_NAMES = {
    "i", "it", "he", "she", "we", "they", "but", "and", "so", "however", "the", "this", "that",
    "in", "on", "at", "a", "an", "mr", "mrs", "ms", "dr", "if", "as", "when", "while", "after",
    "before", "since", "even", "still", "there", "what", "who", "his", "her", "its", "our",
}  # fmt: skip


@dataclass(frozen=True)
class Candidate:
    start: int
    end: int
    kind: str


def _proper_candidates(sentence: str) -> list[Candidate]:
    found = []
    for match in _PROPER.finditer(sentence):
        start, end = match.start(), match.end()
        text = sentence[start:end]
        pieces = text.split()
        # Drop sentence-initial function words that are only capitalized by position.
        while pieces and pieces[0].lower().strip(".") in _NOT_NAMES:
            start += len(pieces[0])
            text = sentence[start:end]
            start += len(text) - len(text.lstrip())
            pieces = sentence[start:end].split()
        while pieces and pieces[-1].lower() in {"of", "and", "the", "de", "for", "on"}:
            end = start + len(sentence[start:end].rsplit(None, 1)[0])
            pieces = pieces[:-1]
        end = start + len(sentence[start:end].rstrip(".,;:'’"))
        if start < end and not sentence[start:end].isdigit():
            found.append(Candidate(start, end, "proper"))
    return found


def candidate_spans(sentence: str) -> list[Candidate]:
    """Names, places, dates and quantities in `sentence`, with offsets into it."""
    found: list[Candidate] = []
    for match in _DATE.finditer(sentence):
        found.append(Candidate(match.start(), match.end(), "date"))
    for match in _NUMBER.finditer(sentence):
        text = match.group(0).rstrip(".,;:")
        if any(ch.isdigit() for ch in text) or len(text.split()) > 1:
            found.append(Candidate(match.start(), match.start() + len(text), "number"))
    found.extend(_proper_candidates(sentence))
    return found


def _phrase_candidates(sentence: str, question_stems: set[str]) -> list[Candidate]:
    """Runs of words that are not in the question: the fallback for "what" questions."""
    found: list[Candidate] = []
    run: list[re.Match[str]] = []

    def close() -> None:
        while run and run[0].group(0).lower() in STOPWORDS:
            run.pop(0)
        while run and run[-1].group(0).lower() in STOPWORDS:
            run.pop()
        if run and len(run) <= 6:
            found.append(Candidate(run[0].start(), run[-1].end(), "phrase"))
        run.clear()

    for match in word_spans(sentence):
        word = match.group(0)
        gap = sentence[run[-1].end() : match.start()] if run else " "
        if stem(word) in question_stems or (run and re.search(r"[,;:()\"“”]", gap)):
            close()
        if stem(word) not in question_stems:
            run.append(match)
    close()
    return found


# --- scoring -------------------------------------------------------------------------------------


_MONEY_Q = re.compile(
    r"\bhow much\b.*\b(cost|pay|paid|worth|price|spend|spent|raise|earn|sell|sold|fund)"
)
_MONEY = re.compile(
    r"[$€£¥]|\b(dollars?|euros?|pounds?|francs?|yen|yuan|rupees?|pesos?|kronor|crowns?|rubles?)\b",
    re.IGNORECASE,
)


def _kind_fit(
    kind: str, expected: str, sentence: str, candidate: Candidate, question: str
) -> float:
    text = sentence[candidate.start : candidate.end]
    before = sentence[: candidate.start].split()
    cue = before[-1].lower() if before else ""
    if expected == "number":
        if kind != "number":
            return 0.0
        if _MONEY_Q.search(question.lower()):
            return 1.0 if _MONEY.search(text) else 0.3
        return 1.0
    if expected == "date":
        return 1.0 if kind == "date" else 0.2 if kind == "number" and text.isdigit() else 0.0
    if expected == "person":
        if kind != "proper":
            return 0.0
        last = text.split()[-1].lower().strip(".,'’")
        if cue in _PLACE_CUES or cue in {"the", "a", "an"} or last in _NOT_PERSON_HEADS:
            return 0.15
        return 1.0 if len(text.split()) >= 2 else 0.8
    if expected == "place":
        if kind != "proper":
            return 0.0
        return 1.0 if cue in _PLACE_CUES else 0.6
    if expected == "entity":
        return {"proper": 0.8, "number": 0.5, "date": 0.5, "phrase": 0.6}.get(kind, 0.0)
    return {"proper": 0.6, "number": 0.5, "date": 0.5, "phrase": 0.6}.get(kind, 0.0)


def choose_span(
    sentence: str, question: str, question_stems: set[str]
) -> tuple[Candidate | None, float]:
    """The best short answer inside `sentence`, with a fit score in [0, 1]."""
    expected = expected_type(question)
    candidates = candidate_spans(sentence)
    if expected in {"entity", "other"}:
        candidates += _phrase_candidates(sentence, question_stems)
    anchors = [m.start() for m in word_spans(sentence) if stem(m.group(0)) in question_stems]
    best: Candidate | None = None
    best_score = 0.0
    for candidate in candidates:
        text = sentence[candidate.start : candidate.end]
        stems = [stem(w) for w in re.findall(r"\w+", text) if w.lower() not in STOPWORDS]
        if not stems or all(s in question_stems for s in stems):
            continue
        fit = _kind_fit(candidate.kind, expected, sentence, candidate, question)
        if fit <= 0:
            continue
        if anchors:
            distance = min(
                abs(a - candidate.start) if a < candidate.start else abs(a - candidate.end)
                for a in anchors
            )
            nearness = 1.0 / (1.0 + distance / 40.0)
        else:
            nearness = 0.3
        novelty = sum(s not in question_stems for s in stems) / len(stems)
        score = fit * (0.5 + 0.5 * nearness) * (0.6 + 0.4 * novelty)
        if score > best_score + 1e-9:
            best, best_score = candidate, score
    return best, best_score


def question_names(question: str) -> set[str]:
    """The question's names and numbers: capitalized words after its first, and digits."""
    found = set()
    for position, word in enumerate(words(question)):
        if any(ch.isdigit() for ch in word) or (position > 0 and word[:1].isupper()):
            found.add(word.lower())
    return found


def names_found(names: set[str], passage: str) -> float:
    """The share of the question's names and numbers that `passage` holds (1 when none)."""
    if not names:
        return 1.0
    present = {w.lower() for w in words(passage)}
    return len(names & present) / len(names)


def normalize_span(text: str) -> str:
    return " ".join(w.lower() for w in words(text) if w.lower() not in {"the", "a", "an"})


class Answerer:
    """Turns retrieved passages into one extractive answer with a confidence.

    Sentence vectors and stems are computed at build and load time, so answering
    costs no model call beyond the question's own vector.
    """

    def __init__(
        self,
        index: StoredIndex,
        idf: Callable[[str], float],
        reader: Reader | None = None,
        calibration: Calibration | None = None,
        read_passages: int = 3,
    ) -> None:
        self.index = index
        self.idf = idf
        self.reader = reader
        self.calibration = calibration or Calibration.load()
        self.read_passages = read_passages

    def _sentences_in(self, hits: Sequence[Hit]) -> list[tuple[Hit, StoredSentence, frozenset]]:
        """Each hit's sentences (whole even where its passage cuts them), once each, with the
        content stems of the sentence before them in their article."""
        documents = self.index.documents
        found = []
        seen: set[int] = set()
        for hit in hits:
            own = documents.sentences_in(hit.chunk)
            for at, stored in enumerate(own):
                if stored.key in seen:
                    continue
                seen.add(stored.key)
                previous = own[at - 1] if at else None
                if previous is None and stored.seq > 0:
                    previous = documents.sentence_at(hit.article.id, stored.seq - 1)
                before = (
                    _stems(hit.article.text[previous.sentence.start : previous.sentence.end])
                    if previous is not None
                    else frozenset()
                )
                found.append((hit, stored, before))
        return found

    def score_sentences(
        self,
        question: str,
        question_vector: np.ndarray,
        hits: Sequence[Hit],
        context: str = "",
        article_id: str | None = None,
    ) -> list[ScoredSentence]:
        weights: dict[str, float] = {}
        for s in content_stems(question):
            weights[s] = self.idf(s)
        for s in content_stems(context):
            weights.setdefault(s, 0.3 * self.idf(s))
        total = sum(weights.values()) or 1.0
        found = self._sentences_in(hits)
        if not found:
            return []
        # Meaning is matched on the question alone: the earlier turn's words already
        # steer retrieval and the lexical score.
        similarities = self.index.sentences.get([stored.key for _, stored, _ in found]) @ (
            question_vector
        )
        scored = []
        for (hit, stored, before_all), similarity in zip(found, similarities, strict=True):
            sentence = stored.sentence
            present = _stems(hit.article.text[sentence.start : sentence.end])
            # A sentence often names its subject only in the sentence before
            # ("The robot was installed... It cost 185,000 pounds"): half credit.
            before = before_all - present
            lexical = (
                sum(w for s, w in weights.items() if s in present)
                + 0.5 * sum(w for s, w in weights.items() if s in before)
            ) / total
            # A sentence also inherits some relevance from its passage.
            score = 0.4 * float(similarity) + 0.4 * lexical + 0.2 * hit.dense_score
            if article_id is not None and hit.article.id == article_id:
                score += 0.05
            scored.append(
                ScoredSentence(hit, sentence.start, sentence.end, float(similarity), lexical, score)
            )
        scored.sort(key=lambda s: -s.score)
        return scored

    def answer(
        self,
        question: str,
        question_vector: np.ndarray,
        hits: Sequence[Hit],
        context: str = "",
        article_id: str | None = None,
    ) -> Answer | None:
        """The best answer found, whatever its confidence (the caller applies the threshold)."""
        sentences = self.score_sentences(question, question_vector, hits, context, article_id)
        if not sentences:
            return None
        if self.reader is not None:
            candidates = self.read_candidates(question, hits, sentences)
            if candidates:
                # A quantity of another kind than the one asked for ("How much did it
                # cost?" read as a distance) is never the answer: when every span read is
                # one, the best is shown only as the closest, with no confidence.
                fitting = [c for c in candidates if not self._wrong_measure(question, c)]
                best = max(fitting or candidates, key=lambda c: self.calibration.select(c.features))
                # The confidence is the calibrated probability that this span is right,
                # from what the reader says of it and how its sentence matches.
                confidence = self.calibration.confidence(best.features) if fitting else 0.0
                text = best.sentence.hit.article.text
                start, end = refine_span(text, best.start, best.end, best.sentence.end)
                return self._answer(best.sentence, start, end, confidence)
        return self._heuristic_answer(question, sentences, context)

    @staticmethod
    def _wrong_measure(question: str, candidate: ReadCandidate) -> bool:
        """Whether the candidate, with the unit that follows its number, measures another kind."""
        text = candidate.hit.article.text
        start, end = refine_span(
            text, candidate.start, candidate.end, candidate.sentence.end, rules={"unit"}
        )
        return wrong_measure(question, text[start:end])

    def read_candidates(
        self, question: str, hits: Sequence[Hit], sentences: Sequence[ScoredSentence]
    ) -> list[ReadCandidate]:
        """The reader's best span in each of the top passages, with the evidence for it."""
        assert self.reader is not None
        read = list(hits[: self.read_passages])
        spans = self.reader.read(question, [hit.chunk.text for hit in read])
        names = question_names(question)
        texts = [normalize_span(span.text) for span in spans]
        candidates = []
        for rank, (hit, span) in enumerate(zip(read, spans, strict=True)):
            if span.end <= span.start:
                continue
            start, end = hit.chunk.start + span.start, hit.chunk.start + span.end
            sentence = next(
                (
                    s for s in sentences
                    if s.hit.article.id == hit.article.id and s.start <= start < s.end
                ),
                None,
            )  # fmt: skip
            if sentence is None:
                continue
            features = {
                "margin": span.score - span.null_score,
                "span": span.score,
                "sentence": sentence.score,
                "dense": sentence.dense,
                "lexical": sentence.lexical,
                "passage": hit.dense_score,
                "rank": 1.0 / (1.0 + rank),
                "span_prob": span.probability,
                # How many other passages read point at the same words.
                "agreement": float(sum(t == texts[rank] for t in texts) - 1 if texts[rank] else 0),
                # The article's title counts: "the Alpine tunnel" is about the article
                # titled "New Alpine rail tunnel…", though its passage says "the Alps".
                "names": names_found(names, f"{hit.article.title}\n{hit.chunk.text}"),
            }
            candidates.append(ReadCandidate(hit, sentence, start, end, features))
        return candidates

    def _heuristic_answer(
        self, question: str, sentences: Sequence[ScoredSentence], context: str
    ) -> Answer:
        question_stems = set(content_stems(question)) | set(content_stems(context))
        typed = expected_type(question) in {"number", "date", "person", "place"}
        best: tuple[float, ScoredSentence, Candidate | None, float] | None = None
        for scored in sentences:
            sentence = scored.hit.article.text[scored.start : scored.end]
            candidate, fit = choose_span(sentence, question, question_stems)
            # When the question asks for a kind of thing (a person, a date...), a sentence
            # without one is a poor answer however well it matches.
            combined = scored.score * ((0.3 + 0.7 * fit) if typed else (0.6 + 0.4 * fit))
            if best is None or combined > best[0]:
                best = (combined, scored, candidate, fit)
        assert best is not None
        combined, scored, candidate, fit = best
        if candidate is None:
            start, end = scored.start, scored.end
        else:
            start, end = scored.start + candidate.start, scored.start + candidate.end
        return self._answer(scored, start, end, _confidence(scored, fit))

    @staticmethod
    def _answer(scored: ScoredSentence, start: int, end: int, confidence: float) -> Answer:
        article = scored.hit.article
        # A span may run past its sentence's end; the sentence shown then runs with it.
        sentence_end = max(scored.end, end)
        return Answer(
            text=article.text[start:end],
            sentence=article.text[scored.start : sentence_end],
            article_id=article.id,
            title=article.title,
            source=article.source,
            start=start,
            end=end,
            sentence_start=scored.start,
            sentence_end=sentence_end,
            chunk_id=scored.hit.chunk.id,
            score=confidence,
        )


def _confidence(scored: ScoredSentence, fit: float) -> float:
    return evidence_confidence(scored.dense, scored.hit.dense_score, scored.lexical, fit)


def evidence_confidence(dense: float, passage: float, lexical: float, fit: float) -> float:
    """Squash the evidence into [0, 1]: meaning match of sentence and passage, word coverage."""
    raw = 0.35 * dense + 0.2 * passage + 0.35 * lexical + 0.1 * fit
    return round(1.0 / (1.0 + math.exp(-8.0 * (raw - 0.4))), 4)


@lru_cache(maxsize=8192)
def _stems(text: str) -> frozenset[str]:
    return frozenset(content_stems(text))


def idf_table(token_lists: Sequence[Sequence[str]]) -> Callable[[str], float]:
    """Inverse document frequency over the chunks; unseen words count as rare."""
    count = len(token_lists)
    frequencies: dict[str, int] = {}
    for tokens in token_lists:
        for token in set(tokens):
            frequencies[token] = frequencies.get(token, 0) + 1

    def idf(token: str) -> float:
        return inverse_document_frequency(frequencies.get(token, 0), count)

    return idf


__all__ = ["DEFAULT_THRESHOLD", "Answer", "Answerer", "expected_type", "idf_table"]

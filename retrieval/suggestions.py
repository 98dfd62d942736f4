"""Example questions for a corpus, read off its articles' sentences.

An empty chat offers a few questions the articles can answer. They come from
sentence shapes that turn into questions without a parser: "The X is held in
Place" gives "Where is the X held?", "Name, the role," gives "Who is Name?",
"The X is 41 km long" gives "How long is the X?", "examined 48 sites" gives
"How many sites were examined?", "The X was installed ... in October" gives
"When was the X installed?", "worth 420 million" gives "How much is the deal
worth?". Nothing is keyed to particular articles. Each article's best question
comes before any article's second one, so the examples cover different
articles, and the result is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from retrieval.articles import Article
from retrieval.text import sentence_spans

_NAME = r"[A-Z][a-z]+(?:[- ][A-Z][a-z]+){1,2}"
# "The meeting", "The Monte Sella Base Tunnel": a subject opened by "The".
_THE_SUBJECT = r"(?P<subject>The (?:[A-Za-z][\w-]*\s){0,4}?[A-Za-z][\w-]*)"
_AUX = r"(?P<aux>is to be|are to be|will be|is|are|was|were)"
_DATE_WORD = (
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|March|April|"
    r"May|June|July|August|September|October|November|December|(?:1[89]|20)\d\d)\b"
)
_NUMBER = (
    r"(?:\d[\d,.]*|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens|hundreds)"
)

_WHERE = re.compile(
    rf"\b{_THE_SUBJECT} {_AUX} (?P<verb>held|located|based|built|hosted|staged|played|signed) "
    r"(?:in|at) [A-Z]"
)
_WHO_IS = re.compile(rf"(?:^|[\s(])(?P<name>{_NAME}), (?:the|a|an) [^,]{{3,60}},")
_HOW_ADJ = re.compile(
    rf"\b{_THE_SUBJECT} (?:is|was) (?:about |nearly |almost |more than |over )?[\d.,]+ "
    r"(?:[a-z]+ )?(?P<adjective>long|tall|high|wide|deep|heavy)\b"
)
_HOW_OLD = re.compile(rf"(?P<name>{_NAME}|[A-Z][a-z]+), who is (?:\d+|[a-z]+) years old")
_HOW_MANY = re.compile(
    rf"\b(?P<verb>[a-z]{{3,}}ed) (?:about |nearly |almost |more than |over )?{_NUMBER} "
    r"(?P<noun>[a-z]{3,}s)\b"
)
# "lasted nine hours", "rose 5 percent": a unit after the number means the verb took no object.
_UNITS = frozenset(
    "seconds minutes hours days weeks months years decades centuries percent points meters "
    "metres kilometers kilometres miles feet inches kilograms kilos tons tonnes pounds euros "
    "dollars degrees times".split()
)
_WORTH = re.compile(r"\b(?:a|the) (?P<thing>[a-z]{3,}) worth (?:about |nearly |some )?[\d$€£]")
_WHEN = re.compile(
    rf"\b{_THE_SUBJECT}(?:, [^,]{{1,40}},)? (?P<aux>was|were) (?P<verb>[a-z]{{3,}}ed) "
    rf"[^.;]{{0,60}}?\b(?:on|in) (?:early |late |mid-)?{_DATE_WORD}"
)


def _subject(match: re.Match[str]) -> str:
    # Lower-case only the article, so names stay capitalized: "the Monte Sella Base Tunnel".
    return "the" + match.group("subject")[3:]


def _where(match: re.Match[str]) -> str:
    first, *rest = match.group("aux").split()
    return " ".join(["Where", first, _subject(match), *rest, match.group("verb")]) + "?"


def _when(match: re.Match[str]) -> str:
    return f"When {match.group('aux')} {_subject(match)} {match.group('verb')}?"


def _how_many(match: re.Match[str]) -> str | None:
    noun = match.group("noun")
    return None if noun in _UNITS else f"How many {noun} were {match.group('verb')}?"


# Templates in the order their questions are preferred within one article.
_TEMPLATES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str | None]], ...] = (
    (_WHERE, _where),
    (_WHO_IS, lambda m: f"Who is {m.group('name')}?"),
    (_HOW_ADJ, lambda m: f"How {m.group('adjective')} is {_subject(m)}?"),
    (_WHEN, _when),
    (_HOW_OLD, lambda m: f"How old is {m.group('name')}?"),
    (_WORTH, lambda m: f"How much is the {m.group('thing')} worth?"),
    (_HOW_MANY, _how_many),
)
_MAX_QUESTION_CHARS = 70


def _ranked_questions(article: Article) -> list[tuple[int, str]]:
    """(template rank, question) for each question `article` answers, best kinds first."""
    sentences = [article.text[start:end] for start, end in sentence_spans(article.text)]
    ranked: list[tuple[int, str]] = []
    seen: set[str] = set()
    for rank, (pattern, make) in enumerate(_TEMPLATES):
        for sentence in sentences:
            for match in pattern.finditer(sentence):
                question = make(match)
                if question and len(question) <= _MAX_QUESTION_CHARS and question not in seen:
                    seen.add(question)
                    ranked.append((rank, question))
    return ranked


def article_questions(article: Article) -> list[str]:
    """Questions that `article`'s sentences answer, best kinds first, without repeats."""
    return [question for _, question in _ranked_questions(article)]


def example_questions(articles: Iterable[Article], limit: int = 4) -> list[str]:
    """Up to `limit` questions: each article's best one first, the best kinds of those first."""
    candidates = sorted(
        (depth, rank, order, question)
        for order, article in enumerate(articles)
        for depth, (rank, question) in enumerate(_ranked_questions(article))
    )
    chosen: list[str] = []
    for *_, question in candidates:
        if len(chosen) == limit:
            break
        if question not in chosen:
            chosen.append(question)
    return chosen


__all__ = ["article_questions", "example_questions"]

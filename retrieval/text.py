"""Small text tools shared by answering and follow-ups: sentences with offsets, content words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

# A sentence ends at . ! ? (optionally followed by a closing quote or bracket)
# before whitespace and a capital, digit or quote; or at a paragraph break.
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"'”’)\]]*)\s+(?=[\"“‘(\[]?[A-Z0-9])|\n\s*\n")
# Abbreviations after which a period does not end a sentence.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "sen", "rep", "gov", "gen", "col", "lt", "sgt",
    "jr", "sr", "inc", "ltd", "co", "corp", "vs", "etc", "no", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "e.g", "i.e",
    "a.m", "p.m", "mt", "ft", "approx", "fig",
}  # fmt: skip

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    whose also s t ll d ve re m o y""".split()
)

_WORD = re.compile(r"\w+(?:[-'’]\w+)*")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of text[start:end], whitespace trimmed."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _SENTENCE_END.finditer(text, start, end):
        stop = match.start() + len(match.group(1) or "")
        before = text[cursor:stop].rstrip("\"'”’)]")
        last_word = re.search(r"([\w.]+)\.$", before)
        if last_word and (
            last_word.group(1).lower() in _ABBREVIATIONS or len(last_word.group(1)) == 1
        ):
            continue
        spans.append((cursor, stop))
        cursor = match.end()
    spans.append((cursor, end))
    return [_trim(text, s, e) for s, e in spans if text[s:e].strip()]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def word_spans(text: str) -> Iterator[re.Match[str]]:
    return _WORD.finditer(text)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _stemmer().stemWord(word.lower())


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry meaning (no stopwords), in order."""
    return [stem(w) for w in words(text) if w.lower() not in STOPWORDS]

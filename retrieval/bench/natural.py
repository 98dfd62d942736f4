"""Questions in a reader's own words: the natural-question set and the word-overlap split.

SQuAD's questions were written by people looking at the paragraph, so they copy
its words; people using the page have not read the answer's sentence. The set in
`natural-questions.json` was written for this project: questions over the SQuAD
tune-half articles phrased as a reader who skimmed the article would ask them
(sharing at most three consecutive content words with the answer's sentence),
same-topic questions the article does not answer, a few over `corpus/`, and the
seed page's own question. Answers are short strings that occur verbatim in the
article; every occurrence counts as a gold span. Questions over the reader's
validation articles are `held_out`: nothing is fitted on them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.articles import Article
from retrieval.errors import UserError
from retrieval.text import content_stems, sentence_spans

NATURAL_FILE = Path(__file__).resolve().parent / "natural-questions.json"
LOW_OVERLAP = 0.3  # at most this share of the question's content words in the answer's sentence
SPLITS = ("held-out", "fit", "all")


@dataclass(frozen=True)
class NaturalQuestion:
    id: str
    collection: str  # "squad-tune" (article = SQuAD title), "corpus" (a file), "seed"
    article: str
    text: str
    answers: tuple[str, ...]  # empty: the article does not answer it
    held_out: bool


def is_natural_file(path: str | Path) -> bool:
    """Whether a questions file is in the natural-set shape rather than SQuAD's."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "questions" in data and "data" not in data


def load_natural(path: str | Path = NATURAL_FILE, split: str = "all") -> list[NaturalQuestion]:
    """The questions of a natural-set file, of one split ("held-out", "fit" or "all")."""
    if split not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        questions = [
            NaturalQuestion(
                id=q["id"],
                collection=q["collection"],
                article=q["article"],
                text=q["question"],
                answers=tuple(q["answers"]),
                held_out=bool(q["held_out"]),
            )
            for q in data["questions"]
        ]
    except FileNotFoundError:
        raise UserError(f"questions file not found: {path}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(
            f"{path} is not a natural-question file ({type(error).__name__}: {error})"
        ) from None
    if split == "all":
        return questions
    return [q for q in questions if q.held_out == (split == "held-out")]


def gold_spans(article: Article, answers: Sequence[str]) -> list[tuple[int, int, str]]:
    """Every place in the article where one of the answers occurs, as (start, end, text)."""
    spans = []
    for answer in answers:
        found = re.finditer(re.escape(answer), article.text)
        spans += [(m.start(), m.end(), answer) for m in found]
    return sorted(spans)


def sentence_of(text: str, position: int) -> tuple[int, int]:
    """The (start, end) of the sentence of `text` that holds `position`."""
    for start, end in sentence_spans(text):
        if start <= position < end:
            return start, end
    return position, position


def word_overlap(question: str, sentence: str) -> float:
    """The share of the question's content words (stemmed) that occur in the sentence."""
    asked = set(content_stems(question))
    if not asked:
        return 0.0
    return len(asked & set(content_stems(sentence))) / len(asked)


def shared_run(question: str, sentence: str) -> int:
    """The longest run of consecutive content words (stemmed) the two texts share."""
    a, b = content_stems(question), content_stems(sentence)
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best

"""Follow-up questions: read a question in the light of the turns before it.

"Who will attend it?" after "Where is the meeting held?" is about the meeting;
"What about Syria?" repeats the previous question about something else. A
follow-up is recognised by its pronouns and place/time references, or by being
elliptical; it is then given the earlier question and answer as context for
retrieval and for choosing the answer, while its own words decide what kind of
answer it wants.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.text import STOPWORDS, content_stems, words

# Words that point at a person or a place named earlier: they lean on the earlier turn
# even when the question names other things ("When did he win the race?").
_POINTING = {
    "he", "him", "his", "she", "her", "hers", "they", "them", "their", "theirs", "there", "then",
}  # fmt: skip
# Words that may point at a thing, or be empty ("How long did it take the runner...?"):
# they lean on the earlier turn only when the question names no subject of its own.
_THING_WORDS = {"it", "its", "this", "these", "those", "one", "ones"}
# "Is there..." / "there are...": no place at all.
_EXISTENTIAL = re.compile(
    r"\b(is|are|was|were|will|be)\s+there\b|\bthere\s+(is|are|was|were|be|will|has|have)\b",
    re.IGNORECASE,
)
_OWN_SUBJECT = re.compile(r"\b(?:the|a|an)\s+(?P<noun>[\w'-]+)", re.IGNORECASE)
_ELLIPSIS = re.compile(r"^\s*(and\s+)?(what|how)\s+about\b\s*(?P<rest>.*?)[?.!\s]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str | None = None
    sentence: str | None = None
    article_id: str | None = None
    confidence: float | None = None  # of the answer given; None when there was none
    title: str | None = None  # of the answer's article


@dataclass(frozen=True)
class ResolvedQuestion:
    question: str  # what the user typed
    asked: str  # the question whose words pick the kind of answer
    context: str  # earlier words that the question leans on ("" when standalone)
    article_id: str | None = None  # the article the conversation is about, if any

    @property
    def is_followup(self) -> bool:
        """Whether the question leans on an earlier turn (its words or its subject)."""
        return bool(self.context) or self.asked != self.question

    @property
    def query(self) -> str:
        """The text retrieval searches with."""
        return f"{self.asked} {self.context}".strip()


def resolve_followup(question: str, history: Sequence[Turn]) -> ResolvedQuestion:
    """`question` with the context of the latest turn it depends on, if it depends on one."""
    question = question.strip()
    if not history:
        return ResolvedQuestion(question, question, "")
    last = history[-1]
    ellipsis = _ELLIPSIS.match(question)
    if ellipsis and ellipsis.group("rest"):
        # "What about Syria?" asks the previous question again, about Syria: in place of
        # its topic when it has one ("the festival" -> "the orchard"), else added to it.
        subject = ellipsis.group("rest")
        topic = _topic(last.question)
        if topic and topic in last.question:
            asked = last.question.replace(topic, subject, 1)
        else:
            asked = f"{last.question.rstrip(' ?')} {subject}?"
        return ResolvedQuestion(question, asked, "", last.article_id)
    if not leans_on_earlier_turn(question):
        return ResolvedQuestion(question, question, "")
    asked = substitute_references(question, history)
    # The latest question and its answer; not the answer's whole sentence, which would
    # pull the follow-up back onto the sentence that was already the answer.
    context_parts = [last.question]
    if last.answer:
        context_parts.append(last.answer)
    return ResolvedQuestion(question, asked, " ".join(context_parts), last.article_id)


def names_own_subject(question: str) -> bool:
    """Whether the question names what it is about: "the runner", or a name after its first word."""
    if any(m.group("noun").lower() not in STOPWORDS for m in _OWN_SUBJECT.finditer(question)):
        return True
    return any(w[:1].isupper() and w != "I" for w in words(question)[1:])


def leans_on_earlier_turn(question: str) -> bool:
    """A bare pronoun, "there", or too few words of its own: the question is a follow-up.

    A question that names its own subject ("How long did it take the runner to finish
    the marathon?") starts afresh even with an "it" in it; he/she/they/there always
    point back.
    """
    tokens = [w.lower() for w in words(question)]
    if len(content_stems(question)) <= 1:
        return True
    pointing = {t for t in tokens if t in _POINTING}
    if "there" in pointing and _EXISTENTIAL.search(question):
        pointing.discard("there")
    if pointing:
        return True
    return any(t in _THING_WORDS for t in tokens) and not names_own_subject(question)


_TOPIC = re.compile(r"\b(?:the|this|that|a|an)\s+((?:[\w'-]+\s+){0,2}[\w'-]+)", re.IGNORECASE)
# Participles that close questions like "Where is the meeting held?".
_PARTICIPLES = {
    "held",
    "built",
    "made",
    "done",
    "won",
    "given",
    "taken",
    "seen",
    "known",
    "born",
    "found",
    "run",
    "set",
    "put",
    "paid",
    "sold",
    "kept",
    "led",
    "shown",
    "written",
}
# Not "that": in questions it is mostly a relative pronoun ("the team that found...").
_THING = {"it", "this"}
_PERSON = {"he", "him", "she", "her", "they", "them"}
_POSSESSIVE = {"its": "_thing", "his": "_person", "their": "_person"}


def _topic(question: str) -> str | None:
    """The thing a question is about: its first "the ..." phrase ("the meeting")."""
    for match in _TOPIC.finditer(question):
        phrase = match.group(1).split()
        # "Where is the meeting held?": a participle closing the question is its verb.
        closing = question[match.end() :].strip(" ?!.") == ""
        if (
            len(phrase) > 1
            and closing
            and (phrase[-1].lower() in _PARTICIPLES or phrase[-1].lower().endswith("ed"))
        ):
            phrase.pop()
        while phrase and phrase[-1].lower() in STOPWORDS:
            phrase.pop()
        if phrase:
            return match.group(0).split()[0].lower() + " " + " ".join(phrase)
    return None


def _name(turns: Sequence[Turn]) -> tuple[str | None, str | None]:
    """The latest answer that is a person, and the latest place named in the conversation.

    The question that got the answer says which it is ("Who…?" a person, "Where…?"
    a place); an answer to another kind of question counts only when it is a
    capitalized name, as a place after "in/at/to/from/near", else as a person.
    When no answer was a place, the place is the latest one named after such a word
    in an answer's sentence or its article's title ("…bleaching on Ningaloo Reef").
    """
    from retrieval.answering import expected_type

    person = place = None
    for turn in reversed(turns):
        answer = (turn.answer or "").strip()
        if not answer or len(answer.split()) > 5:
            continue
        kind = expected_type(turn.question)
        if kind not in {"person", "place"}:
            if not answer[0].isupper() or kind in {"number", "date"}:
                continue
            sentence = turn.sentence or ""
            at = sentence.find(answer)
            cue = sentence[:at].split()[-1].lower() if at > 0 and sentence[:at].split() else ""
            kind = "place" if cue in _PLACE_CUES else "person"
        if kind == "place":
            place = place or answer
        else:
            person = person or answer
    if place is None:
        place = next(
            (
                named
                for turn in reversed(turns)
                for text in (turn.sentence, turn.title)
                if text and (named := _named_place(text, exclude=person))
            ),
            None,
        )
    return person, place


_PLACE_CUES = {"in", "at", "to", "from", "near", "on"}
_NAMED_PLACE = re.compile(
    r"\b(?:in|at|to|from|near|on)\s+(?P<name>[A-Z][\w'-]*(?:\s+(?:of\s+)?[A-Z][\w'-]*)*)"
)
# Capitalized words after "on"/"in" that are no place ("on Tuesday", "in March").
_NOT_PLACES = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
    "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "the", "a", "an", "this", "that", "his", "her", "their", "its",
}  # fmt: skip


def _named_place(text: str, exclude: str | None = None) -> str | None:
    """The last capitalized name after in/at/on/to/from/near in `text`, if any."""
    found = None
    for match in _NAMED_PLACE.finditer(text):
        name = match.group("name")
        if name.split()[0].lower() in _NOT_PLACES or (exclude and name in exclude):
            continue
        found = name
    return found


# After these, "there" is where someone goes: "going back there" -> "going back to X".
_MOTION = {"go", "goes", "going", "went", "gone", "back", "come", "comes", "coming", "came",
           "return", "returns", "returning", "returned", "travel", "travelling", "traveling",
           "move", "moving", "get", "getting", "head", "heading"}  # fmt: skip


def substitute_references(question: str, history: Sequence[Turn]) -> str:
    """`question` with it/he/there replaced by what they most likely point at, when known."""
    topic = None
    for turn in reversed(history):
        topic = _topic(turn.question)
        if topic:
            break
    person, place = _name(history)
    replacements = {"_thing": topic, "_person": person}

    def replace(match: re.Match[str]) -> str:
        word = match.group(0)
        lower = word.lower()
        if lower in _THING and topic:
            return topic
        if lower in _PERSON and person:
            return person
        if lower == "there" and place:
            before = match.string[: match.start()].split()
            previous = before[-1].lower() if before else ""
            if previous in _PLACE_CUES:
                return place
            return f"to {place}" if previous in _MOTION else f"in {place}"
        key = _POSSESSIVE.get(lower)
        if key and replacements[key]:
            return f"{replacements[key]}'s"
        return word

    # Only pronouns after the first word: "It" opening a question is usually a dummy subject.
    head, _, rest = question.partition(" ")
    return head + " " + re.sub(r"\b\w+\b", replace, rest) if rest else question

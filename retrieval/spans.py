"""Rules that make a read span end where the thing it names ends.

The reader sometimes stops a number before its unit ("about 640 million" of
"about 640 million kilometers"), starts a name after its title, or runs on past
its sentence's end. Each rule here is small and works on character offsets into
the article; which ones the product applies (`SPAN_RULES`) is chosen by
measurement on SQuAD and on the natural-question set (see README, "Spans").
"""

from __future__ import annotations

import re
from collections.abc import Collection

# A word that says what a number counts or measures, and may follow it.
UNITS = frozenset(
    """percent per-cent % km kilometers kilometres kilometer kilometre miles mile m meters
    metres meter metre cm centimeters centimetres mm millimeters millimetres ft feet foot
    inches inch yards yard kg kilograms kilogram g grams gram tonnes tonne tons ton lb lbs
    pounds ounces oz euros euro dollars dollar pence cents yen yuan rupees francs marks
    degrees °c °f celsius fahrenheit acres acre hectares hectare liters litres liter litre
    gallons gallon mph km/h kph knots watts kw mw gw megawatts gigawatts kilowatts volts
    cent years year months month weeks week days day hours hour minutes minute seconds second
    centuries century decades decade""".split()
)
# Words that may sit between a number and its unit ("12 square kilometers").
UNIT_PREFIXES = frozenset({"square", "cubic", "sq", "metric", "light", "per"})
NUMBER_WORDS = frozenset(
    """hundred thousand million billion trillion dozen one two three four five six seven
    eight nine ten eleven twelve twenty thirty forty fifty sixty seventy eighty ninety
    half""".split()
)
CURRENCY = ("US$", "A$", "C$", "$", "£", "€", "¥", "₹")
TITLES = frozenset(
    """mr mrs ms dr sir dame lord lady president prime minister king queen prince princess
    pope saint st general gen senator sen governor gov professor prof captain capt judge
    justice chancellor secretary ambassador mayor bishop archbishop chief""".split()
)
ALL_RULES = frozenset({"sentence", "unit", "title", "name"})
# Chosen by measurement (README, "Spans"): the rules that raised EM/F1 on both sets.
SPAN_RULES: frozenset[str] = frozenset()

_WORD = re.compile(r"[^\s,;:()\"“”]+")


def _ends_in_number(text: str) -> bool:
    words = text.split()
    if not words:
        return False
    last = words[-1].lower().rstrip(".")
    return any(ch.isdigit() for ch in last) or last in NUMBER_WORDS


def _clean(word: str) -> str:
    return word.lower().rstrip(".,;:!?")


def refine_span(
    text: str,
    start: int,
    end: int,
    sentence_end: int,
    rules: Collection[str] = SPAN_RULES,
) -> tuple[int, int]:
    """(start, end) of the span `text[start:end]` after the chosen rules:

    * ``sentence``: a span that runs past its sentence's end stops at it;
    * ``unit``: a number keeps the unit that follows it ("640 million kilometers",
      "12 square kilometers", "57 percent") and the currency sign before it ("$4 million");
    * ``title``: a name keeps the title words before it ("President Vladimir Putin");
    * ``name``: a name that stops inside a run of capitalized words keeps the rest of the
      run ("Monte Sella" of "Monte Sella Base Tunnel"), up to the sentence's end.
    """
    if "sentence" in rules and start < sentence_end < end:
        end = sentence_end
        while end > start and text[end - 1] in " .;,:!?":
            end -= 1
    if "unit" in rules and _ends_in_number(text[start:end]):
        cursor = end
        taken = 0
        for match in _WORD.finditer(text, end, min(len(text), sentence_end, end + 40)):
            if text[cursor : match.start()].strip():  # punctuation between: stop
                break
            word = _clean(match.group(0))
            if word in UNIT_PREFIXES and taken == 0:
                cursor, taken = match.end(), 1
                continue
            if word in UNITS:
                end = match.start() + len(match.group(0).rstrip(".,;:!?"))
            break
        for sign in CURRENCY:
            if text[max(0, start - len(sign)) : start] == sign:
                start -= len(sign)
                break
    if "title" in rules and text[start : start + 1].isupper():
        while True:
            before = text[:start].rstrip(" ")
            match = re.search(r"(\S+)$", before)
            if match is None or not match.group(1)[:1].isupper():
                break
            if _clean(match.group(1)).rstrip(".") not in TITLES:
                break
            start = match.start(1)
    if "name" in rules and re.search(r"(?:^|\s)[A-Z][^\s]*$", text[start:end]):
        for match in _NAME_GOES_ON.finditer(text, end, sentence_end):
            if match.start() != end:
                break
            end = match.end()
    return start, end


# A capitalized word straight after a span, one space before it (a name going on).
_NAME_GOES_ON = re.compile(r" [A-Z][\w'’-]*")


# --- the kind of quantity a question asks for -------------------------------------------------

# What a unit measures; a word may measure more than one thing ("pounds").
MEASURES: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        "$ £ € ¥ ₹ us$ usd eur gbp dollars dollar euros euro pence cents cent yen yuan rupees "
        "francs".split(),
        frozenset({"money"}),
    ),
    "pounds": frozenset({"money", "mass"}),
    "pound": frozenset({"money", "mass"}),
    **dict.fromkeys(
        "km kilometers kilometres kilometer kilometre miles mile meters metres meter metre cm "
        "centimeters centimetres mm millimeters millimetres ft feet foot inches inch yards "
        "yard light-years".split(),
        frozenset({"length"}),
    ),
    **dict.fromkeys(
        "seconds second minutes minute hours hour days day weeks week months month years year "
        "decades decade centuries century".split(),
        frozenset({"time"}),
    ),
    **dict.fromkeys("percent per-cent %".split(), frozenset({"share"})),
    **dict.fromkeys(
        "kg kilograms kilogram grams gram tonnes tonne tons ton lb lbs ounces oz".split(),
        frozenset({"mass"}),
    ),
}
# Questions that name the kind of quantity they want: "How much did it cost?" wants money,
# "How far…?" a length, "What percentage…?" a share. "How much did the price rise?" asks
# for a change, which may come as a share: no kind then.
_ASKS = (
    ("money", re.compile(r"\bhow much\b.*\b(cost|costs|costing|price|priced|paid|pay|pays|"
                         r"spend|spent|worth|budget|fee|fees|salary|wage|fine|fined|money|"
                         r"prize|charge|charged|sell|sold|earn|earned|invest|invested)\b"
                         r"|\bwhat (?:is|was|were|are) the (price|cost|fee|budget|salary)\b")),
    ("length", re.compile(r"\bhow (far|tall|deep|wide)\b|\bwhat (distance|length|height|depth)\b")),
    ("share", re.compile(r"\bwhat (percentage|percent|proportion|share|fraction)\b")),
    ("time", re.compile(r"\bhow long\b.*\b(take|takes|took|taken|taking|last|lasts|lasted|"
                        r"spend|spends|spent)\b|\bhow many (seconds|minutes|hours|days|weeks|"
                        r"months|years|decades|centuries)\b")),
)  # fmt: skip
_CHANGE = re.compile(
    r"\b(increase|increased|rise|rose|risen|grow|grew|grown|fall|fell|fallen|drop|dropped|"
    r"decline|declined|change|changed|cut|reduce|reduced)\b"
)
_UNIT_TOKEN = re.compile(r"[$£€¥₹%]|[A-Za-z][A-Za-z$-]*")


def asked_measure(question: str) -> str | None:
    """The kind of quantity a question asks for ("money" for "How much did it cost?"), if named."""
    q = question.lower()
    if _CHANGE.search(q):
        return None
    return next((kind for kind, pattern in _ASKS if pattern.search(q)), None)


def measures_of(span: str) -> frozenset[str]:
    """What the units in a span measure ("about 640 million kilometers": length)."""
    found: set[str] = set()
    for token in _UNIT_TOKEN.findall(span):
        found |= MEASURES.get(token.lower(), frozenset())
    return frozenset(found)


def wrong_measure(question: str, span: str) -> bool:
    """Whether `span` is a quantity of another kind than the one the question asks for.

    "How much did it cost?" answered by "640 million kilometers": a length, no money.
    A span with no unit, or with one of the asked kind, is never wrong here.
    """
    asked = asked_measure(question)
    if asked is None:
        return False
    found = measures_of(span)
    return bool(found) and asked not in found

"""Cleaning: from a scraped page to the article's title and clean text.

HTML goes through trafilatura, which finds the article among navigation and
footers; plain text (and what trafilatura returns) then goes through general
line and sentence rules that drop the boilerplate news sites wrap around an
article: donation appeals, "Follow @x on Twitter", subscription and bookmark
prompts, comment-forum invitations, bare "Comments"/"Share" lines, copyright
lines, and sentences glued together across a missing space. Kept text is
never rewritten: only whitespace changes, so offsets into the clean text stay
meaningful as quotes of the source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Bump when the rules change what text they keep: the index manifest records it,
# so an index built with other rules is rebuilt rather than silently mixed.
CLEANER_VERSION = "2"  # 2: HTML scripts and styles dropped; HTML blocks never joined

# A first line longer than this is a paragraph, not a headline.
MAX_TITLE_CHARS = 200
# A standfirst (one-line summary under the headline) is short and has no final period.
MAX_STANDFIRST_CHARS = 300
# A heading line: short and without final punctuation.
MAX_HEADING_WORDS = 12
# An HTML page needs at least one paragraph of prose this long to count as an article.
MIN_PROSE_WORDS = 6


class EmptyArticle(ValueError):
    """The page holds no article text, only navigation or boilerplate."""


@dataclass(frozen=True)
class CleanedPage:
    title: str
    text: str
    published: str | None = None


# Tokens that end with a period without ending a sentence ("Mr. Kerry", "e.g. this").
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof st jr sr gen gov sen rep lt col capt sgt maj cmdr adm rev hon vs
    etc inc ltd co corp dept est approx fig vol ed eds jan feb mar apr jun jul aug sep
    sept oct nov dec mt ft""".split()  # noqa: SIM905 (a word list reads better as text)
)

# Sentence end: punctuation, optional closing quotes/brackets, whitespace, then a capital
# or digit (optionally behind an opening quote).
_SENTENCE_BOUNDARY = re.compile(r"[.!?…]+[\"”’)\]]*(\s+)(?=[\"“‘(\[]?[A-Z0-9])")
# Two sentences glued by a scraper that dropped the space ("the difference.US Secretary").
# The letter before the punctuation must be lowercase/digit/closing quote, so "U.S.A" is safe.
_GLUED_BOUNDARY = re.compile(r"(?<=[a-z0-9\"”’)][.!?])(?=[A-Z][A-Za-z])")
_TERMINAL_PUNCTUATION = re.compile(r"[.!?…:][\"”’)\]]*$")
_QUOTE_MARKS = re.compile(r"[\"“”]")
# The outlet speaking about itself. Case-sensitive on purpose: "US" is a country.
_OUTLET_VOICE = re.compile(r"\b(?:[Ww]e|[Oo]urs?|us)\b")
_WHITESPACE = re.compile(r"\s+")

_SOCIAL_NETWORKS = (
    r"(?:twitter|x|facebook|instagram|threads|bluesky|mastodon|linkedin|tiktok|youtube)"
)


def _rules(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


# The outlet asking readers for money. Sentences that quote someone are exempt (see
# _classify), so "your support" in a quoted speech stays.
_APPEAL = _rules(
    r"\byour (?:support|donation|contribution|generosity|gift)s?\b",
    r"\b(?:support|fund|donate to) (?:us|our (?:work|journalism|reporting|newsroom|mission)"
    r"|independent journalism|quality journalism)\b",
    r"\b(?:we|our)\b[^.!?]*\bpaywalls?\b",
    r"\bpaywalls?\b[^.!?]*\b(?:we|our)\b",
    r"\bpaid for by (?:those|readers|people|the people) who can afford\b",
    r"^(?:please )?(?:donate|consider (?:donating|making a (?:donation|contribution)))\b",
    r"\bdonate (?:now|today|here|monthly)\b",
    r"^(?:become|becoming) a (?:member|supporter|subscriber|patron)\b",
)

# Site furniture: social links, subscription and newsletter prompts, comment forums,
# copyright lines, "Read more:" teasers and bare one-word lines.
_FURNITURE = _rules(
    rf"^follow\b.{{0,60}}\bon {_SOCIAL_NETWORKS}\b",
    r"^follow (?:@\w+|us)\b",
    r"^(?:un)?subscribe\b",
    r"^start your\b.*\b(?:subscription|trial|membership)\b",
    r"^(?:sign up|register|get|receive)\b.*\b(?:newsletters?|briefing|email alerts?|digest)\b",
    r"\bsign up (?:for|to) (?:our|the)\b.*\bnewsletter",
    r"\bbookmark (?:this|your|these|articles?|stories|favou?rite)\b",
    r"^join\b.{0,80}\b(?:conversations?|comments?|commenting|discussions?|forum|debate|community)\b",
    r"^(?:log ?in|sign in|register) to\b.*\b(?:comment|continue|read)",
    r"^(?:©|\(c\)\s|copyright\b)",
    r"\ball rights reserved\b",
    r"^(?:read more|related|see also|more on this (?:story|topic)|recommended|most read"
    r"|most popular|you may also like)\s*[:|–—-]",
    r"^click here\b",
    r"^share (?:this|on|via)\b",
    r"^(?:\d+ )?comments?(?: \(\d+\))?[.:!]?$",
    r"^(?:show|view|hide) comments?$",
    r"^(?:share|advertisement|sponsored(?: content)?|read more|related|print|email|menu|search"
    r"|home|skip to (?:main )?content|back to top|top stories|trending|newsletter|close)[.:!]?$",
)


def clean_text_page(raw: str, fallback_title: str) -> CleanedPage:
    """Clean a scraped plain-text page; its first line is the headline when it reads like one."""
    lines = raw.splitlines()
    title, body = _split_title(lines, fallback_title)
    # A standfirst only exists under a headline taken from the page itself.
    has_headline = len(body) < len(lines)
    return CleanedPage(title=title, text=_clean_body(body, drop_standfirst=has_headline))


def clean_article_text(raw: str) -> str:
    """Clean article text whose title is already known (e.g. the "text" field of a JSON record)."""
    return _clean_body(raw.splitlines(), drop_standfirst=False)


def clean_markdown_page(raw: str, fallback_title: str) -> CleanedPage:
    """Clean a Markdown page: a leading `# ` heading is the title.

    Heading markers go and links keep only their text; emphasis markers are left as written.
    """
    lines = raw.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    heading = _MD_TITLE.match(lines[first]) if first is not None else None
    if heading is not None:
        title, body = _normalize(heading.group(1)), _markdown_to_lines(lines[first + 1 :])
    else:
        title, body = _split_title(_markdown_to_lines(lines), fallback_title)
    return CleanedPage(title=title, text=_clean_body(body, drop_standfirst=False))


def clean_html_page(html: str, fallback_title: str) -> CleanedPage:
    """Extract the article of an HTML page with trafilatura, then apply the text rules.

    Raises EmptyArticle when the page holds no article text.
    """
    # Imported here so that cleaning plain text (and the CLI's --help) stays instant.
    import trafilatura

    # Scripts and styles are never article text; inside <title> the parser would keep
    # a script's code as words of the title ("bans fireworks alert(1)").
    html = _SCRIPT_OR_STYLE.sub(" ", html)
    document = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False)
    extracted = (document.text or "") if document is not None else ""
    title = _normalize(document.title or "") if document is not None else ""
    title = title or fallback_title
    lines = extracted.splitlines()
    # trafilatura sometimes repeats the headline as the first line of the body.
    if lines and _normalize(lines[0]) == title:
        lines = lines[1:]
    # One page block per line: a heading never continues into the paragraph under it.
    text = _clean_body(lines, drop_standfirst=False, wrapped=False)
    if not any(_is_prose(paragraph) for paragraph in text.split("\n\n")):
        raise EmptyArticle("no article text found (page is only navigation or boilerplate)")
    published = document.date if document is not None else None
    return CleanedPage(title=title, text=text, published=published or None)


_SCRIPT_OR_STYLE = re.compile(
    r"<(script|style|noscript)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL
)
_MD_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def _markdown_to_lines(lines: list[str]) -> list[str]:
    plain: list[str] = []
    for line in lines:
        line = _MD_LINK.sub(r"\1", _MD_IMAGE.sub("", line))
        heading = _MD_HEADING.match(line)
        # A heading is its own paragraph, never joined to the text around it.
        plain.extend(["", heading.group(1), ""] if heading else [line])
    return plain


def _split_title(lines: list[str], fallback_title: str) -> tuple[str, list[str]]:
    """Take the first real line as the title when it reads like a headline."""
    content = [i for i, line in enumerate(lines) if line.strip() and not _is_boilerplate_line(line)]
    if len(content) < 2:
        return fallback_title, lines
    first = _normalize(lines[content[0]])
    looks_like_paragraph = len(first) > MAX_TITLE_CHARS or (
        _TERMINAL_PUNCTUATION.search(first) is not None and len(_split_sentences(first)) > 1
    )
    if looks_like_paragraph:
        return fallback_title, lines
    return first, lines[content[0] + 1 :]


def _clean_body(lines: Iterable[str], *, drop_standfirst: bool, wrapped: bool = True) -> str:
    paragraphs = [part for paragraph in _paragraphs(lines, wrapped) for part in _unglue(paragraph)]
    kept = _drop_boilerplate(paragraphs)
    # The standfirst (a one-line summary under the headline, with no final period)
    # is dropped: it repeats the article's lead, and the article should start at its
    # first real sentence.
    if drop_standfirst and len(kept) > 1 and kept[0][0] == 0 and _is_standfirst(kept[0][1]):
        kept = kept[1:]
    return "\n\n".join(text for _, text in kept)


def _paragraphs(lines: Iterable[str], wrapped: bool = True) -> list[str]:
    """Group lines into paragraphs.

    Scraped pages put one paragraph per line. Text with blank lines between
    paragraphs may be hard-wrapped (unless `wrapped` is false, as for the blocks
    extracted from HTML), so a line there continues the previous one when that
    line stops mid-sentence.
    """
    normalized = [_normalize(line) for line in lines]
    blocks_mode = wrapped and any(not line for line in normalized) and any(normalized)
    paragraphs: list[str] = []
    continues = False
    for line in normalized:
        if not line:
            continues = False
            continue
        if continues and not _is_boilerplate_line(line):
            paragraphs[-1] = f"{paragraphs[-1]} {line}"
        else:
            paragraphs.append(line)
        continues = (
            blocks_mode
            and _TERMINAL_PUNCTUATION.search(paragraphs[-1]) is None
            and not _is_boilerplate_line(line)
        )
    return paragraphs


def _unglue(paragraph: str) -> list[str]:
    """Split where a scraper glued two blocks together ("the difference.US Secretary").

    Glued text comes from adjacent page elements, so each side becomes a paragraph.
    """
    parts: list[str] = []
    start = 0
    for match in _GLUED_BOUNDARY.finditer(paragraph):
        if _ends_with_abbreviation(paragraph[: match.start() - 1]):
            continue
        parts.append(paragraph[start : match.start()])
        start = match.start()
    parts.append(paragraph[start:])
    return [part.strip() for part in parts if part.strip()]


def _drop_boilerplate(paragraphs: list[str]) -> list[tuple[int, str]]:
    """Return (original index, kept text) of the paragraphs that are article text.

    A paragraph goes when at least half of its sentences are boilerplate and one of
    them is unmistakable (an appeal or site furniture); otherwise only the
    unmistakable sentences go. Appeals come in blocks, so the outlet talking about
    itself ("we", "our") next to a dropped appeal is part of that block too, and so
    is a heading line right above the block.
    """
    sentences = [_split_sentences(paragraph) for paragraph in paragraphs]
    kinds = [[_classify(sentence) for sentence in group] for group in sentences]
    dropped = [False] * len(paragraphs)
    for i, group in enumerate(kinds):
        strong = sum(kind in ("appeal", "furniture") for kind in group)
        boilerplate = sum(kind is not None for kind in group)
        dropped[i] = strong > 0 and 2 * boilerplate >= len(group)

    def is_dropped_appeal(j: int) -> bool:
        return 0 <= j < len(paragraphs) and dropped[j] and bool({"appeal", "voice"} & set(kinds[j]))

    def belongs_to_appeal_block(i: int) -> bool:
        voice = sum(kind == "voice" for kind in kinds[i])
        if voice and 2 * voice >= len(kinds[i]):
            return is_dropped_appeal(i - 1) or is_dropped_appeal(i + 1)
        return _is_heading(paragraphs[i]) and is_dropped_appeal(i + 1)

    changed = True
    while changed:
        changed = False
        for i in range(len(paragraphs)):
            if not dropped[i] and belongs_to_appeal_block(i):
                dropped[i] = changed = True

    kept: list[tuple[int, str]] = []
    for i, group in enumerate(sentences):
        if dropped[i]:
            continue
        text = " ".join(
            sentence
            for sentence, kind in zip(group, kinds[i], strict=True)
            if kind not in ("appeal", "furniture")
        )
        if text:
            kept.append((i, text))
    return kept


def _classify(sentence: str) -> str | None:
    """Say which kind of boilerplate a sentence is: appeal, furniture, voice or None."""
    if _FURNITURE.search(sentence):
        return "furniture"
    # A sentence with a quotation reports what someone said: it is the article talking.
    if _QUOTE_MARKS.search(sentence):
        return None
    if _APPEAL.search(sentence):
        return "appeal"
    if _OUTLET_VOICE.search(sentence):
        return "voice"
    return None


def _split_sentences(paragraph: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_BOUNDARY.finditer(paragraph):
        if _ends_with_abbreviation(paragraph[: match.start()]):
            continue
        sentences.append(paragraph[start : match.start(1)])
        start = match.end(1)
    sentences.append(paragraph[start:])
    return [sentence for sentence in sentences if sentence]


def _ends_with_abbreviation(prefix: str) -> bool:
    """True when the word just before a period is an abbreviation or an initial."""
    words = prefix.split()
    if not words:
        return False
    word = words[-1].lstrip("\"“‘'([")
    return word.lower() in _ABBREVIATIONS or "." in word or (len(word) == 1 and word.isalpha())


def _is_boilerplate_line(line: str) -> bool:
    sentences = _split_sentences(_normalize(line))
    return len(sentences) == 1 and _classify(sentences[0]) in ("appeal", "furniture")


def _is_standfirst(paragraph: str) -> bool:
    return (
        len(paragraph) <= MAX_STANDFIRST_CHARS
        and _TERMINAL_PUNCTUATION.search(paragraph) is None
        and len(_split_sentences(paragraph)) == 1
    )


def _is_heading(paragraph: str) -> bool:
    return (
        len(paragraph.split()) <= MAX_HEADING_WORDS
        and _TERMINAL_PUNCTUATION.search(paragraph) is None
    )


def _is_prose(paragraph: str) -> bool:
    return (
        len(paragraph.split()) >= MIN_PROSE_WORDS
        and _TERMINAL_PUNCTUATION.search(paragraph) is not None
    )


def _normalize(line: str) -> str:
    return _WHITESPACE.sub(" ", line).strip()

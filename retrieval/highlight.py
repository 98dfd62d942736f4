"""HTML for showing article text with marked spans: escape first, then mark by offsets.

Everything from an article is escaped, so an article containing `<script>` shows
as text; marks are placed by character offsets, never by searching the text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable


def merge_spans(spans: Iterable[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Sorted, clipped to [0, length], overlapping or touching spans joined, empty ones dropped."""
    clipped = sorted((max(0, s), min(length, e)) for s, e in spans)
    merged: list[tuple[int, int]] = []
    for start, end in clipped:
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def highlight_html(
    text: str, spans: Iterable[tuple[int, int]], tag: str = "mark", anchor: str | None = None
) -> str:
    """`text` HTML-escaped, with each span wrapped in `<tag>`; newlines kept as `<br>`.

    `anchor`: an id for the first span, so that the page can scroll to it.
    """
    pieces: list[str] = []
    cursor = 0
    for number, (start, end) in enumerate(merge_spans(spans, len(text))):
        pieces.append(html.escape(text[cursor:start]))
        attribute = f' id="{html.escape(anchor)}"' if anchor and number == 0 else ""
        pieces.append(f"<{tag}{attribute}>{html.escape(text[start:end])}</{tag}>")
        cursor = end
    pieces.append(html.escape(text[cursor:]))
    return "".join(pieces).replace("\n", "<br>")

"""Ratings of answers, kept as JSON lines beside the index.

The page appends one line per thumbs up/down, and one when a thumb is
un-clicked ("withdrawn"): the time, the rating, the browser session and the
turn it belongs to, the question, the answer and the sources shown with it.
The log is never rewritten; `latest_ratings` gives each turn's last word. The file
(`index/feedback.jsonl`) lives outside the index's versions, so rebuilds keep
it. Each record is written with a single `write` on a file opened for
appending, then fsynced, so concurrent writers never interleave inside a line;
a line torn by a crash is skipped (with a warning) when the file is read back.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from retrieval.store import feedback_path

log = logging.getLogger(__name__)

RATINGS = ("up", "down", "withdrawn")


def record_feedback(
    index_dir: str | Path,
    *,
    question: str,
    answer: dict | None,
    sources: list[dict],
    rating: str,
    when: datetime | None = None,
    session: str | None = None,
    turn: str | None = None,
) -> dict:
    """Append one rating to the index's feedback file; returns the record written.

    `answer` is the answer's JSON object (None for "not in these articles") and
    `sources` the passages shown with it, both as in `article-qa ask --json`;
    `session` and `turn` say which browser session and which of its answers.
    """
    if rating not in RATINGS:
        raise ValueError(f"rating must be one of {', '.join(RATINGS)}, got {rating!r}")
    moment = when or datetime.now(UTC)
    record = {
        "time": moment.isoformat(timespec="seconds"),
        "rating": rating,
        "session": session,
        "turn": turn,
        "question": question,
        "answer": answer,
        "sources": sources,
    }
    path = feedback_path(Path(index_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        # A crash mid-write leaves a last line without its newline; start a fresh
        # line so the new record is not glued onto the torn one.
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return record


def read_feedback(index_dir: str | Path) -> list[dict]:
    """Every record in the index's feedback file, oldest first; [] when there is none.

    A line that is not a JSON object (a write torn by a crash) is skipped with
    a warning naming its line number, so one bad line never hides the rest.
    """
    path = feedback_path(Path(index_dir))
    if not path.is_file():
        return []
    records = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                log.warning("skipped line %d of %s: not a complete JSON record", number, path)
                continue
            records.append(record)
    return records


def latest_ratings(records: list[dict]) -> list[dict]:
    """Each rated answer once, with its last rating; withdrawn ones left out.

    Records of the same session and turn replace each other (thumbs down, then
    up, is one "up"); records without a turn (older files) stand alone.
    """
    latest: dict[object, dict] = {}
    for number, record in enumerate(records):
        turn = record.get("turn")
        key = (record.get("session"), turn) if turn else number
        latest.pop(key, None)  # re-inserted: the order is that of the last rating
        latest[key] = record
    return [record for record in latest.values() if record.get("rating") != "withdrawn"]


__all__ = ["RATINGS", "latest_ratings", "read_feedback", "record_feedback"]

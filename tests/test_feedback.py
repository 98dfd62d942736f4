"""Feedback file: one JSON line per rating, beside the index, read back even after a torn write."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from retrieval.feedback import latest_ratings, read_feedback, record_feedback
from retrieval.store import feedback_path

ANSWER = {"text": "Lisbon", "sentence": "The summit takes place in Lisbon.", "score": 0.81}
SOURCES = [{"chunk_id": "a1:0-40", "article_id": "a1", "title": "Summit", "score": 0.03}]


def test_record_appends_one_json_line_with_every_field(tmp_path):
    when = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    written = record_feedback(
        tmp_path, question="Where?", answer=ANSWER, sources=SOURCES, rating="up", when=when,
        session="s1", turn="t1",
    )  # fmt: skip
    lines = feedback_path(tmp_path).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [written]
    assert written == {
        "time": "2025-03-01T12:30:00+00:00",
        "rating": "up",
        "session": "s1",
        "turn": "t1",
        "question": "Where?",
        "answer": ANSWER,
        "sources": SOURCES,
    }


def test_read_returns_records_oldest_first(tmp_path):
    record_feedback(tmp_path, question="first", answer=None, sources=[], rating="down")
    record_feedback(tmp_path, question="second", answer=ANSWER, sources=SOURCES, rating="up")
    assert [r["question"] for r in read_feedback(tmp_path)] == ["first", "second"]
    assert read_feedback(tmp_path)[0]["answer"] is None


def test_read_without_a_feedback_file_is_empty(tmp_path):
    assert read_feedback(tmp_path / "no-index-yet") == []


def test_read_skips_a_torn_last_line_with_a_warning(tmp_path, caplog):
    record_feedback(tmp_path, question="kept", answer=None, sources=[], rating="up")
    with feedback_path(tmp_path).open("a", encoding="utf-8") as out:
        out.write('{"time": "2025-01-01", "rating": "do')
    with caplog.at_level(logging.WARNING, logger="retrieval.feedback"):
        records = read_feedback(tmp_path)
    assert [r["question"] for r in records] == ["kept"]
    assert "skipped line 2" in caplog.text


def test_record_after_a_torn_line_starts_a_new_line(tmp_path):
    feedback_path(tmp_path).write_text('{"torn": ', encoding="utf-8")
    record_feedback(tmp_path, question="after", answer=None, sources=[], rating="down")
    assert [r["question"] for r in read_feedback(tmp_path)] == ["after"]


def test_unknown_rating_is_refused(tmp_path):
    with pytest.raises(ValueError, match="rating must be one of up, down, withdrawn, got 'meh'"):
        record_feedback(tmp_path, question="q", answer=None, sources=[], rating="meh")
    assert not feedback_path(tmp_path).exists()


def test_unicode_is_kept_readable(tmp_path):
    record_feedback(tmp_path, question="Où est Sóchi?", answer=None, sources=[], rating="up")
    assert "Où est Sóchi?" in feedback_path(tmp_path).read_text(encoding="utf-8")


def test_latest_ratings_keep_each_turns_last_word_and_drop_withdrawn_ones():
    def rec(rating, turn, session="s1"):
        return {"rating": rating, "turn": turn, "session": session, "question": turn}

    records = [rec("down", "t1"), rec("up", "t2"), rec("up", "t1"), rec("up", "t3"),
               rec("withdrawn", "t3"), rec("down", "t1", session="s2"),
               {"rating": "up", "question": "old record without a turn"}]  # fmt: skip
    latest = latest_ratings(records)
    assert [(r.get("session"), r.get("turn"), r["rating"]) for r in latest] == [
        ("s1", "t2", "up"), ("s1", "t1", "up"), ("s2", "t1", "down"), (None, None, "up")
    ]  # fmt: skip

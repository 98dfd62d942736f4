"""Conversations saved beside the index: read back whole, and damage or bad ids met calmly."""

from __future__ import annotations

import logging

import pytest

from retrieval.conversations import (
    SavedTurn,
    conversation_path,
    load_conversation,
    new_conversation_id,
    save_conversation,
)
from retrieval.errors import UserError
from retrieval.qa import QAEngine
from tests.helpers import build_fake, write_corpus


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("conversations")
    build_fake(write_corpus(root / "corpus"), root / "index")
    return QAEngine.open(root / "index")


def test_saved_turns_come_back_equal(engine, tmp_path):
    first = engine.ask("Who steered the ferry?", threshold=0.0)
    second = engine.ask("Where did she sail?", [first.to_turn()], threshold=1.0)
    turns = [SavedTurn("t1", first, "up"), SavedTurn("t2", second)]
    cid = new_conversation_id()
    save_conversation(tmp_path, cid, turns)
    back = load_conversation(tmp_path, cid)
    assert back == turns
    assert back[0].result.citations == first.citations  # the article text came back too
    assert back[1].result.answer is None and back[1].result.resolved.is_followup


def test_an_unknown_conversation_is_empty(tmp_path):
    assert load_conversation(tmp_path, new_conversation_id()) == []


def test_a_damaged_file_starts_afresh_with_a_warning(tmp_path, caplog):
    cid = new_conversation_id()
    path = conversation_path(tmp_path, cid)
    path.parent.mkdir(parents=True)
    path.write_text('{"format": 1, "turns": [{"id": ', encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert load_conversation(tmp_path, cid) == []
    assert "could not be read back" in caplog.text


@pytest.mark.parametrize("bad", ["../../etc/passwd", "", "ABCDEF0123456789", "0" * 15])
def test_an_id_that_is_not_ours_is_refused(tmp_path, bad):
    with pytest.raises(UserError, match="not a conversation id"):
        conversation_path(tmp_path, bad)

"""Conversations kept on disk beside the index, so that reloading the page loses nothing.

The page names its conversation in the URL (``?c=<id>``) and saves every turn to
``<index>/conversations/<id>.json`` (atomically). A reload, or the same URL in
another tab, reads it back. Each turn keeps the articles its passages came from as
they were when it was asked, so a rebuild that changes them leaves the
conversation as it was shown.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from retrieval.answering import Answer
from retrieval.articles import Article
from retrieval.chunking import Chunk
from retrieval.conversation import ResolvedQuestion
from retrieval.errors import UserError
from retrieval.qa import QAResult
from retrieval.search import Hit
from retrieval.store import atomic_write_text

log = logging.getLogger(__name__)

CONVERSATIONS_DIR = "conversations"
FORMAT = 1
_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class SavedTurn:
    id: str
    result: QAResult
    rating: str | None = None  # "up", "down" or None


def new_conversation_id() -> str:
    return uuid.uuid4().hex[:16]


def is_conversation_id(text: str) -> bool:
    return bool(_ID.fullmatch(text))


def conversation_path(index_dir: str | Path, conversation_id: str) -> Path:
    if not is_conversation_id(conversation_id):
        raise UserError(f"not a conversation id: {conversation_id!r}")
    return Path(index_dir) / CONVERSATIONS_DIR / f"{conversation_id}.json"


def save_conversation(
    index_dir: str | Path, conversation_id: str, turns: Sequence[SavedTurn]
) -> None:
    """Write the conversation's turns, replacing what was saved before (atomically)."""
    path = conversation_path(index_dir, conversation_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    articles: dict[str, dict] = {}
    records = []
    for turn in turns:
        for hit in turn.result.passages:
            articles.setdefault(hit.article.id, asdict(hit.article))
        records.append(
            {"id": turn.id, "rating": turn.rating, "result": _result_record(turn.result)}
        )
    data = {"format": FORMAT, "turns": records, "articles": articles}
    atomic_write_text(path, json.dumps(data, ensure_ascii=False) + "\n")


def load_conversation(index_dir: str | Path, conversation_id: str) -> list[SavedTurn]:
    """The saved turns; none when nothing was saved, or when the file cannot be read back."""
    path = conversation_path(index_dir, conversation_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        articles = {key: Article(**value) for key, value in data["articles"].items()}
        return [
            SavedTurn(t["id"], _result_from(t["result"], articles), t["rating"])
            for t in data["turns"]
        ]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("conversation %s could not be read back (%s): starting afresh", path, error)
        return []


def _result_record(result: QAResult) -> dict:
    return {
        "question": result.question,
        "resolved": asdict(result.resolved),
        "answer": asdict(result.answer) if result.answer else None,
        "best_guess": asdict(result.best_guess) if result.best_guess else None,
        "passages": [
            {
                "chunk": asdict(hit.chunk),
                "article_id": hit.article.id,
                "score": hit.score,
                "dense_score": hit.dense_score,
                "lexical_score": hit.lexical_score,
            }
            for hit in result.passages
        ],
        "threshold": result.threshold,
        "timing_ms": result.timing_ms,
        "band": result.band,
    }


def _result_from(record: dict, articles: dict[str, Article]) -> QAResult:
    def answer(value: dict | None) -> Answer | None:
        return Answer(**value) if value else None

    return QAResult(
        question=record["question"],
        resolved=ResolvedQuestion(**record["resolved"]),
        answer=answer(record["answer"]),
        best_guess=answer(record["best_guess"]),
        passages=tuple(
            Hit(
                Chunk(**p["chunk"]),
                articles[p["article_id"]],
                p["score"],
                p["dense_score"],
                p["lexical_score"],
            )  # fmt: skip
            for p in record["passages"]
        ),
        threshold=record["threshold"],
        timing_ms=record["timing_ms"],
        band=record["band"],
    )

"""Tiny corpora written for the tests, and an index over them with the fake embedder."""

from __future__ import annotations

import socket
from pathlib import Path

from retrieval.indexing import BuildReport, build_index, index_config

FAKE = index_config("fake-hashed-words")

ARTICLES = {
    "harbour.txt": (
        "Harbour ferry returns to Port Wren\n\n"
        "The harbour ferry in Port Wren carried passengers again on Thursday after a two-year "
        "repair. The repair cost the town council 2.3 million pounds.\n\n"
        "Captain Alma Reyes steered the ferry across the bay in forty minutes. The mayor, "
        "Tobias Grant, rode on the first crossing and praised the engineers.\n"
    ),
    "orchard.txt": (
        "Orchard festival draws record crowd\n\n"
        "The apple festival in Kettlebrook drew 12,000 visitors on Saturday, a record for the "
        "village. Growers sold cider, pies and forty kinds of apples.\n\n"
        "The festival began in 1987, when three farmers set up stalls in a barn.\n"
    ),
    "observatory.txt": (
        "Students name a new asteroid\n\n"
        "Pupils at Larkfield School named an asteroid found by the Hollow Peak Observatory. "
        "The asteroid is about 3 kilometers wide and circles the Sun every four years.\n"
    ),
}


def write_corpus(folder: Path, articles: dict[str, str] = ARTICLES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def build_fake(corpus: Path, index: Path, **kwargs) -> BuildReport:
    return build_index([corpus], index, config=FAKE, **kwargs)


def index_vectors(index) -> dict[str, tuple[list[int], object]]:
    """Each vector set's keys (by article and place) and their vectors: to compare two builds."""
    documents = index.documents
    passages = [key for key, _ in documents.all_passages()]
    sentences = [stored.key for stored in documents.all_sentences()]
    return {
        "passages": (passages, index.passages.get(passages)),
        "sentences": (sentences, index.sentences.get(sentences)),
    }


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends

"""An index whose vectors live in Milvus (Milvus Lite here): build, ask, rebuild, clean up,
and a store that cannot be reached met with one line and the previous index kept."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from retrieval.cli import main
from retrieval.errors import UserError
from retrieval.qa import QAEngine
from retrieval.store import current_version, load_index, read_manifest, store_spec
from tests.helpers import build_fake, closed_port, write_corpus

pytest.importorskip("pymilvus", reason="pymilvus is not installed")


def collections(db) -> list[str]:
    from retrieval.milvus import connect

    return sorted(connect(str(db)).list_collections())


def test_an_index_on_milvus_lite_answers_like_a_local_one(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    db = tmp_path / "milvus" / "vectors.db"
    db.parent.mkdir()
    build_fake(corpus, tmp_path / "index", store=f"milvus://{db}")
    build_fake(corpus, tmp_path / "local")
    on_milvus = QAEngine.open(tmp_path / "index")
    local = QAEngine.open(tmp_path / "local")
    assert read_manifest(tmp_path / "index").store == str(db)
    version = current_version(tmp_path / "index")
    assert (version / "passages.milvus.json").is_file()
    assert not (version / "passages.faiss").exists()
    for question in ("Who steered the ferry?", "When did the festival begin?"):
        a = on_milvus.ask(question, threshold=0.0)
        b = local.ask(question, threshold=0.0)
        assert a.answer.text == b.answer.text
        assert [h.chunk.id for h in a.passages] == [h.chunk.id for h in b.passages]


def rows(db, collection, where=""):
    """Every row of a collection, dead or alive: key, article, born, died."""
    from retrieval.milvus import _rows, connect

    return _rows(connect(str(db)), collection, where, ["key", "article", "born", "died"])


def live_collection(index) -> str:
    return json.loads((current_version(index) / "passages.milvus.json").read_text())["collection"]


def test_incremental_builds_write_only_what_changed_into_the_same_collections(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    db = tmp_path / "vectors.db"
    index = tmp_path / "index"
    build_fake(corpus, index, store=f"milvus://{db}")
    first = collections(db)
    assert len(first) == 2  # passages and sentences
    passages = live_collection(index)
    assert {r["born"] for r in rows(db, passages)} == {1}
    before = len(rows(db, passages))

    (corpus / "note.txt").write_text(
        "Council notes\n\nThe council met 7 times about the bridge.\n", encoding="utf-8"
    )
    build_fake(corpus, index)  # no --store: the index's own
    assert read_manifest(index).store == str(db)
    assert collections(db) == first and live_collection(index) == passages
    added = [r for r in rows(db, passages) if r["born"] == 2]
    assert len(added) == 1 and len(rows(db, passages)) == before + 1  # only the new passage
    engine = QAEngine.open(index)
    answer = engine.ask("How many times did the council meet?", threshold=0.0).answer
    assert answer.text.startswith("7")

    harbour = load_index(index).documents.find_articles("Harbour ferry")[0][0]
    (corpus / "harbour.txt").unlink()
    build_fake(corpus, index)
    dead = rows(db, passages, "died != 0")
    assert {r["article"] for r in dead} == {harbour.id}
    assert {r["died"] for r in dead} == {3}
    stored = load_index(index)
    assert len(stored.passages) == stored.manifest.passages  # the version sees the living only
    hits = QAEngine.open(index).ask("Who steered the ferry?", threshold=0.0).passages
    assert hits and all(hit.article.id != harbour.id for hit in hits)

    # Two generations later no reader can see the dead rows: they are deleted for good.
    for number in range(2):
        (corpus / f"extra{number}.txt").write_text(
            f"Extra {number}\n\nThe market opened {number} stalls.\n", encoding="utf-8"
        )
        build_fake(corpus, index)
    assert rows(db, passages, "died != 0") == []
    assert collections(db) == first


def test_a_failed_milvus_build_takes_its_generation_back(tmp_path, monkeypatch):
    from retrieval import milvus

    corpus = write_corpus(tmp_path / "corpus")
    db = tmp_path / "vectors.db"
    index = tmp_path / "index"
    build_fake(corpus, index, store=f"milvus://{db}")
    passages = live_collection(index)
    before = sorted((r["key"], r["born"], r["died"]) for r in rows(db, passages))
    (corpus / "orchard.txt").unlink()
    (corpus / "note.txt").write_text("Council notes\n\nThe council met 7 times.\n")
    real = milvus.write_generation
    calls = []

    def fail_on_sentences(*args, **kwargs):
        calls.append(args[1])
        real(*args, **kwargs)  # the passages, then the sentences, are written...
        if len(calls) % 2 == 0:
            raise RuntimeError("killed")  # ...and the build dies before its switch

    monkeypatch.setattr(milvus, "write_generation", fail_on_sentences)
    with pytest.raises(RuntimeError, match="killed"):
        build_fake(corpus, index)
    assert sorted((r["key"], r["born"], r["died"]) for r in rows(db, passages)) == before
    stored = load_index(index)
    assert len(stored.passages) == stored.manifest.passages

    # A build killed outright (nothing taken back) is taken back by the next one.
    monkeypatch.setattr("retrieval.store.discard_collections", lambda staging: None)
    with pytest.raises(RuntimeError, match="killed"):
        build_fake(corpus, index)
    assert any(r["born"] == 2 for r in rows(db, passages))
    monkeypatch.setattr(milvus, "write_generation", real)
    build_fake(corpus, index)
    after = rows(db, passages)
    assert {r["born"] for r in after} == {1, 2} and {r["died"] for r in after} == {0, 2}
    stored = load_index(index)
    assert len(stored.passages) == stored.manifest.passages


def test_an_unreachable_milvus_is_one_line_and_the_previous_index_stays(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    build_fake(corpus, index)
    before = current_version(index)
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["build", "--corpus", str(corpus), "--index", str(index), "--model",
         "fake-hashed-words", "--store", f"http://127.0.0.1:{closed_port()}"],
    )  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the Milvus store at http://127.0.0.1:")
    assert current_version(index) == before
    assert QAEngine.open(index).ask("Who steered the ferry?", threshold=0.0).answer is not None


def test_an_index_whose_milvus_went_away_says_so_in_one_line(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    db = tmp_path / "vectors.db"
    build_fake(corpus, tmp_path / "index", store=f"milvus://{db}")
    # As if the index had been built on a server that is down now.
    version = current_version(tmp_path / "index")
    gone = f"http://127.0.0.1:{closed_port()}"
    for name, key in (("manifest.json", "store"), ("passages.milvus.json", "uri"),
                      ("sentences.milvus.json", "uri")):  # fmt: skip
        data = json.loads((version / name).read_text())
        data[key] = gone
        (version / name).write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"^the Milvus store at http://127\.0\.0\.1:\d+ failed: "):
        QAEngine.open(tmp_path / "index")


def test_an_index_whose_milvus_collection_lost_rows_is_damaged(tmp_path):
    from retrieval.milvus import _create_generations, connect

    corpus = write_corpus(tmp_path / "corpus")
    db = tmp_path / "vectors.db"
    build_fake(corpus, tmp_path / "index", store=f"milvus://{db}")
    place = json.loads((current_version(tmp_path / "index") / "sentences.milvus.json").read_text())
    # Emptied behind the index's back: the collection is there, its rows are not.
    _create_generations(connect(str(db)), place["collection"], place["dimension"], lexical=False)
    with pytest.raises(UserError, match=r"is damaged \(0 stored for \d+ sentences\): .*--rebuild"):
        load_index(tmp_path / "index")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("milvus:///data/vectors", "a Milvus Lite store is a file ending in .db"),
        ("faiss", "--store must be local, milvus:///path/file.db (Milvus Lite) or"),
    ],
)
def test_a_store_that_is_not_one_is_refused(spec, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        store_spec(spec)


def test_eval_runs_on_milvus_and_leaves_no_collection_behind(tmp_path):
    from retrieval.bench import evaluate
    from tests.helpers import FAKE
    from tests.test_bench import SQUAD

    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps(SQUAD))
    db = tmp_path / "eval.db"
    local = evaluate([squad], squad, config=FAKE, threshold=0.0)
    on_milvus = evaluate([squad], squad, config=FAKE, threshold=0.0, store=f"milvus://{db}")
    assert on_milvus["config"]["store"] == str(db) and local["config"]["store"] == "local"
    for metric in ("recall@5", "exact_match", "f1"):
        assert on_milvus["system"][metric] == local["system"][metric]
    assert collections(db) == []


def test_a_lite_file_open_in_another_process_says_how_to_share_it(tmp_path):
    import subprocess
    import sys

    db = tmp_path / "vectors.db"
    # Another process (as the page would) builds the index and keeps the file open.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from pathlib import Path; "
         "from tests.helpers import build_fake, write_corpus; "
         f"build_fake(write_corpus(Path({str(tmp_path)!r}) / 'corpus'), "
         f"Path({str(tmp_path)!r}) / 'index', store='milvus://{db}'); "
         "print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(UserError) as caught:
            QAEngine.open(tmp_path / "index")
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert message.startswith(f"the Milvus Lite file {db} is open in another process")
    assert f"milvus-lite server --data-dir {db}" in message and "\n" not in message


def test_bm25_runs_inside_milvus_over_the_living_passages(tmp_path):
    from retrieval.milvus import MilvusLexicalStore
    from retrieval.store import LEXICAL_DIR

    corpus = write_corpus(tmp_path / "corpus")
    db = tmp_path / "vectors.db"
    index = tmp_path / "index"
    build_fake(corpus, index, store=f"milvus://{db}")
    stored = load_index(index)
    assert isinstance(stored.lexical, MilvusLexicalStore)
    assert not (current_version(index) / LEXICAL_DIR).exists()  # no bm25s copy beside it
    assert len(stored.lexical) == stored.manifest.passages
    (found,) = stored.lexical.search(["Who steered the ferry?"], 5)
    best = max(found, key=found.get)
    assert "steered the ferry" in stored.documents.passages([best])[best].text
    assert stored.lexical.search(["", "zzzz qqqq"], 5) == [{}, {}]
    # A removed article's passages are no longer found, though its rows wait to be deleted.
    (corpus / "harbour.txt").unlink()
    build_fake(corpus, index)
    stored = load_index(index)
    (after,) = stored.lexical.search(["Who steered the ferry?"], 5)
    assert best not in after
    assert len(stored.lexical) == stored.manifest.passages

"""Tests of the `article-qa` command line, through CliRunner on tiny corpora (fake embedder)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from retrieval.cli import main
from tests.helpers import write_corpus


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def built(tmp_path, runner):
    corpus = write_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    result = runner.invoke(
        main,
        ["build", "--corpus", str(corpus), "--index", str(index), "--model", "fake-hashed-words"],
    )
    assert result.exit_code == 0, result.output
    return index


def test_help_teaches_with_an_example(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    assert 'article-qa ask "Where is the meeting held?"' in result.output
    for command in ("build", "ask", "chat", "articles", "show"):
        assert command in result.output


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_help_has_an_example(runner, command):
    result = runner.invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "article-qa " + command in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask"], "error: Missing argument 'QUESTION'. (see 'article-qa ask --help')"),
        (["ask", "--top-k", "x", "q"], "error: Invalid value for '--top-k'"),
        (["nope"], "error: No such command 'nope'. (see 'article-qa --help')"),
        (["eval", "--articles", "a.json"], "error: give either --questions FILE or --natural"),
        (["eval-speed", "--articles", "missing.json"], "error: SQuAD file not found: missing.json"),
        (
            ["eval-speed", "--articles", "a.json", "--rounds", "0"],
            "error: Invalid value for '--rounds'",
        ),
        (
            ["eval-scale", "--passages", "10", "--data", "nowhere"],
            "error: SQuAD file not found: nowhere/squad-dev-tune.json (set --data to the folder",
        ),
        (["eval-scale", "--passages", "0"], "error: Invalid value for '--passages'"),
        (["eval-scale"], "error: Missing option '--passages'"),
    ],
)
def test_usage_mistakes_are_one_line_with_exit_code_1(runner, args, message):
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert result.output.strip().startswith(message)
    assert len(result.output.strip().splitlines()) == 1


def test_build_prints_a_summary_and_skips_bad_files(tmp_path, runner):
    corpus = write_corpus(tmp_path / "corpus")
    (corpus / "empty.txt").write_text("")
    result = runner.invoke(
        main,
        [
            "build",
            "--corpus",
            str(corpus),
            "--index",
            str(tmp_path / "i"),
            "--model",
            "fake-hashed-words",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 articles" in result.output
    assert "1 files skipped" in result.output
    assert "empty.txt: empty file" in result.output


def test_build_twice_is_up_to_date(built, tmp_path, runner):
    result = runner.invoke(
        main,
        [
            "build",
            "--corpus",
            str(tmp_path / "corpus"),
            "--index",
            str(built),
            "--model",
            "fake-hashed-words",
        ],
    )
    assert "already up to date" in result.output


def test_ask_json_has_the_design_shape(built, runner):
    result = runner.invoke(
        main, ["ask", "--index", str(built), "--json", "--threshold", "0", "Who steered the ferry?"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    # The design's keys, and what a follow-up was understood as.
    assert set(payload) == {
        "question", "answer", "passages", "timing_ms", "understood_as", "followup",
    }  # fmt: skip
    answer = payload["answer"]
    assert {"text", "sentence", "article_id", "title", "source", "start", "end", "score"} <= set(
        answer
    )
    assert answer["text"] == "Captain Alma Reyes"
    assert set(payload["passages"][0]) == {
        "chunk_id", "article_id", "title", "source", "start", "end", "text", "score",
    }  # fmt: skip


def test_ask_json_answer_is_null_when_below_threshold(built, runner):
    result = runner.invoke(
        main, ["ask", "--index", str(built), "--json", "--threshold", "1", "Who steered the ferry?"]
    )
    assert json.loads(result.output)["answer"] is None


def test_ask_text_names_answer_and_source(built, runner):
    result = runner.invoke(
        main, ["ask", "--index", str(built), "--threshold", "0", "Who steered the ferry?"]
    )
    assert "Captain Alma Reyes" in result.output
    assert "harbour.txt" in result.output


def test_chat_reads_lines_and_answers_each(built, runner):
    questions = "Where is the festival held?\n\nWho steered the ferry?\n"
    result = runner.invoke(
        main, ["chat", "--index", str(built), "--json", "--threshold", "0"], input=questions
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["question"] for line in lines] == [
        "Where is the festival held?",
        "Who steered the ferry?",
    ]


def test_chat_reports_a_bad_line_and_goes_on(built, runner):
    result = runner.invoke(
        main, ["chat", "--index", str(built), "--json"], input=("x" * 2000) + "\nWho steered?\n"
    )
    assert result.exit_code == 0
    assert "error: the question is too long" in result.output
    assert json.loads(result.output.splitlines()[-1])["question"] == "Who steered?"


def test_articles_and_show(built, runner):
    listed = json.loads(runner.invoke(main, ["articles", "--index", str(built), "--json"]).output)
    assert {row["title"] for row in listed} >= {"Students name a new asteroid"}
    first = listed[0]
    shown = json.loads(
        runner.invoke(main, ["show", "--index", str(built), "--json", first["id"][:6]]).output
    )
    assert set(shown) == {"id", "title", "source", "text"}
    assert shown["id"] == first["id"]


@pytest.mark.parametrize(
    ("index_name", "args", "message"),
    [
        ("missing", ["ask", "What?"], "error: no index at"),
        ("index", ["show", "nope"], "error: no article with id 'nope'"),
        ("index", ["ask", "   "], "error: the question is empty"),
        ("index", ["ask", "x" * 5000], "error: the question is too long"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_1(built, runner, index_name, args, message):
    index = built.parent / index_name
    result = runner.invoke(main, [args[0], "--index", str(index), *args[1:]])
    assert result.exit_code == 1
    assert result.output.strip().startswith(message)
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_build_of_missing_corpus_is_a_user_error(tmp_path, runner):
    result = runner.invoke(
        main, ["build", "--corpus", str(tmp_path / "nope"), "--index", str(tmp_path / "i")]
    )
    assert result.exit_code == 1
    assert "error: corpus path not found" in result.output


def test_status_lists_new_changed_and_deleted_files(built, tmp_path, runner):
    corpus = tmp_path / "corpus"
    (corpus / "orchard.txt").write_text("Orchard closed\n\nThe orchard shut for winter.\n")
    (corpus / "harbour.txt").unlink()
    (corpus / "kites.txt").write_text("Kites\n\nKites filled the sky over the bay.\n")
    result = runner.invoke(
        main, ["status", "--corpus", str(corpus), "--index", str(built), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["articles"] == 3 and payload["stale"] is True
    assert payload["new"] == [f"{corpus.as_posix()}/kites.txt"]
    assert payload["changed"] == [f"{corpus.as_posix()}/orchard.txt"]
    assert payload["deleted"] == [f"{corpus.as_posix()}/harbour.txt"]
    assert payload["size_bytes"] > 0 and payload["model"] == "fake-hashed-words"


def test_status_text_says_up_to_date(built, tmp_path, runner):
    result = runner.invoke(
        main, ["status", "--corpus", str(tmp_path / "corpus"), "--index", str(built)]
    )
    assert "corpus     up to date" in result.output


def test_feedback_prints_what_the_page_recorded(built, runner):
    from retrieval.feedback import record_feedback

    assert runner.invoke(main, ["feedback", "--index", str(built)]).output.strip() == (
        "no feedback yet"
    )
    record_feedback(built, question="Who?", answer={"text": "Alma"}, sources=[], rating="up")
    records = json.loads(runner.invoke(main, ["feedback", "--index", str(built), "--json"]).output)
    assert [(r["question"], r["rating"]) for r in records] == [("Who?", "up")]


def test_chat_shows_how_a_follow_up_was_understood(built, runner):
    questions = "Who steered the ferry?\nWhere did she sail?\n"
    text = runner.invoke(
        main, ["chat", "--index", str(built), "--threshold", "0"], input=questions
    ).output
    assert "(understood as: Where did Captain Alma Reyes sail?, a follow-up)" in text
    assert text.count("(understood as:") == 1  # the first question stands alone
    assert "Passages:" not in text  # only with --passages
    with_passages = runner.invoke(
        main, ["chat", "--index", str(built), "--threshold", "0", "--passages"], input=questions
    ).output
    assert with_passages.count("Passages:") == 2
    lines = runner.invoke(
        main, ["chat", "--index", str(built), "--json", "--threshold", "0"], input=questions
    ).output.splitlines()
    first, second = (json.loads(line) for line in lines)
    assert (first["followup"], first["understood_as"]) == (False, "Who steered the ferry?")
    assert (second["followup"], second["understood_as"]) == (
        True,
        "Where did Captain Alma Reyes sail?",
    )

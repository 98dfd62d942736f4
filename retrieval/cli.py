"""`article-qa`: the command line, a thin layer over the library.

Every command takes `--index DIR` (default `index/`) and, where it reads
articles, `--corpus DIR` (default `corpus/`). User mistakes end with a
one-line `error: …` on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from retrieval.errors import UserError

DEFAULT_CORPUS = "corpus"
DEFAULT_INDEX = "index"

index_option = click.option(
    "--index",
    "index_dir",
    default=DEFAULT_INDEX,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the index.",
)
corpus_option = click.option(
    "--corpus",
    "corpus",
    multiple=True,
    default=[DEFAULT_CORPUS],
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder or file of articles (.txt .md .html .json .jsonl); repeat for several.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


class FriendlyGroup(click.Group):
    """Turns the library's `UserError` and usage mistakes into a one-line message and exit 1."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):  # type: ignore[override]
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx else "article-qa"
            click.echo(f"error: {error.format_message()} (see '{where} --help')", err=True)
            sys.exit(1)
        except click.ClickException as error:
            click.echo(f"error: {error.format_message()}", err=True)
            sys.exit(1)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)


@click.group(
    "article-qa", cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("-v", "--verbose", is_flag=True, help="Show what the library is doing.")
@click.version_option(package_name="article-qa")
def main(verbose: bool) -> None:
    """Ask questions about a folder of news articles; get short answers copied from them.

    \b
    Start here:
      article-qa build                      # index the articles in corpus/
      article-qa ask "Where is the meeting held?"
      article-qa chat                       # several questions, with follow-ups
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )


# --- build ---------------------------------------------------------------------------------------


@main.command()
@corpus_option
@index_option
@click.option("--rebuild", is_flag=True, help="Start over instead of reusing unchanged articles.")
# Hidden: the fast tests build with the fake embedder through the real command.
@click.option("--model", default=None, hidden=True)
@click.option(
    "--store",
    default=None,
    metavar="STORE",
    help="Where the vectors go: local (FAISS files in the index, the default), "
    "milvus:///path/file.db (Milvus Lite) or http://host:19530 (a Milvus server; its token "
    "from MILVUS_TOKEN). Recorded in the index: later builds, ask and the page use it.",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[ADDRESS]",
    help="Read, chunk and embed on Ray: a local instance using every CPU here, or the "
    "cluster at ADDRESS (ray://host:10001, or auto); every node must see the corpus "
    "at the same path. The index is the same as a local build's.",
)
def build(
    corpus: tuple[Path, ...],
    index_dir: Path,
    rebuild: bool,
    model: str | None,
    store: str | None,
    ray_address: str | None,
) -> None:
    """Index the articles: clean, chunk, embed, and write a new index version atomically.

    Only new and changed files are read (a file with the same size and mtime,
    else the same bytes, is not, unless it had skipped records or duplicates),
    unchanged articles are not embedded again, and a build that finds nothing
    new writes nothing. A build killed half-way leaves the previous
    index working.

    \b
    Example:
      article-qa build --corpus corpus --corpus ~/news --index index
      article-qa build --store milvus:///srv/article-qa/vectors.db
      article-qa build --ray ray://head-node:10001 --store http://milvus:19530

    A build stopped while embedding keeps what it embedded: run it again to go on.
    """
    from tqdm import tqdm

    from retrieval.indexing import build_index, index_config

    # The summary below lists skipped files; the loader's own warnings would repeat them.
    logging.getLogger("retrieval.articles").setLevel(logging.ERROR)
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage != "embed":
            return
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc="embedding", unit="text", file=sys.stderr)
        bar.update(done - bar.n)

    try:
        config = index_config(model) if model else None
        try:
            if ray_address is None:
                report = build_index(
                    list(corpus), index_dir, config=config, rebuild=rebuild, progress=progress,
                    store=store,
                )  # fmt: skip
            else:
                from retrieval.distributed import build_on_cluster

                report = build_on_cluster(
                    list(corpus), index_dir, address=ray_address or None, config=config,
                    rebuild=rebuild, progress=progress, store=store,
                )  # fmt: skip
        except ValueError as error:  # an unknown --model
            raise UserError(str(error)) from None
    finally:
        for bar in bars.values():
            bar.close()
    state = "wrote a new version" if report.written else "already up to date"
    click.echo(
        f"{report.articles} articles, {report.chunks} chunks "
        f"({report.embedded} new texts embedded), {report.seconds:.1f} s, "
        f"{len(report.skipped)} files skipped: {state} in {index_dir}"
    )
    for label, names in (
        ("added", report.added),
        ("changed", report.changed),
        ("removed", report.removed),
    ):
        if names:
            shown = ", ".join(names[:5])
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            click.echo(f"  {label} ({len(names)}): {shown}{more}")
    for skipped in report.skipped:
        click.echo(f"  skipped {skipped.path}: {skipped.reason}")
    for duplicate in report.duplicates:
        click.echo(f"  duplicate {duplicate.path}: {duplicate.reason}")


# --- ask and chat --------------------------------------------------------------------------------


def _open_engine(index_dir: Path):
    from retrieval.qa import QAEngine

    return QAEngine.open(index_dir)


def _print_result(result, as_json: bool, passages: bool = True) -> None:
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    if result.resolved.is_followup:
        click.echo(click.style(f"(understood as: {result.resolved.asked}, a follow-up)", dim=True))
    answer = result.answer
    if answer is None:
        click.echo("No answer in these articles.")
        if result.best_guess is not None:
            click.echo(
                f"  (closest: {result.best_guess.sentence!r}, score {result.best_guess.score:.2f})"
            )
    else:
        sentence = answer.sentence
        local_start = answer.start - answer.sentence_start
        local_end = answer.end - answer.sentence_start
        marked = (
            sentence[:local_start]
            + click.style(sentence[local_start:local_end], bold=True, underline=True)
            + sentence[local_end:]
        )
        click.echo(
            click.style(answer.text, bold=True)
            + f"   (confidence {answer.score:.2f}, {result.band})"
        )
        click.echo(f"  {marked}")
        click.echo(f"  — {answer.title} [{answer.source}]")
    if passages and result.passages:
        click.echo("Passages:")
        for rank, hit in enumerate(result.passages, 1):
            snippet = " ".join(hit.chunk.text.split())
            snippet = snippet if len(snippet) <= 160 else snippet[:157] + "..."
            click.echo(f"  {rank}. {hit.article.title} [{hit.article.source}] {hit.score:.4f}")
            click.echo(f"     {snippet}")


top_k_option = click.option(
    "--top-k", default=5, show_default=True, type=click.IntRange(min=1), help="Passages to cite."
)
threshold_option = click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Answer only above this confidence (default: the calibrated one).",
)


@main.command()
@index_option
@top_k_option
@threshold_option
@json_option
@click.argument("question")
def ask(index_dir: Path, top_k: int, threshold: float | None, as_json: bool, question: str) -> None:
    """Answer one QUESTION with a short span copied from an article, and its sources.

    \b
    Example:
      article-qa ask "Where is the meeting held?"
      article-qa ask --json --top-k 3 "Who led the team?"
    """
    engine = _open_engine(index_dir)
    result = engine.ask(question, top_k=top_k, threshold=threshold)
    _print_result(result, as_json)


@main.command()
@index_option
@top_k_option
@threshold_option
@json_option
@click.option("--passages", "show_passages", is_flag=True,
              help="Also list the passages each answer was read from.")  # fmt: skip
def chat(
    index_dir: Path, top_k: int, threshold: float | None, as_json: bool, show_passages: bool
) -> None:
    """Answer questions read line by line; follow-ups use the earlier turns.

    On a terminal this is an interactive prompt (empty line or Ctrl-D to quit);
    otherwise it reads standard input, one question per line. A follow-up ("Who
    will attend it?") is printed as it was understood; --json gives it as
    "understood_as" and "followup".

    \b
    Example:
      printf 'Where is the meeting held?\\nWho will attend it?\\n' | article-qa chat
      printf 'Where is the meeting held?\\nWho will attend it?\\n' | article-qa chat --json
    """
    engine = _open_engine(index_dir)
    history = []
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            try:
                line = click.prompt("?", default="", show_default=False, prompt_suffix=" ")
            except (EOFError, click.Abort):
                break
            if not line.strip():
                break
        else:
            line = sys.stdin.readline()
            if not line:
                break
            if not line.strip():
                continue
        try:
            result = engine.ask(
                line,
                history,
                top_k=top_k,
                threshold=threshold,
            )
        except UserError as error:
            click.echo(f"error: {error}", err=True)
            continue
        history.append(result.to_turn())
        _print_result(result, as_json, passages=show_passages)
        if not as_json:
            click.echo()


# --- articles and show ---------------------------------------------------------------------------


@main.command()
@index_option
@json_option
def articles(index_dir: Path, as_json: bool) -> None:
    """List the indexed articles: id, title, source and number of chunks.

    \b
    Example:
      article-qa articles --json
    """
    from retrieval.store import open_documents

    entries, _ = open_documents(index_dir).find_articles()
    rows = [
        {"id": e.id, "title": e.title, "source": e.source, "chunks": e.passages}
        for e in sorted(entries, key=lambda e: e.source)
    ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        click.echo(f"{row['id']}  {row['chunks']:>3} chunks  {row['title']}  [{row['source']}]")


@main.command()
@index_option
@json_option
@click.argument("article_id")
def show(index_dir: Path, as_json: bool, article_id: str) -> None:
    """Print the cleaned text of the article ARTICLE_ID (a unique prefix is enough).

    \b
    Example:
      article-qa show 14b4c77d        # ids come from `article-qa articles`
    """
    from retrieval.store import open_documents

    matches = open_documents(index_dir).articles_by_prefix(article_id)
    if len(matches) != 1:
        problem = "no article" if not matches else f"{len(matches)} articles"
        raise UserError(
            f"{problem} with id {article_id!r}: run `article-qa articles` to see the ids"
        )
    article = matches[0]
    if as_json:
        payload = {
            "id": article.id,
            "title": article.title,
            "source": article.source,
            "text": article.text,
        }
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    click.echo(click.style(article.title, bold=True))
    click.echo(f"[{article.source}]\n")
    click.echo(article.text)


# --- eval ----------------------------------------------------------------------------------------


def _write_report(path: Path, payload: dict) -> None:
    """A benchmark's JSON report, written atomically (its folder made if needed)."""
    from retrieval.store import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(payload, indent=2))
    click.echo(f"\nwrote {path}")


@main.command("eval")
@click.option(
    "--articles",
    "articles_files",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQuAD json whose articles make up the corpus; repeat for several.",
)
@click.option(
    "--questions",
    "questions_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQuAD 1.1 or 2.0 json, or a natural-question file, whose questions are asked.",
)
@click.option(
    "--natural",
    is_flag=True,
    help="Ask the shipped natural-question set (questions in a reader's own words).",
)
@click.option(
    "--split",
    default="all",
    show_default=True,
    help="Part of a natural-question file: held-out (from every fit), fit, or all.",
)
@click.option(
    "--unanswerable",
    "unanswerable_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQuAD json about other articles: each of its questions should get no answer.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Ask a seeded sample of this many.")
@click.option("--seed", default=0, show_default=True, help="Seed of the sample.")
@top_k_option
@threshold_option
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the full report to this file.",
)
@click.option(
    "--store",
    default=None,
    metavar="STORE",
    help="Where the temporary index keeps its vectors (as `build --store`): local by default, "
    "or milvus:///path/file.db / http://host:19530 to measure the Milvus backend; its "
    "collections are dropped afterwards.",
)
def eval_command(
    articles_files: tuple[Path, ...],
    questions_file: Path | None,
    natural: bool,
    split: str,
    unanswerable_file: Path | None,
    limit: int | None,
    seed: int,
    top_k: int,
    threshold: float | None,
    json_out: Path | None,
    store: str | None,
) -> None:
    """Measure retrieval and answers on SQuAD: recall@k, MRR, sentence accuracy, EM, F1, latency.

    The articles are indexed into a temporary index with the normal build code;
    the hybrid system and the dense and BM25 baselines answer the same questions.
    The system's row is also split by how many of the question's words the
    answer's sentence holds (low: at most 30 %). `right` is the share answered at
    the line with a right short span (F1 >= 0.5).

    \b
    Examples:
      article-qa eval --articles ../shared/data/squad-dev-tune.json \\
        --articles ../shared/data/squad-dev-test.json \\
        --questions ../shared/data/squad-dev-test.json --limit 2000 --json bench.json
      article-qa eval --articles ../shared/data/squad-dev-tune.json \\
        --articles ../shared/data/squad-dev-test.json --natural --split held-out
      article-qa eval --articles ../shared/data/squad-dev-test.json \\
        --questions ../shared/data/squad-dev-test.json --store milvus:///tmp/eval.db
    """
    from tqdm import tqdm

    from retrieval.bench import evaluate, format_table
    from retrieval.bench.natural import NATURAL_FILE

    if natural == (questions_file is not None):
        raise UserError("give either --questions FILE or --natural")
    questions_file = NATURAL_FILE if natural else questions_file

    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage in {"load", "save"}:
            return
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr, leave=False)
        bar.update(done - bar.n)

    try:
        payload = evaluate(
            articles_files,
            questions_file,
            unanswerable_file,
            limit=limit,
            seed=seed,
            top_k=top_k,
            threshold=threshold,
            progress=progress,
            split=split,
            store=store,
        )
    finally:
        for bar in bars.values():
            bar.close()
    click.echo(format_table(payload))
    if json_out is not None:
        _write_report(json_out, payload)


# --- status and feedback -------------------------------------------------------------------------


@main.command()
@corpus_option
@index_option
@json_option
def status(corpus: tuple[Path, ...], index_dir: Path, as_json: bool) -> None:
    """Show the index: articles, chunks, model, build time, size, and corpus files changed since.

    \b
    Example:
      article-qa status --json
    """
    from dataclasses import asdict

    from retrieval.status import index_status

    report = index_status(index_dir, list(corpus))
    if as_json:
        click.echo(json.dumps({**asdict(report), "stale": report.stale}, ensure_ascii=False))
        return
    click.echo(f"index      {report.index_dir}")
    click.echo(f"articles   {report.articles}")
    click.echo(f"chunks     {report.chunks}")
    click.echo(f"model      {report.model}")
    click.echo(f"built at   {report.built_at}")
    click.echo(f"size       {report.size_bytes / 1e6:.2f} MB")
    if not report.stale:
        click.echo("corpus     up to date")
    for label, paths in (
        ("new", report.new),
        ("changed", report.changed),
        ("deleted", report.deleted),
    ):
        for path in paths:
            click.echo(f"{label:<10} {path}")
    if report.stale:
        click.echo("run `article-qa build` to bring the index up to date")


@main.command()
@index_option
@json_option
def feedback(index_dir: Path, as_json: bool) -> None:
    """Print the ratings given on the page (kept in the index folder across rebuilds).

    Each answer once, with its last rating: a thumb changed counts as the new one,
    a thumb un-clicked not at all.

    \b
    Example:
      article-qa feedback --json
    """
    from retrieval.feedback import latest_ratings, read_feedback

    records = latest_ratings(read_feedback(index_dir))
    if as_json:
        click.echo(json.dumps(records, ensure_ascii=False))
        return
    if not records:
        click.echo("no feedback yet")
    for record in records:
        answer = (record.get("answer") or {}).get("text") or "(no answer)"
        click.echo(f"{record['time']}  {record['rating']:<4}  {record['question']}  ->  {answer}")


def squad_file_option(name: str, dest: str, help_text: str) -> Callable[[Any], Any]:
    """A required SQuAD json file option of the benchmark commands."""
    return click.option(
        name, dest, required=True, type=click.Path(dir_okay=False, path_type=Path),
        help=help_text,
    )  # fmt: skip


@main.command("eval-speed")
@squad_file_option(
    "--articles",
    "articles_file",
    "SQuAD json: its first articles are embedded and its questions asked.",
)
@click.option("--n-articles", default=4, show_default=True, type=click.IntRange(min=1))
@click.option("--questions", "n_questions", default=100, show_default=True,
              type=click.IntRange(min=1))  # fmt: skip
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
def eval_speed(
    articles_file: Path, n_articles: int, n_questions: int, rounds: int, json_out: Path | None
) -> None:
    """Time each engine (sentence-transformers, ONNX Runtime fp32 and int8) on the same texts.

    Build throughput, the warm `ask`, a fresh process's first answer and, where
    Chromium is installed, the page's first answer; ratios against
    sentence-transformers fp32 of the same run (minutes).

    \b
    Example:
      article-qa eval-speed --articles ../shared/data/squad-dev-test.json --json speed.json
    """
    from retrieval.bench.speed import format_speed_table, speed_benchmark

    def log(line: str) -> None:
        click.echo(line, err=True)

    result = speed_benchmark(articles_file, n_articles, n_questions, rounds, log=log)
    click.echo(format_speed_table(result))
    if json_out is not None:
        _write_report(json_out, result)


@main.command("eval-build")
@squad_file_option("--articles", "articles_file", "SQuAD json whose articles make up the corpus.")
@squad_file_option("--add", "extra_file", "SQuAD json whose first article is the one added.")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
def eval_build(articles_file: Path, extra_file: Path, repeats: int, json_out: Path | None) -> None:
    """Time a full build, then adding one article and rebuilding with nothing changed.

    \b
    Example:
      article-qa eval-build --articles ../shared/data/squad-dev-tune.json \\
        --add ../shared/data/squad-dev-test.json --json build-bench.json
    """
    from tqdm import tqdm

    from retrieval.bench import incremental_benchmark

    with tqdm(desc="embedding (full build)", unit="text", file=sys.stderr, leave=False) as bar:

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "embed":
                bar.total = total
                bar.update(done - bar.n)

        result = incremental_benchmark(articles_file, extra_file, repeats, progress)
    click.echo("| build | seconds | share of full build |\n|---|---|---|")
    click.echo(f"| full ({result['articles']} articles, {result['chunks']} chunks) | "
               f"{result['full_build_s']:.1f} | 100% |")  # fmt: skip
    click.echo(f"| add one article (median of {repeats}) | {result['add_one_s']:.2f} | "
               f"{result['add_one_ratio']:.1%} |")  # fmt: skip
    click.echo(f"| nothing changed (median of {repeats}) | {result['no_change_s']:.2f} | "
               f"{result['no_change_ratio']:.1%} |")  # fmt: skip
    if json_out is not None:
        _write_report(json_out, result)


@main.command("eval-scale")
@click.option("--passages", "sizes", multiple=True, required=True, type=click.IntRange(min=1),
              help="Index size in passages (repeat for a row per size).")  # fmt: skip
@click.option("--questions", "n_questions", default=200, show_default=True,
              type=click.IntRange(min=1), help="Test-half questions asked per size.")  # fmt: skip
@click.option("--data", "data_dir", default=Path("../shared/data"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder of squad-dev-tune.json and squad-dev-test.json.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--sentence-encoding", "sentence_encodings", multiple=True,
              type=click.Choice(["fp32", "fp16"]),
              help="Sentence vectors stored this way (repeat to compare).")  # fmt: skip
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the index is built (a temporary folder, removed after).")  # fmt: skip
@click.option("--noise", type=click.Choice(["isotropic", "shaped"]), default="isotropic",
              show_default=True,
              help="Distractor noise: Gaussian, or along real vectors' differences.")  # fmt: skip
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the built indexes in this folder.")  # fmt: skip
@click.option("--store", default=None, metavar="STORE",
              help="Where the vectors go, as for build (milvus:///path/file.db...).")  # fmt: skip
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
def eval_scale(
    sizes: tuple[int, ...],
    n_questions: int,
    data_dir: Path,
    seed: int,
    sentence_encodings: tuple[str, ...],
    workdir: Path | None,
    noise: str,
    keep: Path | None,
    store: str | None,
    json_out: Path | None,
) -> None:
    """Hide the 48 evaluation articles among synthetic passages and time the index at that size.

    The evaluation articles are embedded for real; the distractors' text is sentences
    of the tune half and their vectors are those sentences' vectors with noise (see
    `retrieval/bench/scale.py`). A fresh process then opens the index and asks
    test-half questions through `ask`: open time, search and ask latency, ANN recall
    against exact search, gold recall@5, memory and disk.

    \b
    Example:
      article-qa eval-scale --passages 100000 --questions 200 --json scale.json
      article-qa eval-scale --passages 100000 --store milvus:///tmp/scale.db
    """
    from retrieval.bench.scale import format_scale_table, scale_benchmark
    from retrieval.store import store_spec

    files = [data_dir / "squad-dev-tune.json", data_dir / "squad-dev-test.json"]
    for path in files:
        if not path.is_file():
            raise UserError(f"SQuAD file not found: {path} (set --data to the folder holding it)")
    rows = scale_benchmark(
        files, files[1], sizes, n_questions, seed,
        log=lambda line: click.echo(line, err=True), workdir=workdir,
        sentence_encodings=sentence_encodings, keep=keep, noise=noise,
        store=store_spec(store) if store else None,
    )  # fmt: skip
    click.echo(format_scale_table(rows))
    if json_out is not None:
        _write_report(json_out, {"rows": rows})

"""The Streamlit page of article-qa: layout and session state only.

Run it with `streamlit run app.py -- --corpus corpus --index index` (or set
ARTICLE_QA_CORPUS / ARTICLE_QA_INDEX). Two pages share one sidebar of
settings, index status, rebuild and upload: "Ask", a chat whose turns keep
their answers and sources in `st.session_state` so they survive reruns, and
"Articles", a browser of the indexed articles that every citation opens.
Everything else (retrieval, answers, highlighting, uploads, feedback,
example questions) lives in the `retrieval` library. Article text reaches the
browser only through `highlight_html` (escaped, then marked by offsets) or
`md_escape`.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from retrieval.answering import DEFAULT_THRESHOLD, Answer
from retrieval.errors import UserError
from retrieval.highlight import highlight_html
from retrieval.qa import MAX_QUESTION_CHARS, QAEngine, QAResult, shipped_threshold
from retrieval.search import Hit
from retrieval.store import IndexConfig, current_version, read_manifest
from retrieval.uploads import MAX_UPLOAD_BYTES, UPLOAD_SUFFIXES

if TYPE_CHECKING:  # imported for real only where used, to keep the first paint quick
    from retrieval.articles import Article
    from retrieval.status import IndexStatus

RATING_OF_THUMB = {0: "down", 1: "up"}
THUMB_OF_RATING = {rating: thumb for thumb, rating in RATING_OF_THUMB.items()}
EXAMPLE_COUNT = 4
# Examples are drawn from the first articles only, and the Articles page lists this many.
EXAMPLE_SOURCE_ARTICLES = 200
ARTICLE_LIST_LIMIT = 500

# Only colours that work on light and dark themes: a translucent highlight over the
# theme's background, and the theme's own text colour.
PAGE_CSS = """
<style>
mark { background: rgba(255, 196, 0, 0.42); color: inherit; padding: 0 0.12em;
       border-radius: 0.2em; }
.qa-short { font-size: 1.15rem; margin: 0 0 0.35rem; }
.qa-sentence { border-left: 3px solid rgba(128, 128, 128, 0.5); margin: 0 0 0.5rem;
               padding: 0.1rem 0 0.1rem 0.75rem; overflow-wrap: anywhere; }
.qa-meta { opacity: 0.8; font-size: 0.9rem; margin: 0.1rem 0; overflow-wrap: anywhere; }
.qa-passage-head { font-size: 0.85rem; opacity: 0.8; margin: 0 0 0.2rem; }
.qa-passage { margin: 0 0 0.3rem; padding-left: 0.75rem; font-size: 0.95rem;
              border-left: 2px solid rgba(128, 128, 128, 0.35); overflow-wrap: anywhere; }
.qa-article { line-height: 1.65; overflow-wrap: anywhere; }
.qa-article mark { background: rgba(255, 196, 0, 0.25); }
</style>
"""
# Our own script, no article text in it: brings the cited sentence into view once drawn.
SCROLL_TO_CITED = """<script>
setTimeout(() => document.getElementById("qa-cited")?.scrollIntoView({block: "center"}), 200);
</script>"""
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")


@dataclass(frozen=True)
class Settings:
    index_dir: Path
    corpus_dir: Path


def app_settings(argv: Sequence[str]) -> Settings:
    """Folders from `-- --index/--corpus`, else the ARTICLE_QA_* variables, else defaults."""
    # allow_abbrev off and unknown arguments ignored: under a test runner, argv is the runner's.
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--index", default=os.environ.get("ARTICLE_QA_INDEX", "index"))
    parser.add_argument("--corpus", default=os.environ.get("ARTICLE_QA_CORPUS", "corpus"))
    args, _ = parser.parse_known_args(argv)
    return Settings(index_dir=Path(args.index), corpus_dir=Path(args.corpus))


def md_escape(text: str) -> str:
    """`text` safe inside Markdown: no HTML, no emphasis, links, headings or `$` maths."""
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", text), quote=False)


def readable_time(stamp: str) -> str:
    """ "2025-05-11T09:30:00+0000" as "2025-05-11 09:30"; anything else unchanged."""
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


# --- cached resources -----------------------------------------------------------------------


@st.cache_resource(max_entries=2, show_spinner="Loading the model and the index…")
def load_engine(index_dir: str, version: str) -> QAEngine:
    """One engine per index version: a rebuild switches the version, so the next run reloads."""
    return QAEngine.open(index_dir)


@st.cache_data(ttl=10, show_spinner=False)
def load_status(index_dir: str, corpus_dir: str, version: str) -> IndexStatus:
    # The corpus may change behind the page's back, hence the short time-to-live.
    from retrieval.status import index_status

    return index_status(index_dir, [corpus_dir])


@st.cache_data(max_entries=4, show_spinner=False)
def load_examples(_engine: QAEngine, version: str) -> list[str]:
    from retrieval.suggestions import example_questions

    articles = _engine.index.documents.articles(limit=EXAMPLE_SOURCE_ARTICLES)
    return example_questions(articles, limit=EXAMPLE_COUNT)


def live_version(settings: Settings) -> str | None:
    try:
        return current_version(settings.index_dir).name
    except UserError:
        return None


def open_engine(settings: Settings) -> QAEngine | None:
    """The engine of the live index, or None after showing what to do about its absence."""
    try:
        version = current_version(settings.index_dir).name
        return load_engine(str(settings.index_dir), version)
    except UserError as error:
        st.error(
            f"{md_escape(str(error))}\n\nClick **Rebuild index** in the sidebar, or run "
            f"`article-qa build --corpus {settings.corpus_dir} --index {settings.index_dir}`."
        )
        return None


def build_config(index_dir: Path) -> IndexConfig | None:
    """The live index's model for an incremental build; None (the default model) if none."""
    from retrieval.indexing import index_config

    try:
        return index_config(read_manifest(index_dir).model)
    except (UserError, ValueError):
        return None


# --- session state --------------------------------------------------------------------------


def init_state(settings: Settings) -> None:
    defaults = {
        "turns": [],  # dicts: id, result (QAResult), rating ("up"/"down"/None)
        "pending_question": None,  # an example question clicked, asked on this run
        "ask_error": None,
        "open_article": None,  # id of the article the browser shows
        "cited": None,  # {"article_id", "spans", "question"}: what to mark in the browser
        "goto_articles": False,
        "uploader_generation": 0,  # bumped to empty the file uploader after a build
        "notices": [],  # (kind, message) shown once, after a build's rerun
        "session_id": uuid.uuid4().hex[:12],  # ties this browser session's ratings together
    }
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)
    restore_conversation(settings)


def restore_conversation(settings: Settings) -> None:
    """The conversation named in the URL, read back once per browser session (a reload)."""
    from retrieval.conversations import is_conversation_id, load_conversation, new_conversation_id

    if "conversation" not in st.session_state:
        named = st.query_params.get("c", "")
        if is_conversation_id(named):
            saved = load_conversation(settings.index_dir, named)
            st.session_state.turns = [
                {"id": t.id, "result": t.result, "rating": t.rating} for t in saved
            ]
        st.session_state.conversation = (
            named if is_conversation_id(named) else new_conversation_id()
        )
    # Kept in the URL on every run: a reload, or the link, brings the conversation back.
    if st.query_params.get("c") != st.session_state.conversation:
        st.query_params["c"] = st.session_state.conversation


def save_turns(index_dir: Path) -> None:
    from retrieval.conversations import SavedTurn, save_conversation

    turns = [SavedTurn(t["id"], t["result"], t["rating"]) for t in st.session_state.turns]
    try:
        save_conversation(index_dir, st.session_state.conversation, turns)
    except OSError as error:  # the answer is shown anyway; only a reload would lose it
        st.toast(f"The conversation could not be saved: {error}")


def new_conversation() -> None:
    from retrieval.conversations import new_conversation_id

    st.session_state.turns = []
    st.session_state.cited = None
    st.session_state.ask_error = None
    st.session_state.conversation = new_conversation_id()
    st.query_params["c"] = st.session_state.conversation


def pick_example() -> None:
    st.session_state.pending_question = st.session_state.example_pick
    st.session_state.example_pick = None


def open_article(article_id: str, span: tuple[int, int], question: str, what: str) -> None:
    """Show the article with only `span` marked (`what` names it), scrolled to it."""
    st.session_state.open_article = article_id
    st.session_state.cited = {"article_id": article_id, "spans": [span], "question": question,
                              "what": what, "scroll": True}  # fmt: skip
    st.session_state.goto_articles = True


def pick_row() -> None:
    """A click on a row of the Articles list opens that article."""
    rows = st.session_state.article_table.selection.rows
    if rows:
        st.session_state.open_article = st.session_state.article_rows[rows[0]]
        st.session_state.cited = None


def rate_answer(index_dir: Path, turn_id: str) -> None:
    from retrieval.feedback import record_feedback

    rating = RATING_OF_THUMB.get(st.session_state[f"feedback-{turn_id}"])
    turn = next(t for t in st.session_state.turns if t["id"] == turn_id)
    had = turn["rating"]
    turn["rating"] = rating
    if rating is None and had is None:
        return
    save_turns(index_dir)
    result: QAResult = turn["result"]
    data = result.to_dict()
    record_feedback(
        index_dir,
        question=result.question,
        answer=data["answer"],
        sources=data["passages"],
        rating=rating or "withdrawn",
        session=st.session_state.session_id,
        turn=turn_id,
    )
    st.toast("Thanks, your rating was saved." if rating else "Your rating was withdrawn.")


# --- sidebar --------------------------------------------------------------------------------


def sidebar_ui(settings: Settings) -> None:
    with st.sidebar:
        settings_ui(default_threshold(settings))
        st.divider()
        index_ui(settings)
        st.divider()
        upload_ui(settings)


def default_threshold(settings: Settings) -> float:
    try:
        return shipped_threshold(read_manifest(settings.index_dir).model)
    except UserError:
        return DEFAULT_THRESHOLD


def settings_ui(threshold: float) -> None:
    st.subheader("Settings")
    st.slider("Passages to retrieve (top-k)", 1, 10, 5, key="top_k")
    st.slider(
        "Answer threshold",
        0.0,
        1.0,
        threshold,
        0.01,
        key="threshold",
        help="Below this confidence the page answers 'Not in these articles'. "
        "Applies to the next question.",
    )
    st.toggle("Show passages", value=True, key="show_passages")


def index_ui(settings: Settings) -> None:
    st.subheader("Index")
    for kind, message in st.session_state.notices:
        getattr(st, kind)(message)
    st.session_state.notices = []
    version = live_version(settings)
    if version is None:
        st.warning("No index yet: click **Rebuild index** to build one from the corpus folder.")
    else:
        try:
            status = load_status(str(settings.index_dir), str(settings.corpus_dir), version)
        except UserError as error:
            st.error(md_escape(str(error)))
        else:
            st.markdown(
                f"**{status.articles}** articles · **{status.chunks}** chunks  \n"
                f"model `{status.model.rsplit('/', 1)[-1]}`  \n"
                f"built {readable_time(status.built_at)}"
            )
            if status.stale:
                st.warning(
                    f"Out of date: {len(status.new)} new, {len(status.changed)} changed, "
                    f"{len(status.deleted)} deleted file(s) in "
                    f"{md_escape(str(settings.corpus_dir))}. Click **Rebuild index**."
                )
            else:
                st.caption(f"Up to date with {md_escape(str(settings.corpus_dir))}.")
    if st.button("Rebuild index", icon=":material/refresh:", key="rebuild"):
        build_ui(settings, "Rebuilding the index")
        # Run again, so the status above is the new index's (the summary is a notice).
        st.rerun()


def build_ui(settings: Settings, label: str) -> bool:
    """Run the same build as `article-qa build`, with progress; True when it succeeded."""
    from retrieval.indexing import build_index

    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="Reading the articles…")

        def progress(stage: str, done: int, total: int) -> None:
            share = min(done / total, 1.0) if total else 1.0
            text = {
                "load": f"Read {done} articles",
                "embed": f"Embedding passages and sentences: {done} of {total}",
                "save": "Saving the new index version",
            }[stage]
            bar.progress(share, text=text)

        try:
            report = build_index(
                [settings.corpus_dir],
                settings.index_dir,
                config=build_config(settings.index_dir),
                progress=progress,
            )
        except UserError as error:
            status.update(label="The build failed", state="error")
            st.session_state.notices.append(("error", md_escape(str(error))))
            return False
        summary = (
            f"{report.articles} articles, {report.chunks} chunks "
            f"({report.embedded} embedded) in {report.seconds:.1f} s"
        )
        status.update(label=summary, state="complete", expanded=False)
    load_status.clear()
    st.session_state.notices.append(("success", summary))
    for skipped in report.skipped:
        st.session_state.notices.append(
            ("warning", f"Skipped {md_escape(skipped.path)}: {md_escape(skipped.reason)}")
        )
    return True


def upload_ui(settings: Settings) -> None:
    from retrieval.uploads import save_upload

    st.subheader("Add articles")
    files = st.file_uploader(
        "Add articles",
        type=[suffix.lstrip(".") for suffix in UPLOAD_SUFFIXES],
        accept_multiple_files=True,
        key=f"upload-{st.session_state.uploader_generation}",
        max_upload_size=MAX_UPLOAD_BYTES // (1024 * 1024),
        label_visibility="collapsed",
        help="Saved into the corpus folder and indexed at once.",
    )
    st.checkbox("Replace files with the same name", key="replace_uploads")
    if not files:
        return
    saved = []
    for upload in files:
        try:
            result = save_upload(
                settings.corpus_dir,
                upload.name,
                upload.getvalue(),
                overwrite=st.session_state.replace_uploads,
            )
        except UserError as error:
            st.session_state.notices.append(("error", md_escape(str(error))))
            continue
        name = md_escape(result.path.name)
        if result.unchanged:
            saved.append(f"{name} is already in the corpus, unchanged")
        else:
            saved.append(f"{'Replaced' if result.replaced else 'Saved'} {name}")
    if saved:
        st.session_state.notices.append(("info", "  \n".join(saved)))
        build_ui(settings, "Indexing the new articles")
    # A fresh uploader key empties the widget, so the same files are not saved again.
    st.session_state.uploader_generation += 1
    st.rerun()


# --- the Ask page ---------------------------------------------------------------------------


def ask_page(settings: Settings) -> None:
    head, button = st.columns([4, 1], vertical_alignment="bottom")
    head.title("Ask the articles")
    if st.session_state.turns:
        button.button("New conversation", icon=":material/add_comment:", on_click=new_conversation)
    # The chat box comes first, so that on a cold start it is on screen (and can be typed
    # into) while the model loads; a question sent meanwhile is answered once it has.
    question = st.chat_input(
        "Ask a question about the articles", key="question", max_chars=MAX_QUESTION_CHARS
    )
    engine = open_engine(settings)
    if engine is None:
        return
    count = engine.index.manifest.article_count
    st.caption(f"{count} articles. Answers are copied from them, never made up.")
    question = question or st.session_state.pending_question
    st.session_state.pending_question = None
    if question:
        ask_question(engine, question)
        save_turns(settings.index_dir)
    for number, turn in enumerate(st.session_state.turns):
        turn_ui(settings, turn, number)
    if st.session_state.ask_error:
        st.error(md_escape(st.session_state.ask_error))
    if not st.session_state.turns:
        examples_ui(engine)


def ask_question(engine: QAEngine, question: str) -> None:
    history = [turn["result"].to_turn() for turn in st.session_state.turns]
    st.session_state.ask_error = None
    try:
        with st.spinner("Searching the articles…"):
            result = engine.ask(
                question,
                history,
                top_k=st.session_state.top_k,
                threshold=st.session_state.threshold,
            )
    except UserError as error:
        st.session_state.ask_error = str(error)
        return
    st.session_state.turns.append({"id": uuid.uuid4().hex[:12], "result": result, "rating": None})


def examples_ui(engine: QAEngine) -> None:
    examples = load_examples(engine, engine.index.path.name)
    if examples:
        st.pills(
            "Try one of these",
            examples,
            key="example_pick",
            format_func=md_escape,
            on_change=pick_example,
        )


def turn_ui(settings: Settings, turn: dict, number: int) -> None:
    result: QAResult = turn["result"]
    with st.chat_message("user"):
        st.text(result.question)  # as typed: no Markdown, so no link is made of a URL in it
    with st.chat_message("assistant"):
        if result.resolved.is_followup:
            st.caption(f"understood as: {md_escape(result.resolved.asked)} (a follow-up)")
        if result.answer is not None:
            answer_ui(result, turn["id"])
        else:
            st.markdown(
                "**Not in these articles.** No passage answers this with enough confidence; "
                "the closest ones are below, so you can judge."
            )
        if st.session_state.show_passages or result.answer is None:
            passages_ui(result, turn["id"])
        st.feedback(
            "thumbs",
            key=f"feedback-{turn['id']}",
            default=THUMB_OF_RATING.get(turn["rating"]),
            on_change=rate_answer,
            args=(settings.index_dir, turn["id"]),
        )


def answer_ui(result: QAResult, turn_id: str) -> None:
    answer: Answer = result.answer
    citations = result.citations
    sentence = highlight_html(
        answer.sentence,
        [(answer.start - answer.sentence_start, answer.end - answer.sentence_start)],
    )
    numbers = "".join(f'<sup class="qa-cite">[{c.number}]</sup>' for c in citations)
    sources = "".join(
        f'<p class="qa-meta">[{c.number}] {source_html(result.passages[c.number - 1].article)}</p>'
        for c in citations
    )
    st.html(
        f'<p class="qa-short"><strong>{html.escape(answer.text)}</strong> {numbers}</p>'
        f'<blockquote class="qa-sentence">{sentence}</blockquote>'
        f'<p class="qa-meta">Confidence: {result.band} · {answer.score:.2f}</p>'
        f'<p class="qa-meta">Sources:</p>{sources}'
    )
    for column, citation in zip(st.columns(max(len(citations), 3)), citations, strict=False):
        column.button(
            f"Open [{citation.number}]",
            key=f"open-cited-{turn_id}-{citation.number}-{citation.start}",
            icon=":material/article:",
            help="Open the article at the cited sentence",
            on_click=open_article,
            args=(citation.article_id, (citation.start, citation.end), result.question,
                  f"the sentence cited as [{citation.number}]"),
        )  # fmt: skip


def source_html(article: Article) -> str:
    source = html.escape(Path(article.source).name)
    if re.match(r"https?://", article.source):
        source = f'<a href="{html.escape(article.source)}">{html.escape(article.source)}</a>'
    published = f" · published {html.escape(article.published)}" if article.published else ""
    return f"<cite>{html.escape(article.title)}</cite> · {source}{published}"


def passages_ui(result: QAResult, turn_id: str) -> None:
    count = len(result.passages)
    label = f"{count} passage{'s' if count != 1 else ''}"
    if result.answer is None:
        label = f"{count} closest passage{'s' if count != 1 else ''}"
    # Closed even after a refusal: open, they would push the "not in these articles" out of view.
    with st.expander(label, expanded=False):
        for rank, hit in enumerate(result.passages, start=1):
            st.html(passage_html(rank, hit, result.answer))
            st.button(
                "Open article",
                key=f"open-{turn_id}-{rank}",
                icon=":material/article:",
                on_click=open_article,
                args=(
                    hit.article.id,
                    (hit.chunk.start, hit.chunk.end),
                    result.question,
                    f"passage [{rank}]",
                ),  # fmt: skip
            )


def passage_html(rank: int, hit: Hit, answer: Answer | None) -> str:
    marks = []
    if answer is not None and answer.article_id == hit.article.id:
        # Offsets into the passage; highlight_html clips a span reaching outside it.
        marks.append((answer.start - hit.chunk.start, answer.end - hit.chunk.start))
    return (
        f'<p class="qa-passage-head">[{rank}] · score {hit.score:.3f} · '
        f"<cite>{html.escape(hit.article.title)}</cite> · "
        f"{html.escape(Path(hit.article.source).name)}</p>"
        f'<p class="qa-passage">{highlight_html(hit.chunk.text, marks)}</p>'
    )


# --- the Articles page ----------------------------------------------------------------------


def articles_page(settings: Settings) -> None:
    st.title("Articles")
    engine = open_engine(settings)
    if engine is None:
        return
    documents = engine.index.documents
    from retrieval.articles import article_labels

    query = st.text_input(
        "Search articles", key="article_search", placeholder="words of a title or of the text"
    )
    matches, total = documents.find_articles(query, limit=ARTICLE_LIST_LIMIT)
    if not matches:
        st.info("No article holds all of those words.")
        return
    labels = article_labels(matches)
    ids = [entry.id for entry in matches]
    wanted = st.session_state.open_article
    cited = documents.article(wanted) if wanted else None
    if wanted and cited is None:
        st.warning("The cited article has changed since it was cited; pick it again below.")
    elif cited is not None and wanted not in ids and not query:
        ids.insert(0, wanted)  # past the end of a long list, still the one a citation opened
        labels[wanted] = cited.title
    # No key: the default follows the article a citation opened, and a choice here sticks.
    # Option labels are plain text, not Markdown, so titles go in unescaped.
    chosen = st.selectbox(
        "Article",
        ids,
        index=ids.index(wanted) if wanted in ids else 0,
        format_func=labels.__getitem__,
    )
    st.session_state.open_article = chosen
    # The list folds away when a citation brought the reader here for one article.
    count = f"{total:,} article{'s' if total != 1 else ''}"
    heading = f"All {count}" if total == engine.index.manifest.article_count else f"{count} found"
    if total > len(matches):
        heading += f" (the first {len(matches):,} by title)"
    st.session_state.article_rows = [entry.id for entry in matches]
    with st.expander(heading, expanded=st.session_state.cited is None):
        st.dataframe(
            [
                {
                    "Title": entry.title,
                    "Chunks": entry.passages,
                    "File": Path(entry.source).name,
                    "Published": entry.published or "",
                }
                for entry in matches
            ],
            hide_index=True,
            width="stretch",
            key="article_table",
            on_select=pick_row,
            selection_mode="single-row",
        )
    article_ui(documents.article(chosen), documents.passage_counts([chosen]).get(chosen, 0))


def article_ui(article: Article, chunk_count: int) -> None:
    cited = st.session_state.cited
    spans = cited["spans"] if cited and cited["article_id"] == article.id else []
    st.subheader(md_escape(article.title))
    details = [md_escape(article.source), f"{chunk_count} chunks"]
    if article.published:
        details.append(f"published {md_escape(article.published)}")
    st.caption(" · ".join(details))
    if spans:
        st.caption(f"Marked: {cited['what']} for “{md_escape(cited['question'])}”")
    with st.container(border=True):
        marked = highlight_html(article.text, spans, anchor="qa-cited")
        st.html(f'<div class="qa-article">{marked}</div>')
    if spans and cited.get("scroll"):
        cited["scroll"] = False  # once: later reruns leave the reader where they scrolled
        st.html(SCROLL_TO_CITED, unsafe_allow_javascript=True)


# --- the app --------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def page_icon() -> Any:
    """A small newspaper-grey square with a blue headline bar, as the tab's icon."""
    from PIL import Image, ImageDraw

    icon = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(icon)
    draw.rounded_rectangle((2, 2, 29, 29), radius=5, fill=(236, 239, 243), outline=(90, 98, 110))
    draw.rectangle((7, 8, 24, 12), fill=(40, 100, 200))
    for top in (16, 20, 24):
        draw.rectangle((7, top, 24, top + 1), fill=(120, 128, 140))
    return icon


def main() -> None:
    # The icon is drawn here: a Material or emoji icon is fetched from a font server, and
    # the page must make no request outside this machine.
    st.set_page_config(page_title="Article Q&A", page_icon=page_icon())
    st.html(PAGE_CSS)
    settings = app_settings(sys.argv[1:])
    init_state(settings)
    sidebar_ui(settings)

    def ask() -> None:
        ask_page(settings)

    def articles() -> None:
        articles_page(settings)

    ask_nav = st.Page(ask, title="Ask", icon=":material/chat:", url_path="ask", default=True)
    articles_nav = st.Page(
        articles, title="Articles", icon=":material/article:", url_path="articles"
    )
    page = st.navigation([ask_nav, articles_nav], position="top")
    if st.session_state.goto_articles:
        st.session_state.goto_articles = False
        st.switch_page(articles_nav)
    page.run()


if __name__ == "__main__":
    main()

